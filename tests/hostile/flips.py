# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Never a false pass (issue 10, item 5): a good SEV-ES launch and every single-bit flip of its measured inputs.

The launch (firmware with an AmdSev-like footer, kernel, initrd, cmdline, two
VMSAs, TIK, policy, API version, build id, measurement and mnonce) is computed
from test-side code only (tests/platform/launch_model.py and guest_owner.py).
Validation goes through validate_options.run_validation, the step the action
plugin and the differential suite share; small inputs are handed to it from
memory, the streamed ones (firmware, kernel, initrd) as files.
"""

from __future__ import annotations

import base64
import hashlib
import os

from ansible_collections.confidential.sev.plugins.module_utils.sev.files import read_small_file
from ansible_collections.confidential.sev.plugins.module_utils.validate_options import ARGUMENT_SPEC, run_validation
from ansible_collections.confidential.sev.tests.platform import guest_owner, launch_model
from ansible_collections.confidential.sev.tests.support import firmware as fwb

TIK = bytes.fromhex('5e0c8a3b7d214f96a8e1c07b3f5d9a24')
TEK = bytes.fromhex('c3a1e8074b5f92d6e0718a4c2b9f3d65')
MNONCE = bytes.fromhex('0f9e8d7c6b5a49382716a5b4c3d2e1f0')
API = (1, 51)
BUILD_ID = 3
POLICY = 0x7
CMDLINE = b'console=ttyS0 root=/dev/vda1 ro quiet'
KERNEL = hashlib.sha256(b'kernel').digest() * 16       # 512 bytes
INITRD = hashlib.sha256(b'initrd').digest() * 16       # 512 bytes
FIRMWARE_BODY = 64 * 1024
FOOTER_TAIL = 32 + 18 + 3 * 18 + 4 + 8 + 8           # reset vector, footer, three entries with their data

MISMATCH, REJECTED = {1}, {1, 2, 3, 4}


def measurement(digest, tik=TIK, api=API, build_id=BUILD_ID, policy=POLICY, mnonce=MNONCE):
    return base64.b64encode(guest_owner.expected_measure(tik, api, build_id, policy, digest, mnonce)
                            + mnonce).decode()


def flipped(data, bit):
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


class Launch:
    """The good launch's files in ``root``; ``verdict(**changes)`` validates with options changed
    (bytes for the small inputs, read from memory)."""

    def __init__(self, root, firmware_body=FIRMWARE_BODY, kernel=KERNEL, initrd=INITRD):
        self.root = str(root)
        self.firmware = fwb.build_image(body_size=firmware_body)
        self.kernel, self.initrd = kernel, initrd
        self.paths = {}
        for name, data in (('firmware', self.firmware), ('kernel', kernel), ('initrd', initrd)):
            self.paths[name] = self.write(name, data)
        plan = launch_model.LaunchPlan(self.paths['firmware'], POLICY, num_cpus=2, cpu_option='EPYC',
                                       kernel_hashes=True, kernel=self.paths['kernel'],
                                       initrd=self.paths['initrd'], cmdline=CMDLINE.decode())
        self.vmsas = [data for name, data in plan.pieces if name.startswith('vmsa')]
        self.digest = plan.digest()
        self.measurement = measurement(self.digest)
        self.memory = {}

    def write(self, name, data):
        path = os.path.join(self.root, name)
        with open(path, 'wb') as stream:
            stream.write(data)
        return path

    def _read(self, path, what):
        if path in self.memory:
            return self.memory[path]
        return read_small_file(path, what)

    def params(self, **changes):
        params = dict((key, spec.get('default')) for key, spec in ARGUMENT_SPEC.items())
        small = {'tik': TIK, 'tek': TEK, 'vmsa_cpu0': self.vmsas[0], 'vmsa_cpu1': self.vmsas[1]}
        for key in list(small):
            if key in changes:
                small[key] = changes.pop(key)
        self.memory = dict(('mem:%s' % key, value) for key, value in small.items())
        params.update(measurement=self.measurement, api_major=API[0], api_minor=API[1], build_id=BUILD_ID,
                      policy=POLICY, firmware=self.paths['firmware'], kernel=self.paths['kernel'],
                      initrd=self.paths['initrd'], cmdline_b64=base64.b64encode(CMDLINE).decode(), num_cpus=2,
                      diagnose=False, **dict(('%s' % key, 'mem:%s' % key) for key in small))
        params.update(changes)
        return params

    def verdict(self, **changes):
        """The result dict of run_validation."""
        return run_validation(self.params(**changes), self._read)


def check(result, expected, what):
    """'' when ``result`` is in the ``expected`` rc set and no pass, else the problem."""
    rc = result.get('rc')
    if result.get('valid') or rc == 0:
        return '%s: FALSE PASS' % what
    if rc not in expected:
        return '%s: rc %r (reason %r), expected %s: %s' % (what, rc, result.get('reason'), sorted(expected),
                                                           str(result.get('msg'))[:200])
    return ''

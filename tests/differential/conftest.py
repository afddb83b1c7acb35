# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the differential suite.

``references_work`` (session, autouse) runs one known-good case through both
references before anything else and checks their output *text*: an
ImportError (wrong interpreter, no lxml/libvirt) also makes
virt-qemu-sev-validate exit 1, so an exit code alone proves nothing.  If a
reference cannot run, every test of the suite errors with the reason.
"""

from __future__ import annotations

import hashlib
import os
import random

import pytest

import difftools as dt


def pytest_collection_modifyitems(items):
    for item in items:
        if 'tests/differential' in str(item.fspath).replace(os.sep, '/'):
            item.add_marker(pytest.mark.differential)


def _check_references(directory):
    problems = []
    if not os.path.exists(dt.DEBIAN_PYTHON) or not os.path.exists(dt.VIRT_VALIDATE):
        return ['%s or %s is missing (apt-get install libvirt-clients-qemu)'
                % (dt.DEBIAN_PYTHON, dt.VIRT_VALIDATE)]
    firmware = dt.DEBIAN_FIRMWARE['OVMF_CODE']
    if not os.path.exists(firmware):
        return ['%s is missing (apt-get install ovmf)' % firmware]
    fw_sha = hashlib.sha256(open(firmware, 'rb').read()).hexdigest()
    rng = random.Random(1234)
    tik, tek, mnonce = rng.randbytes(16), rng.randbytes(16), rng.randbytes(16)
    sc = dt.Scenario(directory, firmware, api=(0, 24, 15), policy=0x3, tik=tik, tek=tek)
    # Plain SEV without kernel: the launch digest is sha256(firmware file).
    expected = dt.measure_hmac(tik, 0, 24, 15, 0x3, bytes.fromhex(fw_sha), mnonce)
    dummy = bytes(32) + mnonce
    proc = dt.run_reference(sc.ref_args(dt.b64(dummy)), debug=True)
    if proc.returncode != 1 or dt.REF_MISMATCH not in proc.stderr:
        problems.append('virt-qemu-sev-validate --debug on a dummy measurement: exit %d, '
                        'expected 1 with %r; stderr:\n%s' % (proc.returncode, dt.REF_MISMATCH, proc.stderr))
    else:
        log = dt.parse_debug(proc.stderr)
        if log.get('Measured-data(sha256)') != fw_sha or log.get('Firmware(sha256)') != fw_sha:
            problems.append('virt-qemu-sev-validate logged Measured-data %r, expected sha256 of %s = %s'
                            % (log.get('Measured-data(sha256)'), firmware, fw_sha))
        if log.get('Measurement computed(hex)') != expected.hex():
            problems.append('virt-qemu-sev-validate computed %r, expected %s'
                            % (log.get('Measurement computed(hex)'), expected.hex()))
    proc = dt.run_reference(sc.ref_args(dt.b64(expected + mnonce)))
    if (proc.returncode, proc.stdout) != (0, dt.REF_OK):
        problems.append('virt-qemu-sev-validate on a good measurement: exit %d, stdout %r, stderr:\n%s'
                        % (proc.returncode, proc.stdout, proc.stderr))
    proc = dt.run_snp_measure(['--mode', 'sev', '--ovmf', firmware])
    if proc.returncode != 0 or proc.stdout.strip() != fw_sha:
        problems.append('%s --mode sev: exit %d, stdout %r (expected %s), stderr:\n%s'
                        % (dt.SNP_MEASURE, proc.returncode, proc.stdout, fw_sha, proc.stderr))
    return problems


@pytest.fixture(scope='session', autouse=True)
def references_work(tmp_path_factory):
    problems = _check_references(tmp_path_factory.mktemp('reference-check'))
    if problems:
        pytest.fail('THE REFERENCE TOOLS CANNOT RUN; the differential suite is meaningless:\n\n'
                    + '\n\n'.join(problems), pytrace=False)


@pytest.fixture
def rng(request):
    """A per-test RNG seeded from the case's seed (parametrized as ``case``) or its id."""
    case = request.node.callspec.params.get('case') if hasattr(request.node, 'callspec') else None
    seed = case['seed'] if isinstance(case, dict) and 'seed' in case else request.node.nodeid
    return random.Random(seed)

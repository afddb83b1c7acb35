# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mismatch diagnosis: every common mistake made on purpose, and named.

Each test describes what the host really did (a ``Launch``) and computes the
measurement that host's platform would report with code written here from the
documented formats: the launch digest from the file bytes, the kernel hashes
table and the VMSA layout, then MEASURE = HMAC-SHA256(TIK, 0x04 || api_major ||
api_minor || build_id || policy u32 LE || launch digest || mnonce).  Nothing of
plugins/ is used for that.  The guest owner's options then differ from the
launch by exactly one mistake, and the diagnosis must name exactly that one,
while the verdict stays a mismatch (valid false, reason mismatch, rc 1) and no
MAC computed on the controller shows up anywhere in the result.

The engine is driven through ``validate_options.run_validation``, the code the
action plugin runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import re
import struct
import time
import uuid

import pytest

from ansible_collections.confidential.sev.plugins.module_utils import validate_options as vo
from ansible_collections.confidential.sev.plugins.module_utils.sev import diagnosis, streaming
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import read_small_file
from ansible_collections.confidential.sev.tests.support import firmware as fwb

TIK = bytes.fromhex('66320db73158a35a255d051758e95ed4')
TEK = bytes.fromhex('0f1e2d3c4b5a69788796a5b4c3d2e1f0')
MNONCE = bytes.fromhex('4fbe0bedbad6c86ae8f68971d103e554')
API = (1, 55, 21)

KERNEL = b'bzImage' + bytes(range(256)) * 40
INITRD = b'070701' + bytes(range(255, -1, -1)) * 30
CMDLINE = 'console=ttyS0 root=/dev/vda1 quiet'

# The SEV-ES generations of docs/sev-measurement.md section 4 (family, model, stepping).
NAPLES, ROME, MILAN, GENOA, TURIN = (23, 1, 2), (23, 49, 0), (25, 1, 1), (25, 17, 0), (26, 0, 0)
DOCUMENTED_SKUS = (NAPLES, ROME, MILAN, GENOA, TURIN)

SYNTHETIC_RESET = 0x0080b004
DEBIAN_FIRMWARE = (
    '/usr/share/OVMF/OVMF_CODE.fd',
    '/usr/share/OVMF/OVMF_CODE_4M.fd',
    '/usr/share/OVMF/OVMF_CODE.secboot.fd',
    '/usr/share/ovmf/OVMF.fd',
)
DEBIAN_RESET = {
    '/usr/share/OVMF/OVMF_CODE.fd': 0x0080b004,
    '/usr/share/OVMF/OVMF_CODE_4M.fd': 0x00808004,
    '/usr/share/OVMF/OVMF_CODE.secboot.fd': 0x0080b004,
    '/usr/share/ovmf/OVMF.fd': 0x0080b004,
}
# scripts/setup.sh installs Debian's ovmf: a missing build fails these tests, never skips them.
needs_debian_ovmf = pytest.mark.usefixtures('debian_ovmf')


@pytest.fixture
def debian_ovmf():
    missing = [path for path in DEBIAN_FIRMWARE if not os.path.exists(path)]
    assert not missing, 'Debian ovmf builds missing (run scripts/setup.sh): %s' % missing


FOOTER_GUID = uuid.UUID('96b582de-1fb2-45f7-baea-a366c55a082d')
RESET_BLOCK_GUID = uuid.UUID('00f771de-1a7e-4fcb-890e-68c77e2fb44e')
HASH_TABLE_GUID = uuid.UUID('9438d606-4f22-4cc9-b479-a793d411fd21')
CMDLINE_GUID = uuid.UUID('97d02dd8-bd20-4c94-aa78-e7714d36ab2a')
INITRD_GUID = uuid.UUID('44baf731-3a2f-4bd7-9af1-41e29169781d')
KERNEL_GUID = uuid.UUID('4de79437-abd2-427f-b835-d5b172d2045b')


# ---- the platform, written here from the documented formats ---------------------------

def sha256(data):
    return hashlib.sha256(data).digest()


def kernel_hashes_table(cmdline, initrd_digest, kernel_digest):
    """The padded 176-byte table: header, then cmdline, initrd, kernel entries."""
    def entry(guid, digest):
        return guid.bytes_le + struct.pack('<H', 50) + digest
    table = (HASH_TABLE_GUID.bytes_le + struct.pack('<H', 168)
             + entry(CMDLINE_GUID, sha256(cmdline + b'\0'))
             + entry(INITRD_GUID, initrd_digest)
             + entry(KERNEL_GUID, kernel_digest))
    return table + bytes(16 - len(table) % 16)


def cpu_signature(family, model, stepping):
    sig = family << 8 if family <= 0xf else (0xf << 8) | ((family - 0xf) << 20)
    return sig | ((model & 0xf) << 4) | ((model >> 4) << 16) | stepping


def vmsa_page(cs_base, rip, signature, variant, features):
    """One SEV-ES VMSA; ``variant`` init2 has KVM's synced FPU state (MXCSR, FCW)."""
    page = bytearray(4096)
    attribs = (0x93, 0x9b, 0x93, 0x93, 0x93, 0x93, 0, 0x82, 0, 0x8b)   # es cs ss ds fs gs gdtr ldtr idtr tr
    for index, attrib in enumerate(attribs):
        selector, base = (0xf000, cs_base) if index == 1 else (0, 0)
        struct.pack_into('<HHIQ', page, 16 * index, selector, attrib, 0xffff, base)
    for offset, value in ((0xd0, 0x1000), (0x148, 0x40), (0x158, 0x10), (0x160, 0x400),
                          (0x168, 0xffff0ff0), (0x170, 0x2), (0x178, rip), (0x268, 0x0007040600070406),
                          (0x310, signature), (0x3b0, features), (0x3e8, 0x1)):
        struct.pack_into('<Q', page, offset, value)
    if variant == 'init2':
        struct.pack_into('<I', page, 0x408, 0x1f80)
        struct.pack_into('<H', page, 0x410, 0x037f)
    return bytes(page)


def footer_reset_address(image):
    """The SEV-ES AP reset address from an OVMF footer table (walked backwards)."""
    assert uuid.UUID(bytes_le=bytes(image[-48:-32])) == FOOTER_GUID
    total = struct.unpack_from('<H', image, len(image) - 50)[0]
    table = image[len(image) - 32 - total:len(image) - 50]
    while table:
        length = struct.unpack_from('<H', table, len(table) - 18)[0]
        if uuid.UUID(bytes_le=bytes(table[-16:])) == RESET_BLOCK_GUID:
            return struct.unpack_from('<I', table, len(table) - length)[0]
        table = table[:len(table) - length]
    return None


def platform_measure(key, policy, digest, mnonce=MNONCE, api=API):
    message = bytes([0x04, api[0], api[1], api[2]]) + struct.pack('<I', policy) + digest + mnonce
    return hmac.new(key, message, hashlib.sha256).digest()


class Launch:
    """What the host really did.  ``files`` gives each file's bytes and digest
    (computed once, when the file was written)."""

    def __init__(self, files, firmware=None, policy=0x5, kernel=True, initrd=True, cmdline=CMDLINE,
                 hash_table=True, num_cpus=4, sku=MILAN, variant='legacy', features=0, key=TIK):
        self.files = files
        self.firmware = firmware or files.firmware
        self.policy = policy
        self.kernel = kernel
        self.initrd = initrd
        self.cmdline = cmdline.encode('utf-8') if isinstance(cmdline, str) else cmdline
        self.hash_table = hash_table
        self.num_cpus = num_cpus
        self.sku = sku
        self.variant = variant
        self.features = features
        self.key = key

    def digest(self):
        image = self.files.image(self.firmware)
        launch = hashlib.sha256(image)
        if self.kernel and self.hash_table:
            initrd_digest = self.files.digest['initrd'] if self.initrd else sha256(b'')
            launch.update(kernel_hashes_table(self.cmdline, initrd_digest, self.files.digest['kernel']))
        if self.policy & 0x4:
            reset = footer_reset_address(image)
            signature = cpu_signature(*self.sku)
            bsp = vmsa_page(0xffff0000, 0xfff0, signature, self.variant, self.features)
            ap = vmsa_page(reset & 0xffff0000, reset & 0xffff, signature, self.variant, self.features)
            launch.update(bsp + ap * (self.num_cpus - 1))
        return launch.digest()

    def measurement(self):
        """The base64 blob the platform reports: MEASURE || MNONCE."""
        return base64.b64encode(platform_measure(self.key, self.policy, self.digest()) + MNONCE).decode()


class Files:
    """The guest owner's files, written once per module."""

    def __init__(self, root):
        self.root = root
        self.images = {}
        self.digest = {}
        self.path = {}
        self.firmware = self.write_firmware('synthetic.fd', fwb.build_image(
            body_size=96 * 1024, fill=b'AmdSev-like body ', reset_address=SYNTHETIC_RESET))
        self.other_firmware = self.write_firmware('other.fd', fwb.build_image(
            body_size=96 * 1024, fill=b'another build ', reset_address=0x00808004))
        for name, data in (('kernel', KERNEL), ('initrd', INITRD), ('tik', TIK), ('tek', TEK),
                           ('tk', TEK + TIK), ('tk_wrong_order', TIK + TEK)):
            self.write(name, data)

    def write(self, name, data):
        path = self.root / name
        path.write_bytes(data)
        self.path[name] = str(path)
        self.digest[name] = sha256(data)
        return str(path)

    def write_firmware(self, name, data):
        path = self.write(name, data)
        self.images[path] = data
        return path

    def image(self, path):
        if path not in self.images:
            with open(path, 'rb') as stream:
                self.images[path] = stream.read()
        return self.images[path]


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    return Files(tmp_path_factory.mktemp('diagnosis'))


# ---- the guest owner's side ------------------------------------------------------------

def options(files, measurement, **changes):
    """Module options matching a default Launch, then ``changes`` (None removes an option)."""
    params = dict((name, list(spec['default']) if isinstance(spec.get('default'), list) else spec.get('default'))
                  for name, spec in vo.ARGUMENT_SPEC.items())
    params.update(measurement=measurement, api_major=API[0], api_minor=API[1], build_id=API[2],
                  policy=0x5, firmware=files.firmware, kernel=files.path['kernel'],
                  initrd=files.path['initrd'], cmdline=CMDLINE, num_cpus=4, cpu_family=MILAN[0],
                  cpu_model=MILAN[1], cpu_stepping=MILAN[2], tik=files.path['tik'], tek=files.path['tek'])
    if 'sku' in changes:
        sku = changes.pop('sku') or (None, None, None)
        params.update(cpu_family=sku[0], cpu_model=sku[1], cpu_stepping=sku[2])
    unknown = set(changes) - set(params)
    assert not unknown, unknown
    params.update(changes)
    return params


def run(params):
    return vo.run_validation(dict(params), read_small_file)


def user_keys(params):
    if params.get('tk'):
        with open(params['tk'], 'rb') as stream:
            data = stream.read()
        return data[16:]
    with open(params['tik'], 'rb') as stream:
        return stream.read()


def strings_in(value):
    """Every key and scalar in a result, as text."""
    if isinstance(value, dict):
        texts = []
        for key, item in value.items():
            texts.append(str(key))
            texts.extend(strings_in(item))
        return texts
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in strings_in(item)]
    return [] if value is None else [str(value)]


BASE64_MAC = re.compile(r'(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=|[A-Za-z0-9+/]{64}')
HEX_64 = re.compile(r'[0-9a-fA-F]{64}')


def assert_no_mac(result, params):
    """Neither the MEASURE the controller computed for the owner's inputs (hex or base64,
    alone or with the mnonce), nor anything shaped like a MAC, is in the result."""
    blob = base64.b64decode(params['measurement'])
    mnonce = blob[32:]
    computed = platform_measure(user_keys(params), params['policy'], bytes.fromhex(result['launch_digest']),
                                mnonce=mnonce, api=(params['api_major'], params['api_minor'], params['build_id']))
    text = json.dumps(result)
    for value in (computed, computed + mnonce):
        for form in (value.hex(), value.hex().upper(), base64.b64encode(value).decode()):
            assert form not in text
    digests = set(result.get('digests', {}).values()) | {result.get('launch_digest')}
    for item in strings_in(result):
        for found in HEX_64.findall(item) + BASE64_MAC.findall(item):
            assert found in digests, item
    assert 'computed_measurement' not in result


def assert_mismatch_verdict(result):
    assert result['valid'] is False and result['reason'] == 'mismatch' and result['rc'] == 1, result
    assert result['failed'] is True
    assert 'computed_measurement' not in result and 'secret_header' not in result


def verdict(result):
    return dict((key, value) for key, value in result.items() if key not in ('diagnosis', 'msg'))


def diagnosed(files, launch, expected, **changes):
    """Validate the owner's options against the launch's measurement: the verdict must be
    the same with and without the diagnosis, which must name ``expected`` and only it."""
    params = options(files, launch.measurement(), **changes)
    result = run(params)
    assert_mismatch_verdict(result)
    found = result['diagnosis']
    assert [match['change'] for match in found['matches']] == [expected], found
    assert expected in found['tried']
    assert len(set(found['tried'])) == len(found['tried'])
    advice = found['matches'][0]['advice']
    assert found['summary'] == advice
    assert result['msg'] == 'the measurement does not match. Diagnosis: %s' % advice
    assert_no_mac(result, params)
    without = run(dict(params, diagnose=False))
    assert 'diagnosis' not in without
    assert verdict(without) == verdict(result)
    return result


# ---- the independent computation is right ------------------------------------------------

@pytest.mark.parametrize('launch_args, changes', [
    ({}, {}),
    (dict(policy=0x1), dict(num_cpus=None, sku=None, policy=0x1)),
    (dict(kernel=False, num_cpus=1), dict(kernel=None, initrd=None, cmdline=None, num_cpus=1)),
    (dict(variant='init2', features=0x20, sku=GENOA), dict(vmsa_variant='init2', vmsa_sev_features=0x20, sku=GENOA)),
])
def test_the_launch_built_here_validates(files, launch_args, changes):
    launch = Launch(files, **launch_args)
    params = options(files, launch.measurement(), **changes)
    result = run(params)
    assert result['valid'] is True and result['rc'] == 0, result
    assert result['launch_digest'] == launch.digest().hex()
    assert 'diagnosis' not in result


@needs_debian_ovmf
def test_debian_reset_addresses(files):
    for path, reset in DEBIAN_RESET.items():
        assert footer_reset_address(files.image(path)) == reset
    assert len(set(sha256(files.image(path)) for path in DEBIAN_FIRMWARE)) == len(DEBIAN_FIRMWARE)


# ---- one mistake each -------------------------------------------------------------------

def test_tik_and_tek_swapped(files):
    diagnosed(files, Launch(files), 'tik_tek_swapped', tik=files.path['tek'], tek=files.path['tik'])


def test_tk_file_in_the_wrong_order(files):
    """A tk file holds TEK first; one written TIK first swaps the keys."""
    diagnosed(files, Launch(files), 'tik_tek_swapped', tik=None, tek=None, tk=files.path['tk_wrong_order'])


@pytest.mark.parametrize('policy', [0x1, 0x5])
def test_kernel_hashes_off(files, policy):
    launch = Launch(files, policy=policy, hash_table=False)
    changes = {} if policy & 0x4 else dict(policy=policy, num_cpus=None, sku=None)
    result = diagnosed(files, launch, 'kernel_hashes_off', **changes)
    assert 'NOT protected' in result['diagnosis']['summary']


def test_initrd_missing(files):
    diagnosed(files, Launch(files, initrd=False), 'initrd_missing')


# (what the host used, what the owner wrote, the change named)
CMDLINE_MISTAKES = [
    ('root=/dev/vda1', ' root=/dev/vda1', 'cmdline_leading_whitespace_removed'),
    ('root=/dev/vda1', 'root=/dev/vda1 ', 'cmdline_trailing_whitespace_removed'),
    ('root=/dev/vda1', 'root=/dev/vda1  ', 'cmdline_trailing_whitespace_removed'),
    ('root=/dev/vda1', '  root=/dev/vda1 ', 'cmdline_stripped'),
    ('root=/dev/vda1 ', 'root=/dev/vda1', 'cmdline_trailing_space_added'),
    ('root=/dev/vda1\n', 'root=/dev/vda1', 'cmdline_trailing_newline_added'),
    # A newline the owner has and the host had not is found by stripping trailing whitespace.
    ('root=/dev/vda1', 'root=/dev/vda1\n', 'cmdline_trailing_whitespace_removed'),
    ('', 'root=/dev/vda1', 'cmdline_empty'),
    (' root=/dev/vda1', 'root=/dev/vda1', 'cmdline_leading_space_added'),
    ('console=ttyS0 root=/dev/vda1', 'console=ttyS0  root=/dev/vda1', 'cmdline_repeated_spaces_collapsed'),
    ('console=ttyS0 root=/dev/vda1', 'console=ttyS0   root=/dev/vda1', 'cmdline_repeated_spaces_collapsed'),
]


@pytest.mark.parametrize('host, owner, expected', CMDLINE_MISTAKES,
                         ids=[repr(owner) + '-host' + repr(host) for host, owner, expected in CMDLINE_MISTAKES])
def test_cmdline_whitespace(files, host, owner, expected):
    result = diagnosed(files, Launch(files, cmdline=host), expected, cmdline=owner)
    assert repr(host) in result['diagnosis']['summary']


@pytest.mark.parametrize('delta', [-4, -3, -2, -1, 1, 2, 3, 4])
def test_vcpu_count_off(files, delta):
    diagnosed(files, Launch(files, num_cpus=5 + delta), 'num_cpus_%d' % (5 + delta), num_cpus=5)


@pytest.mark.parametrize('host, owner', [(1, 2), (2, 1), (5, 1), (1, 5)])
def test_vcpu_count_off_near_one(files, host, owner):
    diagnosed(files, Launch(files, num_cpus=host), 'num_cpus_%d' % host, num_cpus=owner)


def test_vcpu_count_off_by_five_is_beyond_the_diagnosis(files):
    result = run(options(files, Launch(files, num_cpus=10).measurement(), num_cpus=5))
    assert_mismatch_verdict(result)
    assert result['diagnosis']['matches'] == []
    assert 'num_cpus_9' in result['diagnosis']['tried'] and 'num_cpus_10' not in result['diagnosis']['tried']


def test_every_documented_sku_is_known():
    assert set(DOCUMENTED_SKUS) <= set(sku for label, sku in diagnosis.KNOWN_SKUS)


@pytest.mark.parametrize('label, sku', diagnosis.KNOWN_SKUS, ids=[label for label, sku in diagnosis.KNOWN_SKUS])
def test_another_cpu_sku(files, label, sku):
    owner = ROME if sku == MILAN else MILAN
    result = diagnosed(files, Launch(files, sku=sku), 'cpu_sku_%d_%d_%d' % sku, sku=owner)
    assert label in result['diagnosis']['summary']


def test_host_sku_found_when_the_owner_gave_an_unknown_one(files):
    diagnosed(files, Launch(files, sku=GENOA), 'cpu_sku_25_17_0', sku=(25, 8, 0))


@pytest.mark.parametrize('host, owner', [('init2', 'legacy'), ('legacy', 'init2')])
def test_vmsa_variant(files, host, owner):
    diagnosed(files, Launch(files, variant=host), 'vmsa_variant_%s' % host, vmsa_variant=owner)


@pytest.mark.parametrize('host, owner', [(0x20, 0), (0, 0x20)])
def test_debug_swap(files, host, owner):
    diagnosed(files, Launch(files, features=host), 'sev_features_0x%x' % host, vmsa_sev_features=owner)


def test_debug_swap_with_init2(files):
    diagnosed(files, Launch(files, variant='init2', features=0x20), 'sev_features_0x20', vmsa_variant='init2')


@pytest.mark.parametrize('kernel', [True, False])
def test_plain_sev_launch_validated_as_sev_es(files, kernel):
    changes = {} if kernel else dict(kernel=None, initrd=None, cmdline=None)
    result = diagnosed(files, Launch(files, policy=0x1, kernel=kernel), 'plain_sev', **changes)
    assert 'not protected' in result['diagnosis']['summary']


@needs_debian_ovmf
@pytest.mark.parametrize('es', [False, True], ids=['sev', 'sev-es'])
@pytest.mark.parametrize('host', DEBIAN_FIRMWARE)
def test_another_debian_firmware_build(files, host, es):
    """The host booted another Debian build.  For SEV-ES the APs' VMSAs follow that
    build's reset address (0x80b004 or 0x808004), so 3 vCPUs."""
    owner = '/usr/share/OVMF/OVMF_CODE_4M.fd' if host == '/usr/share/OVMF/OVMF_CODE.fd' else \
        '/usr/share/OVMF/OVMF_CODE.fd'
    launch = Launch(files, firmware=host, kernel=False, policy=0x5 if es else 0x1, num_cpus=3)
    changes = dict(firmware=owner, kernel=None, initrd=None, cmdline=None, diagnose_firmware=list(DEBIAN_FIRMWARE))
    if not es:
        changes.update(policy=0x1, num_cpus=None, sku=None)
    else:
        changes.update(num_cpus=3)
    result = diagnosed(files, launch, 'firmware %s' % host, **changes)
    tried = [name for name in result['diagnosis']['tried'] if name.startswith('firmware ')]
    # Every candidate but the owner's own firmware, each once.
    assert tried == ['firmware %s' % path for path in DEBIAN_FIRMWARE if path != owner]


@needs_debian_ovmf
def test_sev_es_firmware_reset_address_matters(files):
    """Same family of builds, different reset address: OVMF_CODE_4M with the 2M build's
    APs (reset 0x80b004) is not what the host measured."""
    launch = Launch(files, firmware='/usr/share/OVMF/OVMF_CODE_4M.fd', kernel=False, num_cpus=2)
    params = options(files, launch.measurement(), firmware='/usr/share/OVMF/OVMF_CODE.fd', kernel=None,
                     initrd=None, cmdline=None, num_cpus=2)
    wrong_ap = hashlib.sha256(files.image('/usr/share/OVMF/OVMF_CODE_4M.fd'))
    signature = cpu_signature(*MILAN)
    wrong_ap.update(vmsa_page(0xffff0000, 0xfff0, signature, 'legacy', 0)
                    + vmsa_page(0x00800000, 0xb004, signature, 'legacy', 0))
    assert wrong_ap.digest() != launch.digest()
    result = run(dict(params, diagnose_firmware=['/usr/share/OVMF/OVMF_CODE_4M.fd']))
    assert [match['change'] for match in result['diagnosis']['matches']] == \
        ['firmware /usr/share/OVMF/OVMF_CODE_4M.fd']


def test_another_firmware_with_direct_boot(files):
    """The kernel, initrd and cmdline digests carry over to the candidate firmware."""
    launch = Launch(files, firmware=files.other_firmware, num_cpus=2)
    diagnosed(files, launch, 'firmware %s' % files.other_firmware, num_cpus=2,
              diagnose_firmware=[files.firmware, files.other_firmware])


# ---- nothing matches, the verdict, no MAC ---------------------------------------------

def expected_attempts(files, owner_cmdline, num_cpus, owner_sku, variant, features, candidates):
    """Every single change the diagnosis is documented to try, for an SEV-ES direct boot."""
    names = ['tik_tek_swapped', 'kernel_hashes_off', 'initrd_missing']
    cmdline = owner_cmdline.encode()
    seen = {cmdline}
    for name, candidate in (('cmdline_trailing_whitespace_removed', cmdline.rstrip()),
                            ('cmdline_leading_whitespace_removed', cmdline.lstrip()),
                            ('cmdline_stripped', cmdline.strip()),
                            ('cmdline_repeated_spaces_collapsed', re.sub(b' +', b' ', cmdline)),
                            ('cmdline_trailing_newline_added', cmdline + b'\n'),
                            ('cmdline_leading_space_added', b' ' + cmdline),
                            ('cmdline_trailing_space_added', cmdline + b' '),
                            ('cmdline_empty', b'')):
        if candidate not in seen:
            seen.add(candidate)
            names.append(name)
    names += ['num_cpus_%d' % count for count in range(max(1, num_cpus - 4), num_cpus + 5) if count != num_cpus]
    names.append('plain_sev')
    names += ['cpu_sku_%d_%d_%d' % sku for label, sku in diagnosis.KNOWN_SKUS if sku != owner_sku]
    names.append('vmsa_variant_%s' % ('legacy' if variant == 'init2' else 'init2'))
    names.append('sev_features_0x%x' % (features ^ 0x20))
    names += ['firmware %s' % path for path in candidates if path != files.firmware]
    return names


def test_nothing_matches(files):
    """A launch with two mistakes at once is beyond a single change: no match, and
    'tried' lists every attempt."""
    launch = Launch(files, num_cpus=6, sku=GENOA)
    params = options(files, launch.measurement(), cmdline=' ' + CMDLINE + ' ', diagnose_firmware=[
        files.firmware, files.other_firmware])
    result = run(params)
    assert_mismatch_verdict(result)
    found = result['diagnosis']
    assert found['matches'] == []
    expected = expected_attempts(files, ' ' + CMDLINE + ' ', 4, MILAN, 'legacy', 0, params['diagnose_firmware'])
    assert sorted(found['tried']) == sorted(expected)
    assert len(found['tried']) == len(expected)
    assert found['summary'] == 'none of %d single changes matched' % len(expected)
    assert result['msg'].endswith('(the diagnosis tried %d single changes; none matched)' % len(expected))
    assert result['msg'].startswith(vo.FAILURE_HINTS['mismatch'])
    assert_no_mac(result, params)


def test_random_measurement_matches_nothing(files):
    blob = base64.b64encode(random.Random(7).randbytes(48)).decode()
    params = options(files, blob, diagnose_firmware=[files.other_firmware])
    result = run(params)
    assert_mismatch_verdict(result)
    assert result['diagnosis']['matches'] == []
    assert_no_mac(result, params)
    assert verdict(run(dict(params, diagnose=False))) == verdict(result)


def test_diagnose_false_gives_no_diagnosis(files):
    params = options(files, Launch(files, num_cpus=5).measurement(), diagnose=False,
                     diagnose_firmware=[files.other_firmware])
    result = run(params)
    assert_mismatch_verdict(result)
    assert 'diagnosis' not in result
    assert result['msg'] == vo.FAILURE_HINTS['mismatch']
    assert_no_mac(result, params)


def test_a_match_has_no_diagnosis(files):
    result = run(options(files, Launch(files).measurement(), diagnose_firmware=[files.other_firmware]))
    assert result['valid'] is True and 'diagnosis' not in result


def test_requirements_are_not_diagnosed(files):
    """A match with an unmet owner requirement is refused as before, with no diagnosis."""
    result = run(options(files, Launch(files).measurement(), require_policy=['NOKS']))
    assert (result['reason'], result['rc']) == ('config', 4) and 'diagnosis' not in result


# ---- unusable candidate firmware ---------------------------------------------------------

def test_unreadable_diagnose_firmware_is_reported_not_fatal(files, tmp_path):
    missing = str(tmp_path / 'missing.fd')
    directory = str(tmp_path)
    no_reset = str(tmp_path / 'no-reset.fd')
    with open(no_reset, 'wb') as stream:
        stream.write(fwb.build_image(body_size=4096, entries=[]))
    malformed = bytearray(fwb.build_image(body_size=64))
    malformed[-50:-48] = struct.pack('<H', 0xffff)
    bad_footer = str(tmp_path / 'bad-footer.fd')
    with open(bad_footer, 'wb') as stream:
        stream.write(bytes(malformed))
    launch = Launch(files, firmware=files.other_firmware)
    params = options(files, launch.measurement(),
                     diagnose_firmware=[missing, directory, no_reset, bad_footer, files.other_firmware])
    result = run(params)
    assert_mismatch_verdict(result)
    found = result['diagnosis']
    assert [match['change'] for match in found['matches']] == ['firmware %s' % files.other_firmware]
    notes = [name for name in found['tried'] if name.startswith('firmware ')]
    assert len(notes) == 5
    assert notes[0].startswith('firmware %s (not usable: ' % missing) and 'No such file' in notes[0]
    assert notes[1].startswith('firmware %s (not usable: ' % directory)
    assert notes[2] == 'firmware %s (no SEV-ES reset block)' % no_reset
    assert notes[3].startswith('firmware %s (not usable: ' % bad_footer)
    assert notes[4] == 'firmware %s' % files.other_firmware
    assert verdict(run(dict(params, diagnose=False))) == verdict(result)


def test_unreadable_diagnose_firmware_on_a_match(files, tmp_path):
    """A diagnosis-only path never matters when the measurement matches."""
    result = run(options(files, Launch(files).measurement(), diagnose_firmware=[str(tmp_path / 'missing.fd')]))
    assert result['valid'] is True and result['rc'] == 0


# ---- cost -------------------------------------------------------------------------------

def test_diagnosis_of_large_files_costs_under_a_second(tmp_path, monkeypatch):
    """64 MiB initrd + 16 MiB kernel: the diagnosis adds under 1 s, since it reuses the
    hashed files (each is opened once per validation)."""
    rng = random.Random(64)
    big = Files(tmp_path)
    big.write('kernel', rng.randbytes(16 << 20))
    big.write('initrd', rng.randbytes(64 << 20))
    launch = Launch(big, num_cpus=6)
    params = options(big, launch.measurement())

    opened = []
    real_open = streaming.open_regular

    def counting_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(streaming, 'open_regular', counting_open)

    def timed(diagnose):
        del opened[:]
        start = time.perf_counter()
        result = run(dict(params, diagnose=diagnose))
        elapsed = time.perf_counter() - start
        assert opened.count(big.path['kernel']) == 1 and opened.count(big.path['initrd']) == 1, opened
        return elapsed, result

    timed(False)   # page cache
    without = min(timed(False)[0] for count in range(2))
    runs = [timed(True) for count in range(2)]
    with_diagnosis = min(elapsed for elapsed, result in runs)
    result = runs[0][1]
    assert [match['change'] for match in result['diagnosis']['matches']] == ['num_cpus_6']
    assert result['sizes']['initrd'] == 64 << 20 and result['sizes']['kernel'] == 16 << 20
    assert with_diagnosis - without < 1.0, (with_diagnosis, without)

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""validate(), start to end.

Expected measurements are computed here from the documented formats (plain
hashlib/hmac), not with the engine's own helpers, except for VMSA pages, which
test_vmsa.py pins down byte by byte.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pathlib
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ansible_collections.confidential.sev.plugins.module_utils.sev import validation, vmsa
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import (
    FirmwareFormatError, IncorrectConfig, InsecureUsage, SevError, UnsupportedUsage,
)
from ansible_collections.confidential.sev.plugins.module_utils.sev.keys import load_keys
from ansible_collections.confidential.sev.plugins.module_utils.sev.validation import (
    ValidationRequest, ValidationResult, validate,
)
from ansible_collections.confidential.sev.tests.support import firmware as fwb

DATA = pathlib.Path(__file__).resolve().parents[3] / 'data' / 'ovmf'

TIK = bytes.fromhex('66320db73158a35a255d051758e95ed4')
TEK = bytes.fromhex('0f1e2d3c4b5a69788796a5b4c3d2e1f0')
MNONCE = bytes.fromhex('4fbe0bedbad6c86ae8f68971d103e554')
VIRTEE_MEASURE = bytes.fromhex('6faab2daae389bcd3405a05d6cafe33c0414f7bedd0bae19ba5f38b7fd1664ea')
SECRET = b'luks passphrase: Tr0ub4dor&3\n'
OTHER_SECRET = b'another-secret-value-0123456789'

KERNEL = b'KERNEL-bzImage-bytes\x00\x01'
INITRD = b'initrd-cpio'
CMDLINE = b'console=ttyS0  root=/dev/vda '
# sev-snp-measure 0.0.13 (QEMU, init2 VMSAs), real AmdSevX64 suffix as firmware, Milan 25/1/1
KAT_ES_DIRECT_BOOT_1CPU = 'c3ef22d20575f8355a0179cecafe46a75f26766ee130d54adfbf6415b9e3cf03'
KAT_ES_2CPUS_NO_KERNEL = 'c2c0ef40265a7de7176b00dd5e325ad070264a28db825cbeca204c7655092d1d'
KAT_SEV_DIRECT_BOOT = '6cc42cde313b6141e1883ea52918ea3d5bb785da6a17548ac266b7d75e10fd1c'


# ---- independent reference computations ----------------------------------------

def hash_table(cmdline, initrd, kernel):
    def entry(guid_le, data):
        return guid_le + struct.pack('<H', 50) + hashlib.sha256(data).digest()
    return (bytes.fromhex('06d63894224fc94cb479a793d411fd21') + struct.pack('<H', 168)
            + entry(bytes.fromhex('d82dd09720bd944caa78e7714d36ab2a'), cmdline + b'\0')
            + entry(bytes.fromhex('31f7ba442f3ad74b9af141e29169781d'), initrd)
            + entry(bytes.fromhex('3794e74dd2ab7f42b835d5b172d2045b'), kernel)
            + bytes(8))


# An explicit boot VMSA page for SEV-ES cases that need no footer reset block.
VMSA0 = bytes(range(256)) * 16


def measure(digest, tik=TIK, api=(0, 24), build_id=15, policy=0, mnonce=MNONCE):
    message = (bytes([4, api[0], api[1], build_id]) + struct.pack('<I', policy) + digest + mnonce)
    return hmac.new(tik, message, hashlib.sha256).digest()


def reported(digest, **kwargs):
    """The base64 blob the platform would report for this launch digest."""
    mnonce = kwargs.get('mnonce', MNONCE)
    return base64.b64encode(measure(digest, **kwargs) + mnonce).decode('ascii')


def secret_table(*entries):
    body = b''.join(guid_le + struct.pack('<I', 20 + len(value)) + value for guid_le, value in entries)
    table = bytes.fromhex('42f5741edd71664d963eef4287ff173b') + struct.pack('<I', 20 + len(body)) + body
    return table + bytes(16 - len(table) % 16)


def ctr_decrypt(key, iv, data):
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    start = int.from_bytes(iv, 'big')
    stream = b''.join(ecb.update(((start + i) % (1 << 128)).to_bytes(16, 'big'))
                      for i in range((len(data) + 15) // 16))
    return bytes(a ^ b for a, b in zip(data, stream))


def leaks(text, *values):
    """Which of the given byte strings show up in text (hex, base64, raw, repr)."""
    found = []
    for value in values:
        forms = [value.hex(), value.hex().upper(), base64.b64encode(value).decode(),
                 value.decode('latin-1'), repr(value)[2:-1]]
        if any(form in text for form in forms):
            found.append(value)
    return found


# ---- fixtures -----------------------------------------------------------------------

@pytest.fixture
def fw(tmp_path):
    """Firmware files by name -> (path, bytes)."""
    images = {
        'empty': b'',
        'amdsev': (DATA / 'ovmf_AmdSev_suffix.bin').read_bytes(),
        'ovmfx64': (DATA / 'ovmf_OvmfX64_suffix.bin').read_bytes(),
        'synthetic': fwb.build_image(body_size=8192),
        'small_secret_area': fwb.build_image(body_size=512, secret_area=(0x80d000, 48)),
        'no_reset_block': fwb.build_image(body_size=512, entries=[
            (fwb.SEV_HASH_TABLE, struct.pack('<II', 0x80c000, 0x400))]),
        'no_footer': bytes(range(256)) * 64,
    }
    paths = {}
    for name, data in images.items():
        path = tmp_path / (name + '.fd')
        path.write_bytes(data)
        paths[name] = (str(path), data)
    return paths


@pytest.fixture
def boot(tmp_path):
    paths = {}
    for name, data in (('kernel', KERNEL), ('initrd', INITRD)):
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = str(path)
    return paths


def make(firmware, digest=None, policy=0, api=(0, 24), build_id=15, tik=TIK, tek=TEK,
         measurement=None, insecure=False, allow_zero_keys=False, **kwargs):
    path, data = firmware
    if measurement is None:
        measurement = reported(hashlib.sha256(data).digest() if digest is None else digest,
                               api=api, build_id=build_id, policy=policy)
    keys = load_keys(tik=tik, tek=tek, allow_zero_keys=allow_zero_keys)
    return ValidationRequest(measurement=measurement, api_major=api[0], api_minor=api[1],
                             build_id=build_id, policy=policy, firmware=path, keys=keys,
                             insecure=insecure, allow_zero_keys=allow_zero_keys, **kwargs)


@pytest.fixture
def no_hashing(monkeypatch):
    """Usage errors must be found before any large file is hashed."""
    def explode(*args, **kwargs):
        raise AssertionError('hash_measured_files called before the inputs were checked')
    monkeypatch.setattr(validation, 'hash_measured_files', explode)


# ---- verdicts ----------------------------------------------------------------------

def test_virtee_known_answer(fw):
    """Empty firmware: launch digest = sha256(b''), so the virtee/sev vector applies."""
    request = make(fw['empty'], api=(0, 18), build_id=15, policy=0,
                   measurement=base64.b64encode(VIRTEE_MEASURE + MNONCE).decode())
    result = validate(request)
    assert isinstance(result, ValidationResult)
    assert result.valid is True and result.reason == 'ok' and result.rc == 0
    out = result.as_dict()
    assert out['valid'] is True and out['rc'] == 0 and out['reason'] == 'ok'
    assert out['launch_digest'] == hashlib.sha256(b'').hexdigest()
    assert out['computed_measurement'] == base64.b64encode(VIRTEE_MEASURE + MNONCE).decode()
    assert out['secret_header'] is None and out['secret_payload'] is None
    assert out['secret_guids'] == [] and out['warnings'] == []
    assert out['firmware']['present'] is False
    assert out['policy'] == {'value': 0, 'hex': '0x00000000', 'flags': [],
                             'min_api_major': 0, 'min_api_minor': 0}
    assert out['sizes'] == {'firmware': 0}
    json.dumps(out)


def test_virtee_vector_with_wrong_tik_mismatches(fw):
    request = make(fw['empty'], api=(0, 18), tik=bytes(15) + b'\x01',
                   measurement=base64.b64encode(VIRTEE_MEASURE + MNONCE).decode())
    result = validate(request)
    assert result.valid is False and result.reason == 'mismatch' and result.rc == 1
    out = result.as_dict()
    assert out['computed_measurement'] is None
    assert out['launch_digest'] == hashlib.sha256(b'').hexdigest()


def test_plain_sev_real_firmware(fw):
    path, data = fw['amdsev']
    result = validate(make(fw['amdsev']))
    assert result.valid
    assert result.launch_digest.hex == hashlib.sha256(data).hexdigest()
    assert result.firmware['sev_es_reset_address'] == 0x0080b004


@pytest.mark.parametrize('field, value', [('api', (0, 23)), ('build_id', 14), ('policy', 0x1)])
def test_reported_platform_values_are_covered_by_the_mac(fw, field, value):
    """Measured with api 0.24 / build 15 / policy 0, reported with another value."""
    measurement = reported(hashlib.sha256(fw['amdsev'][1]).digest())
    kwargs = {field: value}
    result = validate(make(fw['amdsev'], measurement=measurement, **kwargs))
    assert result.valid is False


def test_direct_boot_on_an_amdsev_like_firmware(fw, boot):
    path, data = fw['synthetic']
    digest = hashlib.sha256(data + hash_table(CMDLINE, INITRD, KERNEL)).digest()
    result = validate(make(fw['synthetic'], digest=digest, kernel=boot['kernel'],
                           initrd=boot['initrd'], cmdline=CMDLINE))
    assert result.valid
    out = result.as_dict()
    assert out['digests']['kernel'] == hashlib.sha256(KERNEL).hexdigest()
    assert out['digests']['hash_table'] == hashlib.sha256(hash_table(CMDLINE, INITRD, KERNEL)).hexdigest()
    assert out['sizes'] == {'firmware': len(data), 'kernel': len(KERNEL), 'initrd': len(INITRD)}


def test_direct_boot_real_amdsev_known_answer(fw, boot):
    request = make(fw['amdsev'], digest=bytes.fromhex(KAT_SEV_DIRECT_BOOT), kernel=boot['kernel'],
                   initrd=boot['initrd'], cmdline=CMDLINE)
    assert validate(request).valid


def test_direct_boot_kernel_only(fw, boot):
    path, data = fw['synthetic']
    digest = hashlib.sha256(data + hash_table(b'', b'', KERNEL)).digest()
    assert validate(make(fw['synthetic'], digest=digest, kernel=boot['kernel'])).valid


@pytest.mark.parametrize('name', ['ovmfx64', 'no_footer', 'empty'])
def test_direct_boot_refused_without_a_usable_hash_table(fw, boot, name, no_hashing):
    with pytest.raises(UnsupportedUsage, match='^kernel: firmware .* has no usable SEV hash table') as info:
        validate(make(fw[name], kernel=boot['kernel']))
    assert info.value.rc == 2


def test_direct_boot_refused_when_the_area_is_too_small(tmp_path, boot, no_hashing):
    path = tmp_path / 'small.fd'
    path.write_bytes(fwb.build_image(body_size=64, hash_table=(0x80c000, 175)))
    with pytest.raises(UnsupportedUsage, match='size < 176'):
        validate(make((str(path), path.read_bytes()), kernel=boot['kernel']))


def test_sev_es_from_sku_known_answer(fw):
    request = make(fw['amdsev'], digest=bytes.fromhex(KAT_ES_2CPUS_NO_KERNEL), policy=0x5,
                   num_cpus=2, cpu_family=25, cpu_model=1, cpu_stepping=1, vmsa_variant='init2')
    result = validate(request)
    assert result.valid
    assert result.launch_digest.hex == KAT_ES_2CPUS_NO_KERNEL
    assert result.policy.es


def test_sev_es_direct_boot_from_sku_known_answer(fw, boot):
    request = make(fw['amdsev'], digest=bytes.fromhex(KAT_ES_DIRECT_BOOT_1CPU), policy=0x4,
                   kernel=boot['kernel'], initrd=boot['initrd'], cmdline=CMDLINE,
                   num_cpus=1, cpu_family=25, cpu_model=1, cpu_stepping=1, vmsa_variant='init2')
    assert validate(request).valid


def test_sev_es_legacy_variant_is_the_default(fw):
    path, data = fw['amdsev']
    bsp, ap = vmsa.build_vmsas(0x0080b004, 23, 49, 0, 'legacy')
    digest = hashlib.sha256(data + bsp + ap * 3).digest()
    request = make(fw['amdsev'], digest=digest, policy=0x4, num_cpus=4,
                   cpu_family=23, cpu_model=49, cpu_stepping=0)
    assert validate(request).valid
    # The same measurement is not valid for the init2 variant.
    request.vmsa_variant = 'init2'
    assert not validate(request).valid


def test_sev_features_reach_the_vmsa(fw):
    path, data = fw['amdsev']
    bsp, ap = vmsa.build_vmsas(0x0080b004, 25, 1, 1, sev_features=0x20)
    digest = hashlib.sha256(data + bsp + ap).digest()
    request = make(fw['amdsev'], digest=digest, policy=0x4, num_cpus=2,
                   cpu_family=25, cpu_model=1, cpu_stepping=1, sev_features=0x20)
    assert validate(request).valid
    request.sev_features = 0
    assert not validate(request).valid


@pytest.mark.parametrize('name', ['no_footer', 'no_reset_block'])
def test_sev_es_sku_without_reset_block_is_a_firmware_error(fw, name):
    with pytest.raises(FirmwareFormatError, match='no SEV-ES reset block') as info:
        validate(make(fw[name], policy=0x4, num_cpus=1, cpu_family=25, cpu_model=1, cpu_stepping=1))
    # bad input from the owner: usage (2), not the unexpected class (6) (issue 10)
    assert info.value.rc == 2


def test_sev_es_one_vcpu_with_only_vmsa_cpu0(fw):
    """libvirt 9.0 crashes (exit 6) here; the right digest covers cpu0 alone."""
    path, data = fw['ovmfx64']
    cpu0 = bytes(range(256)) * 16
    digest = hashlib.sha256(data + cpu0).digest()
    result = validate(make(fw['ovmfx64'], digest=digest, policy=0x4, num_cpus=1, vmsa_cpu0=cpu0))
    assert result.valid
    assert result.as_dict()['digests']['vmsa_cpu0'] == hashlib.sha256(cpu0).hexdigest()


def test_sev_es_explicit_vmsa_files(fw):
    path, data = fw['no_footer']          # explicit VMSAs need no footer
    cpu0, cpu1 = b'\x01' * 4096, b'\x02' * 4096
    digest = hashlib.sha256(data + cpu0 + cpu1 + cpu1).digest()
    request = make(fw['no_footer'], digest=digest, policy=0x5, num_cpus=3, vmsa_cpu0=cpu0, vmsa_cpu1=cpu1)
    assert validate(request).valid


def test_plain_sev_ignores_num_cpus_with_a_warning(fw):
    result = validate(make(fw['amdsev'], num_cpus=4))
    assert result.valid
    assert result.warnings == ['num_cpus is ignored: a plain SEV measurement does not cover vCPUs']


# ---- usage errors: all found before hashing -------------------------------------

PAGE = bytes(4096)


@pytest.mark.parametrize('kwargs, match', [
    (dict(policy=0x4, num_cpus=1, vmsa_cpu0=PAGE, cpu_family=25, cpu_model=1, cpu_stepping=1),
     'mutually exclusive'),
    (dict(policy=0x4, num_cpus=1, cpu_family=25, cpu_model=1), 'needs all of'),
    (dict(policy=0x4, num_cpus=1, cpu_stepping=1), 'needs all of'),
    (dict(policy=0x4, num_cpus=2, vmsa_cpu1=PAGE), 'vmsa_cpu1 also requires vmsa_cpu0'),
    (dict(policy=0x4, num_cpus=1, vmsa_cpu0=PAGE[:-1]), 'vmsa_cpu0 must be exactly 4096 bytes, got 4095'),
    (dict(policy=0x4, num_cpus=2, vmsa_cpu0=PAGE, vmsa_cpu1=PAGE + b'\0'),
     'vmsa_cpu1 must be exactly 4096 bytes, got 4097'),
    (dict(policy=0x4, vmsa_cpu0=PAGE), 'num_cpus is required'),
    (dict(policy=0x4, num_cpus=0, vmsa_cpu0=PAGE), 'num_cpus must be from 1 to 4096, got 0'),
    (dict(policy=0x4, num_cpus=4097, vmsa_cpu0=PAGE, vmsa_cpu1=PAGE), 'from 1 to 4096, got 4097'),
    (dict(policy=0x4, num_cpus=-1, vmsa_cpu0=PAGE), 'from 1 to 4096'),
    (dict(policy=0x4, num_cpus=1), 'needs vmsa_cpu0'),
    (dict(policy=0x4, num_cpus=2, vmsa_cpu0=PAGE), 'vmsa_cpu1 is required'),
    (dict(policy=0x1, vmsa_cpu0=PAGE, num_cpus=1), 'no ES bit'),
    (dict(policy=0x0, cpu_family=25, cpu_model=1, cpu_stepping=1), 'no ES bit'),
    (dict(policy=0x4, num_cpus=1, cpu_family=25, cpu_model=1, cpu_stepping=1, vmsa_variant='snp'),
     'vmsa_variant'),
    (dict(policy=0x4, num_cpus=1, cpu_family=25, cpu_model=256, cpu_stepping=1), 'cpu_model'),
    (dict(policy=0x40), 'reserved bits'),
    (dict(policy=1 << 32), '32-bit'),
    (dict(api=(256, 0)), 'api_major'),
    (dict(api=(0, -1)), 'api_minor'),
    (dict(build_id=True), 'build_id'),
    (dict(measurement='not base64'), 'not valid base64'),
    (dict(measurement=base64.b64encode(bytes(32)).decode()), '48 bytes'),
    (dict(min_api_version='0.24.0'), 'min_api_version'),
    (dict(min_build_id=256), 'min_build_id'),
    (dict(initrd='/nonexistent'), 'initrd and cmdline require kernel'),
    (dict(cmdline=b'quiet'), 'initrd and cmdline require kernel'),
    (dict(secrets=[('not-a-guid', SECRET, 'secrets[0]')]), "secrets\\[0\\]: 'not-a-guid'"),
    (dict(secrets=[('luks-key', b'', 'secrets[0]')]), 'is empty'),
])
def test_usage_errors(fw, no_hashing, kwargs, match):
    # Usage errors do not depend on the measurement's value: any well-formed one.
    measurement = kwargs.pop('measurement', base64.b64encode(bytes(48)).decode())
    request = make(fw['amdsev'], measurement=measurement, **kwargs)
    with pytest.raises(UnsupportedUsage, match=match) as info:
        validate(request)
    assert info.value.rc == 2 and info.value.reason == 'unsupported'


def test_missing_keys(fw, no_hashing):
    request = make(fw['amdsev'])
    request.keys = None
    with pytest.raises(UnsupportedUsage, match='either tk or both'):
        validate(request)


def test_missing_kernel_names_the_input(fw, tmp_path):
    with pytest.raises(UnsupportedUsage, match='^kernel: cannot read'):
        validate(make(fw['synthetic'], kernel=str(tmp_path / 'absent')))


def test_missing_firmware_is_a_usage_error_naming_the_input(tmp_path):
    """Like a missing kernel: a SevError naming the input, not a bare OSError."""
    request = make((str(tmp_path / 'OVMF_CODE.fd'), b''))
    with pytest.raises(UnsupportedUsage, match='firmware'):
        validate(request)


# ---- requirements: only once the MAC matched ------------------------------------------

@pytest.mark.parametrize('kwargs, error', [
    (dict(require_policy=['NODBG']), IncorrectConfig),
    (dict(require_policy=['ES', 'NOKS']), IncorrectConfig),
    (dict(min_api_version='0.25'), InsecureUsage),
    (dict(min_api_version='1.0'), InsecureUsage),
    (dict(min_build_id=16), InsecureUsage),
    (dict(policy=0x19000000), InsecureUsage),     # the policy itself demands API 0.25
])
def test_unmet_requirements_fail_closed_after_a_match(fw, kwargs, error):
    request = make(fw['amdsev'], secrets=[('luks-key', SECRET, 'secrets[0]')], **kwargs)
    with pytest.raises(error) as info:
        validate(request)
    assert info.value.rc in (3, 4)
    assert not leaks(str(info.value), TIK, TEK, SECRET)


@pytest.mark.parametrize('kwargs', [
    dict(require_policy=['NODBG']), dict(min_api_version='9.9'), dict(min_build_id=255),
    dict(policy=0x19000000),
])
def test_requirements_are_not_checked_before_a_match(fw, kwargs):
    """On a mismatch the reported values are unauthenticated: the verdict is mismatch."""
    policy = kwargs.get('policy', 0)
    request = make(fw['amdsev'], measurement=reported(bytes(32), policy=policy), **kwargs)
    result = validate(request)
    assert result.valid is False and result.rc == 1


def test_met_requirements(fw):
    request = make(fw['amdsev'], policy=0x18000003, require_policy=['NODBG', 'NOKS'],
                   min_api_version='0.24', min_build_id=15)
    result = validate(request)
    assert result.valid
    assert result.as_dict()['policy']['flags'] == ['NODBG', 'NOKS']


# ---- secrets ------------------------------------------------------------------------

def test_secret_packet_after_a_match(fw):
    path, data = fw['synthetic']
    digest = hashlib.sha256(data).digest()
    request = make(fw['synthetic'], policy=0x7, num_cpus=1, vmsa_cpu0=VMSA0,
                   digest=hashlib.sha256(data + VMSA0).digest(),
                   secrets=[('luks-key', SECRET, 'secrets[0]'),
                            ('0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', OTHER_SECRET, 'secrets[1]')])
    digest = hashlib.sha256(data + VMSA0).digest()
    result = validate(request)
    assert result.valid and result.warnings == []
    assert result.secret_guids == ['736869e5-84f0-4973-92ec-06879ce3da0b',
                                   '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d']
    out = result.as_dict()
    header = base64.b64decode(out['secret_header'])
    payload = base64.b64decode(out['secret_payload'])
    assert len(header) == 52 and header[:4] == bytes(4)
    iv = header[4:20]
    expected_table = secret_table(
        (bytes.fromhex('e5696873f084734992ec06879ce3da0b'), SECRET),
        (bytes.fromhex('3d2c1b0a5f4e6b4a8c7d9e0f1a2b3c4d'), OTHER_SECRET))
    assert ctr_decrypt(TEK, iv, payload) == expected_table
    mac_input = (b'\x01' + bytes(4) + iv + struct.pack('<II', len(payload), len(payload))
                 + payload + measure(digest, policy=0x7))
    assert header[20:] == hmac.new(TIK, mac_input, hashlib.sha256).digest()


def test_secret_table_must_fit_the_secret_area(fw):
    # area is 48 bytes: a 3-byte secret gives exactly 48, a 9-byte one 64 (one
    # byte too many before padding), SECRET (29 bytes) 80
    assert validate(make(fw['small_secret_area'], secrets=[('luks-key', b'abc', 's')],
                         allow_secret_policy=['DBG', 'KS'])).valid
    with pytest.raises(UnsupportedUsage, match='table is 64 bytes'):
        validate(make(fw['small_secret_area'], secrets=[('luks-key', b'123456789', 's')],
                      allow_secret_policy=['DBG', 'KS']))
    request = make(fw['small_secret_area'], secrets=[('luks-key', SECRET, 'secrets[0]')],
                   allow_secret_policy=['DBG', 'KS'])
    with pytest.raises(UnsupportedUsage, match="^secrets: the table is 80 bytes, larger than the firmware's "
                                               "secret area \\(48 bytes\\)") as info:
        validate(request)
    assert not leaks(str(info.value), SECRET, TIK, TEK)


@pytest.mark.parametrize('name', ['ovmfx64', 'no_footer'])
def test_no_secret_area_refuses_secrets_without_an_address(fw, name, no_hashing):
    """Issue 10: Debian/Ubuntu OVMF (secret area base 0, size 0) with secrets and no
    address: refused (config, 4) before hashing, never a warning and a packet."""
    with pytest.raises(IncorrectConfig, match='^secrets: firmware .* no usable SEV secret area') as info:
        validate(make(fw[name], policy=0x3, secrets=[('luks-key', SECRET, 'secrets[0]')]))
    assert info.value.rc == 4 and not leaks(str(info.value), SECRET, TIK, TEK)


@pytest.mark.parametrize('name', ['ovmfx64', 'no_footer'])
def test_no_secret_area_with_an_explicit_address_builds(fw, name):
    result = validate(make(fw[name], policy=0x3, secret_address=0x80_5000,
                           secrets=[('luks-key', SECRET, 'secrets[0]')]))
    assert result.valid
    assert result.secret_header is not None and len(result.secret_header) == 52
    assert not any('secret area' in warning for warning in result.warnings)


@pytest.mark.parametrize('address', [0, -1, 1 << 64, True, '4096'])
def test_secret_address_zero_or_out_of_range_is_refused(fw, address, no_hashing):
    with pytest.raises(UnsupportedUsage, match='^secret_address must be a guest physical address'):
        validate(make(fw['ovmfx64'], policy=0x3, secret_address=address,
                      secrets=[('luks-key', SECRET, 'secrets[0]')]))


@pytest.mark.parametrize('policy, allowed, missing', [
    (0x0, [], 'NODBG and NOKS'), (0x1, [], 'NOKS'), (0x2, [], 'NODBG'), (0x5, [], 'NOKS'),
    (0x0, ['DBG'], 'NOKS'), (0x0, ['KS'], 'NODBG'), (0x6, ['KS'], 'NODBG'),
])
def test_secrets_need_nodbg_and_noks(fw, policy, allowed, missing):
    """Issue 10: a guest the host can debug (DBG_DECRYPT) or share keys with gets no secret,
    unless allow_secret_policy names exactly that weakness; checked after the match."""
    path, data = fw['synthetic']
    extra = dict(num_cpus=1, vmsa_cpu0=VMSA0) if policy & 0x4 else {}
    digest = hashlib.sha256(data + (VMSA0 if policy & 0x4 else b'')).digest()
    with pytest.raises(InsecureUsage, match='^secrets: the guest policy 0x%08x lacks %s' % (policy, missing)) as info:
        validate(make(fw['synthetic'], policy=policy, digest=digest, allow_secret_policy=allowed,
                      secrets=[('luks-key', SECRET, 'secrets[0]')], **extra))
    assert info.value.rc == 3
    # Without secrets nothing is released, so the same launch validates.
    assert validate(make(fw['synthetic'], policy=policy, digest=digest, **extra)).valid


def test_allow_secret_policy_relaxes_only_what_it_names(fw):
    path, data = fw['synthetic']
    result = validate(make(fw['synthetic'], policy=0x0, allow_secret_policy=['DBG', 'KS'],
                           secrets=[('luks-key', SECRET, 'secrets[0]')]))
    assert result.valid and result.secret_payload
    # plain SEV: released with a warning about the unprotected register state
    assert any('plain SEV' in warning for warning in result.warnings)
    es = validate(make(fw['synthetic'], policy=0x7, num_cpus=1, vmsa_cpu0=VMSA0,
                       digest=hashlib.sha256(data + VMSA0).digest(), secrets=[('luks-key', SECRET, 's')]))
    assert es.valid and not any('plain SEV' in warning for warning in es.warnings)
    with pytest.raises(UnsupportedUsage, match='allow_secret_policy: unknown'):
        validate(make(fw['synthetic'], policy=0x3, allow_secret_policy=['NODBG'],
                      secrets=[('luks-key', SECRET, 's')]))


def test_secret_policy_is_checked_only_after_a_match(fw):
    """A mismatch stays a mismatch (the policy is not authenticated before)."""
    result = validate(make(fw['synthetic'], policy=0x0, measurement=reported(bytes(32)),
                           secrets=[('luks-key', SECRET, 's')]))
    assert result.valid is False and result.rc == 1


def test_zero_tek_refused_for_secrets(fw):
    request = make(fw['synthetic'], tek=bytes(16), secrets=[('luks-key', SECRET, 'secrets[0]')], policy=0x3)
    with pytest.raises(InsecureUsage, match='TEK or TIK is all zeros') as info:
        validate(request)
    assert not leaks(str(info.value), SECRET, TIK)
    # No secrets: the TEK is not used, nothing to refuse.
    assert validate(make(fw['synthetic'], tek=bytes(16), policy=0x3)).valid
    # insecure alone does not let it through (issue 10); allow_zero_keys does
    with pytest.raises(InsecureUsage, match='allow_zero_keys'):
        validate(make(fw['synthetic'], tek=bytes(16), insecure=True,
                      secrets=[('luks-key', SECRET, 'secrets[0]')], policy=0x3))
    result = validate(make(fw['synthetic'], tek=bytes(16), allow_zero_keys=True,
                           secrets=[('luks-key', SECRET, 'secrets[0]')], policy=0x3))
    assert result.valid and result.secret_payload


def test_zero_tik_needs_allow_zero_keys_not_insecure(fw):
    path, data = fw['amdsev']
    with pytest.raises(InsecureUsage, match='allow_zero_keys'):
        make(fw['amdsev'], tik=bytes(16), insecure=True,
             measurement=reported(hashlib.sha256(data).digest(), tik=bytes(16)))
    request = make(fw['amdsev'], tik=bytes(16), allow_zero_keys=True,
                   measurement=reported(hashlib.sha256(data).digest(), tik=bytes(16)))
    assert validate(request).valid


def test_no_secret_packet_on_a_mismatch(fw):
    request = make(fw['synthetic'], measurement=reported(bytes(32)),
                   secrets=[('luks-key', SECRET, 'secrets[0]')])
    result = validate(request)
    assert result.valid is False
    assert result.secret_header is None and result.secret_payload is None
    out = result.as_dict()
    assert out['secret_header'] is None and out['secret_payload'] is None
    assert out['computed_measurement'] is None
    assert not leaks(json.dumps(out), SECRET, TIK, TEK)


def test_result_dict_holds_no_key_or_plaintext(fw):
    result = validate(make(fw['synthetic'], policy=0x3, secrets=[('luks-key', SECRET, 'secrets[0]')]))
    text = json.dumps(result.as_dict())
    assert not leaks(text, SECRET, TIK, TEK, SECRET.strip())
    assert 'Tr0ub4dor' not in text


@pytest.mark.parametrize('secrets, match', [
    ([('luks-key', SECRET, 'secrets[0]'), ('luks-key', OTHER_SECRET, 'secrets[1]')], 'given twice'),
    ([('luks-key', b'', 'secrets[0]')], 'is empty'),
    ([(SECRET.decode().strip(), OTHER_SECRET, 'secrets[0]')], None),
])
def test_secret_errors_do_not_show_secret_values(fw, secrets, match):
    with pytest.raises(SevError) as info:
        validate(make(fw['synthetic'], secrets=secrets))
    if match:
        assert match in str(info.value)
    assert not leaks(str(info.value), OTHER_SECRET, TIK, TEK)
    if match:
        assert not leaks(str(info.value), SECRET)

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""validate() and run_validation() with a shared DigestCache and pinned digests:
the same results as without a cache, each file hashed once, pins fail closed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import time

import pytest

from ansible_collections.confidential.sev.plugins.module_utils import validate_options as vo
from ansible_collections.confidential.sev.plugins.module_utils.sev import digest_cache as dc, validation
from ansible_collections.confidential.sev.plugins.module_utils.sev.digest_cache import DigestCache
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import IncorrectConfig, UnsupportedUsage
from ansible_collections.confidential.sev.plugins.module_utils.sev.keys import load_keys
from ansible_collections.confidential.sev.plugins.module_utils.sev.validation import ValidationRequest, validate
from ansible_collections.confidential.sev.tests.support import firmware as fwb

TIK = bytes.fromhex('66320db73158a35a255d051758e95ed4')
TEK = bytes.fromhex('0f1e2d3c4b5a69788796a5b4c3d2e1f0')
MNONCE = bytes.fromhex('4fbe0bedbad6c86ae8f68971d103e554')
FIRMWARE = fwb.build_image(body_size=8192)
KERNEL = b'KERNEL-bzImage-bytes\x00\x01' * 1000
INITRD = b'initrd-cpio' * 5000
CMDLINE = b'console=ttyS0'
MIN_AGE = 0.05


def hash_table(cmdline, initrd, kernel):
    """The padded SEV kernel hashes table, from its documented layout."""
    def entry(guid_le, data):
        return guid_le + struct.pack('<H', 50) + hashlib.sha256(data).digest()
    return (bytes.fromhex('06d63894224fc94cb479a793d411fd21') + struct.pack('<H', 168)
            + entry(bytes.fromhex('d82dd09720bd944caa78e7714d36ab2a'), cmdline + b'\0')
            + entry(bytes.fromhex('31f7ba442f3ad74b9af141e29169781d'), initrd)
            + entry(bytes.fromhex('3794e74dd2ab7f42b835d5b172d2045b'), kernel)
            + bytes(8))


def reported(digest, policy=0):
    message = bytes([4, 0, 24, 15]) + struct.pack('<I', policy) + digest + MNONCE
    return base64.b64encode(hmac.new(TIK, message, hashlib.sha256).digest() + MNONCE).decode('ascii')


LAUNCH_DIGEST = hashlib.sha256(FIRMWARE + hash_table(CMDLINE, INITRD, KERNEL)).digest()


@pytest.fixture
def files(tmp_path):
    state = tmp_path / 'state'
    state.mkdir(mode=0o700)
    paths = {'state': state}
    for name, data in (('firmware', FIRMWARE), ('kernel', KERNEL), ('initrd', INITRD)):
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = str(path)
    time.sleep(MIN_AGE * 2)
    return paths


def request(files, measurement=None, **kwargs):
    return ValidationRequest(
        measurement=measurement or reported(LAUNCH_DIGEST), api_major=0, api_minor=24, build_id=15, policy=0,
        firmware=files['firmware'], keys=load_keys(tik=TIK, tek=TEK), kernel=files['kernel'],
        initrd=files['initrd'], cmdline=CMDLINE, **kwargs)


def test_fifty_validations_share_one_cache_and_hash_each_file_once(files):
    cache = DigestCache(min_age=MIN_AGE)
    expected = validate(request(files)).as_dict()
    assert expected['valid'] is True
    for dummy in range(50):
        assert validate(request(files), digest_cache=cache).as_dict() == expected
    assert cache.stats() == {'hits': 3 * 49, 'misses': 3,
                             'hashed_bytes': len(FIRMWARE) + len(KERNEL) + len(INITRD)}


def test_a_mismatch_and_its_diagnosis_are_the_same_with_a_cache(files):
    wrong = reported(hashlib.sha256(FIRMWARE + hash_table(CMDLINE + b' ', INITRD, KERNEL)).digest())
    cache = DigestCache(min_age=MIN_AGE)
    without = validate(request(files, measurement=wrong)).as_dict()
    assert without['valid'] is False and without['diagnosis']['matches']
    for dummy in range(2):
        assert validate(request(files, measurement=wrong), digest_cache=cache).as_dict() == without


def test_the_cache_file_serves_another_process_but_the_firmware_is_read_again(files):
    path = str(files['state'] / 'digests.json')
    validate(request(files), digest_cache=DigestCache(path, min_age=MIN_AGE))
    worker = DigestCache(path, min_age=MIN_AGE)
    assert validate(request(files), digest_cache=worker).valid
    # kernel and initrd from the file; the firmware's hash state lives in memory only
    assert worker.stats() == {'hits': 2, 'misses': 1, 'hashed_bytes': len(FIRMWARE)}


def test_a_changed_initrd_is_never_validated_from_the_cache(files):
    cache = DigestCache(min_age=MIN_AGE)
    assert validate(request(files), digest_cache=cache).valid
    info = os.stat(files['initrd'])
    with open(files['initrd'], 'r+b') as stream:
        stream.write(b'X')
    os.utime(files['initrd'], ns=(info.st_atime_ns, info.st_mtime_ns))
    result = validate(request(files), digest_cache=cache)
    assert result.valid is False
    assert result.as_dict()['digests']['initrd'] == hashlib.sha256(b'X' + INITRD[1:]).hexdigest()


def test_pins_that_hold_validate_and_key_the_cache(files, tmp_path):
    pins = dict(firmware_sha256=hashlib.sha256(FIRMWARE).hexdigest().upper(),
                kernel_sha256='sha256:' + hashlib.sha256(KERNEL).hexdigest(),
                initrd_sha256=hashlib.sha256(INITRD).hexdigest())
    path = files['state'] / 'digests.json'
    assert validate(request(files, **pins), digest_cache=DigestCache(str(path), min_age=MIN_AGE)).valid
    keys = json.loads(path.read_text())['entries']
    assert sorted(key.split(':')[5] for key in keys) == sorted(
        [hashlib.sha256(KERNEL).hexdigest(), hashlib.sha256(INITRD).hexdigest()])


@pytest.mark.parametrize('option, name', [('firmware_sha256', 'firmware'), ('kernel_sha256', 'kernel'),
                                          ('initrd_sha256', 'initrd')])
@pytest.mark.parametrize('cached', [False, True])
def test_a_pin_that_does_not_hold_fails_closed_as_config(files, option, name, cached):
    pinned = hashlib.sha256(b'the file the play pins').hexdigest()
    cache = DigestCache(min_age=MIN_AGE) if cached else None
    if cached:
        validate(request(files), digest_cache=cache)     # the unpinned digests are cached
    with pytest.raises(IncorrectConfig) as info:
        validate(request(files, **{option: pinned}), digest_cache=cache)
    actual = hashlib.sha256({'firmware': FIRMWARE, 'kernel': KERNEL, 'initrd': INITRD}[name]).hexdigest()
    assert info.value.rc == 4
    assert str(info.value).startswith('%s: the %s %s has SHA-256 %s, not the pinned %s'
                                      % (option, name, files[name], actual, pinned))


def test_a_pin_without_its_file_or_malformed_is_refused_before_hashing(files, monkeypatch):
    def explode(*args, **kwargs):
        raise AssertionError('hashed before the pins were checked')
    monkeypatch.setattr(validation, 'hash_measured_files', explode)
    with pytest.raises(UnsupportedUsage, match='^initrd_sha256 is given but initrd is not'):
        validate(request(files, initrd_sha256='0' * 64).__class__(
            measurement=reported(LAUNCH_DIGEST), api_major=0, api_minor=24, build_id=15, policy=0,
            firmware=files['firmware'], keys=load_keys(tik=TIK, tek=TEK), kernel=files['kernel'],
            initrd_sha256='0' * 64))
    with pytest.raises(UnsupportedUsage, match='^kernel_sha256 must be a SHA-256 digest in hex'):
        validate(request(files, kernel_sha256='not-a-digest'))


# ---- run_validation ---------------------------------------------------------------------

def params(files, **kwargs):
    values = dict((key, None) for key in vo.ARGUMENT_SPEC)
    values.update(measurement=reported(LAUNCH_DIGEST), api_major=0, api_minor=24, build_id=15, policy=0,
                  firmware=files['firmware'], kernel=files['kernel'], initrd=files['initrd'],
                  cmdline=CMDLINE.decode(), tik='tik', tek='tek', insecure=False, allow_zero_keys=False,
                  diagnose=True, secrets=[], require_policy=[], allow_secret_policy=[], diagnose_firmware=[],
                  vmsa_variant='legacy', vmsa_sev_features=0)
    values.update(kwargs)
    return values


def read_keys(path, what):
    return {'tik': TIK, 'tek': TEK}[what]


def test_run_validation_reports_each_validations_share_of_a_shared_cache(files):
    cache = DigestCache(min_age=MIN_AGE)
    first = vo.run_validation(params(files), read_keys, digest_cache=cache)
    second = vo.run_validation(params(files), read_keys, digest_cache=cache)
    assert first['valid'] is True and first['rc'] == 0 and first['reason'] == 'ok'
    assert first['msg'].startswith('the measurement matches the trusted files and keys (launch digest %s)'
                                   % LAUNCH_DIGEST.hex())
    assert first['digest_cache'] == {'hits': 0, 'misses': 3,
                                     'hashed_bytes': len(FIRMWARE) + len(KERNEL) + len(INITRD)}
    assert second['digest_cache'] == {'hits': 3, 'misses': 0, 'hashed_bytes': 0}
    assert dict(first, digest_cache=None) == dict(second, digest_cache=None)


def test_run_validation_without_a_cache_is_unchanged(files):
    result = vo.run_validation(params(files), read_keys)
    assert 'digest_cache' not in result and result['valid'] is True


def test_run_validation_makes_a_cache_from_the_option_and_reports_failures_with_stats(files, monkeypatch):
    monkeypatch.setattr(dc, 'MIN_AGE', MIN_AGE)
    path = files['state'] / 'digests.json'
    result = vo.run_validation(params(files, digest_cache=str(path)), read_keys)
    assert result['digest_cache']['misses'] == 3 and os.path.exists(path)
    pinned = vo.run_validation(params(files, digest_cache=str(path), kernel_sha256='0' * 64), read_keys)
    assert pinned['failed'] is True and pinned['reason'] == 'config' and pinned['rc'] == 4
    assert pinned['msg'].startswith('kernel_sha256: the kernel')
    assert pinned['valid'] is False and pinned['digest_cache']['misses'] >= 1


def test_run_validation_in_check_mode_does_not_write_the_cache(files):
    path = files['state'] / 'digests.json'
    result = vo.run_validation(params(files, digest_cache=str(path)), read_keys, check_mode=True)
    assert result['valid'] is True and not os.path.exists(path)


def test_run_validation_refuses_a_foreign_cache_file_as_a_result(files):
    path = files['state'] / 'digests.json'
    path.write_text('{}')
    path.chmod(0o644)
    result = vo.run_validation(params(files, digest_cache=str(path)), read_keys)
    assert result['failed'] is True and result['reason'] == 'insecure' and result['rc'] == 3
    assert result['msg'].startswith('digest_cache: %s is mode 0644, not 0600' % path)


def test_cache_warnings_reach_the_result(files):
    path = files['state'] / 'digests.json'
    path.write_bytes(b'')
    path.chmod(0o600)
    cache = DigestCache(str(path), min_age=MIN_AGE)
    result = vo.run_validation(params(files), read_keys, digest_cache=cache)
    assert result['valid'] is True
    assert [text for text in result['warnings'] if 'is empty' in text]
    # reported once, not by every validation sharing the cache
    again = vo.run_validation(params(files), read_keys, digest_cache=cache)
    assert not [text for text in again.get('warnings') or [] if 'is empty' in text]

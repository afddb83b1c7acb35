# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TIK/TEK loading: sizes, the TEK||TIK file, the all-zero TIK, no key bytes in text."""

from __future__ import annotations

import pytest

from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import (
    InsecureUsage, SevError, UnsupportedUsage,
)
from ansible_collections.confidential.sev.plugins.module_utils.sev.keys import (
    KEY_SIZE, SessionKeys, load_keys,
)

TIK = bytes.fromhex('66320db73158a35a255d051758e95ed4')
TEK = bytes.fromhex('a1b2c3d4e5f60718293a4b5c6d7e8f90')


def assert_no_key_material(text, *keys):
    """Neither the hex, nor the raw bytes, nor Python's repr of a key occurs."""
    for key in keys:
        if not key:
            continue
        assert key.hex() not in text.lower()
        assert key.decode('latin-1') not in text
        assert repr(key)[2:-1] not in text
        # Also no 4-byte run of the key, in hex, as a cheap partial-leak check.
        for start in range(0, len(key) - 3, 4):
            assert key[start:start + 4].hex() not in text.lower()


def test_key_size():
    assert KEY_SIZE == 16


def test_separate_tik_and_tek():
    keys = load_keys(tik=TIK, tek=TEK)
    assert keys.tik == TIK and keys.tek == TEK
    assert isinstance(keys.tik, bytes) and isinstance(keys.tek, bytes)
    assert not keys.tik_is_zero and not keys.tek_is_zero


def test_tk_file_is_tek_then_tik():
    keys = load_keys(tk=TEK + TIK)
    assert keys.tek == TEK
    assert keys.tik == TIK


def test_bytearray_input_is_copied_to_bytes():
    tik = bytearray(TIK)
    keys = load_keys(tik=tik, tek=bytearray(TEK))
    tik[0] ^= 0xff
    assert keys.tik == TIK


@pytest.mark.parametrize('kwargs, match', [
    (dict(tk=TEK + TIK, tik=TIK), 'mutually exclusive'),
    (dict(tk=TEK + TIK, tek=TEK), 'mutually exclusive'),
    (dict(), 'either tk or both'),
    (dict(tik=TIK), 'either tk or both'),
    (dict(tek=TEK), 'either tk or both'),
    (dict(tik=TIK[:15], tek=TEK), 'tik: expected 16 bytes, got 15'),
    (dict(tik=TIK + b'\n', tek=TEK), 'tik: expected 16 bytes, got 17'),
    (dict(tik=TIK, tek=b''), 'tek: expected 16 bytes, got 0'),
    (dict(tik=TIK, tek=TEK + TEK), 'tek: expected 16 bytes, got 32'),
    (dict(tk=TEK + TIK + b'\n'), 'tk: expected 32 bytes, got 33'),
    (dict(tk=TIK), 'tk: expected 32 bytes, got 16'),
])
def test_usage_errors_name_the_input_and_hide_the_key(kwargs, match):
    with pytest.raises(UnsupportedUsage, match=match) as info:
        load_keys(**kwargs)
    assert info.value.rc == 2
    assert_no_key_material(str(info.value), TIK, TEK)
    assert_no_key_material(repr(info.value), TIK, TEK)


@pytest.mark.parametrize('kwargs', [
    dict(tik=bytes(16), tek=TEK),
    dict(tk=TEK + bytes(16)),
])
def test_all_zero_tik_is_insecure(kwargs):
    with pytest.raises(InsecureUsage, match='all zeros') as info:
        load_keys(**kwargs)
    assert info.value.rc == 3 and info.value.reason == 'insecure'
    assert 'allow_zero_keys' in str(info.value)
    assert_no_key_material(str(info.value), TEK)


def test_all_zero_tik_needs_allow_zero_keys_not_insecure():
    """Issue 10: insecure no longer implies zero keys; load_keys has no insecure at all."""
    with pytest.raises(TypeError):
        load_keys(tik=bytes(16), tek=TEK, insecure=True)  # pylint: disable=unexpected-keyword-arg
    keys = load_keys(tik=bytes(16), tek=TEK, allow_zero_keys=True)
    assert keys.tik_is_zero
    assert keys.tik == bytes(16)


def test_tik_with_one_bit_set_is_not_zero():
    keys = load_keys(tik=bytes(15) + b'\x01', tek=TEK)
    assert not keys.tik_is_zero


def test_all_zero_tek_is_loaded_but_flagged():
    """The TEK only matters for secrets; build_secret_packet refuses it there."""
    keys = load_keys(tik=TIK, tek=bytes(16))
    assert keys.tek_is_zero and not keys.tik_is_zero


def test_repr_and_str_hide_key_bytes():
    keys = SessionKeys(tek=TEK, tik=TIK)
    for text in (repr(keys), str(keys), '%r' % (keys,), '{}'.format(keys), repr([keys])):
        assert 'hidden' in text
        assert_no_key_material(text, TIK, TEK)


def test_session_keys_have_no_instance_dict():
    """__slots__: no __dict__ for a debugger or vars() to dump."""
    keys = SessionKeys(tek=TEK, tik=TIK)
    assert not hasattr(keys, '__dict__')
    with pytest.raises(AttributeError):
        keys.extra = 1  # pylint: disable=assigning-non-slot


def test_errors_are_sev_errors():
    assert issubclass(UnsupportedUsage, SevError) and issubclass(InsecureUsage, SevError)

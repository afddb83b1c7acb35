# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LAUNCH_SECRET: the table layout and padding, and the packet checked by an
independent MAC and AES-CTR computation."""

from __future__ import annotations

import hashlib
import hmac
import struct
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import example, given, strategies as st

from ansible_collections.confidential.sev.plugins.module_utils.sev import secrets as sec
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import (
    InsecureUsage, UnsupportedUsage,
)
from ansible_collections.confidential.sev.plugins.module_utils.sev.keys import SessionKeys

TABLE_GUID_LE = bytes.fromhex('42f5741edd71664d963eef4287ff173b')   # 1e74f542-71dd-4d66-963e-ef4287ff173b
LUKS_GUID_LE = bytes.fromhex('e5696873f084734992ec06879ce3da0b')    # 736869e5-84f0-4973-92ec-06879ce3da0b
OTHER = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'

TIK = bytes.fromhex('66320db73158a35a255d051758e95ed4')
TEK = bytes.fromhex('0f1e2d3c4b5a69788796a5b4c3d2e1f0')
MEASURE = bytes.fromhex('6faab2daae389bcd3405a05d6cafe33c0414f7bedd0bae19ba5f38b7fd1664ea')
SECRET = b'correct horse battery staple\n'


def independent_ctr(key, iv, data):
    """AES-CTR from AES-ECB: keystream block i = AES(key, (IV + i) mod 2**128, big-endian)."""
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    counter = int.from_bytes(iv, 'big')
    stream = b''
    for index in range((len(data) + 15) // 16):
        stream += ecb.update(((counter + index) % (1 << 128)).to_bytes(16, 'big'))
    return bytes(a ^ b for a, b in zip(data, stream))


def independent_mac(tik, iv, ciphertext, measure):
    message = (b'\x01' + b'\x00\x00\x00\x00' + iv + len(ciphertext).to_bytes(4, 'little')
               + len(ciphertext).to_bytes(4, 'little') + ciphertext + measure)
    return hmac.new(tik, message, hashlib.sha256).digest()


def assert_no_secret(text, *values):
    for value in values:
        assert value.hex() not in text.lower()
        assert value.decode('latin-1') not in text
        assert repr(value)[2:-1] not in text
        stripped = value.strip()
        if len(stripped) >= 4:
            assert stripped.decode('latin-1') not in text


# ---- GUIDs --------------------------------------------------------------------

def test_luks_key_alias():
    assert sec.resolve_guid('luks-key') == uuid.UUID('736869e5-84f0-4973-92ec-06879ce3da0b')
    assert sec.resolve_guid('luks-key').bytes_le == LUKS_GUID_LE


def test_guid_accepts_upper_case():
    assert sec.resolve_guid(OTHER.upper()) == uuid.UUID(OTHER)


@pytest.mark.parametrize('text', [
    'LUKS-KEY', 'luks', '', '{%s}' % OTHER, OTHER.replace('-', ''), 'urn:uuid:' + OTHER,
    OTHER + ' ', OTHER[:-1], OTHER[:-1] + 'g',
])
def test_bad_guid_is_refused_naming_the_input(text):
    with pytest.raises(UnsupportedUsage, match="^secrets\\[3\\]: .* is neither a known alias") as info:
        sec.resolve_guid(text, name='secrets[3]')
    assert 'luks-key' in str(info.value)
    assert info.value.rc == 2


@pytest.mark.parametrize('suffix', ['\n', '\r\n', ' ', '\t'])
def test_guid_with_trailing_whitespace_is_a_usage_error_or_the_guid(suffix):
    """Never a bare ValueError: that would surface as an 'unexpected error' (rc 6)."""
    try:
        guid = sec.resolve_guid(OTHER + suffix, name='secrets[0]')
    except UnsupportedUsage as exc:
        assert str(exc).startswith('secrets[0]: ')
    else:
        assert guid == uuid.UUID(OTHER)


@given(st.one_of(
    st.text(),
    st.builds(lambda guid, before, after: before + str(guid) + after, st.uuids(),
              st.sampled_from(['', ' ', '{', 'urn:uuid:']), st.sampled_from(['', '\n', ' ', '}', '0']))))
@example('luks-key')
def test_resolve_guid_gives_a_uuid_or_a_usage_error(text):
    try:
        guid = sec.resolve_guid(text)
    except UnsupportedUsage:
        return
    assert isinstance(guid, uuid.UUID)
    assert text == 'luks-key' or guid == uuid.UUID(text.strip())


# ---- table ----------------------------------------------------------------------

def test_table_layout_byte_by_byte():
    table = sec.SecretTable()
    assert table.add('luks-key', b'abc') == uuid.UUID('736869e5-84f0-4973-92ec-06879ce3da0b')
    built = table.build()
    # header 20 + entry (16 + 4 + 3) = 43, padded with 16 - 43 % 16 = 5 zero bytes
    assert len(built) == 48
    assert built[0:16] == TABLE_GUID_LE
    assert built[16:20] == struct.pack('<I', 43)
    assert built[20:36] == LUKS_GUID_LE
    assert built[36:40] == struct.pack('<I', 23)
    assert built[40:43] == b'abc'
    assert built[43:48] == bytes(5)


def test_aligned_table_gets_a_full_block_of_padding():
    table = sec.SecretTable()
    table.add('luks-key', b'12345678')             # 20 + 20 + 8 = 48, already aligned
    built = table.build()
    assert len(built) == 64
    assert built[16:20] == struct.pack('<I', 48)    # table_len excludes the padding
    assert built[40:48] == b'12345678'
    assert built[48:] == bytes(16)


@pytest.mark.parametrize('value_len', range(1, 40))
def test_padding_rule_for_every_residue(value_len):
    table = sec.SecretTable()
    table.add(OTHER, b'v' * value_len)
    built = table.build()
    unpadded = 40 + value_len
    assert len(built) == unpadded + 16 - unpadded % 16
    assert len(built) % 16 == 0
    assert 1 <= len(built) - unpadded <= 16
    assert built[unpadded:] == bytes(len(built) - unpadded)


def test_several_secrets_in_the_given_order():
    table = sec.SecretTable()
    table.add(OTHER, b'first')
    table.add('luks-key', SECRET)
    assert len(table) == 2
    assert table.guids == [OTHER, '736869e5-84f0-4973-92ec-06879ce3da0b']
    built = table.build()
    first = uuid.UUID(OTHER).bytes_le + struct.pack('<I', 25) + b'first'
    second = LUKS_GUID_LE + struct.pack('<I', 20 + len(SECRET)) + SECRET
    body = first + second
    assert built[:20] == TABLE_GUID_LE + struct.pack('<I', 20 + len(body))
    assert built[20:20 + len(body)] == body
    # the trailing newline is kept as part of the value
    assert SECRET in built


@pytest.mark.parametrize('second', ['luks-key', '736869e5-84f0-4973-92ec-06879ce3da0b',
                                    '736869E5-84F0-4973-92EC-06879CE3DA0B'])
def test_duplicate_guid_is_refused_without_showing_the_secret(second):
    table = sec.SecretTable()
    table.add('luks-key', SECRET, 'secrets[0]')
    with pytest.raises(UnsupportedUsage, match='^secrets\\[1\\]: GUID 736869e5-.* is given twice') as info:
        table.add(second, b'another secret value', 'secrets[1]')
    assert_no_secret(str(info.value), SECRET, b'another secret value')
    assert len(table) == 1


def test_empty_secret_is_refused():
    table = sec.SecretTable()
    with pytest.raises(UnsupportedUsage, match='^secrets\\[0\\]: the secret for GUID .* is empty'):
        table.add('luks-key', b'', 'secrets[0]')
    assert len(table) == 0


def test_empty_table():
    built = sec.SecretTable().build()
    # 20-byte header, table_len 20, 12 bytes of padding
    assert built == TABLE_GUID_LE + struct.pack('<I', 20) + bytes(12)


# ---- packet ----------------------------------------------------------------------

def make_table(*values):
    table = sec.SecretTable()
    for index, value in enumerate(values):
        table.add(str(uuid.UUID(int=index + 1)), value)
    return table.build()


def test_packet_with_fixed_iv_checked_independently():
    keys = SessionKeys(tek=TEK, tik=TIK)
    plaintext = make_table(SECRET)
    iv = bytes.fromhex('000102030405060708090a0b0c0d0e0f')
    header, payload = sec.build_secret_packet(keys, MEASURE, plaintext, iv=iv)
    assert len(header) == sec.HEADER_SIZE == 52
    assert header[0:4] == bytes(4)                 # flags
    assert header[4:20] == iv
    assert len(payload) == len(plaintext)
    assert payload != plaintext
    assert independent_ctr(TEK, iv, payload) == plaintext
    assert header[20:52] == independent_mac(TIK, iv, payload, MEASURE)


def test_counter_is_the_whole_128_bit_block():
    """The IV is one big-endian 128-bit counter: it carries across all bytes and wraps."""
    keys = SessionKeys(tek=TEK, tik=TIK)
    plaintext = make_table(b'x' * 100)              # several blocks
    for iv in (bytes.fromhex('00000000000000000000000000ffffff'),
               bytes.fromhex('0000000000000000ffffffffffffffff'),
               b'\xff' * 15 + b'\xfe'):
        header, payload = sec.build_secret_packet(keys, MEASURE, plaintext, iv=iv)
        assert independent_ctr(TEK, iv, payload) == plaintext
        assert header[20:] == independent_mac(TIK, iv, payload, MEASURE)


def test_mac_binds_the_measure_and_every_header_field():
    iv = bytes(16)
    ciphertext = bytes(range(48))
    base = sec.secret_packet_mac(TIK, 0, iv, ciphertext, MEASURE)
    assert base == independent_mac(TIK, iv, ciphertext, MEASURE)
    assert sec.secret_packet_mac(TIK, 1, iv, ciphertext, MEASURE) != base
    assert sec.secret_packet_mac(TIK, 0, b'\x01' + iv[1:], ciphertext, MEASURE) != base
    assert sec.secret_packet_mac(TIK, 0, iv, ciphertext[:-16], MEASURE) != base
    assert sec.secret_packet_mac(TIK, 0, iv, ciphertext, bytes(32)) != base
    assert sec.secret_packet_mac(bytes(16), 0, iv, ciphertext, MEASURE) != base


def test_random_iv_is_fresh():
    keys = SessionKeys(tek=TEK, tik=TIK)
    plaintext = make_table(SECRET)
    first, second = (sec.build_secret_packet(keys, MEASURE, plaintext) for dummy in range(2))
    assert first[0][4:20] != second[0][4:20]
    assert first[1] != second[1]
    for header, payload in (first, second):
        iv = header[4:20]
        assert independent_ctr(TEK, iv, payload) == plaintext
        assert header[20:] == independent_mac(TIK, iv, payload, MEASURE)


def test_zero_tek_is_insecure():
    keys = SessionKeys(tek=bytes(16), tik=TIK)
    with pytest.raises(InsecureUsage, match='TEK or TIK is all zeros') as info:
        sec.build_secret_packet(keys, MEASURE, make_table(SECRET))
    assert info.value.rc == 3
    assert_no_secret(str(info.value), SECRET, TIK)
    header, payload = sec.build_secret_packet(keys, MEASURE, make_table(SECRET), iv=bytes(16),
                                              allow_zero_keys=True)
    assert independent_ctr(bytes(16), bytes(16), payload) == make_table(SECRET)


@pytest.mark.parametrize('measure, iv, match', [
    (MEASURE[:31], None, 'MEASURE must be 32 bytes'),
    (MEASURE + MEASURE[:16], None, 'MEASURE must be 32 bytes'),
    (MEASURE, bytes(15), 'IV must be 16 bytes'),
    (MEASURE, bytes(17), 'IV must be 16 bytes'),
])
def test_argument_checks(measure, iv, match):
    with pytest.raises(ValueError, match=match) as info:
        sec.build_secret_packet(SessionKeys(tek=TEK, tik=TIK), measure, make_table(SECRET), iv=iv)
    assert_no_secret(str(info.value), SECRET, TIK, TEK)


def test_without_cryptography(monkeypatch):
    monkeypatch.setattr(sec, 'HAS_CRYPTOGRAPHY', False)
    with pytest.raises(UnsupportedUsage, match='cryptography'):
        sec.build_secret_packet(SessionKeys(tek=TEK, tik=TIK), MEASURE, make_table(SECRET))

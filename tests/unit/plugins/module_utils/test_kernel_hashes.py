# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""QEMU's padded SevHashTable, byte by byte."""

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.confidential.sev.plugins.module_utils.sev import kernel_hashes as kh

# GUIDs in their on-disk (bytes_le) form, written out by hand.
TABLE_GUID_LE = bytes.fromhex('06d63894224fc94cb479a793d411fd21')     # 9438d606-4f22-4cc9-b479-a793d411fd21
CMDLINE_GUID_LE = bytes.fromhex('d82dd09720bd944caa78e7714d36ab2a')   # 97d02dd8-bd20-4c94-aa78-e7714d36ab2a
INITRD_GUID_LE = bytes.fromhex('31f7ba442f3ad74b9af141e29169781d')    # 44baf731-3a2f-4bd7-9af1-41e29169781d
KERNEL_GUID_LE = bytes.fromhex('3794e74dd2ab7f42b835d5b172d2045b')    # 4de79437-abd2-427f-b835-d5b172d2045b

SHA256_NUL = '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d'
SHA256_EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'


def test_sizes():
    assert kh.ENTRY_SIZE == 50
    assert kh.TABLE_SIZE == 168
    assert kh.PADDED_TABLE_SIZE == 176


def test_guids_on_disk():
    assert kh.TABLE_GUID.bytes_le == TABLE_GUID_LE
    assert kh.CMDLINE_GUID.bytes_le == CMDLINE_GUID_LE
    assert kh.INITRD_GUID.bytes_le == INITRD_GUID_LE
    assert kh.KERNEL_GUID.bytes_le == KERNEL_GUID_LE


@pytest.mark.parametrize('cmdline', [None, b''])
def test_absent_or_empty_cmdline_hashes_a_single_nul(cmdline):
    assert kh.cmdline_digest(cmdline).hex() == SHA256_NUL


def test_cmdline_appends_one_nul_and_normalises_nothing():
    text = b'  console=ttyS0   root=/dev/vda1 '
    assert kh.cmdline_digest(text) == hashlib.sha256(text + b'\x00').digest()
    assert kh.cmdline_digest(text) != kh.cmdline_digest(text.strip())
    assert kh.cmdline_digest(b'a b') != kh.cmdline_digest(b'a  b')
    assert kh.cmdline_digest(b'x\n') == hashlib.sha256(b'x\n\x00').digest()
    utf8 = 'quiet lang=fr_FR.UTF-8 hôte'.encode('utf-8')
    assert kh.cmdline_digest(utf8) == hashlib.sha256(utf8 + b'\0').digest()


def test_absent_initrd_digest_is_that_of_an_empty_file():
    assert kh.EMPTY_INITRD_DIGEST.hex() == SHA256_EMPTY


def test_table_byte_by_byte():
    cmdline, initrd, kernel = bytes([0xc1]) * 32, bytes(range(32)), bytes(range(100, 132))
    table = kh.build_hash_table(cmdline, initrd, kernel)
    assert len(table) == 176
    assert table[0:16] == TABLE_GUID_LE
    assert table[16:18] == b'\xa8\x00'                       # u16 168
    # cmdline entry at 18
    assert table[18:34] == CMDLINE_GUID_LE
    assert table[34:36] == b'\x32\x00'                       # u16 50
    assert table[36:68] == cmdline
    # initrd entry at 68
    assert table[68:84] == INITRD_GUID_LE
    assert table[84:86] == b'\x32\x00'
    assert table[86:118] == initrd
    # kernel entry at 118
    assert table[118:134] == KERNEL_GUID_LE
    assert table[134:136] == b'\x32\x00'
    assert table[136:168] == kernel
    # padding
    assert table[168:176] == bytes(8)


def test_table_known_answer():
    table = kh.build_hash_table(kh.cmdline_digest(None), kh.EMPTY_INITRD_DIGEST,
                                hashlib.sha256(b'kernel').digest())
    expected = (TABLE_GUID_LE + b'\xa8\x00'
                + CMDLINE_GUID_LE + b'\x32\x00' + bytes.fromhex(SHA256_NUL)
                + INITRD_GUID_LE + b'\x32\x00' + bytes.fromhex(SHA256_EMPTY)
                + KERNEL_GUID_LE + b'\x32\x00' + hashlib.sha256(b'kernel').digest()
                + bytes(8))
    assert table == expected


def test_order_is_fixed():
    a, b, c = (bytes([n]) * 32 for n in (1, 2, 3))
    assert kh.build_hash_table(a, b, c) != kh.build_hash_table(c, b, a)
    assert kh.build_hash_table(a, b, c).index(a) < kh.build_hash_table(a, b, c).index(c)


@pytest.mark.parametrize('bad', [b'', bytes(31), bytes(33), bytes(48)])
def test_digest_must_be_32_bytes(bad):
    good = bytes(32)
    for args in ((bad, good, good), (good, bad, good), (good, good, bad)):
        with pytest.raises(ValueError, match='32-byte'):
            kh.build_hash_table(*args)

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OVMF footer table: real footers, synthetic footers, and malformed input.

The parser reads bytes the guest owner supplied; whatever they are, it must
return a footer (possibly present=False) or raise FirmwareFormatError, never
another exception and never hang.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import struct
import tracemalloc
import uuid

import pytest
from hypothesis import assume, example, given, strategies as st

from ansible_collections.confidential.sev.plugins.module_utils.sev import ovmf
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import (
    FirmwareFormatError, SevError, UnsupportedUsage,
)
from ansible_collections.confidential.sev.tests.support import firmware as fwb

DATA = pathlib.Path(__file__).resolve().parents[3] / 'data' / 'ovmf'
AMDSEV = DATA / 'ovmf_AmdSev_suffix.bin'
OVMFX64 = DATA / 'ovmf_OvmfX64_suffix.bin'

# GUIDs written out in their on-disk (bytes_le) form, independently of uuid.
FOOTER_GUID_LE = bytes.fromhex('de82b596b21ff745baeaa366c55a082d')
RESET_BLOCK_GUID_LE = bytes.fromhex('de71f7007e1acb4f890e68c77e2fb44e')

ALL_REAL_GUIDS = sorted([
    '00f771de-1a7e-4fcb-890e-68c77e2fb44e',   # SEV-ES reset block
    '4c2eb361-7d9b-4cc3-8081-127c90d3d294',   # SEV secret area
    '7255371f-3a3b-4b04-927b-1da6efa8d454',   # SEV hash table
    'dc886566-984a-4798-a75e-5585a7bf67cc',   # SNP metadata
    'e47a6535-984a-4798-865e-4685a7bf8ec2',   # SNP boot block
])


class ParserHang(BaseException):
    """Not an Exception: nothing in the parser can swallow it."""


@contextlib.contextmanager
def no_hang(seconds=5):
    """Fail (instead of hanging the run) if the parser loops."""
    def on_alarm(signum, frame):
        raise ParserHang('parse_footer did not finish within %d s: endless loop?' % seconds)
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def real(path):
    return path.read_bytes()


# --------------------------------------------------------------------------
# Real footers (last 4 KiB of real OVMF builds, from virtee/sev)
# --------------------------------------------------------------------------

def test_real_suffix_layout_matches_the_documented_footer():
    data = real(AMDSEV)
    assert len(data) == 4096
    assert data[-48:-32] == FOOTER_GUID_LE
    assert struct.unpack('<H', data[-50:-48])[0] == 136
    # The entry nearest the footer is the SEV-ES reset block: u32 0x0080b004,
    # u16 22, then its GUID.
    assert data[-68:-50] == struct.pack('<H', 22) + RESET_BLOCK_GUID_LE
    assert data[-72:-68] == bytes.fromhex('04b08000')


def test_real_amdsev_footer():
    footer = ovmf.parse_footer(real(AMDSEV), source='amdsev')
    assert footer.present is True
    assert footer.source == 'amdsev'
    assert footer.sev_es_reset_address == 0x0080b004
    assert footer.sev_hash_table == ovmf.GuestArea(base=0x810c00, size=0x400)
    assert footer.secret_area == ovmf.GuestArea(base=0x810000, size=0xc00)
    assert footer.snp_metadata_offset == 0x554
    assert sorted(str(guid) for guid in footer.entries) == ALL_REAL_GUIDS
    # 0x400 bytes hold the 176-byte table, but not 0x401.
    assert footer.usable_hash_table(176) == ovmf.GuestArea(0x810c00, 0x400)
    assert footer.usable_hash_table(0x400) == ovmf.GuestArea(0x810c00, 0x400)
    assert footer.usable_hash_table(0x401) is None


def test_real_generic_ovmf_footer_has_no_usable_areas():
    footer = ovmf.parse_footer(real(OVMFX64))
    assert footer.present is True
    assert footer.sev_es_reset_address == 0x0080b004
    # The entries exist, with base 0 and size 0, as in Debian's builds.
    assert footer.sev_hash_table == ovmf.GuestArea(0, 0)
    assert footer.entries[ovmf.SEV_SECRET_AREA_GUID] == bytes(8)
    assert footer.secret_area is None
    assert footer.usable_hash_table(176) is None
    assert footer.snp_metadata_offset == 0x548
    assert sorted(str(guid) for guid in footer.entries) == ALL_REAL_GUIDS


def test_real_footer_describe():
    description = ovmf.parse_footer(real(AMDSEV)).describe()
    assert description == {
        'present': True,
        'sev_es_reset_address': 0x0080b004,
        'sev_hash_table': {'base': 0x810c00, 'size': 0x400},
        'secret_area': {'base': 0x810000, 'size': 0xc00},
        'snp_metadata_offset': 0x554,
        'entries': ALL_REAL_GUIDS,
    }
    assert ovmf.parse_footer(real(OVMFX64)).describe()['secret_area'] is None


def test_real_footer_entries_match_an_independent_walk():
    """Walk the real tables with a separate, naive implementation."""
    for path in (AMDSEV, OVMFX64):
        data = real(path)
        total = struct.unpack('<H', data[-50:-48])[0]
        start, pos, expected = len(data) - 32 - total, len(data) - 50, {}
        while pos > start:
            length = struct.unpack('<H', data[pos - 18:pos - 16])[0]
            expected[uuid.UUID(bytes_le=data[pos - 16:pos])] = data[pos - length:pos - 18]
            pos -= length
        assert pos == start
        assert ovmf.parse_footer(data).entries == expected


def test_read_footer_from_file(tmp_path):
    footer = ovmf.read_footer(str(AMDSEV))
    assert footer.source == str(AMDSEV)
    assert footer.sev_es_reset_address == 0x0080b004
    # The same footer behind a body: only the end of the file matters.
    image = tmp_path / 'OVMF.fd'
    image.write_bytes(b'\x5a' * (3 * 1024 * 1024) + real(AMDSEV))
    assert ovmf.read_footer(str(image)).entries == ovmf.parse_footer(real(AMDSEV)).entries


def test_read_footer_reads_only_the_tail(tmp_path):
    image = tmp_path / 'big.fd'
    with open(image, 'wb') as stream:
        stream.truncate(128 * 1024 * 1024)
        stream.seek(0, os.SEEK_END)
        stream.write(real(AMDSEV))
    tracemalloc.start()
    try:
        footer = ovmf.read_footer(str(image))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert footer.sev_es_reset_address == 0x0080b004
    assert peak < 2 * 1024 * 1024


def test_read_footer_handles_a_table_of_maximum_length(tmp_path):
    data = b'\x11' * (0xffff - 36)
    table = fwb.footer_table([(fwb.SEV_ES_RESET_BLOCK, data)])
    assert struct.unpack('<H', table[-50:-48])[0] == 0xffff
    image = tmp_path / 'max.fd'
    image.write_bytes(b'\x00' * 4096 + table)
    footer = ovmf.read_footer(str(image))
    assert footer.entries == {ovmf.SEV_ES_RESET_BLOCK_GUID: data}
    assert footer.sev_es_reset_address == 0x11111111


@pytest.mark.parametrize('name', ['absent.fd', '.'])
def test_read_footer_unreadable_file_is_a_usage_error_naming_the_firmware(tmp_path, name):
    path = str(tmp_path / name)
    with pytest.raises(UnsupportedUsage) as info:
        ovmf.read_footer(path)
    assert str(info.value).startswith('firmware: cannot read %s: ' % path if name != '.' else
                                      'firmware: %s is not a regular file (a directory)' % path)
    assert info.value.rc == 2


# --------------------------------------------------------------------------
# Synthetic footers
# --------------------------------------------------------------------------

def test_synthetic_amdsev_like_image():
    footer = ovmf.parse_footer(fwb.build_image(body_size=1024))
    assert footer.present
    assert footer.sev_es_reset_address == 0x0080b004
    assert footer.sev_hash_table == (0x80c000, 0x400)
    assert footer.secret_area == (0x80d000, 0x1000)
    assert footer.snp_metadata_offset is None


def test_empty_table_is_present_with_no_entries():
    footer = ovmf.parse_footer(fwb.footer_table([]))
    assert footer.present is True
    assert footer.entries == {}
    assert footer.sev_es_reset_address is None
    assert footer.sev_hash_table is None
    assert footer.secret_area is None
    assert footer.usable_hash_table(176) is None
    assert footer.describe()['entries'] == []


@pytest.mark.parametrize('area, usable', [
    ((0, 0x400), False),          # base 0: QEMU refuses
    ((0x80c000, 175), False),     # smaller than the padded table
    ((0x80c000, 176), True),      # exactly the padded table
    ((0x80c000, 0), False),
])
def test_usable_hash_table(area, usable):
    footer = ovmf.parse_footer(fwb.build_image(body_size=0, hash_table=area))
    assert footer.sev_hash_table == area
    assert (footer.usable_hash_table(176) == area) is usable
    if not usable:
        assert footer.usable_hash_table(176) is None


@pytest.mark.parametrize('area', [(0, 0x1000), (0x80d000, 0)])
def test_secret_area_with_zero_base_or_size_is_absent(area):
    footer = ovmf.parse_footer(fwb.build_image(body_size=0, secret_area=area))
    assert footer.secret_area is None
    assert footer.describe()['secret_area'] is None


def test_no_footer_guid_means_not_present():
    for tail in (b'', b'\x00' * 49, b'\x00' * 50, os.urandom(4096), real(AMDSEV)[:-1]):
        footer = ovmf.parse_footer(tail)
        assert footer.present is False
        assert footer.entries == {}
        assert footer.sev_es_reset_address is None
        assert footer.describe()['present'] is False


def test_exactly_fifty_bytes_with_footer_guid():
    tail = struct.pack('<H', 18) + FOOTER_GUID_LE + bytes(32)
    footer = ovmf.parse_footer(tail)
    assert footer.present and footer.entries == {}


def _with_total(tail, total):
    tail = bytearray(tail)
    struct.pack_into('<H', tail, len(tail) - 50, total)
    return bytes(tail)


@pytest.mark.parametrize('total', [0, 1, 17])
def test_total_shorter_than_the_footer_entry(total):
    with pytest.raises(FirmwareFormatError, match='shorter than its own footer entry'):
        ovmf.parse_footer(_with_total(real(AMDSEV), total), source='fw.fd')


def test_total_reaching_before_the_image():
    tail = fwb.footer_table(fwb.amdsev_like_entries())
    with pytest.raises(FirmwareFormatError, match='before the start of the image') as info:
        ovmf.parse_footer(_with_total(tail, len(tail) - 32 + 1), source='fw.fd')
    assert 'fw.fd' in str(info.value)
    assert info.value.rc == 2 and info.value.reason == 'unsupported'


@pytest.mark.parametrize('entry_len', [0, 1, 17])
def test_entry_length_below_trailer_size_does_not_loop(entry_len):
    tail = bytearray(real(AMDSEV))
    struct.pack_into('<H', tail, len(tail) - 68, entry_len)
    with no_hang(), pytest.raises(FirmwareFormatError, match='outside 18'):
        ovmf.parse_footer(bytes(tail))


def test_entry_length_beyond_the_table():
    tail = bytearray(real(AMDSEV))
    # 136 - 18 = 118 bytes of entries: 119 reaches past the table start.
    struct.pack_into('<H', tail, len(tail) - 68, 119)
    with pytest.raises(FirmwareFormatError, match='outside 18..118'):
        ovmf.parse_footer(bytes(tail))
    struct.pack_into('<H', tail, len(tail) - 68, 0xffff)
    with pytest.raises(FirmwareFormatError):
        ovmf.parse_footer(bytes(tail))


def test_stray_bytes_at_table_start():
    tail = fwb.footer_table([(fwb.SEV_ES_RESET_BLOCK, struct.pack('<I', 0x80b004))])
    total = struct.unpack('<H', tail[-50:-48])[0]
    # Claim 5 more bytes than the entries hold: they cannot form an entry.
    padded = b'\x00' * 5 + _with_total(tail, total + 5)
    with pytest.raises(FirmwareFormatError, match='5 stray bytes'):
        ovmf.parse_footer(padded)


def test_duplicate_guid_is_refused():
    tail = fwb.footer_table([(fwb.SEV_ES_RESET_BLOCK, struct.pack('<I', 0x80b004)),
                             (fwb.SEV_ES_RESET_BLOCK, struct.pack('<I', 0x808004))])
    with pytest.raises(FirmwareFormatError, match='appears twice'):
        ovmf.parse_footer(tail)


@pytest.mark.parametrize('accessor, guid, size', [
    ('sev_es_reset_address', fwb.SEV_ES_RESET_BLOCK, 3),
    ('sev_hash_table', fwb.SEV_HASH_TABLE, 7),
    ('secret_area', fwb.SEV_SECRET_AREA, 4),
    ('snp_metadata_offset', fwb.SNP_METADATA, 0),
])
def test_short_entry_data_is_a_format_error(accessor, guid, size):
    footer = ovmf.parse_footer(fwb.footer_table([(guid, b'\x01' * size)]), source='short.fd')
    with pytest.raises(FirmwareFormatError, match='short.fd') as info:
        getattr(footer, accessor)
    assert 'holds %d bytes' % size in str(info.value)
    with pytest.raises(FirmwareFormatError):
        footer.describe()


def test_longer_entry_data_reads_the_leading_fields():
    footer = ovmf.parse_footer(fwb.footer_table([
        (fwb.SEV_ES_RESET_BLOCK, struct.pack('<II', 0x808004, 0xdeadbeef)),
        (fwb.SEV_HASH_TABLE, struct.pack('<III', 0x1000, 0x200, 7)),
    ]))
    assert footer.sev_es_reset_address == 0x808004
    assert footer.sev_hash_table == (0x1000, 0x200)


def test_parse_accepts_bytearray_and_memoryview():
    data = real(AMDSEV)
    expected = ovmf.parse_footer(data).entries
    assert ovmf.parse_footer(bytearray(data)).entries == expected
    assert ovmf.parse_footer(memoryview(data)).entries == expected


# --------------------------------------------------------------------------
# Robustness: property tests
# --------------------------------------------------------------------------

def check_parse(tail):
    """parse_footer + every accessor: only FirmwareFormatError may escape.

    Returns the footer, or None if parsing was refused.  A parsed table must
    account for exactly the declared length.
    """
    try:
        with no_hang():
            footer = ovmf.parse_footer(tail, source='fuzz')
    except FirmwareFormatError as exc:
        assert 'fuzz' in str(exc)
        return None
    except Exception as exc:  # pragma: no cover - this is the failure being tested
        raise AssertionError('parse_footer raised %r' % (exc,))
    assert isinstance(footer, ovmf.OvmfFooter)
    if not footer.present:
        assert footer.entries == {}
    else:
        total = struct.unpack_from('<H', tail, len(tail) - 50)[0]
        assert 18 + sum(len(data) + 18 for data in footer.entries.values()) == total
    for accessor in ('sev_es_reset_address', 'sev_hash_table', 'secret_area',
                     'snp_metadata_offset', 'describe'):
        try:
            value = getattr(footer, accessor)
            if accessor == 'describe':
                value()
        except FirmwareFormatError:
            pass
        except Exception as exc:  # pragma: no cover
            raise AssertionError('%s raised %r' % (accessor, exc))
    try:
        footer.usable_hash_table(176)
    except FirmwareFormatError:
        pass
    return footer


REAL_TAILS = [real(AMDSEV), real(OVMFX64)]
GUID_POOL = [fwb.SEV_ES_RESET_BLOCK, fwb.SEV_HASH_TABLE, fwb.SEV_SECRET_AREA, fwb.SNP_METADATA,
             uuid.UUID('e47a6535-984a-4798-865e-4685a7bf8ec2'),
             uuid.UUID('12345678-1234-5678-9abc-def012345678')]


@given(st.binary(max_size=600))
def test_random_bytes(tail):
    check_parse(tail)


@given(prefix=st.binary(max_size=300), total=st.integers(0, 0xffff), reset=st.binary(min_size=32, max_size=32))
@example(prefix=b'', total=18, reset=bytes(32))
@example(prefix=b'\x00' * 17, total=36, reset=bytes(32))
def test_random_bytes_before_a_valid_footer_guid(prefix, total, reset):
    """Random table contents behind the real footer GUID: the parser goes deep."""
    check_parse(prefix + struct.pack('<H', total) + FOOTER_GUID_LE + reset)


@given(which=st.sampled_from([0, 1]),
       edits=st.lists(st.tuples(st.integers(1, 200), st.integers(0, 255)), max_size=8),
       keep=st.integers(0, 4096))
def test_mutated_real_footers(which, edits, keep):
    tail = bytearray(REAL_TAILS[which])
    for offset_from_end, value in edits:
        tail[len(tail) - offset_from_end] = value
    check_parse(bytes(tail[len(tail) - keep:]))


@given(which=st.sampled_from([0, 1]), total=st.integers(0, 0xffff), keep=st.integers(50, 4096))
def test_real_footers_with_any_total_and_truncation(which, total, keep):
    tail = _with_total(REAL_TAILS[which], total)[-keep:]
    footer = check_parse(tail)
    if total > keep - 32:
        assert footer is None          # the table would reach before the data


@given(which=st.sampled_from([0, 1]), index=st.integers(0, 4), entry_len=st.integers(0, 0xffff))
def test_real_footers_with_any_entry_length(which, index, entry_len):
    """Rewrite the length of the index-th entry (walking backwards)."""
    tail = bytearray(REAL_TAILS[which])
    pos = len(tail) - 50
    for dummy in range(index):
        pos -= struct.unpack_from('<H', tail, pos - 18)[0]
    original = struct.unpack_from('<H', tail, pos - 18)[0]
    struct.pack_into('<H', tail, pos - 18, entry_len)
    footer = check_parse(bytes(tail))
    if entry_len < 18 or entry_len > pos - (len(tail) - 32 - 136):
        assert footer is None
    if entry_len == original:
        assert footer is not None and len(footer.entries) == 5


entries_strategy = st.lists(
    st.tuples(st.sampled_from(GUID_POOL), st.binary(max_size=40)), max_size=6)


@given(entries=entries_strategy, body=st.binary(max_size=64))
def test_synthetic_footers_round_trip(entries, body):
    tail = body + fwb.footer_table(entries)
    footer = check_parse(tail)
    guids = [guid for guid, dummy in entries]
    if len(set(guids)) == len(guids):
        assert footer is not None and footer.present
        assert footer.entries == dict(entries)
    else:
        assert footer is None          # duplicate GUIDs are refused


@given(entries=entries_strategy.filter(bool), index=st.integers(0, 5),
       entry_len=st.integers(0, 0xffff), body=st.binary(max_size=64))
def test_synthetic_footers_with_a_corrupt_entry_length(entries, index, entry_len, body):
    table = fwb.footer_table(entries)
    tail = bytearray(body + table)
    index %= len(entries)
    # Entries are walked backwards from the footer, first entry nearest it.
    pos = len(tail) - 50
    for dummy, data in entries[:index]:
        pos -= len(data) + 18
    struct.pack_into('<H', tail, pos - 18, entry_len)
    footer = check_parse(bytes(tail))
    if entry_len < 18:
        assert footer is None


@given(entries=entries_strategy, delta=st.integers(-80, 80), body=st.binary(max_size=64))
def test_synthetic_footers_with_a_wrong_total(entries, delta, body):
    tail = body + fwb.footer_table(entries)
    total = struct.unpack('<H', tail[-50:-48])[0]
    assume(0 <= total + delta <= 0xffff and delta != 0)
    check_parse(_with_total(tail, total + delta))


def test_format_error_is_a_usage_error_code_2():
    """Issue 10: a malformed footer is bad input (2), not the unexpected class (6)."""
    assert issubclass(FirmwareFormatError, SevError)
    assert FirmwareFormatError('x').rc == 2

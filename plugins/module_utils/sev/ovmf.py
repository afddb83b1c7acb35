# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OVMF footer table: what the firmware image says about itself.

Layout (read from the end of the image):
  [-32:]     reset vector
  [-48:-32]  footer GUID 96b582de-...
  [-50:-48]  u16 total table length, this 18-byte footer entry included
  entries    in [-(32 + total):-50], walked backwards; each entry *ends* with
             ``u16 entry_len || GUID`` and entry_len counts data + 2 + 16.

The image comes from the guest owner's own files, but a wrong or damaged file
must give a clear error, never an IndexError or an endless loop.
"""

from __future__ import annotations

import collections
import os
import struct
import uuid

from .errors import FirmwareFormatError, UnsupportedUsage
from .files import open_regular

FOOTER_GUID = uuid.UUID('96b582de-1fb2-45f7-baea-a366c55a082d')
SEV_ES_RESET_BLOCK_GUID = uuid.UUID('00f771de-1a7e-4fcb-890e-68c77e2fb44e')
SEV_HASH_TABLE_GUID = uuid.UUID('7255371f-3a3b-4b04-927b-1da6efa8d454')
SEV_SECRET_AREA_GUID = uuid.UUID('4c2eb361-7d9b-4cc3-8081-127c90d3d294')
SNP_METADATA_GUID = uuid.UUID('dc886566-984a-4798-a75e-5585a7bf67cc')
SNP_BOOT_BLOCK_GUID = uuid.UUID('e47a6535-984a-4798-865e-4685a7bf8ec2')

RESET_VECTOR_SIZE = 32
ENTRY_TRAILER_SIZE = 2 + 16          # u16 length + GUID
FOOTER_END = RESET_VECTOR_SIZE + ENTRY_TRAILER_SIZE
# The total length is a u16, so the table can never reach further back than this.
MAX_TAIL_SIZE = RESET_VECTOR_SIZE + 0xffff

GuestArea = collections.namedtuple('GuestArea', ['base', 'size'])


class OvmfFooter:
    """The parsed footer table: GUID -> entry data, plus typed accessors."""

    def __init__(self, entries, present=True, source='firmware'):
        self.entries = dict(entries)
        self.present = present
        self.source = source

    def _data(self, guid, min_size, what):
        data = self.entries.get(guid)
        if data is None:
            return None
        if len(data) < min_size:
            raise FirmwareFormatError(
                'firmware %s: the %s entry holds %d bytes, expected at least %d'
                % (self.source, what, len(data), min_size))
        return data

    def _area(self, guid, what):
        data = self._data(guid, 8, what)
        if data is None:
            return None
        return GuestArea(*struct.unpack_from('<II', data))

    @property
    def sev_es_reset_address(self):
        """The AP reset address (u32) from the SEV-ES reset block, or None."""
        data = self._data(SEV_ES_RESET_BLOCK_GUID, 4, 'SEV-ES reset block')
        return None if data is None else struct.unpack_from('<I', data)[0]

    @property
    def sev_hash_table(self):
        """Where QEMU puts the kernel hashes table (GuestArea), or None."""
        return self._area(SEV_HASH_TABLE_GUID, 'SEV hash table')

    @property
    def secret_area(self):
        """The default LAUNCH_SECRET target (GuestArea), or None."""
        area = self._area(SEV_SECRET_AREA_GUID, 'SEV secret area')
        if area is None or area.base == 0 or area.size == 0:
            return None
        return area

    @property
    def snp_metadata_offset(self):
        data = self._data(SNP_METADATA_GUID, 4, 'SNP metadata')
        return None if data is None else struct.unpack_from('<I', data)[0]

    def usable_hash_table(self, table_size):
        """The hash table area if QEMU would accept it for measured direct boot.

        QEMU refuses kernel hashing when the entry is missing, its base is 0,
        or it is smaller than the padded table.  Debian's OVMF builds carry
        the entry with base=0,size=0.
        """
        area = self.sev_hash_table
        if area is None or area.base == 0 or area.size < table_size:
            return None
        return area

    def describe(self):
        """A JSON-friendly summary, for results and diagnostics."""
        def area(value):
            return None if value is None else {'base': value.base, 'size': value.size}
        return {
            'present': self.present,
            'sev_es_reset_address': self.sev_es_reset_address,
            'sev_hash_table': area(self.sev_hash_table),
            'secret_area': area(self.secret_area),
            'snp_metadata_offset': self.snp_metadata_offset,
            'entries': sorted(str(guid) for guid in self.entries),
        }


def parse_footer(tail, source='firmware'):
    """Parse the footer table from the last bytes of an image.

    ``tail`` must end where the image ends; MAX_TAIL_SIZE bytes always suffice.
    Returns an OvmfFooter with present=False when the image has no footer GUID
    (not an OVMF build with SEV support).  Raises FirmwareFormatError when the
    GUID is there but the table does not fit together.
    """
    size = len(tail)
    if size < FOOTER_END or uuid.UUID(bytes_le=bytes(tail[size - 48:size - 32])) != FOOTER_GUID:
        return OvmfFooter({}, present=False, source=source)

    total = struct.unpack_from('<H', tail, size - 50)[0]
    if total < ENTRY_TRAILER_SIZE:
        raise FirmwareFormatError(
            'firmware %s: OVMF footer table length %d is shorter than its own footer entry'
            % (source, total))
    start = size - RESET_VECTOR_SIZE - total
    if start < 0:
        raise FirmwareFormatError(
            'firmware %s: OVMF footer table length %d reaches before the start of the image'
            % (source, total))

    entries = {}
    pos = size - FOOTER_END          # end of the entry area
    while pos > start:
        if pos - start < ENTRY_TRAILER_SIZE:
            raise FirmwareFormatError(
                'firmware %s: %d stray bytes at the start of the OVMF footer table'
                % (source, pos - start))
        guid = uuid.UUID(bytes_le=bytes(tail[pos - 16:pos]))
        entry_len = struct.unpack_from('<H', tail, pos - ENTRY_TRAILER_SIZE)[0]
        if entry_len < ENTRY_TRAILER_SIZE or entry_len > pos - start:
            raise FirmwareFormatError(
                'firmware %s: OVMF footer entry %s has length %d, outside 18..%d'
                % (source, guid, entry_len, pos - start))
        if guid in entries:
            raise FirmwareFormatError(
                'firmware %s: OVMF footer entry %s appears twice' % (source, guid))
        entries[guid] = bytes(tail[pos - entry_len:pos - ENTRY_TRAILER_SIZE])
        pos -= entry_len
    return OvmfFooter(entries, source=source)


def read_footer(path):
    """Read and parse the footer table of the image at ``path`` (reads only its tail).

    For a validation, parse the tail of the bytes that were hashed instead
    (launch_digest.MeasuredFiles.firmware_tail): a second read could see
    another file."""
    with open_regular(path, 'firmware') as image:
        try:
            size = os.fstat(image.fileno()).st_size
            image.seek(max(0, size - MAX_TAIL_SIZE))
            tail = image.read(MAX_TAIL_SIZE)
        except OSError as exc:
            raise UnsupportedUsage('firmware: cannot read %s: %s' % (path, exc.strerror or exc))
    return parse_footer(tail, source=path)

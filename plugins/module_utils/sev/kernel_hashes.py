# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""QEMU's measured direct boot table (``SevHashTable``), padded as QEMU measures it.

  GUID 9438d606-... || u16 168 || entry(cmdline) || entry(initrd) || entry(kernel) || 8 zero bytes
  entry = GUID || u16 50 || sha256(...)

The order is fixed (cmdline, initrd, kernel) and the entry length counts its
own GUID and length field.  Only the table's bytes are measured, not its
guest address.
"""

from __future__ import annotations

import hashlib
import struct
import uuid

TABLE_GUID = uuid.UUID('9438d606-4f22-4cc9-b479-a793d411fd21')
CMDLINE_GUID = uuid.UUID('97d02dd8-bd20-4c94-aa78-e7714d36ab2a')
INITRD_GUID = uuid.UUID('44baf731-3a2f-4bd7-9af1-41e29169781d')
KERNEL_GUID = uuid.UUID('4de79437-abd2-427f-b835-d5b172d2045b')

ENTRY_SIZE = 16 + 2 + 32
TABLE_SIZE = 16 + 2 + 3 * ENTRY_SIZE          # 168, what the table says of itself
PADDED_TABLE_SIZE = (TABLE_SIZE + 15) // 16 * 16  # 176, what is measured

# The digest QEMU uses for an absent initrd equals that of an empty file.
EMPTY_INITRD_DIGEST = hashlib.sha256(b'').digest()


def cmdline_digest(cmdline):
    """sha256 of the cmdline bytes plus the NUL QEMU appends; nothing normalised.

    ``cmdline`` is bytes; None (no cmdline) counts as empty.
    """
    return hashlib.sha256((cmdline or b'') + b'\0').digest()


def _entry(guid, digest):
    if len(digest) != 32:
        raise ValueError('a hash table entry needs a 32-byte SHA-256 digest')
    return guid.bytes_le + struct.pack('<H', ENTRY_SIZE) + digest


def build_hash_table(cmdline_sha256, initrd_sha256, kernel_sha256):
    """The 176-byte padded table from the three component digests."""
    table = (TABLE_GUID.bytes_le + struct.pack('<H', TABLE_SIZE)
             + _entry(CMDLINE_GUID, cmdline_sha256)
             + _entry(INITRD_GUID, initrd_sha256)
             + _entry(KERNEL_GUID, kernel_sha256))
    return table + b'\0' * (PADDED_TABLE_SIZE - len(table))

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Synthetic firmware images with an OVMF footer table, for tests.

Debian's OVMF builds carry a hash-table entry with base 0, so they cannot do
measured direct boot.  These images are "AmdSev-like": a body of chosen bytes
ending in a footer table whose entries the test picks.  The layout is written
here independently of the engine's parser, from the OVMF source's
description (ResetVector/Ia32/ResetVectorVtf0.asm, "guided structure table").
"""

from __future__ import annotations

import struct
import uuid

FOOTER = uuid.UUID('96b582de-1fb2-45f7-baea-a366c55a082d')
SEV_ES_RESET_BLOCK = uuid.UUID('00f771de-1a7e-4fcb-890e-68c77e2fb44e')
SEV_HASH_TABLE = uuid.UUID('7255371f-3a3b-4b04-927b-1da6efa8d454')
SEV_SECRET_AREA = uuid.UUID('4c2eb361-7d9b-4cc3-8081-127c90d3d294')
SNP_METADATA = uuid.UUID('dc886566-984a-4798-a75e-5585a7bf67cc')

# A plausible reset vector: 32 bytes, as the last 32 bytes of every OVMF image.
RESET_VECTOR = bytes.fromhex('90e9000000000000000000000000000000000000000000000000000000000000')


def entry(guid, data):
    """One table entry: data || u16 len(data)+18 || GUID."""
    return data + struct.pack('<H', len(data) + 18) + uuid.UUID(str(guid)).bytes_le


def footer_table(entries):
    """The footer table for ``entries`` (a list of (guid, data)), the first
    entry lying nearest the footer, as OVMF lays them out when walked backwards."""
    body = b''.join(entry(guid, data) for guid, data in reversed(entries))
    total = len(body) + 18
    return body + struct.pack('<H', total) + FOOTER.bytes_le + RESET_VECTOR


def amdsev_like_entries(reset_address=0x0080b004, hash_table=(0x80c000, 0x400),
                        secret_area=(0x80d000, 0x1000)):
    entries = [(SEV_ES_RESET_BLOCK, struct.pack('<I', reset_address))]
    if hash_table is not None:
        entries.append((SEV_HASH_TABLE, struct.pack('<II', *hash_table)))
    if secret_area is not None:
        entries.append((SEV_SECRET_AREA, struct.pack('<II', *secret_area)))
    return entries


def build_image(body_size=64 * 1024, entries=None, fill=b'\xa5', **kwargs):
    """A firmware image: ``body_size`` bytes of filler, then the footer table.

    ``entries`` defaults to an AmdSev-like set (reset block, usable hash table,
    secret area); keyword arguments adjust it.
    """
    if entries is None:
        entries = amdsev_like_entries(**kwargs)
    body = (fill * (body_size // len(fill) + 1))[:body_size]
    return body + footer_table(entries)


def write_image(path, **kwargs):
    data = build_image(**kwargs)
    with open(path, 'wb') as stream:
        stream.write(data)
    return path

#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in for the AMD secure processor's launch commands, for demos and tests.

THIS IS NOT A PLATFORM.  No SEV hardware exists here.  This script computes
what the firmware would: LAUNCH_MEASURE's HMAC over the digest of the bytes
the host loads, and LAUNCH_SECRET's MAC check and decryption.  It is written
from the AMD SEV API specification independently of the collection's engine
(no import from plugins/), so that agreement between the two means something.
It models plain SEV with measured direct boot; SEV-ES VMSAs are not modelled.

  emulated_platform.py patch-ovmf IN OUT
  emulated_platform.py measure --tik F --firmware F [--kernel F [--initrd F] [--cmdline S]]
                               --api-major N --api-minor N --build-id N --policy N
  emulated_platform.py secret --tik F --tek F --measurement B64 --header F --payload F
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import struct
import sys
import uuid

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def guid(text):
    return uuid.UUID(text).bytes_le


OVMF_TABLE_FOOTER = guid('96b582de-1fb2-45f7-baea-a366c55a082d')
OVMF_HASH_TABLE = guid('7255371f-3a3b-4b04-927b-1da6efa8d454')
OVMF_SECRET_AREA = guid('4c2eb361-7d9b-4cc3-8081-127c90d3d294')
# The AmdSevX64 build's addresses for the two areas.
AMDSEV_HASH_TABLE = (0x810c00, 0x400)
AMDSEV_SECRET_AREA = (0x810000, 0xc00)

HASHES_TABLE = guid('9438d606-4f22-4cc9-b479-a793d411fd21')
HASHES_CMDLINE = guid('97d02dd8-bd20-4c94-aa78-e7714d36ab2a')
HASHES_INITRD = guid('44baf731-3a2f-4bd7-9af1-41e29169781d')
HASHES_KERNEL = guid('4de79437-abd2-427f-b835-d5b172d2045b')
SECRET_TABLE = guid('1e74f542-71dd-4d66-963e-ef4287ff173b')


def footer_entries(image):
    """{guid bytes: (offset of data, data length)} of an OVMF footer table."""
    assert image[-48:-32] == OVMF_TABLE_FOOTER, 'no OVMF footer table'
    (length,) = struct.unpack('<H', image[-50:-48])
    start, cursor, found = len(image) - 32 - length, len(image) - 50, {}
    while cursor > start:
        (size,) = struct.unpack('<H', image[cursor - 18:cursor - 16])
        found[bytes(image[cursor - 16:cursor])] = (cursor - size, size - 18)
        cursor -= size
    return found


def patch_ovmf(source, target):
    """Give a generic OVMF build the hash-table and secret-area addresses that
    an AmdSev build has, so that measured direct boot can be shown with it."""
    image = bytearray(open(source, 'rb').read())
    entries = footer_entries(image)
    for key, area in ((OVMF_HASH_TABLE, AMDSEV_HASH_TABLE), (OVMF_SECRET_AREA, AMDSEV_SECRET_AREA)):
        offset, size = entries[key]
        assert size == 8
        image[offset:offset + 8] = struct.pack('<II', *area)
    with open(target, 'wb') as stream:
        stream.write(image)


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b''):
            digest.update(chunk)
    return digest.digest()


def loaded_pages(args):
    """The bytes the host passes to LAUNCH_UPDATE_DATA, in order."""
    yield open(args.firmware, 'rb').read()
    if args.kernel:
        cmdline = hashlib.sha256((args.cmdline or '').encode() + b'\0').digest()
        initrd = sha256_file(args.initrd) if args.initrd else hashlib.sha256(b'').digest()
        kernel = sha256_file(args.kernel)
        body = b''.join(g + struct.pack('<H', 50) + d for g, d in
                        ((HASHES_CMDLINE, cmdline), (HASHES_INITRD, initrd), (HASHES_KERNEL, kernel)))
        table = HASHES_TABLE + struct.pack('<H', 18 + len(body)) + body
        yield table + bytes(-len(table) % 16)


def launch_measure(args):
    tik = open(args.tik, 'rb').read()
    digest = hashlib.sha256()
    for data in loaded_pages(args):
        digest.update(data)
    mnonce = os.urandom(16)
    message = (bytes([4, args.api_major, args.api_minor, args.build_id])
               + struct.pack('<I', args.policy) + digest.digest() + mnonce)
    return base64.b64encode(hmac.new(tik, message, 'sha256').digest() + mnonce).decode()


def launch_secret(args):
    tik, tek = open(args.tik, 'rb').read(), open(args.tek, 'rb').read()
    header = base64.b64decode(open(args.header).read())
    payload = base64.b64decode(open(args.payload).read())
    measure = base64.b64decode(args.measurement)[:32]
    flags, iv, mac = header[:4], header[4:20], header[20:52]
    lengths = struct.pack('<II', len(payload), len(payload))
    expected = hmac.new(tik, b'\x01' + flags + iv + lengths + payload + measure, 'sha256').digest()
    if not hmac.compare_digest(mac, expected):
        raise SystemExit('LAUNCH_SECRET refused: BAD_MEASUREMENT (the header MAC does not verify)')
    decryptor = Cipher(algorithms.AES(tek), modes.CTR(iv)).decryptor()
    table = decryptor.update(payload) + decryptor.finalize()
    assert table[:16] == SECRET_TABLE, 'not a secret table'
    (length,) = struct.unpack('<I', table[16:20])
    cursor, found = 20, []
    while cursor < length:
        (size,) = struct.unpack('<I', table[cursor + 16:cursor + 20])
        found.append('%s (%d bytes)' % (uuid.UUID(bytes_le=bytes(table[cursor:cursor + 16])), size - 20))
        cursor += size
    return 'LAUNCH_SECRET accepted: ' + ', '.join(found)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    commands = parser.add_subparsers(dest='command', required=True)
    patch = commands.add_parser('patch-ovmf')
    patch.add_argument('source')
    patch.add_argument('target')
    measure = commands.add_parser('measure')
    for name in ('tik', 'firmware'):
        measure.add_argument('--' + name, required=True)
    for name in ('kernel', 'initrd', 'cmdline'):
        measure.add_argument('--' + name)
    for name in ('api-major', 'api-minor', 'build-id', 'policy'):
        measure.add_argument('--' + name, type=int, required=True)
    secret = commands.add_parser('secret')
    for name in ('tik', 'tek', 'measurement', 'header', 'payload'):
        secret.add_argument('--' + name, required=True)
    args = parser.parse_args()
    if args.command == 'patch-ovmf':
        patch_ovmf(args.source, args.target)
    elif args.command == 'measure':
        print(launch_measure(args))
    else:
        print(launch_secret(args))


if __name__ == '__main__':
    sys.exit(main())

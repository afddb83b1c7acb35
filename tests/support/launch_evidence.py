#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the EMULATED platform saw of a launch, for the demo and the molecule scenarios.

Independent of plugins/ (it checks their work): it reads the emulator's launch
records (tests/platform/emulator_records.py) and, from the guest's side, the
secret area in guest memory (QMP pmemsave through libvirt), and compares what
arrived with the key by SHA-256.  It prints digests and lengths, never secret
bytes.

  launch_evidence.py records STATE [--domain NAME]
      JSON list of the domain's launch records (all launches without --domain)
  launch_evidence.py read-secret --uri URI --domain NAME --dump-dir DIR
                                 --gpa N --length N --key FILE [--guid GUID]
      JSON: the secret table found at GPA, the entry for GUID (default: the
      LUKS key GUID), its SHA-256 and whether it equals the key file's
  launch_evidence.py table-sha256 --key FILE [--guid GUID]
      SHA-256 of the padded secret table carrying only that key, which is what
      the emulator records as an injection's secret_sha256 (it hashes the whole
      decrypted plaintext)
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import struct
import sys
import uuid

# The secret table's layout (SEV launch secret, OVMF's SecretTable):
# GUID 1e74f542-... || u32 table length || entries (GUID || u32 entry length || value).
SECRET_TABLE_GUID = uuid.UUID('1e74f542-71dd-4d66-963e-ef4287ff173b')
LUKS_KEY_GUID = uuid.UUID('736869e5-84f0-4973-92ec-06879ce3da0b')
HEADER = struct.Struct('<16sI')


class EvidenceError(Exception):
    """Something the evidence does not show."""


def load_records(state, domain=None):
    here = os.path.dirname(os.path.abspath(__file__))
    build = os.path.realpath(os.path.join(here, '..', '..', 'build'))
    if build not in sys.path:
        sys.path.insert(0, build)
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.confidential.sev.tests.platform.emulator_records import load_launches
    launches = load_launches(state)
    if domain is not None:
        launches = [launch for launch in launches if launch.get('domain_name') == domain]
    return launches


def parse_secret_table(data):
    """[(guid, value)] of the secret table at the start of data."""
    if len(data) < HEADER.size:
        raise EvidenceError('the secret area is shorter than a table header')
    guid, table_len = HEADER.unpack_from(data)
    if uuid.UUID(bytes_le=guid) != SECRET_TABLE_GUID:
        raise EvidenceError('no secret table at the start of the secret area (GUID %s)' % uuid.UUID(bytes_le=guid))
    if not HEADER.size <= table_len <= len(data):
        raise EvidenceError('secret table length %d does not fit the %d bytes read' % (table_len, len(data)))
    entries, offset = [], HEADER.size
    while offset < table_len:
        if offset + HEADER.size > table_len:
            raise EvidenceError('truncated entry header at offset %d' % offset)
        guid, entry_len = HEADER.unpack_from(data, offset)
        if entry_len < HEADER.size or offset + entry_len > table_len:
            raise EvidenceError('entry length %d at offset %d does not fit the table' % (entry_len, offset))
        entries.append((uuid.UUID(bytes_le=guid), bytes(data[offset + HEADER.size:offset + entry_len])))
        offset += entry_len
    return entries


def secret_table(guid, value):
    """The padded plaintext table with one entry, as LAUNCH_SECRET carries it.

    Padded with 16 - len % 16 zero bytes (a whole block when aligned), as
    libvirt and sevctl pad.
    """
    entry = guid.bytes_le + struct.pack('<I', HEADER.size + len(value)) + value
    table = SECRET_TABLE_GUID.bytes_le + struct.pack('<I', HEADER.size + len(entry)) + entry
    return table + b'\0' * (16 - len(table) % 16)


def read_guest_memory(uri, domain, dump_dir, gpa, length):
    """length bytes of guest-physical memory at gpa, through QMP pmemsave (before resume)."""
    # pylint: disable-next=import-outside-toplevel
    import libvirt
    # pylint: disable-next=import-outside-toplevel
    import libvirt_qemu
    target = os.path.join(os.path.realpath(dump_dir), 'secret-%s.bin' % secrets.token_hex(6))
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise EvidenceError('cannot connect to %s: %s' % (uri, exc)) from None
    try:
        cmd = {'execute': 'pmemsave', 'arguments': {'val': gpa, 'size': length, 'filename': target}}
        try:
            dom = conn.lookupByName(domain)
            reply = json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps(cmd), 0))
        except libvirt.libvirtError as exc:
            raise EvidenceError('pmemsave on %s: %s' % (domain, exc)) from None
        if 'return' not in reply:
            raise EvidenceError('pmemsave of %d bytes at 0x%x failed: %s' % (length, gpa, reply.get('error')))
        try:
            with open(target, 'rb') as stream:
                data = stream.read()
        finally:
            if os.path.exists(target):
                os.unlink(target)
    finally:
        conn.close()
    if len(data) != length:
        raise EvidenceError('pmemsave wrote %d bytes, not %d' % (len(data), length))
    return data


def sha256_file(path):
    with open(path, 'rb') as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def read_secret(args):
    data = read_guest_memory(args.uri, args.domain, args.dump_dir, args.gpa, args.length)
    entries = parse_secret_table(data)
    wanted = uuid.UUID(args.guid)
    found = [value for guid, value in entries if guid == wanted]
    if len(found) != 1:
        raise EvidenceError('the secret table has %d entries for GUID %s (entries: %s)'
                            % (len(found), wanted, ', '.join(str(guid) for guid, dummy in entries)))
    read_digest = hashlib.sha256(found[0]).hexdigest()
    key_digest = sha256_file(args.key)
    return {
        'gpa': args.gpa,
        'bytes_read': len(data),
        'table_guid': str(SECRET_TABLE_GUID),
        'entries': [str(guid) for guid, dummy in entries],
        'guid': str(wanted),
        'value_length': len(found[0]),
        'value_sha256': read_digest,
        'key_sha256': key_digest,
        'matches_key': hmac.compare_digest(read_digest, key_digest),
    }


def table_sha256(args):
    with open(args.key, 'rb') as stream:
        table = secret_table(uuid.UUID(args.guid), stream.read())
    return {'guid': args.guid, 'table_length': len(table), 'table_sha256': hashlib.sha256(table).hexdigest(),
            'key_sha256': sha256_file(args.key)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    commands = parser.add_subparsers(dest='command', required=True)
    records = commands.add_parser('records')
    records.add_argument('state')
    records.add_argument('--domain')
    secret = commands.add_parser('read-secret')
    secret.add_argument('--uri', required=True)
    secret.add_argument('--domain', required=True)
    secret.add_argument('--dump-dir', required=True)
    secret.add_argument('--gpa', required=True, type=lambda text: int(text, 0))
    secret.add_argument('--length', required=True, type=lambda text: int(text, 0))
    secret.add_argument('--key', required=True)
    secret.add_argument('--guid', default=str(LUKS_KEY_GUID))
    table = commands.add_parser('table-sha256')
    table.add_argument('--key', required=True)
    table.add_argument('--guid', default=str(LUKS_KEY_GUID))
    args = parser.parse_args(argv)
    try:
        if args.command == 'records':
            result = load_records(args.state, args.domain)
        elif args.command == 'table-sha256':
            result = table_sha256(args)
        else:
            result = read_secret(args)
    except (EvidenceError, OSError, ValueError) as exc:
        sys.stderr.write('launch_evidence: %s\n' % exc)
        return 1
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())

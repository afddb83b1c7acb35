# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LAUNCH_SECRET: the secret table OVMF reads, and the packet that carries it.

  table   = GUID 1e74f542-... || u32 table_len || entries, then 16 - len % 16
            zero bytes (a full block when aligned, as libvirt and sevctl pad)
  entry   = GUID || u32 (20 + len(value)) || value
  payload = AES-128-CTR(TEK, IV as a 128-bit big-endian counter) of the table
  header  = flags u32 (0) || IV (16) || MAC (32)
  MAC     = HMAC-SHA256(TIK, 0x01 || flags || IV || u32 guest_len || u32 trans_len
                        || payload || MEASURE)

The MAC binds the packet to the validated measurement: firmware accepts it
only for that launch.  Secret bytes never appear in messages.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as random_source
import struct
import uuid

from .errors import InsecureUsage, UnsupportedUsage
from .policy import shown

try:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
except ImportError:
    HAS_CRYPTOGRAPHY = False
else:
    HAS_CRYPTOGRAPHY = True

TABLE_GUID = uuid.UUID('1e74f542-71dd-4d66-963e-ef4287ff173b')
GUID_ALIASES = {'luks-key': uuid.UUID('736869e5-84f0-4973-92ec-06879ce3da0b')}
HEADER_SIZE = 4 + 16 + 32
IV_SIZE = 16
CONTEXT_SECRET = 0x01

_GUID_TEXT = re.compile(r'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')


def resolve_guid(alias_or_guid, name='secret'):
    """An alias (luks-key) or a canonical GUID string -> uuid.UUID."""
    text = str(alias_or_guid)
    if text in GUID_ALIASES:
        return GUID_ALIASES[text]
    if _GUID_TEXT.fullmatch(text):
        return uuid.UUID(text)
    raise UnsupportedUsage('%s: %s is neither a known alias (%s) nor a GUID like '
                           '736869e5-84f0-4973-92ec-06879ce3da0b'
                           % (name, shown(text), ', '.join(sorted(GUID_ALIASES))))


class SecretTable:
    """Secrets in the order given; a GUID may appear once."""

    def __init__(self):
        self._entries = []

    def add(self, alias_or_guid, value, name='secret'):
        guid = resolve_guid(alias_or_guid, name)
        if any(guid == known for known, dummy in self._entries):
            raise UnsupportedUsage('%s: GUID %s is given twice' % (name, guid))
        if not value:
            raise UnsupportedUsage('%s: the secret for GUID %s is empty' % (name, guid))
        self._entries.append((guid, bytes(value)))
        return guid

    def __len__(self):
        return len(self._entries)

    @property
    def guids(self):
        return [str(guid) for guid, dummy in self._entries]

    def build(self):
        """The padded plaintext table."""
        body = b''.join(guid.bytes_le + struct.pack('<I', 20 + len(value)) + value
                        for guid, value in self._entries)
        table = TABLE_GUID.bytes_le + struct.pack('<I', 20 + len(body)) + body
        return table + b'\0' * (16 - len(table) % 16)


def secret_packet_mac(tik, flags, iv, ciphertext, measure):
    message = (struct.pack('<BI', CONTEXT_SECRET, flags) + iv
               + struct.pack('<II', len(ciphertext), len(ciphertext)) + ciphertext + measure)
    return hmac.new(tik, message, hashlib.sha256).digest()


def build_secret_packet(keys, measure, table, iv=None, allow_zero_keys=False):
    """(header, payload) bytes for LAUNCH_SECRET.

    ``measure`` is the 32-byte MEASURE of the *validated* measurement.  A fresh
    random IV is drawn unless one is given (tests only).
    """
    if not HAS_CRYPTOGRAPHY:
        raise UnsupportedUsage('building a secret packet needs the Python cryptography library')
    if (keys.tek_is_zero or keys.tik_is_zero) and not allow_zero_keys:
        raise InsecureUsage('the TEK or TIK is all zeros: a secret encrypted with it is readable by the '
                            'host; refused unless allow_zero_keys is set')
    if len(measure) != 32:
        raise ValueError('MEASURE must be 32 bytes')
    iv = random_source.token_bytes(IV_SIZE) if iv is None else bytes(iv)
    if len(iv) != IV_SIZE:
        raise ValueError('the IV must be 16 bytes')
    encryptor = Cipher(algorithms.AES(keys.tek), modes.CTR(iv)).encryptor()
    payload = encryptor.update(table) + encryptor.finalize()
    flags = 0
    header = struct.pack('<I', flags) + iv + secret_packet_mac(keys.tik, flags, iv, payload, measure)
    return header, payload

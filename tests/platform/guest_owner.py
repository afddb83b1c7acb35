# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal guest owner for the EMULATED platform's own tests (no hardware, no plugins/).

Built from docs/sev-session.md and docs/sev-measurement.md with the cryptography library's
ECDH, AES-CTR and stdlib HMAC: the emulated firmware does its own point arithmetic and
keystream, so the two sides share no code for the session, the measurement or the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import uuid

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import sev_firmware as fw

SECRET_TABLE_GUID = uuid.UUID('1e74f542-71dd-4d66-963e-ef4287ff173b')
LUKS_KEY_GUID = uuid.UUID('736869e5-84f0-4973-92ec-06879ce3da0b')


def pdh_public_key(pdh_cert):
    """The PDH's P-384 public key from an SEV certificate (coordinates little-endian, 72-byte fields)."""
    x = int.from_bytes(pdh_cert[0x14:0x14 + 72], 'little')
    y = int.from_bytes(pdh_cert[0x5c:0x5c + 72], 'little')
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP384R1()).public_key()


def _ctr(key, iv, data):
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _hmac(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def kdf(key, label, context=b''):
    """NIST SP 800-108 counter mode with HMAC-SHA256, 128 bits (written again here, not shared)."""
    return _hmac(key, struct.pack('<I', 1) + label + b'\x00' + context + struct.pack('<I', 128))[:16]


def make_session(pdh_cert, policy, tek=None, tik=None):
    """(GODH certificate, session blob, TEK, TIK) for a platform's PDH and a policy."""
    owner = ec.generate_private_key(ec.SECP384R1())
    godh = bytes(fw.ecc_cert(fw.USAGE_PDH, fw.ALGO_ECDH_SHA256, owner.public_key().public_numbers()))
    shared = owner.exchange(ec.ECDH(), pdh_public_key(pdh_cert))
    tek, tik = tek or os.urandom(16), tik or os.urandom(16)
    nonce, iv = os.urandom(16), os.urandom(16)
    master = kdf(shared, b'sev-master-secret', nonce)
    kek, kik = kdf(master, b'sev-kek'), kdf(master, b'sev-kik')
    wrap_tk = _ctr(kek, iv, tek + tik)
    session = nonce + wrap_tk + iv + _hmac(kik, wrap_tk) + _hmac(tik, struct.pack('<I', policy))
    return godh, session, tek, tik


def expected_measure(tik, api, build_id, policy, digest, mnonce):
    """HMAC(TIK, 04 || api major || api minor || build || policy || digest || mnonce)."""
    message = bytes([4, api[0], api[1], build_id]) + struct.pack('<I', policy) + digest + mnonce
    return _hmac(tik, message)


def secret_table(entries):
    """The plaintext secret table (GUID, length, entries) padded as libvirt pads it."""
    body = b''.join(guid.bytes_le + struct.pack('<I', 20 + len(value)) + value for guid, value in entries)
    table = SECRET_TABLE_GUID.bytes_le + struct.pack('<I', 20 + len(body)) + body
    return table + bytes(16 - len(table) % 16)


def secret_packet(tek, tik, measure, table):
    """(packet-header base64, secret base64) for sev-inject-launch-secret over ``measure`` (32 bytes)."""
    iv = os.urandom(16)
    payload = _ctr(tek, iv, table)
    flags = struct.pack('<I', 0)
    mac = _hmac(tik, b'\x01' + flags + iv + struct.pack('<II', len(payload), len(payload)) + payload + measure)
    return base64.b64encode(flags + iv + mac).decode(), base64.b64encode(payload).decode()

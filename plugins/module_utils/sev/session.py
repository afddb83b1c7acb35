# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LAUNCH_START's session: fresh TEK/TIK wrapped for one platform's PDH key.

  Z        = ECDH(P-384) x-coordinate, 48 bytes big-endian (GODH private x PDH public)
  master   = KDF(Z, "sev-master-secret", nonce);  KEK = KDF(master, "sev-kek");  KIK = KDF(master, "sev-kik")
  KDF      = SP 800-108 counter mode, HMAC-SHA256: u32le(1) || label || 0x00 || context || u32le(128)
  session  = nonce (16) || wrap_tk (32) || wrap_iv (16) || wrap_mac (32) || policy_mac (32)
  wrap_tk  = AES-128-CTR(KEK, wrap_iv, TEK || TIK);  wrap_mac = HMAC-SHA256(KIK, wrap_tk)
  policy_mac = HMAC-SHA256(TIK, policy as u32 LE): exactly the value in the domain XML
  GODH     = SEV certificate: version 1, usage PDH (0x1003), algorithm ECDH-SHA256, P-384
             public key LE in 72-byte fields, both signature slots empty.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as random_source
import struct

from .certs import ALGO, CURVE_P384, ECC_COORD_SIZE, SEV_BODY_SIZE, SEV_CERT_SIZE, USAGE, require_cryptography
from .errors import UnsupportedUsage
from .keys import KEY_SIZE, SessionKeys
from .policy import GuestPolicy

try:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
except ImportError:
    pass

SESSION_SIZE = 128


def kdf(key, label, context=b'', length=16):
    """NIST SP 800-108 counter-mode KDF with HMAC-SHA256 (one block suffices)."""
    if length > 32:
        raise ValueError('one HMAC-SHA256 block gives at most 32 bytes')
    message = struct.pack('<I', 1) + label + b'\0' + context + struct.pack('<I', length * 8)
    return hmac.new(key, message, hashlib.sha256).digest()[:length]


def wrap_keys(master_secret, keys, policy, wrap_iv, nonce):
    """The 128-byte session blob from a master secret (split out for known-answer tests)."""
    kek = kdf(master_secret, b'sev-kek')
    kik = kdf(master_secret, b'sev-kik')
    encryptor = Cipher(algorithms.AES(kek), modes.CTR(wrap_iv)).encryptor()
    wrap_tk = encryptor.update(keys.tek + keys.tik) + encryptor.finalize()
    wrap_mac = hmac.new(kik, wrap_tk, hashlib.sha256).digest()
    policy_mac = hmac.new(keys.tik, struct.pack('<I', policy), hashlib.sha256).digest()
    return nonce + wrap_tk + wrap_iv + wrap_mac + policy_mac


def godh_cert(public_key):
    """The guest owner's DH certificate for an EC P-384 public key."""
    numbers = public_key.public_numbers()
    cert = bytearray(SEV_CERT_SIZE)
    struct.pack_into('<IBBHIII', cert, 0, 1, 0, 0, 0, USAGE['PDH'], ALGO['ECDH-SHA256'], CURVE_P384)
    cert[0x14:0x14 + ECC_COORD_SIZE] = numbers.x.to_bytes(ECC_COORD_SIZE, 'little')
    cert[0x5c:0x5c + ECC_COORD_SIZE] = numbers.y.to_bytes(ECC_COORD_SIZE, 'little')
    for offset in (SEV_BODY_SIZE, 0x61c):
        struct.pack_into('<II', cert, offset, USAGE['NONE'], ALGO['NONE'])
    return bytes(cert)


class LaunchSession:
    __slots__ = ('godh', 'session', 'keys', 'policy')

    def __init__(self, godh, session, keys, policy):
        self.godh = godh
        self.session = session
        self.keys = keys
        self.policy = policy

    def __repr__(self):
        return '<LaunchSession policy=0x%08x (keys hidden)>' % self.policy


def create_session(pdh, policy):
    """A fresh session for the platform whose (verified) PDH certificate is ``pdh``.

    Fresh GODH key pair, nonce, IV, TEK and TIK every time.
    """
    require_cryptography()
    GuestPolicy(policy)   # refuses reserved bits: firmware would
    if pdh.usage != USAGE['PDH'] or pdh.algo != ALGO['ECDH-SHA256']:
        raise UnsupportedUsage('PDH: not an ECDH-SHA256 PDH key (usage 0x%x, algorithm 0x%x)' % (pdh.usage, pdh.algo))
    platform_key = pdh.public_key()
    if not isinstance(platform_key.curve, ec.SECP384R1):
        raise UnsupportedUsage('PDH: the key is not on P-384')
    owner_key = ec.generate_private_key(ec.SECP384R1())
    shared = owner_key.exchange(ec.ECDH(), platform_key)
    nonce = random_source.token_bytes(16)
    keys = SessionKeys(tek=random_source.token_bytes(KEY_SIZE), tik=random_source.token_bytes(KEY_SIZE))
    master = kdf(shared, b'sev-master-secret', nonce)
    blob = wrap_keys(master, keys, policy, random_source.token_bytes(16), nonce)
    return LaunchSession(godh_cert(owner_key.public_key()), blob, keys, policy)

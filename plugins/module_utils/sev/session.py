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

The GODH private key is not random but derived from the (random) TEK and TIK
and the PDH's public key: HKDF-SHA512(TEK || TIK, info = label || SHA-256 of
the PDH key) reduced to a P-384 scalar.  It is never stored; with the key files
and the PDH it can be derived again, so that an existing GODH and session can
be checked to have been made for THIS PDH with THESE keys (session_matches)
before they are reused.  It adds nothing for whoever holds TEK and TIK: they
already are what the session protects.
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
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError:
    pass

SESSION_SIZE = 128
# The order of the P-384 group (FIPS 186-4, D.1.2.4): GODH private keys are in 1..P384_ORDER-1.
P384_ORDER = int('ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973', 16)
GODH_KEY_LABEL = b'confidential.sev GODH private key\0'


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


def _platform_key(pdh):
    if pdh.usage != USAGE['PDH'] or pdh.algo != ALGO['ECDH-SHA256']:
        raise UnsupportedUsage('PDH: not an ECDH-SHA256 PDH key (usage 0x%x, algorithm 0x%x)' % (pdh.usage, pdh.algo))
    platform_key = pdh.public_key()
    if not isinstance(platform_key.curve, ec.SECP384R1):
        raise UnsupportedUsage('PDH: the key is not on P-384')
    return platform_key


def owner_private_key(keys, platform_key):
    """The GODH private key for ``keys`` and the PDH public key (see the module docstring)."""
    pdh_digest = hashlib.sha256(platform_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)).digest()
    okm = HKDF(algorithm=hashes.SHA512(), length=64, salt=None,
               info=GODH_KEY_LABEL + pdh_digest).derive(keys.tek + keys.tik)
    # 512 bits reduced modulo a 384-bit order: the bias is below 2**-128.
    scalar = int.from_bytes(okm, 'big') % (P384_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP384R1())


def _session_blob(owner_key, platform_key, keys, policy, wrap_iv, nonce):
    shared = owner_key.exchange(ec.ECDH(), platform_key)
    master = kdf(shared, b'sev-master-secret', nonce)
    return wrap_keys(master, keys, policy, wrap_iv, nonce)


def create_session(pdh, policy):
    """A fresh session for the platform whose (verified) PDH certificate is ``pdh``.

    Fresh TEK, TIK, nonce and IV every time, and so a fresh GODH key pair.
    """
    require_cryptography()
    GuestPolicy(policy)   # refuses reserved bits: firmware would
    platform_key = _platform_key(pdh)
    keys = SessionKeys(tek=random_source.token_bytes(KEY_SIZE), tik=random_source.token_bytes(KEY_SIZE))
    owner_key = owner_private_key(keys, platform_key)
    blob = _session_blob(owner_key, platform_key, keys, policy, random_source.token_bytes(16),
                         random_source.token_bytes(16))
    return LaunchSession(godh_cert(owner_key.public_key()), blob, keys, policy)


def session_matches(pdh, keys, policy, godh, session):
    """(godh_ok, session_ok): whether ``godh`` is the GODH create_session makes for
    ``keys`` and this PDH, and ``session`` wraps exactly ``keys`` for this PDH and
    ``policy`` (its nonce and IV taken from it).  Compared in constant time."""
    require_cryptography()
    platform_key = _platform_key(pdh)
    owner_key = owner_private_key(keys, platform_key)
    godh_ok = hmac.compare_digest(godh_cert(owner_key.public_key()), bytes(godh))
    if not godh_ok or len(session) != SESSION_SIZE:
        return godh_ok, False
    nonce, wrap_iv = bytes(session[:16]), bytes(session[48:64])
    expected = _session_blob(owner_key, platform_key, keys, policy, wrap_iv, nonce)
    return godh_ok, hmac.compare_digest(expected, bytes(session))

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SEV certificates (PDH, PEK, OCA, CEK, GODH) and AMD certificates (ARK, ASK).

SEV certificate, 2084 bytes, little-endian throughout:
  0x000 version u32 (1) | 0x004 api_major u8 | 0x005 api_minor u8 | 0x006 reserved u16
  0x008 pub_key_usage u32 | 0x00c pub_key_algo u32 | 0x010 key union (1028 bytes)
  0x414 sig1 usage u32, algo u32, 512 bytes | 0x61c sig2 usage u32, algo u32, 512 bytes
  The signed body is the first 0x414 bytes.  ECC keys: curve u32, qx[72], qy[72] (LE);
  ECDSA signatures: r[72], s[72] (LE).  RSA signatures: LE, reversed for PKCS#1.

AMD certificate (ARK, ASK): 64-byte header (version, key_id[16], certifying_id[16],
  key_usage, reserved[16], pub_exp_size bits, modulus_size bits), exponent (LE),
  modulus (LE), signature (LE); RSA-PSS, salt = hash length, SHA-256 for 2048-bit
  keys and SHA-384 for 4096-bit keys, over everything before the signature.
"""

from __future__ import annotations

import struct

from .errors import InsecureUsage, UnsupportedUsage

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
except ImportError:
    HAS_CRYPTOGRAPHY = False
else:
    HAS_CRYPTOGRAPHY = True

SEV_CERT_SIZE = 2084
SEV_BODY_SIZE = 0x414
SIG_OFFSETS = (0x414, 0x61c)
SIG_SIZE = 512
ECC_COORD_SIZE = 72

USAGE = {'ARK': 0x0000, 'ASK': 0x0013, 'NONE': 0x1000, 'OCA': 0x1001, 'PEK': 0x1002, 'PDH': 0x1003,
         'CEK': 0x1004}
ALGO = {'NONE': 0x000, 'RSA-SHA256': 0x001, 'ECDSA-SHA256': 0x002, 'ECDH-SHA256': 0x003,
        'RSA-SHA384': 0x101, 'ECDSA-SHA384': 0x102, 'ECDH-SHA384': 0x103}
USAGE_NAMES = dict((value, key) for key, value in USAGE.items())
ALGO_NAMES = dict((value, key) for key, value in ALGO.items())
CURVE_P384 = 2
CURVES = {1: 'P-256', 2: 'P-384'}


class CertificateError(InsecureUsage):
    """A certificate does not verify: the platform is not proven genuine."""


def require_cryptography():
    if not HAS_CRYPTOGRAPHY:
        raise UnsupportedUsage('certificate checks need the Python cryptography library')


def _hash(algo):
    return hashes.SHA384() if algo & 0x100 else hashes.SHA256()


class SevCert:
    """A parsed SEV-format certificate."""

    def __init__(self, raw, name):
        self.raw = bytes(raw)
        self.name = name
        (self.version, self.api_major, self.api_minor, dummy, self.usage,
         self.algo) = struct.unpack_from('<IBBHII', raw, 0)
        self.body = self.raw[:SEV_BODY_SIZE]
        self.signatures = [struct.unpack_from('<II', raw, offset) + (self.raw[offset + 8:offset + 8 + SIG_SIZE],)
                           for offset in SIG_OFFSETS]

    @property
    def usage_name(self):
        return USAGE_NAMES.get(self.usage, '0x%x' % self.usage)

    def public_key(self):
        """The key as a cryptography public key object (ECC or RSA)."""
        require_cryptography()
        if self.algo in (ALGO['ECDSA-SHA256'], ALGO['ECDSA-SHA384'], ALGO['ECDH-SHA256'], ALGO['ECDH-SHA384']):
            curve_id = struct.unpack_from('<I', self.raw, 0x10)[0]
            curve = {1: ec.SECP256R1, 2: ec.SECP384R1}.get(curve_id)
            if curve is None:
                raise UnsupportedUsage('%s: unknown ECC curve %d' % (self.name, curve_id))
            qx = int.from_bytes(self.raw[0x14:0x14 + ECC_COORD_SIZE], 'little')
            qy = int.from_bytes(self.raw[0x5c:0x5c + ECC_COORD_SIZE], 'little')
            try:
                return ec.EllipticCurvePublicNumbers(qx, qy, curve()).public_key()
            except ValueError:
                raise CertificateError('%s: its public key is not a point on %s' % (self.name, CURVES[curve_id]))
        if self.algo in (ALGO['RSA-SHA256'], ALGO['RSA-SHA384']):
            bits = struct.unpack_from('<I', self.raw, 0x10)[0]
            exponent = int.from_bytes(self.raw[0x14:0x214], 'little')
            modulus = int.from_bytes(self.raw[0x214:0x414], 'little')
            if bits not in (2048, 4096) or modulus.bit_length() != bits:
                raise UnsupportedUsage('%s: RSA modulus of %d bits is malformed' % (self.name, bits))
            try:
                return rsa.RSAPublicNumbers(exponent, modulus).public_key()
            except ValueError as exc:
                raise UnsupportedUsage('%s: its RSA public key is malformed: %s' % (self.name, exc))
        raise UnsupportedUsage('%s: unknown key algorithm 0x%x' % (self.name, self.algo))

    def describe(self):
        return {'usage': self.usage_name, 'algo': ALGO_NAMES.get(self.algo, '0x%x' % self.algo),
                'api_major': self.api_major, 'api_minor': self.api_minor}


def parse_sev_cert(data, name):
    """A 2084-byte SEV certificate; ``name`` (e.g. 'PDH') labels errors."""
    if len(data) != SEV_CERT_SIZE:
        raise UnsupportedUsage('%s: an SEV certificate is %d bytes, got %d' % (name, SEV_CERT_SIZE, len(data)))
    cert = SevCert(data, name)
    if cert.version != 1:
        raise UnsupportedUsage('%s: certificate version %d, expected 1' % (name, cert.version))
    return cert


def expect_usage(cert, usage, algos=None):
    if cert.usage != USAGE[usage]:
        raise CertificateError('%s: key usage is %s, expected %s' % (cert.name, cert.usage_name, usage))
    if algos is not None and cert.algo not in [ALGO[algo] for algo in algos]:
        raise CertificateError('%s: key algorithm 0x%x, expected %s' % (cert.name, cert.algo, ' or '.join(algos)))


def _verify(key, signature, data, algo):
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            r = int.from_bytes(signature[:ECC_COORD_SIZE], 'little')
            s = int.from_bytes(signature[ECC_COORD_SIZE:2 * ECC_COORD_SIZE], 'little')
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(_hash(algo)))
        else:
            size = key.key_size // 8
            digest = _hash(algo)
            key.verify(signature[:size][::-1], data,
                       padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size), digest)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_signed_by(cert, signer_usage, signer_algo, signer_key, signer_name):
    """Check that one of ``cert``'s two slots holds a valid signature by the
    signer (matched on the slot's usage and algorithm, as firmware does)."""
    require_cryptography()
    link = '%s signed by %s' % (cert.name, signer_name)
    slots = [signature for usage, algo, signature in cert.signatures
             if usage == signer_usage and algo == signer_algo]
    if not slots:
        raise CertificateError('%s: no signature slot for %s (usage 0x%x, algorithm 0x%x)'
                               % (link, signer_name, signer_usage, signer_algo))
    # Firmware and the other verifiers try every slot labelled for the signer.
    if not any(_verify(signer_key, signature, cert.body, signer_algo) for signature in slots):
        raise CertificateError('%s: the signature does not verify' % link)


class AmdCert:
    """A parsed AMD (ARK/ASK) certificate."""

    HEADER = 64

    def __init__(self, raw, name):
        self.name = name
        (self.version,) = struct.unpack_from('<I', raw, 0)
        self.key_id = bytes(raw[4:20])
        self.certifying_id = bytes(raw[20:36])
        (self.key_usage,) = struct.unpack_from('<I', raw, 36)
        self.exp_bits, self.mod_bits = struct.unpack_from('<II', raw, 56)
        exp_end = self.HEADER + self.exp_bits // 8
        mod_end = exp_end + self.mod_bits // 8
        self.exponent = int.from_bytes(raw[self.HEADER:exp_end], 'little')
        self.modulus = int.from_bytes(raw[exp_end:mod_end], 'little')
        self.signed = bytes(raw[:mod_end])
        self.signature = bytes(raw[mod_end:mod_end + self.mod_bits // 8])
        self.raw = bytes(raw[:mod_end + self.mod_bits // 8])

    @property
    def algo(self):
        """The SEV algorithm code this key signs with (for CEK slots)."""
        return ALGO['RSA-SHA256'] if self.mod_bits == 2048 else ALGO['RSA-SHA384']

    def public_key(self):
        require_cryptography()
        try:
            return rsa.RSAPublicNumbers(self.exponent, self.modulus).public_key()
        except ValueError as exc:
            raise UnsupportedUsage('%s: its RSA public key is malformed: %s' % (self.name, exc))

    def same_key(self, other):
        return (self.key_id, self.exponent, self.modulus) == (other.key_id, other.exponent, other.modulus)


def amd_cert_size(data, name, offset=0):
    if len(data) - offset < AmdCert.HEADER:
        raise UnsupportedUsage('%s: shorter than an AMD certificate header' % name)
    exp_bits, mod_bits = struct.unpack_from('<II', data, offset + 56)
    if exp_bits not in (2048, 4096) or mod_bits not in (2048, 4096):
        raise UnsupportedUsage('%s: key sizes %d/%d bits, expected 2048 or 4096' % (name, exp_bits, mod_bits))
    return AmdCert.HEADER + exp_bits // 8 + 2 * (mod_bits // 8)


def parse_amd_cert(data, name, offset=0):
    """One AMD certificate starting at ``offset``; (cert, next offset)."""
    size = amd_cert_size(data, name, offset)
    if len(data) - offset < size:
        raise UnsupportedUsage('%s: %d bytes, an AMD certificate of this key size needs %d'
                               % (name, len(data) - offset, size))
    cert = AmdCert(bytes(data[offset:offset + size]), name)
    if cert.version != 1:
        raise UnsupportedUsage('%s: certificate version %d, expected 1' % (name, cert.version))
    return cert, offset + size


def verify_amd_signed_by(cert, signer):
    """RSA-PSS over the signed part, with the signer's key."""
    require_cryptography()
    digest = hashes.SHA256() if signer.mod_bits == 2048 else hashes.SHA384()
    try:
        signer.public_key().verify(cert.signature[::-1], cert.signed,
                                   padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size), digest)
    except (InvalidSignature, ValueError):
        raise CertificateError('%s signed by %s: the signature does not verify' % (cert.name, signer.name))

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An EMULATED AMD secure processor: SEV / SEV-ES launch commands and the platform's certificates.

THIS IS NOT A PLATFORM and proves nothing about any hardware.  It does what the
firmware does with the bytes, so that the guest owner's side (plugins/) can be
checked against an independent implementation: it imports nothing from
plugins/, does its own P-384 ECDH (p384.py), KDF, unwrap and MACs, written from
docs/sev-session.md (sections 1, 4, 5, 7 and 8) and the SEV API specification.

What it has:
  * its own keys: CEK, OCA, PEK, PDH (P-384) and a 64-byte chip id (GET_ID);
  * a certificate chain PDH <- PEK <- (OCA self-signed, CEK <- ASK <- ARK) where
    ARK and ASK are TEST keys (``TestRoots``), never AMD's: a guest owner that
    pins AMD's roots must refuse this chain;
  * PDH_CERT_EXPORT (PDH, and PEK || OCA || an unsigned placeholder CEK) and the
    ASK-signed CEK that AMD's key server would serve for the chip id;
  * LAUNCH_START (GODH and session checks, ECDH, KDF, wrap_mac, unwrap,
    policy_mac, policy checks), LAUNCH_UPDATE_DATA / _VMSA, LAUNCH_MEASURE,
    LAUNCH_SECRET and LAUNCH_FINISH, with the firmware's status codes.

Numbers in certificates are little-endian, as the firmware keeps them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import p384

# ---- status codes (SEV API; Linux include/uapi/linux/psp-sev.h) ---------------------------

INVALID_PLATFORM_STATE = 0x01
INVALID_GUEST_STATE = 0x02
INVALID_LENGTH = 0x04
INVALID_CERTIFICATE = 0x06
POLICY_FAILURE = 0x07
BAD_SIGNATURE = 0x0a
BAD_MEASUREMENT = 0x0b
UNSUPPORTED = 0x15
STATUS_NAMES = {
    INVALID_PLATFORM_STATE: 'INVALID_PLATFORM_STATE', INVALID_GUEST_STATE: 'INVALID_GUEST_STATE',
    INVALID_LENGTH: 'INVALID_LENGTH', INVALID_CERTIFICATE: 'INVALID_CERTIFICATE',
    POLICY_FAILURE: 'POLICY_FAILURE', BAD_SIGNATURE: 'BAD_SIGNATURE', BAD_MEASUREMENT: 'BAD_MEASUREMENT',
    UNSUPPORTED: 'UNSUPPORTED',
}


class FirmwareError(Exception):
    """A command failed with a firmware status code (QEMU shows ``fw_error=<n> '<name>'``)."""

    def __init__(self, code, detail):
        self.code = code
        self.status = STATUS_NAMES.get(code, 'UNKNOWN')
        self.detail = detail
        super().__init__("fw_error=%d '%s': %s" % (code, self.status, detail))


# ---- certificate layout --------------------------------------------------------------------

CERT_SIZE = 2084
BODY_SIZE = 0x414
SLOT_OFFSETS = (0x414, 0x61c)
SLOT_AREA = 512
COORD_FIELD = 72
GODH_SIZE = CERT_SIZE
SESSION_SIZE = 128

USAGE_ARK, USAGE_ASK, USAGE_NONE = 0x0000, 0x0013, 0x1000
USAGE_OCA, USAGE_PEK, USAGE_PDH, USAGE_CEK = 0x1001, 0x1002, 0x1003, 0x1004
ALGO_NONE, ALGO_RSA_SHA256, ALGO_ECDSA_SHA256, ALGO_ECDH_SHA256 = 0x000, 0x001, 0x002, 0x003
ALGO_RSA_SHA384, ALGO_ECDSA_SHA384, ALGO_ECDH_SHA384 = 0x101, 0x102, 0x103
CURVE_P384 = 2

POLICY_ES = 1 << 2
POLICY_RESERVED = 0x0000ffc0


def ecc_cert(usage, algo, public_numbers, api=(0, 0)):
    """An SEV certificate for an EC key, both signature slots empty."""
    cert = bytearray(CERT_SIZE)
    struct.pack_into('<IBBHIII', cert, 0, 1, api[0], api[1], 0, usage, algo, CURVE_P384)
    cert[0x14:0x14 + COORD_FIELD] = public_numbers.x.to_bytes(COORD_FIELD, 'little')
    cert[0x5c:0x5c + COORD_FIELD] = public_numbers.y.to_bytes(COORD_FIELD, 'little')
    for offset in SLOT_OFFSETS:
        struct.pack_into('<II', cert, offset, USAGE_NONE, ALGO_NONE)
    return cert


def sign_ecdsa(cert, slot, usage, private_key):
    """ECDSA P-384 with SHA-256 (algorithm 0x002) over the body, r and s little-endian."""
    r, s = decode_dss_signature(private_key.sign(bytes(cert[:BODY_SIZE]), ec.ECDSA(hashes.SHA256())))
    offset = SLOT_OFFSETS[slot]
    area = r.to_bytes(COORD_FIELD, 'little') + s.to_bytes(COORD_FIELD, 'little')
    struct.pack_into('<II', cert, offset, usage, ALGO_ECDSA_SHA256)
    cert[offset + 8:offset + 8 + SLOT_AREA] = area + bytes(SLOT_AREA - len(area))
    return cert


def _pss(bits):
    digest = hashes.SHA256() if bits == 2048 else hashes.SHA384()
    return digest, padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)


def sign_rsa(cert, slot, usage, private_key):
    """RSA-PSS by an AMD key (the ASK signing the CEK); signature little-endian."""
    bits = private_key.key_size
    digest, pss = _pss(bits)
    signature = private_key.sign(bytes(cert[:BODY_SIZE]), pss, digest)[::-1]
    offset = SLOT_OFFSETS[slot]
    struct.pack_into('<II', cert, offset, usage, ALGO_RSA_SHA256 if bits == 2048 else ALGO_RSA_SHA384)
    cert[offset + 8:offset + 8 + SLOT_AREA] = signature + bytes(SLOT_AREA - len(signature))
    return cert


def amd_cert(key_id, certifying_id, usage, public_key, signer):
    """An AMD-format certificate (ARK, ASK): header, exponent, modulus, RSA-PSS signature, all LE."""
    bits = public_key.key_size
    numbers = public_key.public_numbers()
    signed = (struct.pack('<I', 1) + key_id + certifying_id + struct.pack('<I', usage) + bytes(16)
              + struct.pack('<II', bits, bits)
              + numbers.e.to_bytes(bits // 8, 'little') + numbers.n.to_bytes(bits // 8, 'little'))
    digest, pss = _pss(signer.key_size)
    return signed + signer.sign(signed, pss, digest)[::-1]


class TestRoots:
    """A TEST root (ARK) and signing key (ASK) in AMD's format.  Not AMD's keys:
    they stand in for them where a test injects its own trust anchors."""

    __test__ = False  # not a pytest class

    def __init__(self, bits=2048):
        self.bits = bits
        self.ark_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.ask_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.ark_id, self.ask_id = secrets.token_bytes(16), secrets.token_bytes(16)

    @property
    def ark_cert(self):
        return amd_cert(self.ark_id, self.ark_id, USAGE_ARK, self.ark_key.public_key(), self.ark_key)

    @property
    def ask_cert(self):
        return amd_cert(self.ask_id, self.ark_id, USAGE_ASK, self.ask_key.public_key(), self.ark_key)

    def sign_cek(self, cek):
        """The CEK as AMD's key server serves it: sig1 by the ASK."""
        return bytes(sign_rsa(bytearray(cek), 0, USAGE_ASK, self.ask_key))


# ---- session cryptography (doc section 4) ------------------------------------------------

def kdf(key, label, context=b''):
    """SP 800-108 counter mode, HMAC-SHA256, one block, 128 bits out."""
    message = struct.pack('<I', 1) + label + b'\x00' + context + struct.pack('<I', 128)
    return hmac.new(key, message, hashlib.sha256).digest()[:16]


def aes_ctr(key, counter_block, data):
    """AES-128-CTR with a 128-bit big-endian counter starting at ``counter_block``
    (the keystream built from single AES blocks, to show the counter explicitly)."""
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    start = int.from_bytes(counter_block, 'big')
    stream = b''.join(encryptor.update(((start + index) % (1 << 128)).to_bytes(16, 'big'))
                      for index in range((len(data) + 15) // 16))
    return bytes(a ^ b for a, b in zip(data, stream))


def _mac(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def unwrap_session(shared_secret, session, policy):
    """Section 8 steps 5-9 (MACs): (TEK, TIK) from the 128-byte session, given the ECDH secret Z."""
    nonce, wrap_tk, wrap_iv = session[0:16], session[16:48], session[48:64]
    wrap_mac, policy_mac = session[64:96], session[96:128]
    master = kdf(shared_secret, b'sev-master-secret', nonce)
    kek, kik = kdf(master, b'sev-kek'), kdf(master, b'sev-kik')
    if not hmac.compare_digest(_mac(kik, wrap_tk), wrap_mac):
        raise FirmwareError(BAD_MEASUREMENT, 'wrap_mac does not verify (a session made for another PDH?)')
    keys = aes_ctr(kek, wrap_iv, wrap_tk)
    tek, tik = keys[:16], keys[16:]
    if not hmac.compare_digest(_mac(tik, struct.pack('<I', policy)), policy_mac):
        raise FirmwareError(BAD_MEASUREMENT, 'policy_mac does not verify for policy 0x%08x' % policy)
    return tek, tik


# ---- the platform --------------------------------------------------------------------------

LUPDATE, LSECRET, RUNNING = 'LUPDATE', 'LSECRET', 'RUNNING'


class Guest:
    """A guest context: its policy, TEK/TIK, launch digest and state."""

    def __init__(self, handle, policy, tek, tik):
        self.handle = handle
        self.policy = policy
        self.tek = tek
        self.tik = tik
        self.digest = hashlib.sha256()
        self.state = LUPDATE
        self.measure = None

    def __repr__(self):
        return '<Guest %d %s policy=0x%08x (keys hidden)>' % (self.handle, self.state, self.policy)


class EmulatedPlatform:
    """One emulated SEV platform (one chip), initialised and self-owned.

    ``roots`` are the TEST ARK/ASK that sign its CEK (a fresh 2048-bit pair by
    default; 4096-bit roots sign with RSA-SHA384 as Rome and later do).
    ``api``/``build_id`` are what PLATFORM_STATUS reports and what LAUNCH_MEASURE
    covers; ``es`` whether the platform was initialised with SEV-ES.
    """

    def __init__(self, roots=None, api=(0, 24), build_id=15, es=True, chip_id=None, keys=None, cbitpos=47):
        self.roots = roots or TestRoots()
        self.cbitpos = cbitpos
        self.api = tuple(api)
        self.build_id = build_id
        self.es = es
        self.chip_id = chip_id or secrets.token_bytes(64)
        keys = keys or {}
        self.cek_key = keys.get('cek') or ec.generate_private_key(ec.SECP384R1())
        self.oca_key = keys.get('oca') or ec.generate_private_key(ec.SECP384R1())
        self.pek_key = keys.get('pek') or ec.generate_private_key(ec.SECP384R1())
        self.pdh_key = keys.get('pdh') or ec.generate_private_key(ec.SECP384R1())
        self.guests = {}
        self._next_handle = 1
        self._make_certs()

    def _make_certs(self):
        """The chain as a self-owned platform generates it (PEK_GEN / PDH_GEN)."""
        api = self.api
        self.cek_placeholder = bytes(ecc_cert(USAGE_CEK, ALGO_ECDSA_SHA256,
                                              self.cek_key.public_key().public_numbers(), api))
        oca = ecc_cert(USAGE_OCA, ALGO_ECDSA_SHA256, self.oca_key.public_key().public_numbers(), api)
        self.oca_cert = bytes(sign_ecdsa(oca, 0, USAGE_OCA, self.oca_key))
        pek = ecc_cert(USAGE_PEK, ALGO_ECDSA_SHA256, self.pek_key.public_key().public_numbers(), api)
        sign_ecdsa(pek, 0, USAGE_OCA, self.oca_key)
        self.pek_cert = bytes(sign_ecdsa(pek, 1, USAGE_CEK, self.cek_key))
        pdh = ecc_cert(USAGE_PDH, ALGO_ECDH_SHA256, self.pdh_key.public_key().public_numbers(), api)
        self.pdh_cert = bytes(sign_ecdsa(pdh, 0, USAGE_PEK, self.pek_key))

    # -- what the host and AMD's key server give out --

    def pdh_cert_export(self):
        """PDH_CERT_EXPORT: (PDH, PEK || OCA || CEK) with the CEK an unsigned placeholder."""
        return self.pdh_cert, self.pek_cert + self.oca_cert + self.cek_placeholder

    def get_id(self):
        """GET_ID: the chip id of socket 0 (64 bytes)."""
        return self.chip_id

    def kds_cek(self):
        """The CEK as AMD's key server would serve it for this chip id (signed by the ASK)."""
        return self.roots.sign_cek(self.cek_placeholder)

    def kds_url(self):
        return 'https://kdsintf.amd.com/cek/id/%s' % self.chip_id.hex()

    def node_sev_info(self):
        """What libvirt's virNodeGetSEVInfo reports (QEMU query-sev-capabilities)."""
        pdh, chain = self.pdh_cert_export()
        return {'pdh': base64.b64encode(pdh).decode(), 'cert-chain': base64.b64encode(chain).decode(),
                'cpu0-id': base64.b64encode(self.chip_id).decode(), 'cbitpos': self.cbitpos,
                'reduced-phys-bits': 1, 'max-guests': 15, 'max-es-guests': 494 if self.es else 0}

    # -- launch commands --

    def launch_start(self, policy, godh=None, session=None):
        """LAUNCH_START: a new guest handle.  ``godh``/``session`` raw bytes, both or neither."""
        if not 0 <= policy <= 0xffffffff:
            raise FirmwareError(POLICY_FAILURE, 'the policy is not a 32-bit value')
        if (godh is None) != (session is None):
            raise FirmwareError(INVALID_LENGTH, 'a GODH certificate and a session go together')
        if godh is None:
            # No channel: the firmware leaves TEK and TIK zero (doc section 5, section 8 step 11).
            tek, tik = bytes(16), bytes(16)
        else:
            tek, tik = self._open_channel(policy, godh, session)
        self._check_policy(policy)
        handle = self._next_handle
        self._next_handle += 1
        self.guests[handle] = Guest(handle, policy, tek, tik)
        return handle

    def launch_start_b64(self, policy, dh_cert_b64, session_b64):
        """LAUNCH_START as QEMU drives it from libvirt's dh_cert/session base64 files."""
        try:
            godh = base64.b64decode(dh_cert_b64, validate=True)
            session = base64.b64decode(session_b64, validate=True)
        except ValueError:
            raise FirmwareError(INVALID_LENGTH, 'GODH or session is not base64 (QEMU refuses it)')
        return self.launch_start(policy, godh, session)

    def _open_channel(self, policy, godh, session):
        """Section 8 steps 2-9 (the policy checks after the MACs come in _check_policy)."""
        if len(godh) != GODH_SIZE or len(session) != SESSION_SIZE:
            raise FirmwareError(INVALID_LENGTH, 'GODH %d bytes (2084 expected), session %d bytes (128 expected)'
                                % (len(godh), len(session)))
        version, usage, algo, curve = struct.unpack_from('<I4xIII', godh, 0)
        if version != 1 or usage != USAGE_PDH or algo != ALGO_ECDH_SHA256 or curve != CURVE_P384:
            raise FirmwareError(INVALID_CERTIFICATE, 'GODH: version %d, usage 0x%x, algorithm 0x%x, curve %d'
                                % (version, usage, algo, curve))
        qx = int.from_bytes(godh[0x14:0x14 + p384.COORD_SIZE], 'little')
        qy = int.from_bytes(godh[0x5c:0x5c + p384.COORD_SIZE], 'little')
        try:
            shared_x = p384.ecdh_x(self.pdh_key.private_numbers().private_value, qx, qy)
        except ValueError as exc:
            raise FirmwareError(INVALID_CERTIFICATE, 'GODH: %s' % exc)
        # The engine's x is little-endian; reversed, the KDF gets it big-endian.
        return unwrap_session(shared_x.to_bytes(p384.COORD_SIZE, 'little')[::-1], session, policy)

    def _check_policy(self, policy):
        if policy & POLICY_RESERVED:
            raise FirmwareError(POLICY_FAILURE, 'reserved policy bits 0x%04x set' % (policy & POLICY_RESERVED))
        minimum = ((policy >> 16) & 0xff, (policy >> 24) & 0xff)
        if minimum > self.api:
            raise FirmwareError(POLICY_FAILURE, 'the policy asks for API %d.%d, the firmware is %d.%d'
                                % (minimum + self.api))
        if policy & POLICY_ES and not self.es:
            raise FirmwareError(UNSUPPORTED, 'SEV-ES policy on a platform not initialised for SEV-ES')

    def _guest(self, handle, *states):
        guest = self.guests.get(handle)
        if guest is None:
            raise FirmwareError(INVALID_GUEST_STATE, 'no guest with handle %r' % (handle,))
        if guest.state not in states:
            raise FirmwareError(INVALID_GUEST_STATE, 'guest %d is in state %s' % (handle, guest.state))
        return guest

    def launch_update_data(self, handle, data):
        """LAUNCH_UPDATE_DATA: encrypt memory; the launch digest covers its plaintext."""
        self._guest(handle, LUPDATE).digest.update(bytes(data))

    def launch_update_vmsa(self, handle, vmsa):
        """LAUNCH_UPDATE_VMSA (SEV-ES only): the VMSA page joins the launch digest."""
        guest = self._guest(handle, LUPDATE)
        if not guest.policy & POLICY_ES:
            raise FirmwareError(INVALID_GUEST_STATE, 'LAUNCH_UPDATE_VMSA for a guest without SEV-ES')
        guest.digest.update(bytes(vmsa))

    def launch_measure(self, handle, mnonce=None):
        """LAUNCH_MEASURE: HMAC(TIK, 04 || api || build || policy || digest || mnonce) || mnonce."""
        guest = self._guest(handle, LUPDATE)
        mnonce = secrets.token_bytes(16) if mnonce is None else bytes(mnonce)
        message = (bytes([0x04, self.api[0], self.api[1], self.build_id]) + struct.pack('<I', guest.policy)
                   + guest.digest.digest() + mnonce)
        guest.measure = _mac(guest.tik, message)
        guest.state = LSECRET
        return guest.measure + mnonce

    def launch_secret(self, handle, header, payload):
        """LAUNCH_SECRET: check the header MAC with the TIK, decrypt with the TEK; the plaintext."""
        guest = self._guest(handle, LSECRET)
        if len(header) != 52:
            raise FirmwareError(INVALID_LENGTH, 'the secret header is %d bytes, 52 expected' % len(header))
        flags, iv, mac = header[0:4], header[4:20], header[20:52]
        lengths = struct.pack('<II', len(payload), len(payload))
        expected = _mac(guest.tik, b'\x01' + flags + iv + lengths + bytes(payload) + guest.measure)
        if not hmac.compare_digest(mac, expected):
            raise FirmwareError(BAD_MEASUREMENT, 'the secret header MAC does not verify')
        return aes_ctr(guest.tek, iv, bytes(payload))

    def launch_finish(self, handle):
        self._guest(handle, LSECRET).state = RUNNING

    # -- persistence (the PDH key pair outlives a process, as on a real platform) --

    def save(self, directory):
        """Keys, chip id and settings under ``directory`` (files 0600).  TEST keys only."""
        os.makedirs(directory, mode=0o700, exist_ok=True)
        pem = serialization.Encoding.PEM
        private = serialization.PrivateFormat.PKCS8
        none = serialization.NoEncryption()
        blobs = dict(('%s.pem' % name, key.private_bytes(pem, private, none)) for name, key in (
            ('cek', self.cek_key), ('oca', self.oca_key), ('pek', self.pek_key), ('pdh', self.pdh_key),
            ('ark', self.roots.ark_key), ('ask', self.roots.ask_key)))
        blobs.update({'pdh.cert': self.pdh_cert, 'pek.cert': self.pek_cert, 'oca.cert': self.oca_cert})
        blobs['platform.json'] = json.dumps({
            'api': list(self.api), 'build_id': self.build_id, 'es': self.es, 'chip_id': self.chip_id.hex(),
            'cbitpos': self.cbitpos,
            'ark_id': self.roots.ark_id.hex(), 'ask_id': self.roots.ask_id.hex()}, indent=1).encode()
        for name, data in blobs.items():
            handle = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(handle, 'wb') as stream:
                stream.write(data)

    @classmethod
    def load(cls, directory):
        def key(name):
            with open(os.path.join(directory, name + '.pem'), 'rb') as stream:
                return serialization.load_pem_private_key(stream.read(), password=None)
        with open(os.path.join(directory, 'platform.json'), encoding='utf-8') as stream:
            settings = json.load(stream)
        roots = TestRoots.__new__(TestRoots)
        roots.ark_key, roots.ask_key = key('ark'), key('ask')
        roots.bits = roots.ark_key.key_size
        roots.ark_id, roots.ask_id = bytes.fromhex(settings['ark_id']), bytes.fromhex(settings['ask_id'])
        platform = cls(roots=roots, api=settings['api'], build_id=settings['build_id'], es=settings['es'],
                       chip_id=bytes.fromhex(settings['chip_id']), cbitpos=settings.get('cbitpos', 47),
                       keys=dict((name, key(name)) for name in ('cek', 'oca', 'pek', 'pdh')))
        # The same certificates as before (ECDSA signatures are randomised).
        for name in ('pdh', 'pek', 'oca'):
            with open(os.path.join(directory, name + '.cert'), 'rb') as stream:
                setattr(platform, name + '_cert', stream.read())
        return platform

    def export(self, directory):
        """The public files a guest owner works from: PDH, the exported chain (placeholder CEK),
        the key server's CEK, the TEST ARK/ASK, and node_sev.json (virNodeGetSEVInfo)."""
        os.makedirs(directory, exist_ok=True)
        pdh, chain = self.pdh_cert_export()
        files = {'pdh.cert': pdh, 'cert_chain.bin': chain, 'cek.cert': self.kds_cek(),
                 'lab_ark.cert': self.roots.ark_cert, 'lab_ask.cert': self.roots.ask_cert,
                 'node_sev.json': json.dumps(self.node_sev_info(), indent=1).encode()}
        for name, data in files.items():
            with open(os.path.join(directory, name), 'wb') as stream:
                stream.write(data)
        return sorted(files)


def main(argv=None):
    """python -m ansible_collections.confidential.sev.tests.platform.sev_firmware init|export ..."""
    parser = argparse.ArgumentParser(description='An EMULATED SEV platform (test keys, not hardware).')
    commands = parser.add_subparsers(dest='command', required=True)
    init = commands.add_parser('init', help='make a platform (keys, chip id) in STATE_DIR')
    init.add_argument('state_dir')
    init.add_argument('--api', default='0.24', help='firmware API version MAJOR.MINOR')
    init.add_argument('--build-id', type=int, default=15)
    init.add_argument('--no-es', action='store_true', help='a platform not initialised for SEV-ES')
    init.add_argument('--root-bits', type=int, choices=(2048, 4096), default=2048)
    export = commands.add_parser('export', help="write the platform's public certificates to OUT_DIR")
    export.add_argument('state_dir')
    export.add_argument('out_dir')
    args = parser.parse_args(argv)
    if args.command == 'init':
        major, minor = (int(part) for part in args.api.split('.'))
        EmulatedPlatform(roots=TestRoots(args.root_bits), api=(major, minor), build_id=args.build_id,
                         es=not args.no_es).save(args.state_dir)
        print('emulated platform (TEST keys) saved in %s' % args.state_dir)
    else:
        print('\n'.join(EmulatedPlatform.load(args.state_dir).export(args.out_dir)))
    return 0


if __name__ == '__main__':
    sys.exit(main())

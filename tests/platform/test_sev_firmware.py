# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulated platform's own tests: known answers from docs/sev-session.md, every refusal.

Nothing here imports plugins/: the emulator must stand on its own (the
round trips with the guest owner's side are in tests/unit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
import struct

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ansible_collections.confidential.sev.tests.platform import p384
from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw

ZERO16 = bytes(16)
# virtee/sev's vectors (doc section 4): Z = 16 zero bytes, nonce = IV = TEK = TIK = 0, policy 0.
MASTER = bytes.fromhex('ab4d269fcc62bedb4511d56c386ce706')
WRAP_TK = bytes.fromhex('2137bc7f9bb8bd7c3e55a576a15d3454b3856b8ba27afadf46dcfee9f02c02c4')
WRAP_MAC = bytes.fromhex('3176c0752738bd9d5e86689534020f528c088f16238826b000b327dee6aeed7d')
POLICY_MAC = bytes.fromhex('aa7855e13839dd767cd5da7c1ff5036540c9264b7a803029315e55375287b4af')
KAT_SESSION = ZERO16 + WRAP_TK + ZERO16 + WRAP_MAC + POLICY_MAC


@pytest.fixture(scope='module')
def platform():
    return fw.EmulatedPlatform(api=(1, 55), build_id=21)


def owner_session(platform, policy, tek=None, tik=None, nonce=None, iv=None):
    """A guest owner's GODH and session, built here from the doc with cryptography's ECDH
    (the emulator uses its own point arithmetic)."""
    owner = ec.generate_private_key(ec.SECP384R1())
    numbers = owner.public_key().public_numbers()
    godh = fw.ecc_cert(fw.USAGE_PDH, fw.ALGO_ECDH_SHA256, numbers)
    z = owner.exchange(ec.ECDH(), platform.pdh_key.public_key())
    tek, tik = tek or os.urandom(16), tik or os.urandom(16)
    nonce, iv = nonce or os.urandom(16), iv or os.urandom(16)
    master = fw.kdf(z, b'sev-master-secret', nonce)
    kek, kik = fw.kdf(master, b'sev-kek'), fw.kdf(master, b'sev-kik')
    encryptor = Cipher(algorithms.AES(kek), modes.CTR(iv)).encryptor()
    wrap_tk = encryptor.update(tek + tik) + encryptor.finalize()
    session = (nonce + wrap_tk + iv + hmac.new(kik, wrap_tk, hashlib.sha256).digest()
               + hmac.new(tik, struct.pack('<I', policy), hashlib.sha256).digest())
    return bytes(godh), session, tek, tik


def verify_ecdsa_slot(cert, slot, public_key):
    area = cert[fw.SLOT_OFFSETS[slot] + 8:]
    r, s = int.from_bytes(area[:72], 'little'), int.from_bytes(area[72:144], 'little')
    public_key.verify(encode_dss_signature(r, s), cert[:fw.BODY_SIZE], ec.ECDSA(hashes.SHA256()))


# ---- known answers -------------------------------------------------------------------------

def test_kdf_known_answer():
    assert fw.kdf(ZERO16, b'sev-master-secret', ZERO16) == MASTER


def test_unwrap_known_answer():
    assert fw.unwrap_session(ZERO16, KAT_SESSION, 0) == (ZERO16, ZERO16)


def test_unwrap_refuses_another_policy_and_a_flipped_bit():
    with pytest.raises(fw.FirmwareError) as info:
        fw.unwrap_session(ZERO16, KAT_SESSION, 1)
    assert info.value.code == fw.BAD_MEASUREMENT and 'policy_mac' in str(info.value)
    for offset in (0, 16, 47, 48, 64, 95):
        tampered = bytearray(KAT_SESSION)
        tampered[offset] ^= 1
        with pytest.raises(fw.FirmwareError) as info:
            fw.unwrap_session(ZERO16, bytes(tampered), 0)
        assert info.value.code == fw.BAD_MEASUREMENT
        assert "fw_error=11 'BAD_MEASUREMENT'" in str(info.value)


def test_aes_ctr_counter_wraps_as_a_128_bit_big_endian_integer():
    key, iv = os.urandom(16), b'\xff' * 16
    data = os.urandom(40)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    assert fw.aes_ctr(key, iv, data) == encryptor.update(data) + encryptor.finalize()


def test_measure_known_answer():
    """virtee/sev's LAUNCH_MEASURE vector: TIK 66320d..., API 0.18, build 15, policy 0, empty digest."""
    platform = fw.EmulatedPlatform(api=(0, 18), build_id=15)
    handle = platform.launch_start(0)
    platform.guests[handle].tik = bytes.fromhex('66320db73158a35a255d051758e95ed4')
    mnonce = bytes.fromhex('4fbe0bedbad6c86ae8f68971d103e554')
    blob = platform.launch_measure(handle, mnonce)
    assert blob == bytes.fromhex('6faab2daae389bcd3405a05d6cafe33c0414f7bedd0bae19ba5f38b7fd1664ea') + mnonce


# ---- P-384 ---------------------------------------------------------------------------------

def test_p384_agrees_with_cryptography():
    assert p384.on_curve(p384.GX, p384.GY)
    assert p384.multiply(p384.N, p384.GX, p384.GY) is None
    for dummy in range(3):
        mine, peer = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
        numbers = mine.public_key().public_numbers()
        scalar = mine.private_numbers().private_value
        assert p384.multiply(scalar, p384.GX, p384.GY) == (numbers.x, numbers.y)
        other = peer.public_key().public_numbers()
        assert (p384.ecdh_x(scalar, other.x, other.y).to_bytes(48, 'big')
                == mine.exchange(ec.ECDH(), peer.public_key()))


@pytest.mark.parametrize('point', [(p384.GX, p384.GY + 1), (p384.P, p384.GY), (0, 0), (p384.GX, p384.P - p384.GY + 1)])
def test_p384_refuses_points_off_the_curve(point):
    assert not p384.on_curve(*point)
    with pytest.raises(ValueError):
        p384.ecdh_x(12345, *point)


# ---- certificates --------------------------------------------------------------------------

def test_certificates_are_laid_out_and_signed_as_the_doc_says(platform):
    pdh, chain = platform.pdh_cert_export()
    assert len(pdh) == 2084 and len(chain) == 3 * 2084
    pek, oca, cek = chain[:2084], chain[2084:4168], chain[4168:]
    for cert, usage, algo in ((pdh, 0x1003, 0x003), (pek, 0x1002, 0x002), (oca, 0x1001, 0x002),
                              (cek, 0x1004, 0x002)):
        assert struct.unpack_from('<IBBHIII', cert, 0) == (1, 1, 55, 0, usage, algo, 2)
        assert cert[0xa4:0x414] == bytes(0x414 - 0xa4)

    def slots(cert):
        return [struct.unpack_from('<II', cert, offset) for offset in fw.SLOT_OFFSETS]
    assert slots(pdh) == [(0x1002, 0x002), (0x1000, 0)]
    assert slots(pek) == [(0x1001, 0x002), (0x1004, 0x002)]
    assert slots(oca) == [(0x1001, 0x002), (0x1000, 0)]
    empty = struct.pack('<II', 0x1000, 0) + bytes(512)
    assert cek[0x414:] == empty + empty   # the placeholder: no signature at all
    verify_ecdsa_slot(pdh, 0, platform.pek_key.public_key())
    verify_ecdsa_slot(pek, 0, platform.oca_key.public_key())
    verify_ecdsa_slot(pek, 1, platform.cek_key.public_key())
    verify_ecdsa_slot(oca, 0, platform.oca_key.public_key())
    with pytest.raises(InvalidSignature):
        verify_ecdsa_slot(pek, 1, platform.oca_key.public_key())


@pytest.mark.parametrize('bits', [2048, 4096])
def test_kds_cek_and_test_roots(bits):
    roots = fw.TestRoots(bits) if bits == 2048 else ROOTS_4096()
    platform = fw.EmulatedPlatform(roots=roots)
    cek = platform.kds_cek()
    digest = hashes.SHA256() if bits == 2048 else hashes.SHA384()
    usage, algo = struct.unpack_from('<II', cek, 0x414)
    assert (usage, algo) == (0x13, 0x001 if bits == 2048 else 0x101)
    signature = cek[0x41c:0x41c + bits // 8][::-1]
    pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
    roots.ask_key.public_key().verify(signature, cek[:0x414], pss, digest)
    assert cek[:0x414] == platform.pdh_cert_export()[1][4168:4168 + 0x414]
    ark, ask = roots.ark_cert, roots.ask_cert
    assert len(ark) == len(ask) == 64 + 3 * bits // 8
    assert ark[4:20] == ark[20:36] == ask[20:36] == roots.ark_id and ask[4:20] == roots.ask_id
    assert struct.unpack_from('<I', ark, 36)[0] == 0 and struct.unpack_from('<I', ask, 36)[0] == 0x13
    signed = len(ask) - bits // 8
    roots.ark_key.public_key().verify(ask[signed:][::-1], ask[:signed], pss, digest)
    assert platform.kds_url() == 'https://kdsintf.amd.com/cek/id/' + platform.get_id().hex()


_CACHE = {}


def ROOTS_4096():  # pylint: disable=invalid-name
    if 'roots' not in _CACHE:
        _CACHE['roots'] = fw.TestRoots(4096)
    return _CACHE['roots']


def test_node_sev_info_is_what_libvirt_reports(platform):
    info = platform.node_sev_info()
    assert len(info['pdh']) == 2780 and len(info['cert-chain']) == 8336 and len(info['cpu0-id']) == 88
    assert base64.b64decode(info['pdh']) == platform.pdh_cert
    assert base64.b64decode(info['cpu0-id']) == platform.get_id()


# ---- LAUNCH_START ----------------------------------------------------------------------------

@pytest.mark.parametrize('policy', [0x1, 0x7, (0x01 << 16) | (0x30 << 24) | 0x3])
def test_launch_start_unwraps_the_owners_keys(platform, policy):
    godh, session, tek, tik = owner_session(platform, policy)
    handle = platform.launch_start(policy, godh, session)
    guest = platform.guests[handle]
    assert (guest.tek, guest.tik, guest.state) == (tek, tik, fw.LUPDATE)
    assert 'keys hidden' in repr(guest) and tek.hex() not in repr(guest)
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_start(policy ^ 0x1, godh, session)
    assert info.value.code == fw.BAD_MEASUREMENT


def test_launch_start_from_base64_as_qemu_reads_the_files(platform):
    godh, session, tek, dummy = owner_session(platform, 0x3)
    handle = platform.launch_start_b64(0x3, base64.b64encode(godh), base64.b64encode(session).decode())
    assert platform.guests[handle].tek == tek
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_start_b64(0x3, 'not base64!', base64.b64encode(session))
    assert info.value.code == fw.INVALID_LENGTH


def test_a_session_for_another_pdh_is_refused(platform):
    other = fw.EmulatedPlatform(roots=platform.roots)
    godh, session, dummy, dummy2 = owner_session(other, 0x1)
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_start(0x1, godh, session)
    assert info.value.code == fw.BAD_MEASUREMENT and 'wrap_mac' in info.value.detail


@pytest.mark.parametrize('godh_size, session_size', [(2083, 128), (2085, 128), (2084, 127), (2084, 129), (0, 0)])
def test_lengths(platform, godh_size, session_size):
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_start(0x1, bytes(godh_size), bytes(session_size))
    assert info.value.code == fw.INVALID_LENGTH


def test_godh_and_session_go_together(platform):
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_start(0x1, bytes(2084), None)
    assert info.value.code == fw.INVALID_LENGTH


@pytest.mark.parametrize('field, value', [
    ('version', 2), ('usage', 0x1002), ('algo', 0x103), ('algo', 0x002), ('curve', 1), ('qy', 1), ('qx', 0),
])
def test_godh_is_checked(platform, field, value):
    godh, session, dummy, dummy2 = owner_session(platform, 0x1)
    godh = bytearray(godh)
    offset, size = {'version': (0, 4), 'usage': (8, 4), 'algo': (12, 4), 'curve': (16, 4),
                    'qx': (0x14, 72), 'qy': (0x5c, 72)}[field]
    godh[offset:offset + size] = value.to_bytes(size, 'little')
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_start(0x1, bytes(godh), session)
    assert info.value.code == fw.INVALID_CERTIFICATE


def test_godh_signature_slots_are_ignored(platform):
    godh, session, dummy, tik = owner_session(platform, 0x1)
    godh = bytearray(godh)
    godh[0x414:0x824] = os.urandom(0x410)
    assert platform.guests[platform.launch_start(0x1, bytes(godh), session)].tik == tik


@pytest.mark.parametrize('policy, code', [
    (0x1 | 0x40, fw.POLICY_FAILURE), (0x8000, fw.POLICY_FAILURE),
    ((0x02 << 16) | 0x1, fw.POLICY_FAILURE), ((0x01 << 16) | (0x38 << 24), fw.POLICY_FAILURE),
])
def test_policy_checks_come_after_the_macs(platform, policy, code):
    godh, session, dummy, dummy2 = owner_session(platform, policy)
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_start(policy, godh, session)
    assert info.value.code == code
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_start(policy ^ 0x1, godh, session)
    assert info.value.code == fw.BAD_MEASUREMENT


def test_minimum_api_equal_to_the_firmware_passes(platform):
    policy = (0x01 << 16) | (55 << 24) | 0x5
    godh, session, dummy, dummy2 = owner_session(platform, policy)
    platform.launch_start(policy, godh, session)


def test_es_needs_an_es_platform():
    platform = fw.EmulatedPlatform(es=False)
    godh, session, dummy, dummy2 = owner_session(platform, 0x5)
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_start(0x5, godh, session)
    assert info.value.code == fw.UNSUPPORTED and "fw_error=21 'UNSUPPORTED'" in str(info.value)
    godh, session, dummy, dummy2 = owner_session(platform, 0x1)
    platform.launch_start(0x1, godh, session)


def test_without_a_session_the_keys_are_zero(platform):
    guest = platform.guests[platform.launch_start(0x1)]
    assert guest.tek == guest.tik == ZERO16
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_start(0x41)
    assert info.value.code == fw.POLICY_FAILURE


# ---- LAUNCH_UPDATE, MEASURE, SECRET, FINISH ----------------------------------------------------

def secret_packet(tek, tik, measure, plaintext, flags=0):
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(tek), modes.CTR(iv)).encryptor()
    payload = encryptor.update(plaintext) + encryptor.finalize()
    flags = struct.pack('<I', flags)
    mac = hmac.new(tik, b'\x01' + flags + iv + struct.pack('<II', len(payload), len(payload)) + payload
                   + measure, hashlib.sha256).digest()
    return flags + iv + mac, payload


def test_a_whole_launch(platform):
    godh, session, tek, tik = owner_session(platform, 0x5)
    handle = platform.launch_start(0x5, godh, session)
    platform.launch_update_data(handle, b'firmware')
    platform.launch_update_vmsa(handle, b'\x01' * 4096)
    blob = platform.launch_measure(handle)
    measure, mnonce = blob[:32], blob[32:]
    digest = hashlib.sha256(b'firmware' + b'\x01' * 4096).digest()
    message = bytes([4, 1, 55, 21]) + struct.pack('<I', 0x5) + digest + mnonce
    assert measure == hmac.new(tik, message, hashlib.sha256).digest()
    other = platform.launch_start(0x5, *owner_session(platform, 0x5)[:2])
    assert platform.launch_measure(other)[32:] != mnonce   # a fresh mnonce each time
    header, payload = secret_packet(tek, tik, measure, b'the secret table')
    tampered = bytearray(header)
    tampered[30] ^= 1
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_secret(handle, bytes(tampered), payload)
    assert info.value.code == fw.BAD_MEASUREMENT
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_secret(handle, header, payload + b'x')
    assert info.value.code == fw.BAD_MEASUREMENT
    wrong_measure = secret_packet(tek, tik, bytes(32), b'the secret table')
    with pytest.raises(fw.FirmwareError):
        platform.launch_secret(handle, *wrong_measure)
    assert platform.launch_secret(handle, header, payload) == b'the secret table'
    platform.launch_finish(handle)
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_secret(handle, header, payload)
    assert info.value.code == fw.INVALID_GUEST_STATE


def test_commands_out_of_order(platform):
    handle = platform.launch_start(0x1)
    for command, args in ((platform.launch_secret, (bytes(52), b'')), (platform.launch_finish, ()),
                          (platform.launch_update_vmsa, (bytes(4096),))):
        with pytest.raises(fw.FirmwareError) as info:
            command(handle, *args)
        assert info.value.code == fw.INVALID_GUEST_STATE
    platform.launch_measure(handle)
    for command, args in ((platform.launch_update_data, (b'x',)), (platform.launch_measure, ())):
        with pytest.raises(fw.FirmwareError) as info:
            command(handle, *args)
        assert info.value.code == fw.INVALID_GUEST_STATE
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_measure(999)
    assert info.value.code == fw.INVALID_GUEST_STATE


# ---- persistence ---------------------------------------------------------------------------------

def test_save_and_load_keep_the_pdh(tmp_path, platform):
    platform.save(str(tmp_path / 'state'))
    assert all(stat.S_IMODE(os.stat(path).st_mode) == 0o600 for path in (tmp_path / 'state').iterdir())
    again = fw.EmulatedPlatform.load(str(tmp_path / 'state'))
    assert again.pdh_cert_export() == platform.pdh_cert_export()
    assert again.kds_cek()[:0x414] == platform.kds_cek()[:0x414]
    assert (again.api, again.build_id, again.es, again.get_id()) == (platform.api, platform.build_id, platform.es,
                                                                     platform.get_id())
    godh, session, tek, dummy = owner_session(platform, 0x1)
    assert again.guests[again.launch_start(0x1, godh, session)].tek == tek


def test_command_line(tmp_path, capsys):
    assert fw.main(['init', str(tmp_path / 'state'), '--api', '1.51', '--no-es']) == 0
    assert fw.main(['export', str(tmp_path / 'state'), str(tmp_path / 'out')]) == 0
    assert 'node_sev.json' in capsys.readouterr().out
    loaded = fw.EmulatedPlatform.load(str(tmp_path / 'state'))
    assert loaded.api == (1, 51) and not loaded.es
    assert (tmp_path / 'out' / 'pdh.cert').read_bytes() == loaded.pdh_cert
    assert (tmp_path / 'out' / 'cert_chain.bin').stat().st_size == 6252

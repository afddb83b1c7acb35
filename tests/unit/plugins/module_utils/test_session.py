# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The launch session: known answers from the doc, and round trips through the
independent emulated platform (tests/platform), which unwraps with its own ECDH."""

from __future__ import annotations

import hashlib
import hmac
import pathlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.confidential.sev.plugins.module_utils.sev import certs, session
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage
from ansible_collections.confidential.sev.plugins.module_utils.sev.keys import SessionKeys
from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw

DATA = pathlib.Path(__file__).resolve().parents[3] / 'data' / 'amd-certs'
ZERO16 = bytes(16)
MASTER = bytes.fromhex('ab4d269fcc62bedb4511d56c386ce706')
WRAP_TK = bytes.fromhex('2137bc7f9bb8bd7c3e55a576a15d3454b3856b8ba27afadf46dcfee9f02c02c4')
WRAP_MAC = bytes.fromhex('3176c0752738bd9d5e86689534020f528c088f16238826b000b327dee6aeed7d')
POLICY_MAC = bytes.fromhex('aa7855e13839dd767cd5da7c1ff5036540c9264b7a803029315e55375287b4af')
POLICIES = [0x1, 0x7, (0x01 << 16) | (0x30 << 24) | 0x3]


@pytest.fixture(scope='module')
def platform():
    return fw.EmulatedPlatform(api=(1, 55), build_id=21)


def pdh_of(platform):
    return certs.parse_sev_cert(platform.pdh_cert, 'PDH')


# ---- known answers (virtee/sev's vectors, doc section 4) -------------------------------------

def test_kdf_known_answer():
    assert session.kdf(ZERO16, b'sev-master-secret', ZERO16) == MASTER


def test_kdf_message_layout():
    """u32le(1) || label || 00 || context || u32le(bits); empty context adds nothing."""
    key = bytes(range(48))
    expected = hmac.new(key, b'\x01\0\0\0sev-kek\0' + b'\x80\0\0\0', hashlib.sha256).digest()[:16]
    assert session.kdf(key, b'sev-kek') == expected
    expected = hmac.new(key, b'\x01\0\0\0x\0ctx' + b'\x00\x01\0\0', hashlib.sha256).digest()
    assert session.kdf(key, b'x', b'ctx', 32) == expected
    with pytest.raises(ValueError):
        session.kdf(key, b'x', length=33)


def test_wrap_known_answer():
    blob = session.wrap_keys(MASTER, SessionKeys(ZERO16, ZERO16), 0, ZERO16, ZERO16)
    assert blob == ZERO16 + WRAP_TK + ZERO16 + WRAP_MAC + POLICY_MAC
    assert len(blob) == session.SESSION_SIZE == 128
    # The emulated platform, independently, unwraps the same blob.
    assert fw.unwrap_session(ZERO16, blob, 0) == (ZERO16, ZERO16)


def test_godh_layout():
    key = ec.generate_private_key(ec.SECP384R1()).public_key()
    godh = session.godh_cert(key)
    numbers = key.public_numbers()
    assert len(godh) == 2084
    assert struct.unpack_from('<IBBHIII', godh, 0) == (1, 0, 0, 0, 0x1003, 0x003, 2)
    assert godh[0x14:0x5c] == numbers.x.to_bytes(72, 'little')
    assert godh[0x5c:0xa4] == numbers.y.to_bytes(72, 'little')
    assert godh[0xa4:0x414] == bytes(0x414 - 0xa4)
    empty = struct.pack('<II', 0x1000, 0) + bytes(512)
    assert godh[0x414:] == empty + empty
    parsed = certs.parse_sev_cert(godh, 'GODH')
    assert parsed.public_key().public_numbers() == numbers


# ---- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize('policy', POLICIES, ids=['0x%08x' % value for value in POLICIES])
def test_the_platform_unwraps_the_same_keys(platform, policy):
    made = session.create_session(pdh_of(platform), policy)
    handle = platform.launch_start(policy, made.godh, made.session)
    guest = platform.guests[handle]
    assert (guest.tek, guest.tik) == (made.keys.tek, made.keys.tik)
    assert made.policy == policy
    # The policy MAC holds for exactly this 32-bit value.
    for other in {policy ^ 1, policy ^ (1 << 16), policy ^ (1 << 31), policy & 0xffff, policy | 0x8} - {policy}:
        with pytest.raises(fw.FirmwareError) as info:
            platform.launch_start(other, made.godh, made.session)
        assert info.value.code == fw.BAD_MEASUREMENT == 0x0b


def test_a_session_for_another_pdh_is_refused(platform):
    other = fw.EmulatedPlatform(roots=platform.roots)
    made = session.create_session(pdh_of(other), 0x1)
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_start(0x1, made.godh, made.session)
    assert info.value.code == fw.BAD_MEASUREMENT
    other.launch_start(0x1, made.godh, made.session)


def test_every_session_is_fresh(platform):
    first, second = (session.create_session(pdh_of(platform), 0x1) for dummy in range(2))
    assert first.godh != second.godh
    for start, end in ((0, 16), (16, 48), (48, 64), (64, 96), (96, 128)):
        assert first.session[start:end] != second.session[start:end]
    assert first.keys.tek != second.keys.tek and first.keys.tik != second.keys.tik
    assert first.keys.tek != first.keys.tik


def test_policies_the_platform_refuses_after_the_macs(platform):
    """A well-formed session whose policy the platform itself refuses: POLICY_FAILURE, UNSUPPORTED."""
    made = session.create_session(pdh_of(platform), (0x02 << 16) | 0x1)
    with pytest.raises(fw.FirmwareError) as info:
        platform.launch_start((0x02 << 16) | 0x1, made.godh, made.session)
    assert info.value.code == fw.POLICY_FAILURE
    no_es = fw.EmulatedPlatform(roots=platform.roots, es=False)
    made = session.create_session(pdh_of(no_es), 0x5)
    with pytest.raises(fw.FirmwareError) as info:
        no_es.launch_start(0x5, made.godh, made.session)
    assert info.value.code == fw.UNSUPPORTED


def test_real_pdh():
    """A real Rome PDH: a session can be made (no private key here to unwrap it)."""
    pdh = certs.parse_sev_cert((DATA / 'sev-chains' / 'rome' / 'pdh.cert').read_bytes(), 'PDH')
    made = session.create_session(pdh, 0x3)
    assert len(made.godh) == 2084 and len(made.session) == 128


# ---- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize('policy', [0x40, 0x8000, 0xffc1, -1, 1 << 32, True, '1'])
def test_bad_policy(platform, policy):
    with pytest.raises(UnsupportedUsage, match='policy'):
        session.create_session(pdh_of(platform), policy)


def test_not_a_pdh(platform):
    pek = certs.parse_sev_cert(platform.pek_cert, 'PEK')
    with pytest.raises(UnsupportedUsage, match=r'PDH: not an ECDH-SHA256 PDH key \(usage 0x1002, algorithm 0x2\)'):
        session.create_session(pek, 0x1)
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    cert = fw.ecc_cert(0x1003, 0x003, p256)
    struct.pack_into('<I', cert, 0x10, 1)
    with pytest.raises(UnsupportedUsage, match='PDH: the key is not on P-384'):
        session.create_session(certs.parse_sev_cert(bytes(cert), 'PDH'), 0x1)


def test_keys_stay_hidden(platform):
    made = session.create_session(pdh_of(platform), 0x1)
    for text in (repr(made), str(made), repr(made.keys)):
        assert made.keys.tek.hex() not in text and made.keys.tik.hex() not in text
    assert 'keys hidden' in repr(made)

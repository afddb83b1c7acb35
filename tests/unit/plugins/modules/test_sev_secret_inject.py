# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_secret_inject.check_packet(): the LAUNCH_SECRET packet's form, checked
before it reaches libvirt.  The header is flags (u32, must be 0) || IV (16) ||
MAC (32); the payload is the encrypted secret table, in 16-byte blocks."""

from __future__ import annotations

import base64

import pytest

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection
from ansible_collections.confidential.sev.plugins.modules import sev_secret_inject as inject
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage

IV = bytes(range(16))
MAC = bytes(range(100, 132))
HEADER = base64.b64encode(bytes(4) + IV + MAC).decode()
PAYLOAD = base64.b64encode(bytes(range(48))).decode()


def b64(data):
    return base64.b64encode(data).decode()


def test_good_packet():
    assert inject.HEADER_SIZE == 52
    assert inject.check_packet(HEADER, PAYLOAD) is None
    assert inject.check_packet(HEADER, b64(bytes(16))) is None
    assert inject.check_packet(HEADER, b64(bytes(4096))) is None


@pytest.mark.parametrize('header, payload, message', [
    ('not base64!', PAYLOAD, 'header is not valid base64'),
    (HEADER[:-1], PAYLOAD, 'header is not valid base64'),
    (HEADER + '\n', PAYLOAD, 'header is not valid base64'),
    ('\u00e9' + HEADER, PAYLOAD, 'header is not valid base64'),
    (HEADER, 'AAAA*AAA', 'payload is not valid base64'),
    (HEADER, PAYLOAD[:-2], 'payload is not valid base64'),
    (b64(bytes(51)), PAYLOAD, 'header must decode to 52 bytes, got 51'),
    (b64(bytes(53)), PAYLOAD, 'header must decode to 52 bytes, got 53'),
    ('', PAYLOAD, 'header must decode to 52 bytes, got 0'),
    (b64(bytes(4) + IV + MAC + bytes(16)), PAYLOAD, 'header must decode to 52 bytes, got 68'),
    (b64(b'\x01\0\0\0' + IV + MAC), PAYLOAD, 'header flags must be 0'),
    (b64(b'\0\0\0\x80' + IV + MAC), PAYLOAD, 'header flags must be 0'),
    (HEADER, '', 'payload must be a non-empty multiple of 16 bytes, got 0'),
    (HEADER, b64(bytes(17)), 'payload must be a non-empty multiple of 16 bytes, got 17'),
    (HEADER, b64(bytes(15)), 'payload must be a non-empty multiple of 16 bytes, got 15'),
    (HEADER, b64(bytes(40)), 'payload must be a non-empty multiple of 16 bytes, got 40'),
])
def test_bad_packets(header, payload, message):
    with pytest.raises(UnsupportedUsage) as exc:
        inject.check_packet(header, payload)
    assert str(exc.value) == message


def test_header_is_checked_before_payload():
    with pytest.raises(UnsupportedUsage, match='^header'):
        inject.check_packet(b64(bytes(10)), '')


def test_messages_hold_no_packet_bytes():
    secret_mac = b64(b'\x01\0\0\0' + IV + MAC)
    with pytest.raises(UnsupportedUsage) as exc:
        inject.check_packet(secret_mac, PAYLOAD)
    assert secret_mac not in str(exc.value) and MAC.hex() not in str(exc.value)


# ---- check_target: only a paused launch before its first run, and the expected one ----------

def described(state='paused', run_state='prelaunch', ident=7):
    return {'uuid': '5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01', 'name': 'g', 'id': ident, 'state': state,
            'state_reason': 'user', 'run_state': run_state, 'active': state != 'shutoff'}


def test_check_target_accepts_a_prelaunch_domain():
    assert inject.check_target(described(), "domain 'g'") is None
    assert inject.check_target(described(ident=12), "domain 'g'", expect_id=12) is None


@pytest.mark.parametrize('before, expect_id, message', [
    (described('running', 'running'), None,
     "domain 'g' is running, not paused: a secret can only be injected before the guest first runs"),
    (described('shutoff', None, -1), None,
     "domain 'g' is shutoff, not paused: a secret can only be injected before the guest first runs"),
    # issue 8: suspended after it ran; libvirt says paused/user all the same
    (described('paused', 'paused'), None,
     "domain 'g' is paused after it ran (QEMU run state 'paused'), not before its first run: a secret can only "
     "be injected before the guest first runs"),
    (described('paused', None), None,
     "domain 'g' is paused after it ran (QEMU run state None), not before its first run: a secret can only "
     "be injected before the guest first runs"),
    (described(ident=13), 12,
     "domain 'g' has ID 13, not 12 (expect_id): it is another launch than the one the packet was made for"),
])
def test_check_target_refuses(before, expect_id, message):
    with pytest.raises(connection.WrongState) as exc:
        inject.check_target(before, "domain 'g'", expect_id)
    assert str(exc.value) == message
    assert connection.failure_result(exc.value)['error_kind'] == 'wrong_state'


@pytest.mark.parametrize('address', [0, -1, 1 << 64])
def test_address_zero_or_out_of_range_is_refused(address):
    """Issue 10: address 0 was accepted (a secret written where no firmware reads it)."""
    with pytest.raises(UnsupportedUsage, match='^address must be a 64-bit guest physical address other than 0'):
        inject.check_address(address)


@pytest.mark.parametrize('address', [None, 1, 0x800000, (1 << 64) - 1])
def test_address_accepted(address):
    assert inject.check_address(address) == address

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LAUNCH_MEASURE: the known-answer vector, the message layout, strict decoding."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given, strategies as st

from ansible_collections.confidential.sev.plugins.module_utils.sev import measurement as meas
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage

# virtee/sev's measurement test vector.
TIK = bytes.fromhex('66320db73158a35a255d051758e95ed4')
MNONCE = bytes.fromhex('4fbe0bedbad6c86ae8f68971d103e554')
LD_EMPTY = hashlib.sha256(b'').digest()
MEASURE = bytes.fromhex('6faab2daae389bcd3405a05d6cafe33c0414f7bedd0bae19ba5f38b7fd1664ea')
BLOB = MEASURE + MNONCE


def test_virtee_known_answer():
    assert meas.compute_measure(TIK, 0, 18, 15, 0, LD_EMPTY, MNONCE) == MEASURE


def test_message_layout_independently():
    policy, digest = 0x18000005, bytes(range(32))
    message = (b'\x04' + bytes([1, 2, 3]) + bytes.fromhex('05000018') + digest + MNONCE)
    assert len(message) == 56
    expected = hmac.new(TIK, message, hashlib.sha256).digest()
    assert meas.compute_measure(TIK, 1, 2, 3, policy, digest, MNONCE) == expected


def test_matches_uses_the_reported_mnonce():
    ok, computed = meas.measurement_matches(TIK, BLOB, 0, 18, 15, 0, LD_EMPTY)
    assert ok is True
    assert computed == MEASURE


@pytest.mark.parametrize('change', ['tik', 'api_major', 'api_minor', 'build_id', 'policy',
                                    'digest', 'mnonce', 'measure'])
def test_any_changed_input_mismatches(change):
    args = dict(tik=TIK, blob=BLOB, api_major=0, api_minor=18, build_id=15, policy=0,
                launch_digest=LD_EMPTY)
    if change == 'tik':
        args['tik'] = bytes([TIK[0] ^ 1]) + TIK[1:]
    elif change in ('api_major', 'api_minor', 'build_id'):
        args[change] += 1
    elif change == 'policy':
        args['policy'] = 0x1
    elif change == 'digest':
        args['launch_digest'] = hashlib.sha256(b'x').digest()
    elif change == 'mnonce':
        args['blob'] = MEASURE + bytes(16)
    else:
        args['blob'] = bytes([MEASURE[0] ^ 0x80]) + MEASURE[1:] + MNONCE
    ok, computed = meas.measurement_matches(args['tik'], args['blob'], args['api_major'],
                                            args['api_minor'], args['build_id'], args['policy'],
                                            args['launch_digest'])
    assert ok is False
    # Issue 10: the computed MAC never leaves on a mismatch (it would be a MAC over a
    # nonce the host chose), not even when only the reported MEASURE differs.
    assert computed is None


def test_comparison_is_constant_time(monkeypatch):
    calls, original = [], hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return original(a, b)
    monkeypatch.setattr(meas.hmac, 'compare_digest', spy)
    assert meas.measurement_matches(TIK, BLOB, 0, 18, 15, 0, LD_EMPTY)[0]
    assert calls == [(MEASURE, MEASURE)]


def test_policy_is_the_full_u32():
    high = meas.compute_measure(TIK, 0, 24, 15, 0x18000000, LD_EMPTY, MNONCE)
    low = meas.compute_measure(TIK, 0, 24, 15, 0, LD_EMPTY, MNONCE)
    assert high != low


# ---- decode_measurement --------------------------------------------------------

def test_decode_valid():
    text = base64.b64encode(BLOB).decode('ascii')
    assert meas.decode_measurement(text) == BLOB
    assert meas.decode_measurement(text.encode('ascii')) == BLOB
    assert meas.decode_measurement('  %s\n' % text) == BLOB


@pytest.mark.parametrize('text, match', [
    ('not base64!', 'not valid base64'),
    (base64.b64encode(BLOB).decode()[:-2], 'not valid base64'),          # bad padding
    (base64.b64encode(BLOB[:24]).decode() + '\n' + base64.b64encode(BLOB[24:]).decode(),
     'not valid base64'),
    ('\u00e9' * 64, 'not valid base64'),
    (base64.b64encode(BLOB[:47]).decode(), 'must decode to 48 bytes, got 47'),
    (base64.b64encode(BLOB + b'\0').decode(), 'must decode to 48 bytes, got 49'),
    ('', 'must decode to 48 bytes, got 0'),
    (base64.urlsafe_b64encode(b'\xff' * 48).decode(), 'not valid base64'),
])
def test_decode_invalid(text, match):
    with pytest.raises(UnsupportedUsage, match=match) as info:
        meas.decode_measurement(text)
    assert info.value.rc == 2


def test_decode_non_ascii_bytes():
    with pytest.raises(UnsupportedUsage):
        meas.decode_measurement(b'\xff' * 64)


@given(st.one_of(st.text(), st.binary(), st.binary(min_size=48, max_size=48).map(base64.b64encode),
                 st.binary(min_size=47, max_size=49).map(lambda b: base64.b64encode(b).decode() + ' ')))
def test_decode_gives_48_bytes_or_a_usage_error(text):
    try:
        blob = meas.decode_measurement(text)
    except UnsupportedUsage:
        return
    assert len(blob) == 48

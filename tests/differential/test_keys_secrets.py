# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Session keys (tik+tek, the 32-byte TEK||TIK tk file, swapped keys) and
LAUNCH_SECRET packets, compared with virt-qemu-sev-validate by decrypting and
MAC-checking both packets with the code in difftools (IVs are random)."""

from __future__ import annotations

import pytest

import difftools as dt
from diffcases import SECRET_REFUSALS, SECRETS, SWAPPED_KEYS, TK_FILE, params


def _value(spec, rng):
    kind, arg = spec
    return arg.encode('utf-8') if kind == 'text' else rng.randbytes(arg)


def secrets_roundtrip(sc, rng, expected):
    """Reference round trip, then both packets opened and compared; ours' result."""
    blob, log, result = dt.reference_roundtrip(sc, rng)
    out = sc.dir / 'out'
    out.mkdir()
    proc = dt.run_reference(sc.ref_args(dt.b64(blob), secret_out=out))
    assert (proc.returncode, proc.stdout) == (
        0, dt.REF_OK + 'OK: Injected %d secrets\n' % len(expected)), proc.stderr
    ref_header, ref_payload = (out / 'ref_header').read_bytes(), (out / 'ref_payload').read_bytes()
    assert not ref_header.endswith(b'\n') and not ref_payload.endswith(b'\n')
    measure = blob[:32]
    ref_plain = dt.open_secret_packet(ref_header.decode(), ref_payload.decode(), sc.tik, sc.tek, measure)
    our_plain = dt.open_secret_packet(result['secret_header'], result['secret_payload'],
                                      sc.tik, sc.tek, measure)
    assert our_plain == ref_plain
    assert dt.parse_secret_table(our_plain) == expected
    assert result['secret_guids'] == [str(guid) for guid, dummy in expected]
    # Fresh random IVs on both sides.
    assert dt.b64(dt.base64.b64decode(result['secret_header'])[4:20]) != dt.b64(
        dt.base64.b64decode(ref_header)[4:20])
    # The MAC binds the packet to this launch's MEASURE (and to the TIK).
    with pytest.raises(AssertionError, match='MAC'):
        dt.open_secret_packet(result['secret_header'], result['secret_payload'], sc.tik, sc.tek,
                              dt.flip_bit(measure, rng))
    with pytest.raises(AssertionError, match='MAC'):
        dt.open_secret_packet(result['secret_header'], result['secret_payload'], sc.tek, sc.tek, measure)
    # A mismatch builds nothing.
    bad = sc.ours(dt.b64(dt.flip_bit(blob, rng)))
    assert not bad.get('secret_header') and not bad.get('secret_payload')
    return result


@pytest.mark.parametrize('case', params(TK_FILE))
def test_tk_file(case, tmp_path, rng):
    """tk = TEK || TIK (TEK first), for ours and the reference's --tk."""
    firmware = dt.firmware_for(dict(fw='synthetic'), tmp_path, rng)
    extra = {}
    if case['kind'] == 'es':
        extra = dict(num_cpus=rng.randint(1, 6), sku=dt.SKUS['Milan'])
    elif case['kind'] == 'boot':
        extra = dict(kernel=rng.randbytes(20000), initrd=rng.randbytes(3000), cmdline='ro quiet')
    elif case['kind'] == 'secrets':
        extra = dict(secrets=[('luks-key', b'tk-secret\n')])
    sc = dt.Scenario(tmp_path / 'in', firmware, api=case['api'], policy=case['policy'],
                     keys='tk', rng=rng, **extra)
    assert open(sc.tk_path, 'rb').read() == sc.tek + sc.tik
    if case['kind'] == 'secrets':
        secrets_roundtrip(sc, rng, [(dt.LUKS_KEY_GUID, b'tk-secret\n')])
    else:
        blob, log, result = dt.reference_roundtrip(sc, rng)
    # TIK || TEK (the wrong order) in a tk file: both say mismatch.
    wrong = sc.dir / 'tk-wrong-order.bin'
    wrong.write_bytes(sc.tik + sc.tek)
    blob, log = dt.reference_measure(sc, rng)
    dt.assert_mismatch(sc.ours(dt.b64(blob), tk=str(wrong)))
    sc.tk_path = str(wrong)
    proc = dt.run_reference(sc.ref_args(dt.b64(blob)))
    assert proc.returncode == 1 and dt.REF_MISMATCH in proc.stderr


@pytest.mark.parametrize('case', params(SWAPPED_KEYS))
def test_swapped_tik_tek(case, tmp_path, rng):
    extra = dict(policy=0x7, num_cpus=3, sku=dt.SKUS['Rome']) if case['es'] else dict(policy=0x3)
    sc = dt.Scenario(tmp_path, dt.DEBIAN_FIRMWARE['OVMF_CODE_4M'], keys=case['keys'], rng=rng, **extra)
    blob, log, result = dt.reference_roundtrip(sc, rng)
    swapped = dt.Scenario(tmp_path / 'swapped', sc.firmware, keys=case['keys'], tik=sc.tek, tek=sc.tik, **extra)
    dt.assert_mismatch(swapped.ours(dt.b64(blob)))
    proc = dt.run_reference(swapped.ref_args(dt.b64(blob)))
    assert proc.returncode == 1 and dt.REF_MISMATCH in proc.stderr


@pytest.mark.parametrize('case', params(SECRETS))
def test_secrets(case, tmp_path, rng):
    firmware = dt.firmware_for(case, tmp_path, rng)
    secrets = [(guid, _value(spec, rng)) for guid, spec in case['secrets']]
    extra = dict(num_cpus=rng.randint(1, 4), sku=dt.SKUS['Genoa']) if case['es'] else {}
    sc = dt.Scenario(tmp_path / 'in', firmware, api=case['api'], policy=case['policy'],
                     secrets=secrets, rng=rng, **extra)
    expected = [(dt.secret_guid(guid), value) for guid, value in secrets]
    result = secrets_roundtrip(sc, rng, expected)
    table_len = 20 + sum(20 + len(value) for dummy, value in secrets)
    assert len(dt.base64.b64decode(result['secret_payload'])) == table_len + 16 - table_len % 16
    if case['id'].startswith('secrets-aligned'):
        assert table_len % 16 == 0  # so a FULL 16-byte padding block follows
    has_area = case['fw'] in ('synthetic', 'amdsev-suffix')
    relaxations = sc.secret_relaxations()
    assert ('secret_address' in relaxations) is (not has_area)
    assert relaxations.get('allow_secret_policy', []) == [
        name for bit, name in ((0x1, 'DBG'), (0x2, 'KS')) if not case['policy'] & bit]
    # Without the named relaxations ours refuses what the reference released:
    # no usable secret area (config 4), then a policy without NODBG/NOKS (insecure 3).
    blob = dt.base64.b64decode(result['computed_measurement'])
    strict = sc.ours(dt.b64(blob), allow_secret_policy=[], secret_address=None)
    if not has_area:
        dt.assert_refused(strict, 'config', 4, 'no usable SEV secret area')
        strict = sc.ours(dt.b64(blob), allow_secret_policy=[])
    if relaxations.get('allow_secret_policy'):
        dt.assert_refused(strict, 'insecure', 3, 'lacks')
    else:
        dt.assert_valid(strict)


@pytest.mark.parametrize('case', params(SECRET_REFUSALS))
def test_secret_refusals(case, tmp_path, rng):
    """Duplicate GUIDs and unknown aliases: ours refuses before computing (rc 2);
    the reference attests first, prints OK, then exits 2 without writing a packet."""
    secrets = [(guid, value.encode()) for guid, value in case['secrets']]
    sc = dt.Scenario(tmp_path, dt.DEBIAN_FIRMWARE['OVMF_CODE'], secrets=secrets, rng=rng)
    blob, log = dt.reference_measure(sc, rng)
    dt.assert_refused(sc.ours(dt.b64(blob)), case['reason'], 2)
    out = tmp_path / 'out'
    out.mkdir()
    proc = dt.run_reference(sc.ref_args(dt.b64(blob), secret_out=out))
    assert proc.returncode == case['ref_rc'] and case['ref_text'] in proc.stderr, proc.stderr
    assert proc.stdout == dt.REF_OK
    assert not (out / 'ref_header').exists()


def test_empty_secret_value(tmp_path, rng):
    """Disagreement: a 0-byte secret file.  The reference packs a 20-byte entry with no
    value; ours refuses it (rc 2) as almost certainly the wrong file."""
    sc = dt.Scenario(tmp_path, dt.DEBIAN_FIRMWARE['OVMF_CODE'], secrets=[('luks-key', b'')], rng=rng)
    blob, log = dt.reference_measure(sc, rng)
    out = tmp_path / 'out'
    out.mkdir()
    proc = dt.run_reference(sc.ref_args(dt.b64(blob), secret_out=out))
    assert proc.returncode == 0, proc.stderr
    plain = dt.open_secret_packet((out / 'ref_header').read_text(), (out / 'ref_payload').read_text(),
                                  sc.tik, sc.tek, blob[:32])
    assert dt.parse_secret_table(plain) == [(dt.LUKS_KEY_GUID, b'')]
    dt.assert_refused(sc.ours(dt.b64(blob)), 'unsupported', 2, 'empty')


def test_secret_table_larger_than_secret_area(tmp_path, rng):
    """Disagreement: the firmware's secret area is 0x40 bytes and the table is bigger.
    The reference does not look; ours refuses (rc 2) after the match."""
    firmware = dt.synthetic_firmware(tmp_path / 'fw.fd', rng, secret_area=(0x80d000, 0x40))
    sc = dt.Scenario(tmp_path / 'in', firmware, policy=0x3, secrets=[('luks-key', rng.randbytes(100))], rng=rng)
    blob, log = dt.reference_measure(sc, rng)
    out = tmp_path / 'out'
    out.mkdir()
    proc = dt.run_reference(sc.ref_args(dt.b64(blob), secret_out=out))
    assert proc.returncode == 0, proc.stderr
    dt.assert_refused(sc.ours(dt.b64(blob)), 'unsupported', 2, 'secret area')
    # A table that fits is fine.
    small = dt.Scenario(tmp_path / 'small', firmware, policy=0x3, secrets=[('luks-key', b'abc')], tik=sc.tik,
                        tek=sc.tek)
    result = small.ours(dt.b64(blob))
    dt.assert_valid(result)


def test_zero_keys(tmp_path, rng):
    """Disagreement: an all-zero TIK (a launch without a session: anyone can compute
    the MAC) and an all-zero TEK.  The reference accepts; ours refuses as insecure
    (rc 3), also with insecure: true (issue 10); with allow_zero_keys it agrees byte for byte."""
    zero = bytes(16)
    sc = dt.Scenario(tmp_path, dt.DEBIAN_FIRMWARE['OVMF_CODE'], tik=zero, tek=zero,
                     secrets=[('luks-key', b'k')])
    blob, log = dt.reference_measure(sc, rng)
    out = tmp_path / 'out'
    out.mkdir()
    proc = dt.run_reference(sc.ref_args(dt.b64(blob), secret_out=out))
    assert proc.returncode == 0, proc.stderr
    dt.assert_refused(sc.ours(dt.b64(blob)), 'insecure', 3, 'TIK')
    dt.assert_refused(sc.ours(dt.b64(blob), insecure=True), 'insecure', 3, 'allow_zero_keys')
    result = sc.ours(dt.b64(blob), allow_zero_keys=True)
    dt.assert_valid(result)
    ref_plain = dt.open_secret_packet((out / 'ref_header').read_text(), (out / 'ref_payload').read_text(),
                                      zero, zero, blob[:32])
    our_plain = dt.open_secret_packet(result['secret_header'], result['secret_payload'], zero, zero, blob[:32])
    assert ref_plain == our_plain
    # Zero TEK alone: the measurement is fine, the packet is refused.
    tik = rng.randbytes(16)
    sc2 = dt.Scenario(tmp_path / 'tek0', sc.firmware, tik=tik, tek=zero, secrets=[('luks-key', b'k')])
    blob2, log2 = dt.reference_measure(sc2, rng)
    dt.assert_refused(sc2.ours(dt.b64(blob2)), 'insecure', 3, 'TEK')
    dt.assert_valid(sc2.ours(dt.b64(blob2), secrets=[]))

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measured direct boot (kernel hashes table): synthetic AmdSev-like firmware
against both references; Debian OVMF (hash table base 0), where they part."""

from __future__ import annotations

import base64

import pytest

import difftools as dt
from diffcases import DEBIAN_DIRECT_BOOT, DIRECT_BOOT, params


def _initrd(case, rng):
    return {'absent': dt.ABSENT, 'empty': b'', 'random': rng.randbytes(case['initrd_size'])}[case['initrd']]


@pytest.mark.parametrize('case', params(DIRECT_BOOT))
def test_direct_boot_against_references(case, tmp_path, rng):
    firmware = dt.firmware_for(case, tmp_path, rng)
    kernel = rng.randbytes(case['kernel_size'])
    initrd = _initrd(case, rng)
    sc = dt.Scenario(tmp_path / 'in', firmware, api=case['api'], policy=case['policy'], kernel=kernel,
                     initrd=initrd, cmdline=case['cmdline'], cmdline_b64=case['cmdline_b64'], rng=rng)
    blob, log, result = dt.reference_roundtrip(sc, rng)

    # sev-snp-measure agrees on the digest, and so does the table built here.
    assert dt.snp_digest(sc) == result['launch_digest']
    cmdline = (case['cmdline'] or '').encode('utf-8')
    expected = dt.launch_digest(sc.firmware_bytes(), kernel, b'' if initrd is dt.ABSENT else initrd, cmdline)
    assert result['launch_digest'] == expected.hex()
    assert result['digests']['cmdline'] == dt.sha256_hex(cmdline + b'\0')
    assert result['digests']['kernel'] == dt.sha256_hex(kernel)

    if case['initrd'] in ('empty', 'absent'):
        # A 0-byte initrd file and no initrd are the same measurement.
        assert result['digests']['initrd'] == dt.sha256_hex(b'')
        other = None if case['initrd'] == 'empty' else str(tmp_path / 'empty-initrd')
        if other:
            open(other, 'wb').close()
        dt.assert_valid(sc.ours(dt.b64(blob), initrd=other))
    if case['cmdline'] in (None, ''):
        # Absent and empty cmdline are the same measurement, in both spellings.
        for spelling in (dict(cmdline=None, cmdline_b64=None), dict(cmdline='', cmdline_b64=None),
                         dict(cmdline=None, cmdline_b64='')):
            dt.assert_valid(sc.ours(dt.b64(blob), **spelling))
    else:
        # Nothing is normalised: one more space, or the other spelling of the bytes.
        dt.assert_mismatch(sc.ours(dt.b64(blob), cmdline=case['cmdline'] + ' ', cmdline_b64=None))
        if case['cmdline'].strip() != case['cmdline']:
            dt.assert_mismatch(sc.ours(dt.b64(blob), cmdline=case['cmdline'].strip(), cmdline_b64=None))
        if case['cmdline_b64']:
            dt.assert_valid(sc.ours(dt.b64(blob), cmdline=case['cmdline'], cmdline_b64=None))
        else:
            dt.assert_valid(sc.ours(dt.b64(blob), cmdline=None,
                                    cmdline_b64=dt.b64(case['cmdline'].encode('utf-8'))))


def test_cmdline_b64_non_utf8(tmp_path, rng):
    """Bytes no reference CLI can take (not UTF-8): ours against the table built here.
    An embedded NUL is refused (rc 2): QEMU measures a C string, strlen + 1 bytes."""
    firmware = dt.synthetic_firmware(tmp_path / 'fw.fd', rng)
    kernel = rng.randbytes(10000)
    raw = b'console=ttyS0 \xff\xfe\x80 bad-utf8 embedded-nul'
    sc = dt.Scenario(tmp_path, firmware, kernel=kernel, rng=rng)
    digest = dt.launch_digest(sc.firmware_bytes(), kernel, b'', raw)
    blob = sc.hmac_blob(digest, rng.randbytes(16))
    result = sc.ours(dt.b64(blob), cmdline_b64=base64.b64encode(raw).decode())
    dt.assert_valid(result)
    assert result['digests']['cmdline'] == dt.sha256_hex(raw + b'\0')
    dt.assert_refused(sc.ours(dt.b64(blob), cmdline_b64='not*base64'), 'unsupported', 2, 'cmdline_b64')
    dt.assert_refused(sc.ours(dt.b64(blob), cmdline_b64=base64.b64encode(raw + b'\x00tail').decode()),
                      'unsupported', 2, 'cmdline_b64 contains a NUL byte')


@pytest.mark.parametrize('hash_table,snp_ok', [
    ((0x80c000, 0xaf), True), ((0x80c000, 0x10), True), ((0x80c000, 0), True),
    ((0, 0x400), False), (None, False),
], ids=['size175', 'size16', 'size0', 'base0', 'no-entry'])
def test_unusable_hash_table(hash_table, snp_ok, tmp_path, rng):
    """Disagreement: a hash-table entry that is missing, has base 0 or is smaller than
    the 176-byte table.  QEMU refuses such a launch and so does ours (rc 2);
    sev-snp-measure only checks the entry and its base; virt-qemu-sev-validate checks
    nothing and accepts its own blob."""
    firmware = dt.synthetic_firmware(tmp_path / 'fw.fd', rng, hash_table=hash_table)
    kernel = rng.randbytes(5000)
    sc = dt.Scenario(tmp_path / 'in', firmware, kernel=kernel, cmdline='quiet', rng=rng)
    blob, log = dt.reference_measure(sc, rng)
    proc = dt.run_reference(sc.ref_args(dt.b64(blob)))
    assert (proc.returncode, proc.stdout) == (0, dt.REF_OK)
    if snp_ok:
        assert dt.snp_digest(sc) == log['Measured-data(sha256)']
    else:
        proc = dt.run_snp_measure(sc.snp_args())
        assert proc.returncode != 0 and "doesn't support kernel" in proc.stderr, proc.stderr
    dt.assert_refused(sc.ours(dt.b64(blob)), 'unsupported', 2, 'hash table')


def test_hash_table_exactly_176_bytes(tmp_path, rng):
    """Boundary: an area of exactly 176 bytes is usable: all three agree."""
    firmware = dt.synthetic_firmware(tmp_path / 'fw.fd', rng, hash_table=(0x80c000, 176))
    sc = dt.Scenario(tmp_path / 'in', firmware, kernel=rng.randbytes(7000), cmdline='x', rng=rng)
    blob, log, result = dt.reference_roundtrip(sc, rng)
    assert dt.snp_digest(sc) == result['launch_digest']


@pytest.mark.parametrize('case', params(DEBIAN_DIRECT_BOOT))
def test_debian_ovmf_cannot_do_direct_boot(case, tmp_path, rng):
    """Disagreement: Debian OVMF's hash-table entry has base 0.  Ours and sev-snp-measure
    refuse; virt-qemu-sev-validate computes a measurement anyway (and accepts it)."""
    firmware = dt.DEBIAN_FIRMWARE[case['fw']]
    kernel, initrd = rng.randbytes(rng.randrange(4096, 300000)), rng.randbytes(2000)
    es = dict(policy=0x5, sku=dt.SKUS['Milan'], num_cpus=2) if case['es'] else dict(policy=0x1)
    sc = dt.Scenario(tmp_path, firmware, kernel=kernel, initrd=initrd, cmdline='console=ttyS0',
                     rng=rng, **es)
    # ours
    blob, log = dt.reference_measure(sc, rng)
    result = sc.ours(dt.b64(blob))
    dt.assert_refused(result, 'unsupported', 2, 'hash table')
    assert 'launch_digest' not in result
    # sev-snp-measure
    proc = dt.run_snp_measure(sc.snp_args())
    assert proc.returncode != 0 and "doesn't support kernel" in proc.stderr, (proc.returncode, proc.stderr)
    # virt-qemu-sev-validate: computes firmware || table (|| VMSAs) and accepts its own blob
    image = sc.firmware_bytes()
    vmsas = dt.vmsa_pages(image, sc.sku, sc.num_cpus) if case['es'] else ()
    assert log['Measured-data(sha256)'] == dt.launch_digest(image, kernel, initrd, b'console=ttyS0', vmsas).hex()
    proc = dt.run_reference(sc.ref_args(dt.b64(blob)))
    assert (proc.returncode, proc.stdout) == (0, dt.REF_OK)

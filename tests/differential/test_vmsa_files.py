# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Explicit VMSA files: pages dumped by sev-snp-measure --dump-vmsa (three-way
agreement) and random pages; and libvirt 9.0's 1-vCPU crash."""

from __future__ import annotations

from pathlib import Path

import pytest

import difftools as dt
from diffcases import VMSA_DUMP, VMSA_ONE_CPU, VMSA_RANDOM, params

NONE_TIMES_INT = "unsupported operand type(s) for *: 'NoneType' and 'int'"


def _dump(sc, directory):
    """sev-snp-measure --dump-vmsa in ``directory``: (digest, [pages])."""
    directory.mkdir()
    args = sc.snp_args() + ['--dump-vmsa']
    digest = dt.snp_digest(sc, args=args, cwd=directory)
    pages = [(directory / ('vmsa%d.bin' % index)).read_bytes() for index in range(sc.num_cpus)]
    assert not (directory / ('vmsa%d.bin' % sc.num_cpus)).exists()
    assert all(len(page) == 4096 for page in pages)
    assert all(page == pages[1] for page in pages[1:]), 'the APs share one VMSA'
    return digest, pages


@pytest.mark.parametrize('case', params(VMSA_DUMP))
def test_dumped_vmsa_three_ways(case, tmp_path, rng):
    firmware = dt.firmware_for(case, tmp_path, rng)
    boot = dict(kernel=rng.randbytes(50000), cmdline='root=/dev/vda') if case['boot'] else {}
    sku_sc = dt.Scenario(tmp_path / 'sku', firmware, api=case['api'], policy=case['policy'],
                         num_cpus=case['num_cpus'], sku=case['sku'], rng=rng, **boot)
    digest, pages = _dump(sku_sc, tmp_path / 'dump')
    # The dumped pages are what our init2 variant builds from the same SKU.
    init2_blob, init2 = dt.snp_roundtrip(sku_sc, rng, digest, vmsa_variant='init2')
    assert init2['digests']['vmsa_cpu0'] == dt.sha256_hex(pages[0])
    if case['num_cpus'] > 1:
        assert init2['digests']['vmsa_cpu1'] == dt.sha256_hex(pages[1])

    sc = dt.Scenario(tmp_path / 'files', firmware, api=case['api'], policy=case['policy'],
                     num_cpus=case['num_cpus'], vmsa_cpu0=pages[0],
                     vmsa_cpu1=pages[1] if case['num_cpus'] > 1 else None,
                     tik=sku_sc.tik, tek=sku_sc.tek, **boot)
    # ours with the files validates the measurement made from sev-snp-measure's digest
    result = sc.ours(dt.b64(init2_blob))
    dt.assert_valid(result)
    assert result['launch_digest'] == digest
    if case['num_cpus'] == 1:
        # libvirt 9.0 bug: only --vmsa-cpu0 with 1 vCPU -> None * 0, exit 6.
        proc = dt.run_reference(sc.ref_args(dt.b64(init2_blob)))
        assert proc.returncode == 6 and NONE_TIMES_INT in proc.stderr, (proc.returncode, proc.stderr)
        return
    # three ways: reference digest == sev-snp-measure digest == ours, and the
    # reference accepts the measurement made here from sev-snp-measure's digest.
    blob, log, files_result = dt.reference_roundtrip(sc, rng)
    assert log['Measured-data(sha256)'] == digest == files_result['launch_digest']
    proc = dt.run_reference(sc.ref_args(dt.b64(init2_blob)))
    assert (proc.returncode, proc.stdout) == (0, dt.REF_OK)


@pytest.mark.parametrize('case', params(VMSA_RANDOM))
def test_random_vmsa_pages(case, tmp_path, rng):
    firmware = dt.firmware_for(case, tmp_path, rng)
    cpu0, cpu1 = rng.randbytes(4096), rng.randbytes(4096)
    sc = dt.Scenario(tmp_path / 'in', firmware, api=case['api'], policy=case['policy'],
                     num_cpus=case['num_cpus'], vmsa_cpu0=cpu0, vmsa_cpu1=cpu1, rng=rng)
    blob, log, result = dt.reference_roundtrip(sc, rng)
    expected = dt.launch_digest(sc.firmware_bytes(), vmsas=[cpu0] + [cpu1] * (case['num_cpus'] - 1))
    assert result['launch_digest'] == expected.hex()
    assert result['digests']['vmsa_cpu0'] == dt.sha256_hex(cpu0)
    assert result['digests']['vmsa_cpu1'] == dt.sha256_hex(cpu1)
    # The pages are not interchangeable.
    swapped = dict(vmsa_cpu0=sc.vmsa_cpu1_path, vmsa_cpu1=sc.vmsa_cpu0_path)
    dt.assert_mismatch(sc.ours(dt.b64(blob), **swapped))
    # Explicit files win over the variant switch (it only applies to SKU-built pages).
    dt.assert_valid(sc.ours(dt.b64(blob), vmsa_variant='init2'))


@pytest.mark.parametrize('case', params(VMSA_ONE_CPU))
def test_one_cpu_only_vmsa_cpu0(case, tmp_path, rng):
    """libvirt 9.0 bug (doc 7.1): SEV-ES, --num-cpus 1 with only --vmsa-cpu0 passes the
    usage check, then fails on None * 0 (exit 6).  The measurement is cpu0's VMSA
    alone; ours validates it (checked against sev-snp-measure / the HMAC here)."""
    firmware = dt.firmware_for(case, tmp_path, rng)
    if case['source'] == 'dump':
        sku_sc = dt.Scenario(tmp_path / 'sku', firmware, policy=0x5, num_cpus=1, sku=dt.SKUS['Milan'], rng=rng)
        digest, pages = _dump(sku_sc, tmp_path / 'dump')
        cpu0 = pages[0]
    else:
        cpu0, digest = rng.randbytes(4096), None
    expected = dt.launch_digest(Path(firmware).read_bytes(), vmsas=[cpu0]).hex()
    if digest is not None:
        assert digest == expected
    sc = dt.Scenario(tmp_path / 'in', firmware, policy=0x5, num_cpus=1, vmsa_cpu0=cpu0,
                     vmsa_cpu1=rng.randbytes(4096) if case['with_cpu1'] else None, rng=rng)
    blob, result = dt.snp_roundtrip(sc, rng, expected)
    assert 'vmsa_cpu1' not in result['digests']
    proc = dt.run_reference(sc.ref_args(dt.b64(blob)))
    if case['with_cpu1']:
        # Given a cpu1 page it does not crash, ignores it, and agrees.
        assert (proc.returncode, proc.stdout) == (0, dt.REF_OK), proc.stderr
    else:
        assert proc.returncode == 6 and NONE_TIMES_INT in proc.stderr, (proc.returncode, proc.stderr)

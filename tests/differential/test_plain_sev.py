# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain SEV (and a few SEV-ES policies) with every Debian OVMF build, against
virt-qemu-sev-validate and sev-snp-measure; and the policies where they part."""

from __future__ import annotations

import pytest

import difftools as dt
from diffcases import PLAIN_SEV, RESERVED_POLICY, params


@pytest.mark.parametrize('case', params(PLAIN_SEV))
def test_debian_ovmf_against_references(case, tmp_path, rng):
    firmware = dt.DEBIAN_FIRMWARE[case['fw']]
    sc = dt.Scenario(tmp_path, firmware, api=case['api'], policy=case['policy'],
                     sku=case.get('sku'), num_cpus=case.get('num_cpus'), rng=rng)
    blob, log, result = dt.reference_roundtrip(sc, rng)
    assert result['policy']['value'] == case['policy']
    if not sc.es:
        # sha256 of the file, as sha256sum prints it; and sev-snp-measure agrees.
        assert result['launch_digest'] == dt.file_sha256(firmware)
        assert dt.snp_digest(sc) == result['launch_digest']
    else:
        # The digest re-derived here from the VMSA layout (legacy: MXCSR/FCW 0).
        image = sc.firmware_bytes()
        assert result['launch_digest'] == dt.launch_digest(
            image, vmsas=dt.vmsa_pages(image, case['sku'], case['num_cpus'])).hex()
        # sev-snp-measure builds INIT2 VMSAs: it matches vmsa_variant init2, never legacy.
        digest = dt.snp_digest(sc)
        assert digest != result['launch_digest']
        sc.vmsa_variant = 'init2'
        dt.snp_roundtrip(sc, rng, digest)
        dt.assert_mismatch(sc.ours(dt.b64(blob)))


@pytest.mark.parametrize('case', params(RESERVED_POLICY))
def test_reserved_policy_bits_reference_accepts_ours_refuses(case, tmp_path, rng):
    """Disagreement: bits 6-15 are reserved (firmware refuses such a launch).
    The reference computes and accepts; ours refuses before computing."""
    sc = dt.Scenario(tmp_path, dt.DEBIAN_FIRMWARE['OVMF_CODE'], api=case['api'],
                     policy=case['policy'], rng=rng)
    blob, log = dt.reference_measure(sc, rng)
    proc = dt.run_reference(sc.ref_args(dt.b64(blob)))
    assert (proc.returncode, proc.stdout) == (0, dt.REF_OK), proc.stderr
    assert log['Measured-data(sha256)'] == dt.file_sha256(sc.firmware)
    result = sc.ours(dt.b64(blob))
    dt.assert_refused(result, 'unsupported', 2, 'reserved')
    assert 'launch_digest' not in result and 'computed_measurement' not in result


def test_policy_min_api_above_reported_api(tmp_path, rng):
    """Disagreement: the policy asks for API >= 24.5 but the platform reports 24.4.
    The reference accepts; ours matches the MAC, then refuses as insecure (rc 3)."""
    policy = 0x05180001
    sc = dt.Scenario(tmp_path, dt.DEBIAN_FIRMWARE['OVMF_CODE_4M'], api=(24, 4, 3), policy=policy, rng=rng)
    blob, log = dt.reference_measure(sc, rng)
    proc = dt.run_reference(sc.ref_args(dt.b64(blob)))
    assert (proc.returncode, proc.stdout) == (0, dt.REF_OK)
    dt.assert_refused(sc.ours(dt.b64(blob)), 'insecure', 3, '24.5')
    # One step up and it validates.
    sc2 = dt.Scenario(tmp_path / 'ok', sc.firmware, api=(24, 5, 3), policy=policy, tik=sc.tik, tek=sc.tek)
    dt.reference_roundtrip(sc2, rng)

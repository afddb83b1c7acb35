# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SEV-ES with VMSAs built from a CPU SKU: ``legacy`` against virt-qemu-sev-validate,
``init2`` against sev-snp-measure, 1..16 vCPUs, several SKUs and reset addresses."""

from __future__ import annotations

import pytest

import difftools as dt
from diffcases import SEV_ES, params


@pytest.mark.parametrize('case', params(SEV_ES))
def test_sev_es_sku(case, tmp_path, rng):
    firmware = dt.firmware_for(case, tmp_path, rng)
    boot = {}
    if case['boot']:
        boot = dict(kernel=rng.randbytes(case['kernel_size']), cmdline=case['cmdline'],
                    initrd=rng.randbytes(rng.randrange(0, 100000)) if rng.random() < 0.5 else dt.ABSENT)
    sc = dt.Scenario(tmp_path / 'in', firmware, api=case['api'], policy=case['policy'],
                     num_cpus=case['num_cpus'], sku=case['sku'], rng=rng, **boot)
    image = sc.firmware_bytes()
    table_args = ()
    if case['boot']:
        table_args = (boot['kernel'], b'' if boot['initrd'] is dt.ABSENT else boot['initrd'],
                      (case['cmdline'] or '').encode('utf-8'))

    # legacy (the default) == virt-qemu-sev-validate, also for 1 vCPU with a SKU
    # (the reference multiplies cpu1's VMSA by 0 and measures cpu0's only).
    legacy_blob, log, legacy = dt.reference_roundtrip(sc, rng)
    assert legacy['launch_digest'] == dt.launch_digest(
        image, *table_args, vmsas=dt.vmsa_pages(image, case['sku'], case['num_cpus'])).hex()

    # init2 == sev-snp-measure (MXCSR/FCW set), for every SKU spelling it takes.
    digest = dt.snp_digest(sc, sku_style=case['style'])
    assert digest != legacy['launch_digest']
    assert digest == dt.launch_digest(
        image, *table_args, vmsas=dt.vmsa_pages(image, case['sku'], case['num_cpus'], init2=True)).hex()
    init2_blob, init2 = dt.snp_roundtrip(sc, rng, digest, vmsa_variant='init2')
    assert init2['digests']['firmware'] == legacy['digests']['firmware']
    assert init2['digests']['vmsa_cpu0'] != legacy['digests']['vmsa_cpu0']

    # Each variant refuses the other's measurement; the reference refuses init2's.
    dt.assert_mismatch(sc.ours(dt.b64(init2_blob)))
    dt.assert_mismatch(sc.ours(dt.b64(legacy_blob), vmsa_variant='init2'))
    proc = dt.run_reference(sc.ref_args(dt.b64(init2_blob)))
    assert proc.returncode == 1 and dt.REF_MISMATCH in proc.stderr

    # One vCPU more or less is another measurement.
    if case['num_cpus'] > 1:
        dt.assert_mismatch(sc.ours(dt.b64(legacy_blob), num_cpus=case['num_cpus'] - 1))
    dt.assert_mismatch(sc.ours(dt.b64(legacy_blob), num_cpus=case['num_cpus'] + 1))


def test_one_cpu_sku_reference_behaviour(tmp_path, rng):
    """num_cpus=1 with a SKU: the reference logs a cpu1 VMSA but measures cpu0 only
    (vmsa_cpu1 * 0), exit 0 on its blob; ours agrees and reports no vmsa_cpu1 digest."""
    sc = dt.Scenario(tmp_path, dt.DEBIAN_FIRMWARE['OVMF_CODE'], policy=0x5, num_cpus=1,
                     sku=dt.SKUS['Genoa'], rng=rng)
    blob, log, result = dt.reference_roundtrip(sc, rng)
    assert 'VMSA CPU 1(sha256)' in log           # built and logged ...
    assert 'vmsa_cpu1' not in result['digests']  # ... but not measured
    image = sc.firmware_bytes()
    assert result['launch_digest'] == dt.launch_digest(image, vmsas=dt.vmsa_pages(image, sc.sku, 1)).hex()


def test_sku_firmware_without_footer(tmp_path, rng):
    """Agreement: SEV-ES from a SKU needs the firmware's reset block; with no OVMF
    footer at all the reference stops with code 6, ours with a usage error (2, bad input,
    since issue 10; 6 is the class of our own bugs)."""
    firmware = tmp_path / 'random.fd'
    firmware.write_bytes(rng.randbytes(65536))
    sc = dt.Scenario(tmp_path, firmware, policy=0x5, num_cpus=2, sku=dt.SKUS['Rome'], rng=rng)
    measurement = dt.b64(rng.randbytes(48))
    proc = dt.run_reference(sc.ref_args(measurement))
    assert proc.returncode == 6 and 'OVMF footer GUID not found' in proc.stderr
    dt.assert_refused(sc.ours(measurement), 'unsupported', 2, 'reset block')
    # Plain SEV needs no footer: both measure the bytes.
    plain = dt.Scenario(tmp_path / 'plain', firmware, policy=0x1, rng=rng)
    blob, log, result = dt.reference_roundtrip(plain, rng)
    assert result['launch_digest'] == dt.file_sha256(firmware)


def test_malformed_footer_plain_sev(tmp_path, rng):
    """Disagreement: an image with the OVMF footer GUID but a table length reaching
    before the start of the image.  For plain SEV the reference never parses the
    footer and accepts; ours fails closed on the malformed firmware (usage error, rc 2,
    naming the firmware)."""
    image = bytearray(dt.synthetic.build_image(body_size=64))
    image[-50:-48] = (0xffff).to_bytes(2, 'little')
    firmware = tmp_path / 'bad.fd'
    firmware.write_bytes(bytes(image))
    sc = dt.Scenario(tmp_path / 'in', firmware, policy=0x1, rng=rng)
    blob, log = dt.reference_measure(sc, rng)
    proc = dt.run_reference(sc.ref_args(dt.b64(blob)))
    assert (proc.returncode, proc.stdout) == (0, dt.REF_OK)
    assert log['Measured-data(sha256)'] == dt.file_sha256(firmware)
    dt.assert_refused(sc.ours(dt.b64(blob)), 'unsupported', 2, 'footer')
    assert str(firmware) in sc.ours(dt.b64(blob))['msg']

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Usage errors and their codes on both sides, including where the codes differ
(the reference crashes with 6, or computes and says 0/1, where ours says 2)."""

from __future__ import annotations

import pytest

import difftools as dt

CODE = dt.DEBIAN_FIRMWARE['OVMF_CODE']
MILAN = dt.SKUS['Milan']


def _page(size):
    return lambda rng: rng.randbytes(size)


# id: (scenario kwargs (values may be callables of rng), ours overrides,
#      extra reference args, (our reason, our rc, text in our msg), (reference rc, text in its stderr))
BOTH_REFUSE = {
    'tik-15-bytes': (dict(tik=_page(15)), {}, [], ('unsupported', 2, 'tik'), (2, 'Expected 16 bytes in TIK')),
    'tek-17-bytes': (dict(tek=_page(17)), {}, [], ('unsupported', 2, 'tek'), (2, 'Expected 16 bytes in TEK')),
    'tk-31-bytes': (dict(keys='tk', tik=_page(15)), {}, [], ('unsupported', 2, 'tk'), (2, 'Expected 32 bytes')),
    'tk-with-tik': (dict(), dict(tk='@tik'), ['--tk=@tik'], ('unsupported', 2, 'mutually exclusive'),
                    (2, 'mutually exclusive')),
    'vmsa-cpu0-4095-bytes': (dict(policy=0x5, num_cpus=2, vmsa_cpu0=_page(4095), vmsa_cpu1=_page(4096)), {}, [],
                             ('unsupported', 2, '4096'), (2, 'VMSA must be 4096 bytes')),
    'vmsa-cpu1-4097-bytes': (dict(policy=0x5, num_cpus=2, vmsa_cpu0=_page(4096), vmsa_cpu1=_page(4097)), {}, [],
                             ('unsupported', 2, '4096'), (2, 'VMSA must be 4096 bytes')),
    'initrd-without-kernel': (dict(initrd=_page(100)), {}, [], ('unsupported', 2, 'kernel'),
                              (2, 'require --kernel')),
    'cmdline-without-kernel': (dict(cmdline='quiet'), {}, [], ('unsupported', 2, 'kernel'),
                               (2, 'require --kernel')),
    'sku-without-stepping': (dict(policy=0x5, num_cpus=2, sku=(25, 1, None)), {}, [],
                             ('unsupported', 2, 'cpu_stepping'), (2, 'CPU SKU needs family, model and stepping')),
    'sku-family-only-plain-sev': (dict(policy=0x1, sku=(25, None, None)), {}, [],
                                  ('unsupported', 2, 'cpu_model'), (2, 'CPU SKU needs family, model and stepping')),
    'sku-and-vmsa-file': (dict(policy=0x5, num_cpus=2, sku=MILAN, vmsa_cpu0=_page(4096)), {}, [],
                          ('unsupported', 2, 'mutually exclusive'), (2, 'mutually exclusive with CPU SKU')),
    'vmsa-cpu1-without-cpu0': (dict(policy=0x5, num_cpus=2, vmsa_cpu1=_page(4096)), {}, [],
                               ('unsupported', 2, 'vmsa_cpu0'), (2, 'also requires VMSA for boot CPU')),
    'es-without-num-cpus': (dict(policy=0x5, sku=MILAN), {}, [], ('unsupported', 2, 'num_cpus'),
                            (2, 'Number of virtual CPUs must be specified')),
    'es-without-vmsa-or-sku': (dict(policy=0x5, num_cpus=2), {}, [], ('unsupported', 2, 'vmsa_cpu0'),
                               (2, 'VMSA for boot CPU required')),
    'es-smp-without-cpu1': (dict(policy=0x5, num_cpus=3, vmsa_cpu0=_page(4096)), {}, [],
                            ('unsupported', 2, 'vmsa_cpu1'), (2, 'VMSA for additional CPUs required')),
    'secrets-without-output-files': (dict(secrets=[('luks-key', b'x')]), {}, ['--inject-secret=luks-key:@tik'],
                                     None, (2, 'secret-header')),
    # Codes differ: the reference crashes (6) where ours refuses the input (2).
    'api-major-256': (dict(api=(256, 1, 1)), {}, [], ('unsupported', 2, 'api_major'), (6, 'int too big to convert')),
    'api-minor-minus-1': (dict(api=(1, -1, 1)), {}, [], ('unsupported', 2, 'api_minor'),
                          (6, "can't convert negative int to unsigned")),
    'build-id-256': (dict(api=(1, 1, 256)), {}, [], ('unsupported', 2, 'build_id'), (6, 'int too big to convert')),
    'policy-2**32': (dict(policy=1 << 32), {}, [], ('unsupported', 2, 'policy'), (6, 'int too big to convert')),
    'measurement-not-base64': (dict(), dict(measurement='not base64!!'), ['--measurement=not base64!!'],
                               ('unsupported', 2, 'base64'), (6, 'base64')),
    'measurement-bad-padding': (dict(), dict(measurement='abc'), ['--measurement=abc'],
                                ('unsupported', 2, 'base64'), (6, 'Incorrect padding')),
    'missing-kernel-file': (dict(firmware='synthetic'), dict(kernel='@missing'), ['--kernel=@missing'],
                            ('unsupported', 2, 'cannot read'), (6, 'No such file')),
    # Codes differ: the reference computes a mismatch (1) from what it can decode.
    'measurement-47-bytes': (dict(), dict(measurement='@47'), ['--measurement=@47'],
                             ('unsupported', 2, '48 bytes'), (1, dt.REF_MISMATCH)),
    'measurement-empty': (dict(), dict(measurement=''), ['--measurement='],
                          ('unsupported', 2, '48 bytes'), (1, dt.REF_MISMATCH)),
}


@pytest.mark.parametrize('name', list(BOTH_REFUSE))
def test_usage_errors(name, tmp_path):
    import random
    rng = random.Random('1234-' + name)
    kwargs, overrides, ref_extra, ours_expect, ref_expect = BOTH_REFUSE[name]
    kwargs = dict((key, value(rng) if callable(value) else value) for key, value in kwargs.items())
    firmware = kwargs.pop('firmware', CODE)
    if firmware == 'synthetic':
        firmware = dt.synthetic_firmware(tmp_path / 'fw.fd', rng)
    sc = dt.Scenario(tmp_path, firmware, rng=rng, **kwargs)
    subst = {'@tik': getattr(sc, 'tik_path', None) or sc.tk_path, '@missing': str(tmp_path / 'no-such-file'),
             '@47': dt.b64(rng.randbytes(47))}

    def fill(value):
        for key, real in subst.items():
            if isinstance(value, str) and key in value:
                value = value.replace(key, real)
        return value

    measurement = dt.b64(rng.randbytes(48))
    if ours_expect is not None:
        options = dict((key, fill(value)) for key, value in overrides.items())
        result = sc.ours(options.pop('measurement', measurement), **options)
        dt.assert_refused(result, *ours_expect)
        assert 'launch_digest' not in result
    args = sc.ref_args(measurement) + [fill(arg) for arg in ref_extra]
    proc = dt.run_reference(args)
    ref_rc, ref_text = ref_expect
    assert proc.returncode == ref_rc and ref_text in proc.stderr, (proc.returncode, proc.stderr)
    assert 'OK' not in proc.stdout


def _ref_accepts_own(sc, rng):
    blob, log = dt.reference_measure(sc, rng)
    proc = dt.run_reference(sc.ref_args(dt.b64(blob)))
    assert (proc.returncode, proc.stdout) == (0, dt.REF_OK), proc.stderr
    return blob, log


@pytest.mark.parametrize('extra,text', [
    (dict(sku=MILAN, num_cpus=4), 'no ES bit'),
    (dict(vmsa_cpu0=b'\x01' * 4096, vmsa_cpu1=b'\x02' * 4096, num_cpus=2), 'no ES bit'),
], ids=['sku', 'vmsa-files'])
def test_cpu_state_with_plain_sev_policy(extra, text, tmp_path, rng):
    """Disagreement: CPU state given for a plain SEV policy.  The reference ignores it
    (the digest is the firmware's) and accepts; ours refuses the contradiction (rc 2)."""
    sc = dt.Scenario(tmp_path, CODE, policy=0x3, rng=rng, **extra)
    blob, log = _ref_accepts_own(sc, rng)
    assert log['Measured-data(sha256)'] == dt.file_sha256(CODE)
    dt.assert_refused(sc.ours(dt.b64(blob)), 'unsupported', 2, text)
    # Without the CPU state ours validates the same blob.
    drop = dict(cpu_family=None, cpu_model=None, cpu_stepping=None, vmsa_cpu0=None, vmsa_cpu1=None)
    dt.assert_valid(sc.ours(dt.b64(blob), **drop))


def test_num_cpus_zero(tmp_path, rng):
    """Disagreement: SEV-ES with num_cpus 0.  The reference measures cpu0's VMSA
    (vmsa_cpu1 * -1 == b'') and accepts; ours refuses (rc 2)."""
    sc = dt.Scenario(tmp_path, CODE, policy=0x5, num_cpus=0, sku=MILAN, rng=rng)
    blob, log = _ref_accepts_own(sc, rng)
    image = sc.firmware_bytes()
    assert log['Measured-data(sha256)'] == dt.launch_digest(image, vmsas=dt.vmsa_pages(image, MILAN, 1)).hex()
    dt.assert_refused(sc.ours(dt.b64(blob)), 'unsupported', 2, 'num_cpus')
    dt.assert_valid(sc.ours(dt.b64(blob), num_cpus=1))


@pytest.mark.parametrize('sku', [(25, 1, 17), (25, 256, 1), (0x200, 1, 1)], ids=['stepping17', 'model256', 'family512'])
def test_sku_out_of_range(sku, tmp_path, rng):
    """Disagreement: a SKU CPUID cannot encode.  The reference masks it (stepping & 0xf,
    model & 0xff, family & 0xfff) and accepts; ours refuses (rc 2)."""
    sc = dt.Scenario(tmp_path, CODE, policy=0x5, num_cpus=2, sku=sku, rng=rng)
    blob, log = _ref_accepts_own(sc, rng)
    dt.assert_refused(sc.ours(dt.b64(blob)), 'unsupported', 2, 'cpu_')


def test_measurement_49_bytes(tmp_path, rng):
    """Disagreement: a real measurement with one byte appended.  The reference reads
    bytes 0..47 and accepts; ours wants exactly 48 bytes (rc 2)."""
    sc = dt.Scenario(tmp_path, CODE, policy=0x1, rng=rng)
    blob, log = dt.reference_measure(sc, rng)
    longer = dt.b64(blob + b'\x00')
    proc = dt.run_reference(sc.ref_args(longer))
    assert (proc.returncode, proc.stdout) == (0, dt.REF_OK)
    dt.assert_refused(sc.ours(longer), 'unsupported', 2, '48 bytes')
    dt.assert_valid(sc.ours(dt.b64(blob)))


def test_owner_requirements_after_match(tmp_path, rng):
    """Ours only: require_policy / min_api_version / min_build_id, checked once the
    MAC has authenticated policy and version (no reference option to compare with)."""
    sc = dt.Scenario(tmp_path, CODE, api=(1, 55, 21), policy=0x3, rng=rng)
    blob, log, result = dt.reference_roundtrip(sc, rng)
    measurement = dt.b64(blob)
    dt.assert_valid(sc.ours(measurement, require_policy=['NODBG', 'NOKS'], min_api_version='1.55', min_build_id=21))
    dt.assert_refused(sc.ours(measurement, require_policy=['ES']), 'config', 4, 'ES')
    dt.assert_refused(sc.ours(measurement, min_api_version='1.56'), 'insecure', 3, '1.56')
    dt.assert_refused(sc.ours(measurement, min_build_id=22), 'insecure', 3, '22')
    # On a mismatch the requirements are not the reason.
    dt.assert_mismatch(sc.ours(dt.b64(dt.flip_bit(blob, rng)), require_policy=['ES']))


def test_missing_firmware_file(tmp_path, rng):
    """A firmware path that does not exist: the reference crashes (FileNotFoundError,
    exit 6); ours refuses it as bad input naming the firmware: 'unsupported', rc 2."""
    sc = dt.Scenario(tmp_path, tmp_path / 'missing.fd', rng=rng)
    measurement = dt.b64(rng.randbytes(48))
    proc = dt.run_reference(sc.ref_args(measurement))
    assert proc.returncode == 6 and 'No such file' in proc.stderr
    dt.assert_refused(sc.ours(measurement), 'unsupported', 2, 'missing.fd')

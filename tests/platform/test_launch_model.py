# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Known answers for the EMULATED platform's launch digest (launch_model) against the references:
sev-snp-measure (digest, dumped VMSAs), virt-qemu-sev-validate (the whole measurement, with the
platform's own LAUNCH_START/LAUNCH_MEASURE), and QEMU 7.2 itself for the CPU models' F/M/S."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import subprocess
import sys

import pytest

from ansible_collections.confidential.sev.tests.platform import guest_owner as owner
from ansible_collections.confidential.sev.tests.platform import launch_model as lm
from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw

OVMF_CODE = '/usr/share/OVMF/OVMF_CODE.fd'
OVMF_CODE_4M = '/usr/share/OVMF/OVMF_CODE_4M.fd'
QEMU = '/usr/bin/qemu-system-x86_64'
VALIDATE = '/usr/bin/virt-qemu-sev-validate'
SNP_MEASURE = os.path.join(os.path.dirname(sys.executable), 'sev-snp-measure')
CMDLINE = 'console=ttyS0  root=/dev/vda1 '  # repeated and trailing spaces are measured as given
MODELS = {'EPYC': (23, 1, 2), 'EPYC-Rome': (23, 49, 0), 'EPYC-Milan': (25, 1, 1)}


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp('kat')
    paths = {'firmware': lm.patch_footer_areas(OVMF_CODE, str(base / 'OVMF_CODE.sev.fd')),
             'kernel': str(base / 'bzImage'), 'initrd': str(base / 'initrd.img')}
    with open(paths['kernel'], 'wb') as stream:
        stream.write(os.urandom(300000))
    with open(paths['initrd'], 'wb') as stream:
        stream.write(os.urandom(100000))
    paths['dir'] = str(base)
    return paths


@pytest.fixture(scope='module')
def platform():
    return fw.EmulatedPlatform(api=(1, 55), build_id=21)


# ---- the footer, the table, the signature -----------------------------------------------------------

def test_debian_footer_as_qemu_reads_it(files):
    debian = lm.Firmware(OVMF_CODE)
    assert debian.hash_table_area == (0, 0) and debian.secret_area == (0, 0)
    assert debian.reset_address() == 0x0080b004
    assert lm.Firmware(OVMF_CODE_4M).reset_address() == 0x00808004
    patched = lm.Firmware(files['firmware'])
    assert patched.hash_table_area == (0x810c00, 0x400) and patched.secret_area == (0x810000, 0xc00)
    with open(OVMF_CODE, 'rb') as stream:
        original = stream.read()
    differing = [offset for offset in range(len(original)) if original[offset] != patched.image[offset]]
    assert len(differing) <= 16 and len(patched.image) == len(original)


def test_footer_without_table_or_broken_is_absent():
    assert lm.footer_entries(bytes(4096)) == {}
    image = bytearray(4096)
    image[-48:-32] = lm.FOOTER_TABLE
    image[-50:-48] = struct.pack('<H', 5000)
    assert lm.footer_entries(bytes(image)) == {}
    with pytest.raises(lm.QemuRefusal) as info:
        firmware = lm.Firmware.__new__(lm.Firmware)
        firmware.entries = {}
        firmware.reset_address()
    assert info.value.lines == ('SEV information block/Firmware GUID Table block not found in pflash rom',
                                'failed to locate and/or save reset vector')


def test_hashes_table_layout():
    kernel = hashlib.sha256(b'kernel').digest()
    table = lm.hashes_table(kernel)
    assert len(table) == 176 and table[168:] == bytes(8)
    assert table[:16] == bytes.fromhex('06d63894224fc94cb479a793d411fd21')
    assert struct.unpack('<H', table[16:18]) == (168,)
    assert table[18 + 18:18 + 50] == hashlib.sha256(b'\0').digest()
    assert table[68 + 18:68 + 50] == hashlib.sha256(b'').digest()
    assert table[118 + 18:118 + 50] == kernel
    assert lm.hashes_table(kernel, cmdline=' a  b ')[36:68] == hashlib.sha256(b' a  b \0').digest()


@pytest.mark.parametrize('fms, signature', [
    ((23, 1, 2), 0x800f12), ((23, 49, 0), 0x830f10), ((25, 1, 1), 0xa00f11), ((25, 17, 0), 0xa10f10),
    ((26, 0, 0), 0xb00f00), ((15, 107, 1), 0x60fb1)])
def test_cpu_signature(fms, signature):
    assert lm.cpu_signature(*fms) == signature


def test_cpu_option_resolution():
    assert lm.resolve_cpu(None) == ('qemu64', (15, 107, 1))
    assert lm.resolve_cpu('EPYC-Rome,x2apic=on,monitor=off') == ('EPYC-Rome', (23, 49, 0))
    assert lm.resolve_cpu('EPYC,family=25,model=1,stepping=1') == ('EPYC', (25, 1, 1))
    assert lm.resolve_cpu('host') == ('host', None)


def test_cpu_table_agrees_with_sev_snp_measure():
    from sevsnpmeasure import vcpu_types  # the reference's own table
    shared = [name for name in lm.CPU_MODELS if name in vcpu_types.CPU_SIGS]
    assert len(shared) >= 8
    for name in shared:
        assert lm.cpu_signature(*lm.CPU_MODELS[name]) == vcpu_types.CPU_SIGS[name], name


def test_cpu_table_agrees_with_qemu_7_2():
    """family/model/stepping as the real QEMU 7.2 sets them (qom-get on its first vCPU)."""
    for model in ('EPYC', 'EPYC-Rome', 'EPYC-Milan', 'qemu64'):
        commands = ['{"execute": "qmp_capabilities"}'] + [
            json.dumps({'execute': 'qom-get', 'arguments': {'path': '/machine/unattached/device[0]', 'property': p}})
            for p in ('family', 'model', 'stepping')] + ['{"execute": "quit"}']
        done = subprocess.run([QEMU, '-M', 'q35', '-accel', 'tcg', '-cpu', model, '-S', '-nodefaults',
                               '-display', 'none', '-qmp', 'stdio'], input='\n'.join(commands) + '\n',
                              capture_output=True, text=True, timeout=60, check=False)
        replies = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        values = [reply['return'] for reply in replies if isinstance(reply.get('return'), int)]
        assert tuple(values) == lm.CPU_MODELS[model], (model, done.stdout, done.stderr)


# ---- refusals as QEMU 7.2 words them ---------------------------------------------------------------

def test_kernel_hashes_need_a_usable_table_entry(files, tmp_path):
    with pytest.raises(lm.QemuRefusal) as info:
        lm.LaunchPlan(OVMF_CODE, 0x1, kernel_hashes=True, kernel=files['kernel'])
    assert info.value.lines == ('SEV: guest firmware hashes table area is invalid (base=0x0 size=0x0)',)
    small = lm.patch_footer_areas(OVMF_CODE, str(tmp_path / 'small.fd'), hash_table=(0x810c00, 175))
    with pytest.raises(lm.QemuRefusal) as info:
        lm.LaunchPlan(small, 0x1, kernel_hashes=True, kernel=files['kernel'])
    assert 'size=0xaf' in info.value.lines[0]
    blank = bytearray(4096)
    blank[-48:-32] = lm.FOOTER_TABLE
    blank[-50:-48] = struct.pack('<H', 18)
    (tmp_path / 'blank.fd').write_bytes(bytes(blank))
    with pytest.raises(lm.QemuRefusal) as info:
        lm.LaunchPlan(str(tmp_path / 'blank.fd'), 0x1, kernel_hashes=True, kernel=files['kernel'])
    assert info.value.lines == ('SEV: kernel specified but guest firmware has no hashes table GUID',)
    # Without kernel-hashes the kernel is not measured, and without a kernel there is no table.
    assert lm.LaunchPlan(OVMF_CODE, 0x1, kernel=files['kernel']).digest().hex() == lm.Firmware(OVMF_CODE).sha256
    assert [p[0] for p in lm.LaunchPlan(files['firmware'], 0x1, kernel_hashes=True).pieces] == ['firmware']


def test_sev_es_refusals(tmp_path):
    with pytest.raises(lm.QemuRefusal) as info:
        lm.LaunchPlan(OVMF_CODE, 0x5, cpu_option='host')
    assert 'EMULATED' in info.value.lines[0] and "'host'" in info.value.lines[0]
    with open(OVMF_CODE, 'rb') as stream:
        image = bytearray(stream.read())
    offset = image.find(lm.SEV_ES_RESET_BLOCK)
    struct.pack_into('<I', image, offset - 2 - 4, 0)
    (tmp_path / 'zero-reset.fd').write_bytes(bytes(image))
    with pytest.raises(lm.QemuRefusal) as info:
        lm.LaunchPlan(str(tmp_path / 'zero-reset.fd'), 0x5)
    assert info.value.lines[0] == 'SEV-ES reset address is zero'


# ---- against sev-snp-measure ----------------------------------------------------------------------------

def snp_measure(args, cwd):
    done = subprocess.run([SNP_MEASURE, '--output-format', 'hex'] + args, capture_output=True, text=True,
                          cwd=cwd, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def with_init2_fpu(page):
    """The KVM_SEV_INIT2 variant sev-snp-measure builds: MXCSR 0x1f80, x87 FCW 0x037f (doc section 4)."""
    page = bytearray(page)
    struct.pack_into('<I', page, 0x408, 0x1f80)
    struct.pack_into('<H', page, 0x410, 0x037f)
    return bytes(page)


@pytest.mark.parametrize('with_kernel', [False, True])
def test_sev_digest_matches_sev_snp_measure(files, with_kernel):
    args = ['--mode', 'sev', '--ovmf', files['firmware']]
    plan_args = {}
    if with_kernel:
        args += ['--kernel', files['kernel'], '--initrd', files['initrd'], '--append', CMDLINE]
        plan_args = dict(kernel_hashes=True, kernel=files['kernel'], initrd=files['initrd'], cmdline=CMDLINE)
    plan = lm.LaunchPlan(files['firmware'], 0x1, **plan_args)
    assert plan.digest().hex() == snp_measure(args, files['dir'])
    assert len(plan.pieces) == (2 if with_kernel else 1)


@pytest.mark.parametrize('vcpus', [1, 2, 4])
@pytest.mark.parametrize('model', sorted(MODELS))
def test_sev_es_digest_and_vmsas_match_sev_snp_measure(files, tmp_path, vcpus, model):
    args = ['--mode', 'seves', '--vcpus', str(vcpus), '--vcpu-type', model, '--ovmf', files['firmware'],
            '--kernel', files['kernel'], '--append', CMDLINE, '--dump-vmsa']
    expected = snp_measure(args, str(tmp_path))
    plan = lm.LaunchPlan(files['firmware'], 0x5, vcpus, model, True, files['kernel'], None, CMDLINE)
    vmsas = [data for label, data in plan.pieces if label.startswith('vmsa')]
    assert len(vmsas) == vcpus
    for index, page in enumerate(vmsas):
        reference = (tmp_path / ('vmsa%d.bin' % index)).read_bytes()
        assert with_init2_fpu(page) == reference, index
        assert page[0x408:0x40c] == bytes(4) and page[0x410:0x412] == bytes(2)  # QEMU 7.2: legacy init
    digest = hashlib.sha256()
    for label, data in plan.pieces:
        digest.update(with_init2_fpu(data) if label.startswith('vmsa') else data)
    assert digest.hexdigest() == expected


# ---- against virt-qemu-sev-validate (the whole measurement, through the emulated firmware) --------------

CASES = [(0x1, 1, 'EPYC', False), (0x3, 2, 'EPYC-Rome', True), (0x1, 4, 'EPYC-Milan', 'kernel-only')] + [
    (0x5, vcpus, model, kernel) for vcpus in (1, 2, 4) for model in sorted(MODELS) for kernel in (False, True)]


@pytest.mark.parametrize('policy, vcpus, model, kernel', CASES)
def test_measurement_validates_with_virt_qemu_sev_validate(files, platform, tmp_path, policy, vcpus, model, kernel):
    godh, session, tek, tik = owner.make_session(platform.pdh_cert, policy)
    plan_args, ref_args = {}, []
    if kernel:
        plan_args = dict(kernel_hashes=True, kernel=files['kernel'])
        ref_args = ['--kernel', files['kernel']]
        if kernel != 'kernel-only':
            plan_args.update(initrd=files['initrd'], cmdline=CMDLINE)
            ref_args += ['--initrd', files['initrd'], '--cmdline=' + CMDLINE]
    plan = lm.LaunchPlan(files['firmware'], policy, vcpus, model, **plan_args)
    handle = platform.launch_start(policy, godh, session)
    for label, data in plan.pieces:
        if label.startswith('vmsa'):
            platform.launch_update_vmsa(handle, data)
        else:
            platform.launch_update_data(handle, data)
    blob = platform.launch_measure(handle)
    (tmp_path / 'tik').write_bytes(tik)
    (tmp_path / 'tek').write_bytes(tek)
    args = ['/usr/bin/python3', VALIDATE, '--measurement', base64.b64encode(blob).decode(),
            '--api-major', '1', '--api-minor', '55', '--build-id', '21', '--policy', str(policy),
            '--firmware', files['firmware'], '--tik', str(tmp_path / 'tik'), '--tek', str(tmp_path / 'tek')] + ref_args
    if policy & lm.POLICY_ES:
        family, cpu_model, stepping = MODELS[model]
        args += ['--num-cpus', str(vcpus), '--cpu-family', str(family), '--cpu-model', str(cpu_model),
                 '--cpu-stepping', str(stepping)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # One vCPU more (SEV-ES) or no kernel table is another measurement: the reference then says so.
    wrong = list(args)
    if policy & lm.POLICY_ES:
        wrong[wrong.index('--num-cpus') + 1] = str(vcpus + 1)
    else:
        wrong[wrong.index('--policy') + 1] = str(policy ^ 0x2)
    assert subprocess.run(wrong, capture_output=True, timeout=60, check=False).returncode == 1

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reference values (plugins/module_utils/reference_values.py and the
confidential.sev.sev_reference_measurement module) against the references.

One set of combinations is computed in a single call (each file hashed once);
then every record is checked on its own:

* against virt-qemu-sev-validate's ``--debug`` log (``Measured-data(sha256)``
  and the component digests): plain SEV, and SEV-ES from the CPU SKU for the
  legacy variant, or from VMSA files written by difftools from the documented
  layout for the init2 variant and for non-zero SEV features (the reference
  tool builds legacy VMSAs without features only);
* against sev-snp-measure (``--mode sev`` / ``--mode seves``, hex), which
  models the init2 variant without features.

Then simple-kbs' own workflow (its README: ``sev-snp-measure
--output-format=base64``) gives the strings ``allowed_digests`` must hold, and
one ansible-playbook run checks the module: output file, mode 0644,
``changed`` only on a new content, check mode, diff, relative paths, refusals.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import difftools as dt

from ansible_collections.confidential.sev.plugins.module_utils import reference_values as rv

ANSIBLE_BIN = Path(sys.executable).parent
if not (ANSIBLE_BIN / 'ansible-playbook').exists():
    ANSIBLE_BIN = dt.REPO / '.venv' / 'bin'

# The combinations: every record of both groups is one test.
CMDLINE = '  console=ttyS0   root=/dev/vda1 quiet \t'
GROUPS = {
    # firmware with a usable hash table x two direct boots x SEV and SEV-ES
    'boot': dict(firmware=('synthetic', 'amdsev-suffix'), boots=('k1+initrd+cmdline', 'k2'),
                 num_cpus=(1, 3), skus=('Milan', 'Genoa', '23/49/0'), variants=('legacy', 'init2'),
                 features=(0, 0x20)),
    # Debian's builds (no usable hash table): no direct boot
    'debian': dict(firmware=('OVMF_CODE', 'OVMF_CODE_4M'), boots=(None,), num_cpus=(2, 4),
                   skus=('Turin', 'EPYC'), variants=('legacy', 'init2'), features=(0,)),
}


def combinations(group):
    """The records' combinations, in the order the module documents."""
    spec = GROUPS[group]
    out = []
    for firmware, boot in itertools.product(spec['firmware'], spec['boots']):
        out.append(dict(group=group, firmware=firmware, boot=boot, mode='sev'))
        for num_cpus, sku, variant, features in itertools.product(
                spec['num_cpus'], spec['skus'], spec['variants'], spec['features']):
            out.append(dict(group=group, firmware=firmware, boot=boot, mode='seves', num_cpus=num_cpus,
                            sku=sku, variant=variant, features=features))
    return out


def case_id(case):
    parts = [case['firmware'], case['boot'] or 'noboot', case['mode']]
    if case['mode'] == 'seves':
        parts += ['%dcpu' % case['num_cpus'], case['sku'].replace('/', '.'), case['variant'],
                  'f0x%x' % case['features']]
    return '-'.join(parts)


CASES = [(group, index, case) for group in GROUPS for index, case in enumerate(combinations(group))]


@pytest.fixture(scope='module')
def computed(tmp_path_factory):
    """The files (deterministic bytes) and the records of each group, computed once per worker."""
    rng = random.Random(4321)
    work = tmp_path_factory.mktemp('reference-values')
    paths = {
        'synthetic': dt.synthetic_firmware(work / 'synthetic.fd', rng),
        'amdsev-suffix': dt.amdsev_suffix_firmware(work / 'amdsev.fd', rng),
        'OVMF_CODE': dt.DEBIAN_FIRMWARE['OVMF_CODE'],
        'OVMF_CODE_4M': dt.DEBIAN_FIRMWARE['OVMF_CODE_4M'],
    }
    for name, size in (('k1', 1 << 20), ('k2', 70000), ('initrd', 300000)):
        path = work / name
        path.write_bytes(rng.randbytes(size))
        paths[name] = str(path)
    boots = {'k1+initrd+cmdline': dict(kernel=paths['k1'], initrd=paths['initrd'], cmdline=CMDLINE),
             'k2': dict(kernel=paths['k2'])}
    records, outputs = {}, {}
    for group, spec in GROUPS.items():
        params = dict(
            firmware=[paths[name] for name in spec['firmware']],
            direct_boot=[boots[name] for name in spec['boots'] if name is not None],
            modes=['sev', 'seves'], num_cpus=list(spec['num_cpus']), cpu_skus=list(spec['skus']),
            vmsa_variants=list(spec['variants']), vmsa_sev_features=list(spec['features']),
            format='simple-kbs', allowed_policies=[0x1, 0x5], dest=str(work / 'unused'))
        dummy, records[group], outputs[group] = rv.build(params)
    keys = {'tik': work / 'tik.bin', 'tek': work / 'tek.bin'}
    for path in keys.values():
        path.write_bytes(rng.randbytes(16))
    return dict(paths=paths, boots=boots, records=records, outputs=outputs, keys=keys, work=work)


def _flags(case, computed):
    """Firmware and boot arguments: (virt-qemu-sev-validate, sev-snp-measure)."""
    paths = computed['paths']
    ref = ['--firmware=%s' % paths[case['firmware']]]
    snp = ['--ovmf', paths[case['firmware']]]
    if case['boot'] is not None:
        boot = computed['boots'][case['boot']]
        ref.append('--kernel=%s' % boot['kernel'])
        snp += ['--kernel', boot['kernel']]
        if boot.get('initrd'):
            ref.append('--initrd=%s' % boot['initrd'])
            snp += ['--initrd', boot['initrd']]
        if boot.get('cmdline') is not None:
            ref.append('--cmdline=%s' % boot['cmdline'])
            snp.append('--append=%s' % boot['cmdline'])
    return ref, snp


def _reference_log(case, computed, tmp_path, record):
    """virt-qemu-sev-validate --debug on a dummy measurement: its log (launch digest and parts)."""
    ref, dummy = _flags(case, computed)
    args = ['--measurement=%s' % dt.b64(bytes(48)), '--api-major=1', '--api-minor=55', '--build-id=21',
            '--tik=%s' % computed['keys']['tik'], '--tek=%s' % computed['keys']['tek']] + ref
    if case['mode'] == 'sev':
        args.append('--policy=1')
    else:
        args += ['--policy=5', '--num-cpus=%d' % case['num_cpus']]
        family, model, stepping = record['cpu_family'], record['cpu_model'], record['cpu_stepping']
        if case['variant'] == 'legacy' and case['features'] == 0:
            args += ['--cpu-family=%d' % family, '--cpu-model=%d' % model, '--cpu-stepping=%d' % stepping]
        else:
            # VMSA files from the documented layout (difftools, not plugins/), with the
            # FPU values of init2 and the SEV features at 0x3b0.
            image = Path(computed['paths'][case['firmware']]).read_bytes()
            pages = dt.vmsa_pages(image, (family, model, stepping), 2, init2=case['variant'] == 'init2')
            for index, page in enumerate(pages):
                page = bytearray(page)
                struct.pack_into('<Q', page, 0x3b0, case['features'])
                path = tmp_path / ('vmsa%d.bin' % index)
                path.write_bytes(bytes(page))
                args.append('--vmsa-cpu%d=%s' % (index, path))
    proc = dt.run_reference(args, debug=True)
    assert proc.returncode == 1 and dt.REF_MISMATCH in proc.stderr, (proc.returncode, proc.stderr)
    return dt.parse_debug(proc.stderr)


@pytest.mark.parametrize('group,index,case', CASES, ids=[case_id(case) for dummy, dummy, case in CASES])
def test_record(computed, tmp_path, group, index, case):
    records = computed['records'][group]
    assert len(records) == len(combinations(group))
    record = records[index]
    paths = computed['paths']

    # The record describes its combination (and so the documented order holds).
    assert record['mode'] == case['mode']
    assert record['firmware'] == paths[case['firmware']]
    boot = computed['boots'].get(case['boot'])
    assert record['kernel'] == (boot['kernel'] if boot else None)
    assert record['initrd'] == (boot.get('initrd') if boot else None)
    assert record['cmdline'] == (boot.get('cmdline') if boot else None)
    if case['mode'] == 'seves':
        sku = rv.parse_cpu_sku(case['sku'])
        assert (record['num_cpus'], record['cpu_sku'], record['vmsa_variant'], record['vmsa_sev_features']) == \
            (case['num_cpus'], sku.label, case['variant'], case['features'])
        assert record['cpu_signature'] == '0x%08x' % dt.cpu_signature(sku.family, sku.model, sku.stepping)
    else:
        assert record['num_cpus'] is None and record['vmsa_variant'] is None
    assert base64.b64decode(record['launch_digest_b64']).hex() == record['launch_digest']

    # virt-qemu-sev-validate: the launch digest and every part it logs.
    log = _reference_log(case, computed, tmp_path, record)
    assert record['launch_digest'] == log['Measured-data(sha256)']
    digests = record['digests']
    assert digests['firmware'] == log['Firmware(sha256)']
    if boot is not None:
        assert digests['kernel'] == log['Kernel(sha256)']
        assert digests['initrd'] == log['Initrd(sha256)']
        assert digests['cmdline'] == log['Cmdline(sha256)']
        assert digests['hash_table'] == dt.sha256_hex(bytes.fromhex(log['tables'][0]))
    else:
        assert 'kernel' not in digests and 'hash_table' not in digests
    if case['mode'] == 'seves':
        assert digests['vmsa_cpu0'] == log['VMSA CPU 0(sha256)']
        if case['num_cpus'] > 1:
            assert digests['vmsa_cpu1'] == log['VMSA CPU 1(sha256)']
        else:
            assert 'vmsa_cpu1' not in digests

    # sev-snp-measure: plain SEV, and SEV-ES as it models it (init2, no features).
    dummy, snp = _flags(case, computed)
    if case['mode'] == 'sev':
        assert record['launch_digest'] == dt.snp_digest(None, args=['--mode', 'sev'] + snp)
    elif case['variant'] == 'init2' and case['features'] == 0:
        args = ['--mode', 'seves', '--vcpus', str(case['num_cpus']),
                '--vcpu-family', str(record['cpu_family']), '--vcpu-model', str(record['cpu_model']),
                '--vcpu-stepping', str(record['cpu_stepping'])] + snp
        assert record['launch_digest'] == dt.snp_digest(None, args=args)

    # simple-kbs: the record's digest is allowed.
    assert record['launch_digest_b64'] in json.loads(computed['outputs'][group])['allowed_digests']


def test_simple_kbs_file_as_its_readme_computes_the_digests(computed):
    """simple-kbs' README has the guest owner run sev-snp-measure --output-format=base64:
    those strings, and only the records' digests, fill allowed_digests."""
    policy = json.loads(computed['outputs']['boot'])
    assert list(policy) == ['allowed_digests', 'allowed_policies', 'min_fw_api_major', 'min_fw_api_minor',
                            'allowed_build_ids']
    assert policy['allowed_digests'] == [record['launch_digest_b64'] for record in computed['records']['boot']]
    assert (policy['allowed_policies'], policy['min_fw_api_major'], policy['min_fw_api_minor'],
            policy['allowed_build_ids']) == ([1, 5], 0, 0, [])
    paths, boot = computed['paths'], computed['boots']['k1+initrd+cmdline']
    common = ['--ovmf', paths['synthetic'], '--kernel', boot['kernel'], '--initrd', boot['initrd'],
              '--append=%s' % CMDLINE, '--output-format', 'base64']
    for args in (['--mode', 'sev'], ['--mode', 'seves', '--vcpus', '3', '--vcpu-type', 'EPYC-Milan']):
        proc = dt.run([dt.SNP_MEASURE] + args + common)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() in policy['allowed_digests']


# ------------------------------------------------------------------ Ansible

def _env(work):
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env.update(ANSIBLE_COLLECTIONS_PATH=str(dt.REPO / 'build'), ANSIBLE_HOME=str(work / 'home'),
               ANSIBLE_LOCAL_TEMP=str(work / 'tmp'), ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING='0',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    return env


@pytest.fixture(scope='module')
def playbook(tmp_path_factory):
    rng = random.Random(99)
    work = tmp_path_factory.mktemp('ansible-reference')
    (work / 'files').mkdir()
    (work / 'out').mkdir()
    dt.synthetic_firmware(work / 'files' / 'fw.fd', rng)
    (work / 'files' / 'vmlinuz').write_bytes(rng.randbytes(200000))
    (work / 'files' / 'initrd.img').write_bytes(rng.randbytes(20000))
    (work / 'out' / 'stale.json').write_text('{"allowed_digests": []}\n')
    (work / 'out' / 'stale.json').chmod(0o600)
    es = dict(firmware=['fw.fd'],                  # relative: found in the playbook's files/
              direct_boot=[dict(kernel='vmlinuz', initrd='initrd.img', cmdline=CMDLINE)],
              num_cpus=[2, 4], cpu_skus=['Milan', 'genoa'], vmsa_variants=['legacy', 'init2'],
              allowed_policies=[7], min_api_version='1.51')

    def task(name, args, **extra):
        entry = {'name': name, 'confidential.sev.sev_reference_measurement': args, 'register': 'r_' + name,
                 'ignore_errors': True}
        entry.update(extra)
        return entry

    tasks = [
        task('first', dict(es, dest='out/policy.json')),
        task('again', dict(es, dest='out/policy.json')),
        task('check', dict(es, num_cpus=[8], dest='out/policy.json'), check_mode=True, diff=True),
        task('stale', dict(es, dest='out/stale.json'), diff=True),
        task('json', dict(firmware=['fw.fd', dt.DEBIAN_FIRMWARE['OVMF_CODE']], format='json',
                          dest='out/records.json')),
        task('debian_kernel', dict(firmware=[dt.DEBIAN_FIRMWARE['OVMF_CODE']],
                                   direct_boot=[dict(kernel='vmlinuz')], dest='out/never.json')),
        task('missing', dict(firmware=['absent.fd'], dest='out/never.json')),
        task('bad_sku', dict(firmware=['fw.fd'], num_cpus=[2], cpu_skus=['Zen9'], dest='out/never.json')),
        task('bad_option', dict(firmware=['fw.fd'], vmsa_variants=['fancy'], dest='out/never.json')),
        task('no_warning', dict(firmware=['fw.fd'], allowed_policies=[1], dest='out/sev.json')),
        task('warned', dict(firmware=['fw.fd'], dest='out/any-policy.json')),
    ]
    names = [entry['register'] for entry in tasks]
    tasks.append({'name': 'dump', 'ansible.builtin.copy': {
        'content': '{{ {%s} | to_json }}' % ', '.join("'%s': %s" % (name[2:], name) for name in names),
        'dest': str(work / 'results.json')}})
    play = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]
    (work / 'playbook.yml').write_text(json.dumps(play, indent=1))
    proc = subprocess.run([str(ANSIBLE_BIN / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                           str(work / 'playbook.yml')], cwd=str(work), env=_env(work), capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((work / 'results.json').read_text())
    return dict(results=results, work=work, es=es, output=proc.stdout + proc.stderr)


def test_playbook_writes_the_policy_file(playbook):
    r, work = playbook['results']['first'], playbook['work']
    assert not r.get('failed') and r['changed'] is True, r
    path = work / 'out' / 'policy.json'
    assert r['dest'] == str(path) and r['format'] == 'simple-kbs'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    policy = json.loads(path.read_text())
    assert len(r['records']) == 1 * 1 * 2 * 2 * 2
    assert policy['allowed_digests'] == r['allowed_digests'] == [rec['launch_digest_b64'] for rec in r['records']]
    assert (policy['allowed_policies'], policy['min_fw_api_major'], policy['min_fw_api_minor']) == ([7], 1, 51)
    assert r['records'][0]['firmware'] == 'fw.fd' and r['records'][0]['cmdline'] == CMDLINE
    assert 'warnings' not in r
    # The same values as the library from the same files; sev-snp-measure agrees on init2.
    files = work / 'files'
    es = dict(playbook['es'], dest='unused', format='simple-kbs')
    dummy, records, content = rv.build(es, resolve_path=lambda path, what: str(files / path))
    assert path.read_bytes() == content
    init2 = [rec for rec in r['records'] if rec['vmsa_variant'] == 'init2' and rec['num_cpus'] == 4
             and rec['cpu_sku'] == 'Genoa'][0]
    args = ['--mode', 'seves', '--vcpus', '4', '--vcpu-type', 'EPYC-Genoa', '--ovmf', str(files / 'fw.fd'),
            '--kernel', str(files / 'vmlinuz'), '--initrd', str(files / 'initrd.img'), '--append=%s' % CMDLINE]
    assert init2['launch_digest'] == dt.snp_digest(None, args=args)
    assert not [name for name in os.listdir(work / 'out') if name.startswith('.sev-')]


def test_playbook_unchanged_content_is_not_rewritten(playbook):
    r = playbook['results']['again']
    assert not r.get('failed') and r['changed'] is False, r
    assert r['records'] == playbook['results']['first']['records']


def test_playbook_check_mode_with_diff(playbook):
    r, work = playbook['results']['check'], playbook['work']
    assert not r.get('failed') and r['changed'] is True, r
    assert len(r['records']) == 4 and all(rec['num_cpus'] == 8 for rec in r['records'])
    before, after = json.loads(r['diff']['before']), json.loads(r['diff']['after'])
    assert before == json.loads((work / 'out' / 'policy.json').read_text())     # unchanged on disk
    assert after['allowed_digests'] == r['allowed_digests'] != before['allowed_digests']


def test_playbook_replaces_a_stale_file_0644(playbook):
    r, work = playbook['results']['stale'], playbook['work']
    assert not r.get('failed') and r['changed'] is True, r
    path = work / 'out' / 'stale.json'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text() == (work / 'out' / 'policy.json').read_text()
    assert r['diff']['before'] == '{"allowed_digests": []}\n'


def test_playbook_json_records(playbook):
    r, work = playbook['results']['json'], playbook['work']
    assert not r.get('failed') and r['changed'] is True, r
    records = json.loads((work / 'out' / 'records.json').read_text())
    assert records == r['records'] and 'allowed_digests' not in r
    assert [rec['firmware'] for rec in records] == ['fw.fd', dt.DEBIAN_FIRMWARE['OVMF_CODE']]
    assert records[1]['launch_digest'] == dt.file_sha256(dt.DEBIAN_FIRMWARE['OVMF_CODE'])
    assert records[0]['launch_digest'] == dt.file_sha256(work / 'files' / 'fw.fd')


@pytest.mark.parametrize('name,reason,text', [
    ('debian_kernel', 'unsupported', 'no usable SEV hash table'),
    ('missing', 'unsupported', 'absent.fd'),
    ('bad_sku', 'unsupported', 'Zen9'),
    ('bad_option', 'unsupported', 'fancy'),
])
def test_playbook_refusals(playbook, name, reason, text):
    r = playbook['results'][name]
    assert r['failed'] is True and r['reason'] == reason and text in r['msg'], r
    assert 'records' not in r
    assert not (playbook['work'] / 'out' / 'never.json').exists()


def test_playbook_warns_without_allowed_policies(playbook):
    assert 'warnings' not in playbook['results']['no_warning']
    assert 'warnings' not in playbook['results']['json']
    assert 'allowed_policies is not set' in playbook['output']
    policy = json.loads((playbook['work'] / 'out' / 'any-policy.json').read_text())
    assert policy['allowed_policies'] == [] and len(policy['allowed_digests']) == 1


def test_ansible_doc(tmp_path):
    proc = subprocess.run([str(ANSIBLE_BIN / 'ansible-doc'), 'confidential.sev.sev_reference_measurement'],
                          env=_env(tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert 'simple-kbs' in proc.stdout and 'allowed_policies' in proc.stdout

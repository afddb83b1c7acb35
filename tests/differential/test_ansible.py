# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A few cases through a real ansible-playbook run of
confidential.sev.sev_measurement_validate (action plugin, argument validation,
file output), against the same references.  One playbook run per worker
(module-scoped fixture), one test per task."""

from __future__ import annotations

import base64
import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import difftools as dt

ANSIBLE_PLAYBOOK = Path(sys.executable).parent / 'ansible-playbook'
if not ANSIBLE_PLAYBOOK.exists():
    ANSIBLE_PLAYBOOK = dt.REPO / '.venv' / 'bin' / 'ansible-playbook'


def _task(name, args, **extra):
    task = {'name': name, 'confidential.sev.sev_measurement_validate': args,
            'register': 'r_' + name, 'ignore_errors': True}
    task.update(extra)
    return task


def _module_args(sc, measurement, **overrides):
    """Module arguments: only the options that are set (Ansible fills the defaults)."""
    params = sc.params(measurement, **overrides)
    return dict((key, value) for key, value in params.items() if value not in (None, []))


@pytest.fixture(scope='module')
def playbook(tmp_path_factory):
    rng = random.Random(1234)
    work = tmp_path_factory.mktemp('ansible')
    cases, tasks = {}, []

    # 1. plain SEV, measurement made by the reference
    sc = dt.Scenario(work / 'plain', dt.DEBIAN_FIRMWARE['OVMF_CODE'], api=(0, 24, 15), policy=0x3, rng=rng)
    blob, log = dt.reference_measure(sc, rng)
    cases['plain'] = dict(sc=sc, blob=blob, log=log)
    tasks.append(_task('plain', _module_args(sc, dt.b64(blob))))
    # 2. the same with one bit flipped
    bad = dt.flip_bit(blob, rng)
    tasks.append(_task('mismatch', _module_args(sc, dt.b64(bad))))

    # 3. + 4. secrets written to files, and the same in check mode
    firmware = dt.synthetic_firmware(work / 'fw.fd', rng)
    secrets = [('luks-key', b'passphrase\n'), ('E9F1A2B3-C4D5-4E6F-8A9B-0C1D2E3F4A5B', rng.randbytes(40))]
    sc = dt.Scenario(work / 'secrets', firmware, policy=0x1, secrets=secrets, rng=rng)
    blob, log = dt.reference_measure(sc, rng)
    cases['secrets'] = dict(sc=sc, blob=blob, log=log, secrets=secrets, out=work / 'out')
    (work / 'out').mkdir()
    tasks.append(_task('secrets', _module_args(sc, dt.b64(blob), secret_header_file=str(work / 'out' / 'header'),
                                               secret_payload_file=str(work / 'out' / 'payload'))))
    tasks.append(_task('check_mode', _module_args(sc, dt.b64(blob),
                                                  secret_header_file=str(work / 'out' / 'check-header'),
                                                  secret_payload_file=str(work / 'out' / 'check-payload')),
                       check_mode=True))

    # 5. SEV-ES legacy with direct boot and a whitespace-laden cmdline, against the reference
    kernel, initrd = rng.randbytes(300000), rng.randbytes(5000)
    sc = dt.Scenario(work / 'es', firmware, policy=0x7, num_cpus=4, sku=dt.SKUS['Genoa'], kernel=kernel,
                     initrd=initrd, cmdline='  console=ttyS0   root=/dev/vda1 \t', rng=rng)
    blob, log = dt.reference_measure(sc, rng)
    cases['es_legacy'] = dict(sc=sc, blob=blob, log=log)
    tasks.append(_task('es_legacy', _module_args(sc, dt.b64(blob))))

    # 6. SEV-ES init2 + tk file + cmdline_b64, against sev-snp-measure and the HMAC here
    sc = dt.Scenario(work / 'init2', firmware, policy=0x5, num_cpus=3, sku=dt.SKUS['Milan'], keys='tk',
                     kernel=kernel, cmdline='quiet\n', cmdline_b64=True, vmsa_variant='init2', rng=rng)
    digest = dt.snp_digest(sc, sku_style='type')
    blob = sc.hmac_blob(bytes.fromhex(digest), rng.randbytes(16))
    cases['es_init2'] = dict(sc=sc, blob=blob, digest=digest)
    tasks.append(_task('es_init2', _module_args(sc, dt.b64(blob))))

    # 7. usage errors: a 15-byte TIK (engine), and tk with tik (argument spec)
    sc = dt.Scenario(work / 'tik15', dt.DEBIAN_FIRMWARE['OVMF_CODE'], tik=rng.randbytes(15), rng=rng)
    tasks.append(_task('tik15', _module_args(sc, dt.b64(rng.randbytes(48)))))
    tasks.append(_task('tk_and_tik', _module_args(sc, dt.b64(rng.randbytes(48)), tk=sc.tik_path)))

    tasks.append(_task('missing_firmware', _module_args(cases['plain']['sc'], dt.b64(rng.randbytes(48)),
                                                        firmware=str(work / 'missing.fd'))))

    names = [task['register'] for task in tasks]
    tasks.append({'name': 'dump', 'ansible.builtin.copy': {
        'content': '{{ {%s} | to_json }}' % ', '.join("'%s': %s" % (name[2:], name) for name in names),
        'dest': str(work / 'results.json')}})
    play = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]
    (work / 'playbook.yml').write_text(json.dumps(play, indent=1))

    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env.update(ANSIBLE_COLLECTIONS_PATH=str(dt.REPO / 'build'), ANSIBLE_HOME=str(work / 'home'),
               ANSIBLE_LOCAL_TEMP=str(work / 'tmp'), ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING='0',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    proc = subprocess.run([str(ANSIBLE_PLAYBOOK), '-i', 'localhost,', '-c', 'local', str(work / 'playbook.yml')],
                          cwd=str(work), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((work / 'results.json').read_text())
    return dict(results=results, cases=cases, work=work, rng=rng, stdout=proc.stdout)


def test_playbook_valid(playbook):
    r, case = playbook['results']['plain'], playbook['cases']['plain']
    dt.assert_valid(r)
    assert r['changed'] is False
    assert r['launch_digest'] == case['log']['Measured-data(sha256)'] == dt.file_sha256(case['sc'].firmware)
    assert r['computed_measurement'] == dt.b64(case['blob'])


def test_playbook_mismatch_fails_task(playbook):
    r = playbook['results']['mismatch']
    assert r['failed'] is True and r['rc'] == 1 and r['reason'] == 'mismatch' and r['valid'] is False
    assert r.get('computed_measurement') is None
    assert r['launch_digest'] == playbook['cases']['plain']['log']['Measured-data(sha256)']


def test_playbook_writes_secret_files(playbook):
    r, case = playbook['results']['secrets'], playbook['cases']['secrets']
    dt.assert_valid(r)
    assert r['changed'] is True
    sc, out = case['sc'], case['out']
    texts = {}
    for name in ('header', 'payload'):
        path = out / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        data = path.read_bytes()
        assert not data.endswith(b'\n') and base64.b64encode(base64.b64decode(data, validate=True)) == data
        texts[name] = data.decode()
    assert texts['header'] == r['secret_header'] and texts['payload'] == r['secret_payload']
    plain = dt.open_secret_packet(texts['header'], texts['payload'], sc.tik, sc.tek, case['blob'][:32])
    expected = [(dt.secret_guid(guid), value) for guid, value in case['secrets']]
    assert dt.parse_secret_table(plain) == expected
    # ... the same plaintext the reference encrypts for this launch
    ref_out = out / 'ref'
    ref_out.mkdir(exist_ok=True)
    proc = dt.run_reference(sc.ref_args(dt.b64(case['blob']), secret_out=ref_out))
    assert proc.returncode == 0, proc.stderr
    assert plain == dt.open_secret_packet((ref_out / 'ref_header').read_text(),
                                          (ref_out / 'ref_payload').read_text(), sc.tik, sc.tek, case['blob'][:32])


def test_playbook_check_mode_writes_nothing(playbook):
    r, out = playbook['results']['check_mode'], playbook['cases']['secrets']['out']
    dt.assert_valid(r)
    assert r['secret_header'] and r['secret_payload']
    assert not (out / 'check-header').exists() and not (out / 'check-payload').exists()
    assert not [name for name in os.listdir(out) if name.startswith('.sev-')]


def test_playbook_es_legacy_direct_boot(playbook):
    r, case = playbook['results']['es_legacy'], playbook['cases']['es_legacy']
    dt.assert_valid(r)
    assert r['launch_digest'] == case['log']['Measured-data(sha256)']
    # The cmdline's spaces and tab survived YAML and templating.
    assert r['digests']['cmdline'] == case['log']['Cmdline(sha256)']
    assert r['digests']['vmsa_cpu1'] == case['log']['VMSA CPU 1(sha256)']


def test_playbook_es_init2_tk(playbook):
    r, case = playbook['results']['es_init2'], playbook['cases']['es_init2']
    dt.assert_valid(r)
    assert r['launch_digest'] == case['digest']
    assert r['digests']['cmdline'] == dt.sha256_hex(b'quiet\n\0')


@pytest.mark.parametrize('name,text', [('tik15', 'tik'), ('tk_and_tik', 'mutually exclusive'),
                                       ('missing_firmware', 'missing.fd')])
def test_playbook_usage_errors(playbook, name, text):
    r = playbook['results'][name]
    assert r['failed'] is True and r['rc'] == 2 and r['reason'] == 'unsupported', r
    assert text in r['msg']
    assert 'launch_digest' not in r

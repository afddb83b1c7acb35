# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mismatch diagnosis against measurements the references made.

test_sev_es.py already pins ``legacy`` to virt-qemu-sev-validate and ``init2``
to sev-snp-measure, and checks that each variant refuses the other's blob.
Here the diagnosis must also *name* the other variant: a blob made from
sev-snp-measure's digest, validated as ``legacy``, gives ``vmsa_variant_init2``;
the reference's blob validated as ``init2`` gives ``vmsa_variant_legacy``.
A few other mistakes are made against the reference's own blob (firmware build
with another reset address, cmdline whitespace), and one real ansible-playbook
run shows the diagnosis in the failure message.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import difftools as dt

ANSIBLE_PLAYBOOK = Path(sys.executable).parent / 'ansible-playbook'
if not ANSIBLE_PLAYBOOK.exists():
    ANSIBLE_PLAYBOOK = dt.REPO / '.venv' / 'bin' / 'ansible-playbook'

VARIANT_CASES = [
    dict(fw='OVMF_CODE', sku='Milan', num_cpus=4, boot=False),
    dict(fw='OVMF_CODE_4M', sku='Genoa', num_cpus=2, boot=False),
    dict(fw='OVMF.fd', sku='Rome', num_cpus=1, boot=False),
    dict(fw='synthetic', sku='Turin', num_cpus=3, boot=True),
    dict(fw='synthetic', sku='Naples', num_cpus=8, boot=True),
]


def case_id(case):
    return '%s-%s-%dcpu%s' % (case['fw'], case['sku'], case['num_cpus'], '-boot' if case['boot'] else '')


def scenario(case, directory, rng):
    firmware = dt.firmware_for(case, directory, rng)
    boot = {}
    if case['boot']:
        boot = dict(kernel=rng.randbytes(200000), initrd=rng.randbytes(30000), cmdline='console=ttyS0 root=/dev/vda1')
    return dt.Scenario(Path(directory) / 'in', firmware, policy=0x5, num_cpus=case['num_cpus'],
                       sku=dt.SKUS[case['sku']], rng=rng, **boot)


def matched(result):
    dt.assert_mismatch(result)
    return [match['change'] for match in result['diagnosis']['matches']]


@pytest.mark.parametrize('case', VARIANT_CASES, ids=case_id)
def test_sev_snp_measure_blob_named_init2(case, tmp_path, rng):
    sc = scenario(case, tmp_path, rng)
    digest = dt.snp_digest(sc)
    blob = sc.hmac_blob(bytes.fromhex(digest), rng.randbytes(16))
    result = sc.ours(dt.b64(blob))                    # legacy, the default
    assert matched(result) == ['vmsa_variant_init2']
    assert 'Diagnosis: the host builds VMSAs as vmsa_variant init2' in result['msg']
    dt.assert_valid(sc.ours(dt.b64(blob), vmsa_variant='init2'))


@pytest.mark.parametrize('case', VARIANT_CASES, ids=case_id)
def test_reference_blob_named_legacy(case, tmp_path, rng):
    sc = scenario(case, tmp_path, rng)
    blob, log = dt.reference_measure(sc, rng)
    result = sc.ours(dt.b64(blob), vmsa_variant='init2')
    assert matched(result) == ['vmsa_variant_legacy']
    assert result['launch_digest'] != log['Measured-data(sha256)']
    dt.assert_valid(sc.ours(dt.b64(blob)))


@pytest.mark.parametrize('host, owner', [('OVMF_CODE_4M', 'OVMF_CODE'), ('OVMF_CODE', 'OVMF_CODE_4M'),
                                         ('OVMF.fd', 'OVMF_CODE_4M')])
def test_reference_blob_other_debian_firmware(host, owner, tmp_path, rng):
    """The reference measured one Debian build (SEV-ES, 3 vCPUs: the APs carry its
    reset address); the owner names another and lists the builds to try."""
    sc = dt.Scenario(tmp_path, dt.DEBIAN_FIRMWARE[host], policy=0x5, num_cpus=3, sku=dt.SKUS['Milan'], rng=rng)
    blob, dummy = dt.reference_measure(sc, rng)
    result = sc.ours(dt.b64(blob), firmware=dt.DEBIAN_FIRMWARE[owner],
                     diagnose_firmware=sorted(set(dt.DEBIAN_FIRMWARE.values())))
    assert matched(result) == ['firmware %s' % dt.DEBIAN_FIRMWARE[host]]


@pytest.mark.parametrize('owner, expected', [('console=ttyS0 root=/dev/vda1 ', 'cmdline_trailing_whitespace_removed'),
                                             (' console=ttyS0 root=/dev/vda1', 'cmdline_leading_whitespace_removed')])
def test_reference_blob_cmdline_whitespace(owner, expected, tmp_path, rng):
    sc = scenario(dict(fw='synthetic', sku='Milan', num_cpus=2, boot=True), tmp_path, rng)
    blob, dummy = dt.reference_measure(sc, rng)
    assert matched(sc.ours(dt.b64(blob), cmdline=owner)) == [expected]


# ---- through ansible-playbook -------------------------------------------------------------

def module_args(sc, measurement, **overrides):
    params = sc.params(measurement, **overrides)
    return dict((key, value) for key, value in params.items() if value not in (None, []))


def task(name, args):
    return {'name': name, 'confidential.sev.sev_measurement_validate': args, 'register': 'r_' + name,
            'ignore_errors': True}


@pytest.fixture(scope='module')
def playbook(tmp_path_factory):
    rng = random.Random(4321)
    work = tmp_path_factory.mktemp('ansible-diagnosis')
    sc = scenario(dict(fw='synthetic', sku='Genoa', num_cpus=2, boot=True), work, rng)
    blob, dummy = dt.reference_measure(sc, rng)
    good = dt.b64(blob)
    missing = str(work / 'missing.fd')
    tasks = [
        task('variant', module_args(sc, good, vmsa_variant='init2')),
        task('cmdline', module_args(sc, good, cmdline='console=ttyS0 root=/dev/vda1\n')),
        task('nothing', module_args(sc, dt.b64(rng.randbytes(48)))),
        task('no_diagnosis', module_args(sc, good, num_cpus=3, diagnose=False)),
        task('missing_candidate_mismatch', module_args(sc, good, num_cpus=3, diagnose_firmware=[missing])),
        task('missing_candidate_valid', module_args(sc, good, diagnose_firmware=[missing])),
    ]
    names = [item['register'] for item in tasks]
    tasks.append({'name': 'dump', 'ansible.builtin.copy': {
        'content': '{{ {%s} | to_json }}' % ', '.join("'%s': %s" % (name[2:], name) for name in names),
        'dest': str(work / 'results.json')}})
    (work / 'playbook.yml').write_text(json.dumps([{'hosts': 'localhost', 'gather_facts': False,
                                                    'tasks': tasks}], indent=1))
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env.update(ANSIBLE_COLLECTIONS_PATH=str(dt.REPO / 'build'), ANSIBLE_HOME=str(work / 'home'),
               ANSIBLE_LOCAL_TEMP=str(work / 'tmp'), ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING='0',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    proc = subprocess.run([str(ANSIBLE_PLAYBOOK), '-i', 'localhost,', '-c', 'local', str(work / 'playbook.yml')],
                          cwd=str(work), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(results=json.loads((work / 'results.json').read_text()), stdout=proc.stdout,
                missing=missing)


def test_playbook_failure_message_names_the_variant(playbook):
    r = playbook['results']['variant']
    dt.assert_mismatch(r)
    assert r['msg'] == 'the measurement does not match. Diagnosis: the host builds VMSAs as vmsa_variant legacy'
    assert [match['change'] for match in r['diagnosis']['matches']] == ['vmsa_variant_legacy']
    # What the operator sees on the console.
    assert 'Diagnosis: the host builds VMSAs as vmsa_variant legacy' in playbook['stdout']


def test_playbook_failure_message_names_the_cmdline(playbook):
    r = playbook['results']['cmdline']
    dt.assert_mismatch(r)
    assert [match['change'] for match in r['diagnosis']['matches']] == ['cmdline_trailing_whitespace_removed']
    assert "Diagnosis: the cmdline differs by trailing whitespace: the host used 'console=ttyS0 root=/dev/vda1'" \
        in r['msg']


def test_playbook_nothing_matches(playbook):
    r = playbook['results']['nothing']
    dt.assert_mismatch(r)
    assert r['diagnosis']['matches'] == []
    assert r['msg'].endswith('(the diagnosis tried %d single changes; none matched)' % len(r['diagnosis']['tried']))


def test_playbook_diagnose_false(playbook):
    r = playbook['results']['no_diagnosis']
    dt.assert_mismatch(r)
    assert 'diagnosis' not in r and 'Diagnosis' not in r['msg']


def test_playbook_missing_candidate_is_reported_in_tried(playbook):
    r = playbook['results']['missing_candidate_mismatch']
    dt.assert_mismatch(r)
    assert [match['change'] for match in r['diagnosis']['matches']] == ['num_cpus_2']
    assert any(name.startswith('firmware %s (not usable' % playbook['missing']) for name in r['diagnosis']['tried'])


def test_playbook_missing_candidate_does_not_fail_a_valid_launch(playbook):
    dt.assert_valid(playbook['results']['missing_candidate_valid'])

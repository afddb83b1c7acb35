# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's launch records and seen-measurement store (sev_launch_record, replay_dir)."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading

import pytest

from ansible_collections.confidential.sev.plugins.action import sev_launch_record as plugin
from ansible_collections.confidential.sev.plugins.module_utils import launch_record as store
from ansible_collections.confidential.sev.plugins.module_utils.launch_record_options import ARGUMENT_SPEC, run_record
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage
from ansible_collections.confidential.sev.tests.unit.plugins.action import action_harness

UUID = '5b0c6f2e-3c1a-4d52-9a55-2f4b8e0c1d77'
TIK = bytes(range(16))
MEASUREMENT = base64.b64encode(bytes(32) + bytes.fromhex('4fbe0bedbad6c86ae8f68971d103e554')).decode()
OTHER = base64.b64encode(bytes(32) + bytes(16)).decode()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def reported(active=True, state='running', dom_id=7, run_state='running', measurement=MEASUREMENT, uuid=UUID):
    """What a registered sev_launch_info result holds (the fields the plan reads)."""
    return {'changed': False, 'uuid': uuid, 'name': 'guest1', 'id': dom_id if active else -1, 'active': active,
            'state': state, 'run_state': run_state if active else None,
            'domain': {'name': 'guest1', 'uuid': uuid, 'id': dom_id if active else -1},
            'launch_security': {'measurement': measurement} if active and measurement else None}


def record(stage='resumed', dom_id=7, measurement=MEASUREMENT, failed=None, secrets=1):
    return {'launch_id': '20260101T000000Z-0011aabb', 'stage': stage, 'domain_id': dom_id,
            'measurement': measurement, 'failed': failed, 'secret_count': secrets}


def params(state_dir, **kwargs):
    result = dict.fromkeys(ARGUMENT_SPEC)
    result.update(state_dir=str(state_dir), host='hv1', domain_uuid=UUID, if_active='fail', resume=True)
    result.update(kwargs)
    return result


# ---- the plan ------------------------------------------------------------------------------------

@pytest.mark.parametrize('report, rec, if_active, resume, plan, words', [
    (reported(active=False, state='shutoff'), record(), 'fail', True, 'launch', 'shutoff'),
    (reported(active=False, state='shutoff'), None, 'fail', True, 'launch', 'shutoff'),
    (reported(), record(), 'fail', True, 'ok', 'not a re-attestation'),
    (reported(state='paused', run_state='paused'), record(), 'fail', True, 'ok', 'stage resumed'),
    (reported(), None, 'fail', True, 'fail', 'no record'),
    (reported(), None, 'relaunch', True, 'relaunch', 'no record'),
    (reported(dom_id=8), record(), 'fail', True, 'fail', 'reports domain ID 8, this controller validated the launch '
                                                         'with ID 7'),
    (reported(measurement=OTHER), record(), 'fail', True, 'fail', 'another measurement'),
    (reported(measurement=None), record(), 'fail', True, 'fail', 'another measurement'),
    (reported(), record(stage='started'), 'fail', True, 'fail', 'never validated'),
    (reported(), record(failed={'reason': 'x'}), 'relaunch', True, 'relaunch', 'failed'),
    (reported(state='paused', run_state='prelaunch'), record(stage='injected'), 'fail', True, 'resume', 'prelaunch'),
    (reported(state='paused', run_state='prelaunch'), record(stage='validated', secrets=0), 'fail', True, 'resume',
     'prelaunch'),
    (reported(state='paused', run_state='prelaunch'), record(stage='validated'), 'relaunch', True, 'fail',
     'secrets were never injected'),
    # paused after it ran (PAUSED/user in libvirt too): never resumed by a later run, even with relaunch
    (reported(state='paused', run_state='paused'), record(stage='injected'), 'relaunch', True, 'fail',
     'no longer provably before its first run'),
    (reported(state='running', run_state='running'), record(stage='injected'), 'fail', True, 'fail',
     'run_state running'),
    (reported(state='paused', run_state='paused'), record(stage='injected'), 'fail', False, 'ok', 'stage injected'),
    # interrupted between validation and injection: never ok, even with resume false
    (reported(state='paused', run_state='prelaunch'), record(stage='validated'), 'fail', False, 'fail',
     'secrets were never injected'),
    (reported(state='paused', run_state='prelaunch'), record(stage='validated', secrets=0), 'fail', False, 'ok',
     'stage validated'),
])
def test_plan(report, rec, if_active, resume, plan, words):
    found, why = store.plan_launch(report, rec, if_active, resume)
    assert (found, words in why) == (plan, True), why


def test_plan_refuses_what_is_not_a_report():
    with pytest.raises(UnsupportedUsage, match='registered result of sev_launch_info'):
        store.plan_launch('running', None)
    with pytest.raises(UnsupportedUsage, match='active or id'):
        store.plan_launch({'active': 'yes'}, None)


# ---- records on disk -------------------------------------------------------------------------------

def test_stages_are_written_private_and_in_order(tmp_path):
    state_dir = tmp_path / 'state'
    prepared = run_record(params(state_dir, state='prepare'))
    assert prepared['changed'] is True and prepared['reason'] == 'ok', prepared
    assert mode(state_dir) == 0o700 and mode(prepared['launch_dir']) == 0o700
    assert prepared['files']['tik'] == os.path.join(prepared['launch_dir'], 'tik')
    assert prepared['launch_dir'] == str(state_dir / 'hosts' / 'hv1' / UUID / 'launches' / prepared['launch_id'])
    launch_id = prepared['launch_id']
    run_record(params(state_dir, state='started', launch_id=launch_id, domain_id=7, domain_name='guest1',
                      session='fresh', secret_count=1))
    validated = run_record(params(state_dir, state='validated', launch_id=launch_id, measurement=MEASUREMENT,
                                  replay={'tik_sha256': 'ab' * 32}))
    assert validated['record']['mnonce'] == '4fbe0bedbad6c86ae8f68971d103e554'
    for stage in ('injected', 'resumed'):
        run_record(params(state_dir, state=stage, launch_id=launch_id))
    current = state_dir / 'hosts' / 'hv1' / UUID / 'current.json'
    saved = json.loads(current.read_text())
    assert saved == json.loads((state_dir / 'hosts' / 'hv1' / UUID / 'launches' / launch_id / 'record.json')
                               .read_text())
    assert (saved['stage'], saved['domain_id'], saved['measurement'], saved['session'], saved['tik_sha256']) == (
        'resumed', 7, MEASUREMENT, 'fresh', 'ab' * 32)
    assert sorted(saved['stage_times']) == ['injected', 'resumed', 'started', 'validated']
    assert mode(current) == 0o600
    query = run_record(params(state_dir, state='query', reported=reported()))
    assert (query['plan'], query['record']['launch_id']) == ('ok', launch_id), query
    back = run_record(params(state_dir, state='validated', launch_id=launch_id, measurement=MEASUREMENT))
    assert back['failed'] is True and 'cannot go back to validated' in back['msg']


def test_failed_launch_is_never_ok_again(tmp_path):
    launch_id = run_record(params(tmp_path, state='prepare'))['launch_id']
    run_record(params(tmp_path, state='started', launch_id=launch_id, domain_id=7))
    run_record(params(tmp_path, state='validated', launch_id=launch_id, measurement=MEASUREMENT))
    failed = run_record(params(tmp_path, state='failed', launch_id=launch_id, reason='inject refused',
                               destroyed=False))
    assert failed['record']['failed']['reason'] == 'inject refused'
    query = run_record(params(tmp_path, state='query', reported=reported(state='paused', run_state='prelaunch')))
    assert query['plan'] == 'fail' and 'failed' in query['why']
    later = run_record(params(tmp_path, state='injected', launch_id=launch_id))
    assert later['failed'] is True and 'has failed' in later['msg']


def test_first_stage_must_be_started(tmp_path):
    launch_id = run_record(params(tmp_path, state='prepare'))['launch_id']
    result = run_record(params(tmp_path, state='validated', launch_id=launch_id, measurement=MEASUREMENT))
    assert (result['failed'], result['reason']) == (True, 'unsupported') and 'first stage' in result['msg']


def test_check_mode_writes_nothing(tmp_path):
    state_dir = tmp_path / 'state'
    prepared = run_record(params(state_dir, state='prepare'), check_mode=True)
    assert prepared['changed'] is True and not state_dir.exists()
    started = run_record(params(state_dir, state='started', launch_id=prepared['launch_id'], domain_id=3),
                         check_mode=True)
    assert started['record']['stage'] == 'started' and not state_dir.exists()
    query = run_record(params(state_dir, state='query', reported=reported()), check_mode=True)
    assert (query['plan'], query['record']) == ('fail', None) and not state_dir.exists()


def test_state_dir_others_can_read_is_refused(tmp_path):
    state_dir = tmp_path / 'open'
    state_dir.mkdir(mode=0o755)
    os.chmod(state_dir, 0o755)
    result = run_record(params(state_dir, state='prepare'))
    assert (result['failed'], result['reason']) == (True, 'unsupported')
    assert 'is mode 0755' in result['msg'] and 'chmod 700' in result['msg']
    relative = run_record(params('relative/dir', state='prepare'))
    assert 'not an absolute path' in relative['msg']


def test_damaged_record_fails_closed(tmp_path):
    directory = tmp_path / 'hosts' / 'hv1' / UUID
    directory.mkdir(parents=True)
    (directory / 'current.json').write_text('{"stage": "resum')
    os.chmod(tmp_path, 0o700)
    result = run_record(params(tmp_path, state='query', reported=reported()))
    assert (result['failed'], result['reason']) == (True, 'unsupported') and 'damaged' in result['msg']


def test_query_about_another_domain_is_refused(tmp_path):
    other = '11111111-2222-3333-4444-555555555555'
    result = run_record(params(tmp_path, state='query', reported=reported(uuid=other)))
    assert result['failed'] is True and 'not %s' % UUID in result['msg']


@pytest.mark.parametrize('bad', ['../../etc', 'x', '20260101T000000Z-0011aabb/..'])
def test_launch_id_must_be_ours(tmp_path, bad):
    result = run_record(params(tmp_path, state='started', launch_id=bad, domain_id=1))
    assert result['failed'] is True and 'not a launch id' in result['msg']


@pytest.mark.parametrize('host, component', [
    ('hv1.example.net', 'hv1.example.net'), ('..', '%2E%2E'), ('a/b', 'a%2Fb'), ('root@hv', 'root@hv'),
    ('hv ü', 'hv%20%C3%BC'),
])
def test_host_names_stay_one_path_component(tmp_path, host, component):
    assert store.domain_dir(str(tmp_path), host, UUID) == os.path.join(str(tmp_path), 'hosts', component, UUID)


def test_uuid_is_canonical_and_checked(tmp_path):
    assert store.domain_dir(str(tmp_path), 'h', UUID.upper()).endswith(UUID)
    result = run_record(params(tmp_path, domain_uuid='1', state='prepare'))
    assert result['failed'] is True and "'1' is not a UUID" in result['msg']


# ---- seen measurements ---------------------------------------------------------------------------

def test_a_measurement_is_claimed_once(tmp_path):
    seen = str(tmp_path / 'seen')
    first = store.claim_measurement(seen, TIK, MEASUREMENT, {'host': 'hv1', 'domain_uuid': UUID})
    assert first['mnonce'] == '4fbe0bedbad6c86ae8f68971d103e554' and first['tik_sha256'] == store.tik_digest(TIK)
    assert mode(first['record']) == 0o600 and mode(os.path.dirname(first['record'])) == 0o700
    assert TIK.hex() not in open(first['record'], encoding='utf-8').read()
    with pytest.raises(store.ReplayError) as exc:
        store.claim_measurement(seen, TIK, MEASUREMENT, {'host': 'hv2'})
    assert exc.value.reason == 'insecure'
    assert str(exc.value).startswith('replay: this measurement (mnonce 4fbe0bed')
    assert 'host hv1' in str(exc.value)
    # another TIK, or another mnonce, is another measurement
    store.claim_measurement(seen, bytes(16), MEASUREMENT, None)
    store.claim_measurement(seen, TIK, OTHER, None)


def test_check_mode_looks_up_but_never_claims(tmp_path):
    seen = str(tmp_path / 'seen')
    store.claim_measurement(seen, TIK, MEASUREMENT, None, check_mode=True)
    assert not os.path.exists(seen)
    store.claim_measurement(seen, TIK, MEASUREMENT, None)
    with pytest.raises(store.ReplayError):
        store.claim_measurement(seen, TIK, MEASUREMENT, None, check_mode=True)


def test_concurrent_claims_of_one_measurement_let_exactly_one_through(tmp_path):
    seen = str(tmp_path / 'seen')
    outcomes = []

    def claim():
        try:
            store.claim_measurement(seen, TIK, MEASUREMENT, None)
            outcomes.append('claimed')
        except store.ReplayError:
            outcomes.append('replay')
    threads = [threading.Thread(target=claim) for dummy in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ['claimed'] + ['replay'] * 7


def test_a_bad_measurement_is_a_usage_error(tmp_path):
    with pytest.raises(UnsupportedUsage, match='not base64 of 48 bytes'):
        store.claim_measurement(str(tmp_path), TIK, 'AAAA', None)


# ---- the action plugin ---------------------------------------------------------------------------

def test_action_plugin_runs_on_the_controller_and_honours_check_mode(tmp_path):
    harness = action_harness.Harness(plugin, 'confidential.sev.sev_launch_record', tmp_path)
    state_dir = tmp_path / 'state'
    checked = harness.run(check_mode=True, state_dir=str(state_dir), host='hv1', domain_uuid=UUID, state='prepare')
    assert checked['changed'] is True and not state_dir.exists(), checked
    prepared = harness.run(state_dir=str(state_dir), host='hv1', domain_uuid=UUID, state='prepare')
    assert os.path.isdir(prepared['launch_dir']) and mode(state_dir) == 0o700
    bad = harness.run(state_dir=str(state_dir), host='hv1', domain_uuid=UUID, state='query')
    assert (bad['failed'], bad['reason']) == (True, 'unsupported') and 'reported' in bad['msg'], bad
    assert harness.connection.method_calls == []   # the host is never contacted


def test_state_dir_created_by_another_fork_meanwhile_is_used(tmp_path, monkeypatch):
    # Forks for several guests prepare at once: one sees no directory, another creates it first.
    state_dir = tmp_path / 'state'
    real_makedirs = os.makedirs

    def other_fork_first(path, mode=0o777, exist_ok=False):
        real_makedirs(path, mode=0o700)
        real_makedirs(path, mode=mode, exist_ok=exist_ok)

    monkeypatch.setattr(store.os, 'makedirs', other_fork_first)
    result = run_record(params(state_dir, state='prepare'))
    assert result.get('failed') is not True and result['changed'] is True, result
    assert mode(state_dir) == 0o700


def test_state_dir_created_meanwhile_by_others_readable_is_refused(tmp_path, monkeypatch):
    state_dir = tmp_path / 'state'
    real_makedirs = os.makedirs

    def someone_else_first(path, mode=0o777, exist_ok=False):
        real_makedirs(path)
        os.chmod(path, 0o755)
        real_makedirs(path, mode=mode, exist_ok=exist_ok)

    monkeypatch.setattr(store.os, 'makedirs', someone_else_first)
    result = run_record(params(state_dir, state='prepare'))
    assert (result['failed'], result['reason']) == (True, 'unsupported') and 'is mode 0755' in result['msg']

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_launch_batch's action plugin with a fake host (fleet_host.py): real fresh
sessions, measurements and secret packets on the in-process emulated secure
processor, the host-side modules' list forms faked.  Per-guest isolation: one
guest's failure at any step destroys only the launch this run started for it
and never changes another guest's outcome."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ansible_collections.confidential.sev.plugins.action import sev_launch_batch
from ansible_collections.confidential.sev.plugins.module_utils import launch_batch
from ansible_collections.confidential.sev.plugins.module_utils.sev import digest_cache
from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw
from ansible_collections.confidential.sev.tests.support import firmware as fwb
from ansible_collections.confidential.sev.tests.unit.plugins.action import action_harness
from ansible_collections.confidential.sev.tests.unit.plugins.action.fleet_host import FleetHost

FIRMWARE = fwb.build_image(body_size=4096)
NAMES = ['g%d' % index for index in range(5)]
KEY = b'the LUKS passphrase of the fleet\n'
OUTCOME_KEYS = {'domain', 'uuid', 'plan', 'check_mode', 'changed', 'failed', 'reason', 'rc', 'launch_id',
                'domain_id', 'destroyed', 'msg', 'warnings'}


@pytest.fixture(scope='module')
def platform():
    return fw.EmulatedPlatform()


@pytest.fixture
def owner(tmp_path, platform):
    base = tmp_path / 'owner'
    base.mkdir(mode=0o700)
    files = {'firmware': FIRMWARE, 'cek': platform.kds_cek(), 'ark': platform.roots.ark_cert,
             'ask': platform.roots.ask_cert, 'key': KEY}
    paths = {}
    for name, data in files.items():
        (base / name).write_bytes(data)
        os.chmod(base / name, 0o600)
        paths[name] = str(base / name)
    paths['state_dir'] = str(base / 'state')
    paths['base'] = base
    return paths


@pytest.fixture
def host(monkeypatch, platform):
    made = FleetHost(platform, FIRMWARE, NAMES)

    def execute(self, module_name=None, module_args=None, task_vars=None, **kwargs):
        del self, task_vars, kwargs
        return made(module_name, module_args)

    monkeypatch.setattr(sev_launch_batch.ActionModule, '_execute_module', execute)
    return made


def args(owner, names=NAMES, guests=None, **extra):
    result = dict(guests=[{'domain': name} for name in names] if guests is None else guests, host='hv1', state_dir=owner['state_dir'],
                  policy=0x33, firmware=owner['firmware'], cek_file=owner['cek'], ark_file=owner['ark'],
                  ask_file=owner['ask'], lab_root=True, secrets=[{'guid': 'luks-key', 'path': owner['key']}])
    result.update(extra)
    return result


def run(owner, check_mode=False, **kwargs):
    harness = action_harness.Harness(sev_launch_batch, 'confidential.sev.sev_launch_batch', owner['base'])
    return harness.run(check_mode=check_mode, **kwargs)


def by_domain(result):
    return dict((outcome['domain'], outcome) for outcome in result['outcomes'])


def record(owner, dom):
    path = os.path.join(owner['state_dir'], 'hosts', 'hv1', dom.uuid, 'current.json')
    with open(path, encoding='utf-8') as stream:
        return json.load(stream)


def assert_launched(host, owner, name, resumed=True):
    dom = host.domains[name]
    assert dom.state == ('running' if resumed else 'paused'), (name, dom.state)
    # the secret reached the launch, decrypted by the (emulated) platform
    assert len(dom.secrets) == 1 and KEY in dom.secrets[0]
    assert record(owner, dom)['stage'] == ('resumed' if resumed else 'injected')


def assert_no_secret(result):
    text = json.dumps(result)
    assert KEY.decode().strip() not in text
    assert 'secret_header' not in text and 'secret_payload' not in text


# ---- success, re-run, check mode ----------------------------------------------------------------

def test_all_guests_launched_with_one_call_per_step(host, owner):
    result = run(owner, **args(owner))
    assert result.get("failed") is not True, [o["msg"] for o in result["outcomes"]]
    assert (result['changed'], result['rc'], result['reason'], result['failed_count']) == (True, 0, 'ok', 0)
    assert set(result['timings']) == {'check_entries', 'pin', 'decide', 'predestroy', 'prepare', 'sessions', 'start',
                                      'read_reports', 'validate', 'inject', 'resume', 'destroy_failed'}
    assert all(isinstance(value, float) and value >= 0 for value in result['timings'].values())
    outcomes = by_domain(result)
    for name in NAMES:
        outcome = outcomes[name]
        assert set(outcome) == OUTCOME_KEYS, outcome
        assert (outcome['failed'], outcome['plan'], outcome['changed'], outcome['rc']) == (False, 'launch', True, 0)
        assert outcome['msg'].startswith('launched: launch %s (domain ID %d) validated, 1 secret(s) injected, resumed'
                                         % (outcome['launch_id'], host.domains[name].id)), outcome
        assert outcome['uuid'] == host.domains[name].uuid
        assert_launched(host, owner, name)
    # one host call per step: pin (+ node), start, read, inject, resume
    steps = [(module.split('.')[-1], call.get('state')) for module, call in host.calls]
    assert steps == [('sev_launch_info', None), ('sev_domain', 'paused'), ('sev_launch_info', None),
                     ('sev_secret_inject', None), ('sev_domain', 'resumed')], steps
    pin, start = host.calls[0][1], host.calls[1][1]
    assert pin['include_node'] is True and pin['domains'] == NAMES
    # the host gets the public session only, each guest its own
    sessions = [item['launch_security']['session'] for item in start['domains']]
    assert len(set(sessions)) == len(NAMES)
    assert set(start['domains'][0]['launch_security']) == {'dh_cert', 'session', 'policy'}
    injections = host.calls[3][1]['injections']
    assert set(injections[0]) == {'domain', 'expect_id', 'header', 'payload'}
    assert_no_secret(result)


def test_rerun_changes_nothing_and_check_mode_plans_only(host, owner):
    first = run(owner, **args(owner, resume=False))
    assert first.get('failed') is not True, first
    for name in NAMES:
        assert_launched(host, owner, name, resumed=False)
    ids = dict((name, host.domains[name].id) for name in NAMES)
    # check mode: would resume, nothing changed, only the pin call
    calls = len(host.calls)
    checked = run(owner, check_mode=True, **args(owner))
    assert checked.get('failed') is not True, checked
    assert [o['plan'] for o in checked['outcomes']] == ['resume'] * 5
    assert all(o['msg'].startswith('would resume') and o['check_mode'] for o in checked['outcomes'])
    assert [module for module, dummy in host.calls[calls:]] == ['confidential.sev.sev_launch_info']
    assert host.calls[calls][1]['include_node'] is False
    assert all(host.domains[name].state == 'paused' for name in NAMES)
    # the real run resumes them (one call), then a re-run is ok and unchanged
    resumed = run(owner, **args(owner))
    assert [o['plan'] for o in resumed['outcomes']] == ['resume'] * 5 and resumed['changed'] is True
    assert all(host.domains[name].state == 'running' and host.domains[name].id == ids[name] for name in NAMES)
    calls = len(host.calls)
    again = run(owner, **args(owner))
    assert again.get('failed') is not True and again['changed'] is False, again
    assert [o['plan'] for o in again['outcomes']] == ['ok'] * 5
    assert all('not a re-attestation' in o['msg'] for o in again['outcomes'])
    assert [module for module, dummy in host.calls[calls:]] == ['confidential.sev.sev_launch_info']
    assert all(host.domains[name].id == ids[name] for name in NAMES)


def test_check_mode_on_shut_off_guests_writes_nothing(host, owner):
    result = run(owner, check_mode=True, **args(owner))
    assert result.get("failed") is not True, [o["msg"] for o in result["outcomes"]]
    assert all(o['plan'] == 'launch' and o['msg'].startswith('would launch') for o in result['outcomes'])
    assert result['changed'] is True
    assert len(host.calls) == 1 and not os.path.exists(owner['state_dir'])
    assert all(dom.state == 'shutoff' for dom in host.domains.values())


# ---- per-guest isolation -----------------------------------------------------------------------

@pytest.mark.parametrize('step, task, started', [
    ('info', launch_batch.PIN_TASK, False),
    ('paused', launch_batch.START_TASK, False),
    ('inject', launch_batch.INJECT_TASK, True),
    ('resumed', launch_batch.RESUME_TASK, True),
])
def test_one_guest_failing_at_a_host_step_fails_only_it(host, owner, step, task, started):
    host.fail[(step, 'g2')] = 'libvirt says no'
    result = run(owner, **args(owner))
    assert result['failed'] is True and result['failed_count'] == 1, result
    assert result['msg'].startswith('1 of 5 guests failed: g2: ' + task), result['msg']
    outcomes = by_domain(result)
    bad = outcomes['g2']
    assert (bad['failed'], bad['failed_task'], bad['reason'], bad['rc']) == (True, task, 'error', 6), bad
    assert 'libvirt says no' in bad['msg']
    assert bad['destroyed'] is started and bad['changed'] is started
    dom = host.domains['g2']
    assert dom.state == 'shutoff'
    if started:
        assert 'was destroyed' in bad['msg']
        assert record(owner, dom)['failed']['destroyed'] is True
        # exactly one destroy call, for that launch only (UUID and expect_id)
        destroys = [call for module, call in host.calls if call.get('state') == 'destroyed']
        assert len(destroys) == 1 and len(destroys[0]['domains']) == 1
        assert destroys[0]['domains'][0]['domain'] == dom.uuid and destroys[0]['domains'][0]['expect_id'] > 0
    else:
        assert 'nothing was started or destroyed' in bad['msg']
        assert not any(call.get('state') == 'destroyed' for module, call in host.calls)
    for name in NAMES:
        if name != 'g2':
            assert outcomes[name]['failed'] is False, outcomes[name]
            assert_launched(host, owner, name)


def test_a_mismatch_fails_only_that_guest_and_nothing_is_sent_to_it(host, owner):
    host.host_firmware['g1'] = b'\x00' + FIRMWARE[1:]
    result = run(owner, **args(owner))
    outcomes = by_domain(result)
    bad = outcomes['g1']
    assert (bad['failed'], bad['failed_task'], bad['reason'], bad['rc']) == (
        True, launch_batch.VALIDATE_TASK, 'mismatch', 1), bad
    assert bad['destroyed'] is True and host.domains['g1'].state == 'shutoff'
    assert host.domains['g1'].secrets == []
    injected = [item['domain'] for module, call in host.calls for item in call.get('injections', [])]
    assert host.domains['g1'].uuid not in injected and len(injected) == 4
    assert record(owner, host.domains['g1'])['failed']['reason'].startswith(launch_batch.VALIDATE_TASK)
    assert [outcomes[n]['failed'] for n in NAMES] == [False, True, False, False, False]
    assert result['msg'].startswith('1 of 5 guests failed: g1: ')


def test_a_host_reporting_another_launch_fails_that_guest(host, owner, monkeypatch):
    real = host.report

    def report(dom):
        raw = real(dom)
        if dom.name == 'g3' and dom.active:
            raw['state']['run_state'] = 'running'
        return raw
    monkeypatch.setattr(host, 'report', report)
    result = run(owner, **args(owner))
    bad = by_domain(result)['g3']
    assert (bad['failed_task'], bad['reason'], bad['rc'], bad['destroyed']) == (
        launch_batch.REPORT_CHECK_TASK, 'state', 5, True), bad
    assert [o['failed'] for o in result['outcomes']].count(True) == 1


def test_garbage_from_the_host_for_one_item_fails_only_it(host, owner, monkeypatch):
    real = host.launch_info

    def launch_info(call):
        results = real(call)
        if not call.get('include_node'):
            results[4] = {'changed': False, 'report': {'hostname': 7}}
        return results
    monkeypatch.setattr(host, 'launch_info', launch_info)
    result = run(owner, **args(owner))
    bad = by_domain(result)['g4']
    assert (bad['failed_task'], bad['reason'], bad['destroyed']) == (launch_batch.READ_TASK, 'unsupported', True)
    assert sum(o['failed'] for o in result['outcomes']) == 1


def test_replay_is_refused_and_destroyed(host, owner, monkeypatch):
    first = run(owner, **args(owner, names=['g0']))
    assert first.get('failed') is not True, first
    measured = host.domains['g0'].measurement
    host.domains['g0'].state, host.domains['g0'].run_state, host.domains['g0'].id = 'shutoff', None, -1
    # the host answers the next launch of g0 with the measurement of the first one, and the old keys
    # cannot be had: make the session step reuse the first launch's files
    real_start = host._start

    def replaying(dom, launch_security):
        outcome = real_start(dom, launch_security)
        if dom.name == 'g0':
            dom.measurement = measured
        return outcome
    monkeypatch.setattr(host, '_start', replaying)
    first = record(owner, host.domains['g0'])
    real_sessions = launch_batch.LaunchBatch.sessions

    def old_keys(self):
        # the host cannot have the old TIK; the test hands the controller's own old files to the
        # validation, so that the replayed measurement matches and only the replay record refuses it
        real_sessions(self)
        for guest in self.guests:
            if guest.domain == 'g0':
                directory = os.path.join(owner['state_dir'], 'hosts', 'hv1', guest.uuid, 'launches',
                                         first['launch_id'])
                guest.files = dict(guest.files, tik=os.path.join(directory, 'tik'),
                                   tek=os.path.join(directory, 'tek'))
    monkeypatch.setattr(launch_batch.LaunchBatch, 'sessions', old_keys)
    result = run(owner, **args(owner, names=['g0', 'g1']))
    bad, good = by_domain(result)['g0'], by_domain(result)['g1']
    assert (bad['failed'], bad['reason'], bad['rc'], bad['replayed']) == (True, 'insecure', 3, True), bad
    assert 'replay' in bad['msg'] and bad['destroyed'] is True
    assert host.domains['g0'].state == 'shutoff' and len(host.domains['g0'].secrets) == 1
    assert good['failed'] is False, good


# ---- bad entries ------------------------------------------------------------------------------

def test_bad_entries_fail_only_their_guest(host, owner):
    guests = [{'domain': 'g0'}, {'domain': 'g1', 'firmwre': 'typo'}, {'domain': 'g0'}, 'g3',
              {'domain': 'g4', 'policy': 'seven'}, {'domain': 'missing'}]
    result = run(owner, **args(owner, guests=guests))
    outcomes = result['outcomes']
    assert [o['failed'] for o in outcomes] == [False, True, True, True, True, True]
    assert 'unknown keys firmwre' in outcomes[1]['msg']
    assert 'listed twice' in outcomes[2]['msg']
    assert 'not a mapping' in outcomes[3]['msg'] and outcomes[3]['domain'] == 'guests[3]'
    assert 'policy' in outcomes[4]['msg'] and outcomes[4]['reason'] == 'unsupported'
    assert outcomes[5]['failed_task'] == launch_batch.PIN_TASK and 'not found' in outcomes[5]['msg']
    assert_launched(host, owner, 'g0')


def test_a_guest_override_applies_to_that_guest_only(host, owner):
    guests = [{'domain': 'g0', 'resume': False}, {'domain': 'g1', 'firmware': None}, {'domain': 'g2'}]
    result = run(owner, **args(owner, guests=guests))
    outcomes = by_domain(result)
    assert 'left paused before its first run' in outcomes['g0']['msg']
    assert outcomes['g1']['failed_task'] == launch_batch.NEEDS_TASK and 'firmware' in outcomes['g1']['msg']
    assert outcomes['g2']['failed'] is False
    assert host.domains['g0'].state == 'paused' and host.domains['g1'].state == 'shutoff'


def test_an_active_unknown_launch_is_left_untouched(host, owner):
    dom = host.domains['g0']
    dom.state, dom.run_state, dom.id = 'running', 'running', 99
    result = run(owner, **args(owner, names=['g0', 'g1']))
    bad = by_domain(result)['g0']
    assert (bad['failed_task'], bad['reason'], bad['rc'], bad['plan']) == (
        launch_batch.PLAN_FAIL_TASK, 'state', 5, 'fail'), bad
    assert dom.state == 'running' and dom.id == 99
    # relaunch destroys that launch (by its ID) in one call, then launches it
    result = run(owner, **args(owner, names=['g0'], if_active='relaunch'))
    outcome = by_domain(result)['g0']
    assert (outcome['failed'], outcome['plan'], outcome['destroyed']) == (False, 'relaunch', True), outcome
    assert outcome['msg'].startswith('relaunched')
    predestroy = [call for module, call in host.calls if call.get('state') == 'destroyed']
    assert predestroy[-1]['domains'] == [{'domain': dom.uuid, 'expect_id': 99}]


def test_a_task_level_usage_error_names_the_option(host, owner):
    result = run(owner, **args(owner, guests='g0'))
    assert result['failed'] is True and result['rc'] == 2
    assert 'guests' in result['msg']
    assert host.calls == []


def test_secret_option_values_are_never_shown(host, owner):
    result = run(owner, **args(owner, names=['g0'], tik='KEYTEXT-not-a-path', tek='KEYTEXT2'))
    outcome = result['outcomes'][0]
    assert outcome['failed'] is True
    assert 'KEYTEXT' not in json.dumps(result)


def test_one_digest_cache_for_all_guests(host, owner, monkeypatch):
    """The firmware all five guests boot is hashed once (check mode hashes nothing, creates nothing)."""
    monkeypatch.setattr(digest_cache, 'MIN_AGE', 0)
    path = os.path.join(owner['state_dir'], 'digests.json')
    result = run(owner, check_mode=True, **args(owner, digest_cache=path))
    assert result['digest_cache'] == {'hits': 0, 'misses': 0, 'hashed_bytes': 0}
    assert not os.path.exists(owner['state_dir'])
    result = run(owner, **args(owner, digest_cache=path))
    assert result.get('failed') is not True, [o['msg'] for o in result['outcomes']]
    stats = result['digest_cache']
    assert (stats['misses'], stats['hits'], stats['hashed_bytes']) == (1, 4, len(FIRMWARE)), stats


def test_a_wrong_pin_fails_only_that_guest(host, owner):
    """A per-guest firmware_sha256 that the trusted file does not have: config (4), that launch destroyed."""
    good = hashlib.sha256(FIRMWARE).hexdigest()
    guests = [{'domain': 'g0', 'firmware_sha256': '0' * 64}, {'domain': 'g1', 'firmware_sha256': good},
              {'domain': 'g2'}]
    result = run(owner, **args(owner, guests=guests))
    outcomes = by_domain(result)
    bad = outcomes['g0']
    assert (bad['failed'], bad['reason'], bad['rc'], bad['failed_task'], bad['destroyed']) == (
        True, 'config', 4, launch_batch.VALIDATE_TASK, True), bad
    assert 'firmware_sha256' in bad['msg'] and host.domains['g0'].secrets == []
    assert [outcomes['g1']['failed'], outcomes['g2']['failed']] == [False, False]


def test_an_unexpected_error_still_destroys_the_launches_started(host, owner, monkeypatch):
    """A bug in a step (not one guest's): every guest on its way fails, each launch started is destroyed."""
    def broken(self):
        raise RuntimeError('a bug')
    monkeypatch.setattr(launch_batch.LaunchBatch, 'inject', broken)
    result = run(owner, **args(owner, names=['g0', 'g1']))
    assert result['failed'] is True and result['failed_count'] == 2
    for outcome in result['outcomes']:
        assert (outcome['failed_task'], outcome['reason'], outcome['rc'], outcome['destroyed']) == (
            launch_batch.UNEXPECTED_TASK, 'error', 6, True), outcome
        assert 'RuntimeError: a bug' in outcome['msg']
    assert [host.domains[name].state for name in ('g0', 'g1')] == ['shutoff', 'shutoff']


def test_guests_on_two_uris_make_one_call_per_uri_and_step(host, owner):
    guests = [{'domain': 'g0'}, {'domain': 'g1', 'uri': 'qemu+ssh://other/system'}, {'domain': 'g2'}]
    result = run(owner, **args(owner, guests=guests))
    assert result.get('failed') is not True, [o['msg'] for o in result['outcomes']]
    pins = [call for module, call in host.calls if module.endswith('sev_launch_info') and call['include_node']]
    assert sorted((call['uri'], tuple(call['domains'])) for call in pins) == [
        ('qemu+ssh://other/system', ('g1',)), ('qemu:///system', ('g0', 'g2'))]
    assert len(host.calls) == 10

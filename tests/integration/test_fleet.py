# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet path of the role: sev_launch_together: true (one sev_launch_batch
task per hypervisor) on one EMULATED hypervisor (real libvirtd 9.0 and QEMU
under TCG, the emulated secure processor of tests/platform, reached over ssh).

(a) five guests launched together: each key read back from guest memory, a
    re-run changes nothing (same QEMU pids), check mode changes nothing, a
    later run resumes them;
(b) one bad guest among 50 (the owner trusts the wrong firmware: a mismatch):
    exactly that launch is destroyed and fails, the other 49 are validated and
    injected (left paused, sev_launch_resume: false, to spare the CPU), and the
    play fails at the end naming only that guest.  Its wall time is recorded;
(c) the fault suite's platform faults (test_faults.py) on this path: the
    measurement query failing, a mismatch, the injection refused, QEMU dying
    after an accepted injection, a domain started before the run, a good guest;
(d) the controller interrupted (SIGINT as ^C; SIGKILL of ansible-playbook and
    its workers) at started, validated, injected, then one re-run: the same
    invariant and re-run plans as test_faults.py's per-guest runs.
"""

from __future__ import annotations

import base64
import glob
import os
import signal

import libvirt
import pytest

from harness import e2e
from harness.hypervisor import EmulatedHypervisor
from harness.sev_guest import default_policy, sev_guest_xml

SEV_POLICY = default_policy(False)
SHUTOFF, PAUSED, RUNNING = libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_RUNNING
BATCH_TASK = 'Launch the guests of this hypervisor together (one host-side call per step)'
# Guests never run in (b) and only briefly in (a): small memory is enough for OVMF's load.
MEMORY_MIB = 128


@pytest.fixture(scope='module')
def hv(record):
    """One emulated hypervisor of its own (a slot is allocated; the name may repeat)."""
    made = EmulatedHypervisor(name='fleet', hostname='sev-fleet')
    made.start()
    try:
        record('fleet: emulated hypervisor start', '%.2fs; slot %d' % (made.start_seconds, made.slot))
        made.warm_up()
        yield made
    finally:
        made.stop()


class Owner:
    """The guest owner's files on the controller (0700): a LUKS key, the state directory."""

    def __init__(self, tmp_path, ovmf):
        self.dir = tmp_path / 'owner'
        self.dir.mkdir(mode=0o700)
        self.key = os.urandom(32)
        self.key_path = e2e.write_private(self.dir / 'luks.key', self.key)
        self.state_dir = str(self.dir / 'state')
        self.ovmf = ovmf

    def play_vars(self, **extra):
        result = {'sev_launch_together': True, 'sev_launch_state_dir': self.state_dir,
                  'sev_launch_policy': SEV_POLICY, 'sev_launch_firmware': self.ovmf,
                  'sev_launch_secrets': [{'guid': 'luks-key', 'path': self.key_path}]}
        result.update(extra)
        return result


def define(guests, hv, ovmf, prefix, count):
    names = [e2e.unique('%s%02d' % (prefix, index)) for index in range(count)]
    doms = [guests.define(hv, sev_guest_xml(name, ovmf, memory_mib=MEMORY_MIB), name) for name in names]
    return names, doms


def host_vars(hv, names, **overrides):
    entries = [dict(overrides.get(name, {}), domain=name) for name in names]
    return {hv.hostname: dict(e2e.lab_root_vars(hv), sev_launch_guests=entries)}


def key_in_memory(hv, dom, owner):
    area = hv.read_guest_memory(dom, e2e.SECRET_AREA_GPA, e2e.SECRET_AREA_SIZE)
    return e2e.parse_secret_table(area) == {e2e.LUKS_KEY_GUID: owner.key}


def no_secret_in(output, owner):
    assert owner.key.hex() not in output
    assert base64.b64encode(owner.key).decode('ascii') not in output


def test_five_guests_together_keys_rerun_and_check_mode(hv, ovmf, tmp_path, guests, record):
    owner = Owner(tmp_path, ovmf)
    names, doms = define(guests, hv, ovmf, 'fleet-a', 5)
    hosts = host_vars(hv, names)

    # check mode on shut-off guests: would launch, nothing reaches the platform or the state directory
    run0 = e2e.run_role(tmp_path / 'run0', [hv], owner.play_vars(), hosts, extra_args=['--check'])
    assert run0.rc == 0, run0.output[-8000:]
    for name in names:
        out = run0.outcome(hv.hostname, name)
        assert (out['failed'], out['plan'], out['check_mode']) == (False, 'launch', True), out
    assert not any(e2e.records_of(hv, name) for name in names)
    assert not os.path.exists(owner.state_dir)

    # launch together, left paused: each key read back from its guest's memory (at -vvvv: no secret shown)
    run1 = e2e.run_role(tmp_path / 'run1', [hv], owner.play_vars(sev_launch_resume=False), hosts,
                        extra_args=['-vvvv'])
    assert run1.rc == 0, run1.output[-8000:]
    assert BATCH_TASK in run1.stdout
    pids = {}
    for name, dom in zip(names, doms):
        out = run1.outcome(hv.hostname, name)
        assert (out['failed'], out['plan'], out['changed']) == (False, 'launch', True), out
        assert 'left paused before its first run' in out['msg'], out
        assert dom.state()[0] == PAUSED
        (rec,) = e2e.records_of(hv, name)
        assert [(i['accepted'], i['after_finish']) for i in rec['injections']] == [(True, False)]
        assert key_in_memory(hv, dom, owner), name
        assert e2e.controller_record(owner.state_dir, hv.hostname, dom.UUIDString())['stage'] == 'injected'
        pids[name] = e2e.qemu_pid(hv, name)
    no_secret_in(run1.output, owner)
    session_keys = glob.glob(os.path.join(owner.state_dir, 'hosts', '*', '*', 'launches', '*', 't[ie]k'))
    assert len(session_keys) == 10
    for path in session_keys:
        with open(path, 'rb') as f:
            key = f.read()
        assert key.hex() not in run1.output and base64.b64encode(key).decode('ascii') not in run1.output

    # a re-run with the same settings: ok, unchanged, same QEMU pids, nothing new on the platform
    run2 = e2e.run_role(tmp_path / 'run2', [hv], owner.play_vars(sev_launch_resume=False), hosts)
    assert run2.rc == 0, run2.output[-8000:]
    assert 'changed=0' in run2.stdout.split('PLAY RECAP')[-1], run2.stdout[-3000:]
    for name in names:
        out = run2.outcome(hv.hostname, name)
        assert (out['failed'], out['plan'], out['changed']) == (False, 'ok', False), out
        assert e2e.qemu_pid(hv, name) == pids[name]
        assert len(e2e.records_of(hv, name)) == 1 and len(e2e.records_of(hv, name)[0]['injections']) == 1

    # check mode with resume: would resume, nothing changes
    run3 = e2e.run_role(tmp_path / 'run3', [hv], owner.play_vars(), hosts, extra_args=['--check'])
    assert run3.rc == 0, run3.output[-8000:]
    for name, dom in zip(names, doms):
        out = run3.outcome(hv.hostname, name)
        assert (out['plan'], out['check_mode']) == ('resume', True) and out['msg'].startswith('would resume'), out
        assert dom.state()[0] == PAUSED and e2e.qemu_pid(hv, name) == pids[name]

    # the real run resumes exactly those launches (same QEMU), no new injection
    run4 = e2e.run_role(tmp_path / 'run4', [hv], owner.play_vars(), hosts)
    assert run4.rc == 0, run4.output[-8000:]
    for name, dom in zip(names, doms):
        out = run4.outcome(hv.hostname, name)
        assert (out['failed'], out['plan'], out['changed']) == (False, 'resume', True), out
        assert dom.state()[0] == RUNNING and e2e.qemu_pid(hv, name) == pids[name]
        assert e2e.controller_record(owner.state_dir, hv.hostname, dom.UUIDString())['stage'] == 'resumed'
    record('fleet (a): 5 guests together: --check / launch / re-run / --check / resume',
           ' / '.join('%.1fs' % run.seconds for run in (run0, run1, run2, run3, run4)))


def test_one_bad_guest_among_fifty(hv, ovmf, tmp_path, guests, record):
    owner = Owner(tmp_path, ovmf)
    names, doms = define(guests, hv, ovmf, 'fleet-b', 50)
    # the owner trusts the wrong firmware for one guest: the patched OVMF with one byte off (a mismatch, rc 1)
    other = e2e.one_byte_off(ovmf, owner.dir / 'OVMF_CODE.other.fd')
    bad = names[17]
    hosts = host_vars(hv, names, **{bad: {'firmware': other}})
    run = e2e.run_role(tmp_path / 'run', [hv], owner.play_vars(sev_launch_resume=False), hosts, timeout=900)
    record('fleet (b): 50 guests together on one emulated host, 1 bad (wall time)', '%.1fs' % run.seconds)
    assert run.rc != 0, run.output[-8000:]
    # the play fails at the end naming only that guest
    assert '1 of 50 guests failed: %s: ' % bad in run.output, run.output[-8000:]
    for name in names:
        if name != bad:
            assert name + ': ' not in run.output.split('guests failed:')[-1].split('\n')[0]
    out = run.outcome(hv.hostname, bad)
    assert (out['failed'], out['reason'], out['rc'], out['destroyed']) == (True, 'mismatch', 1, True), out
    assert out['failed_task'].startswith('Validate the measurement'), out
    bad_dom = doms[17]
    assert bad_dom.state()[0] == SHUTOFF
    (rec,) = e2e.records_of(hv, bad)
    e2e.assert_refused_launch(rec)
    assert e2e.controller_record(owner.state_dir, hv.hostname, bad_dom.UUIDString())['failed']['destroyed'] is True
    for name, dom in zip(names, doms):
        if name == bad:
            continue
        out = run.outcome(hv.hostname, name)
        assert (out['failed'], out['plan'], out['destroyed']) == (False, 'launch', False), out
        assert dom.state()[0] == PAUSED
        (rec,) = e2e.records_of(hv, name)
        assert rec['finished'] is False
        assert [i['accepted'] for i in rec['injections']] == [True], (name, rec['injections'])
        assert e2e.controller_record(owner.state_dir, hv.hostname, dom.UUIDString())['stage'] == 'injected'
    # spot checks of guest memory (pmemsave is slow under TCG): the first and the last good guest
    assert key_in_memory(hv, doms[0], owner) and key_in_memory(hv, doms[49], owner)
    no_secret_in(run.output, owner)


# ------------------------------------------------- faults on the fleet path ----

def test_platform_faults_together(hv, ovmf, tmp_path, guests, record):
    """The fault suite's platform faults on the fleet path (one sev_launch_batch task for the host): the
    measurement query failing, a mismatch, the injection refused, QEMU dying right after an accepted
    injection, a domain started before the run, next to a good guest. Each failure touches only the launch
    this run started for it; the good guest runs; no launch ran or got a secret without validation."""
    owner = Owner(tmp_path, ovmf)
    labels = ('measure', 'mismatch', 'refused', 'crash', 'early', 'good')
    names, doms = define(guests, hv, ovmf, 'fleet-f', len(labels))
    names, doms = dict(zip(labels, names)), dict(zip(labels, doms))
    other = e2e.one_byte_off(ovmf, owner.dir / 'OVMF_CODE.other.fd')
    hosts = host_vars(hv, list(names.values()), **{names['mismatch']: {'firmware': other}})
    doms['early'].create()
    assert e2e.wait_until(lambda: e2e.records_of(hv, names['early'])[0]['finished'], 15)
    early_before = (tuple(doms['early'].state()), e2e.qemu_pid(hv, names['early']))
    hv.set_faults({names['measure']: {'measure_fails': True}, names['refused']: {'inject_refused': True},
                   names['crash']: {'crash_after_inject': True}})
    try:
        run = e2e.run_role(tmp_path / 'run', [hv], owner.play_vars(), hosts)
    finally:
        hv.clear_faults()
    record('fleet: platform faults, 6 guests together', '%.1fs' % run.seconds)
    assert run.rc != 0 and BATCH_TASK in run.stdout, run.output[-8000:]
    assert '5 of 6 guests failed' in run.output, run.output[-8000:]
    no_secret_in(run.output, owner)
    launched = [rec for name in names.values() if name != names['early'] for rec in e2e.records_of(hv, name)]
    e2e.assert_only_validated_launches_got_anything(launched, owner.state_dir)

    def out(label):
        outcome = run.outcome(hv.hostname, names[label])
        assert outcome['failed'] is (label != 'good') and 'Traceback' not in outcome['msg'], outcome
        return outcome

    def ctl(label):
        return e2e.controller_record(owner.state_dir, hv.hostname, doms[label].UUIDString())

    def destroyed_once(label):
        (rec,) = e2e.records_of(hv, names[label])
        e2e.assert_refused_launch(rec)
        assert tuple(doms[label].state()) == (SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED), label
        assert ctl(label)['failed']['destroyed'] is True, ctl(label)
        return rec

    outcome = out('measure')
    assert outcome['failed_task'] == e2e.READ_TASK and outcome['destroyed'] is True, outcome
    assert destroyed_once('measure')['faults_applied'] == ['measure_fails']
    assert ctl('measure')['stage'] == 'started'
    outcome = out('mismatch')
    assert (outcome['reason'], int(outcome['rc']), outcome['destroyed']) == ('mismatch', 1, True), outcome
    assert outcome['failed_task'] == e2e.VALIDATE_TASK, outcome
    destroyed_once('mismatch')
    outcome = out('refused')
    assert (outcome['failed_task'], outcome['destroyed']) == (e2e.INJECT_TASK, True), outcome
    assert [i['accepted'] for i in destroyed_once('refused')['injections']] == [False]
    # QEMU died right after an accepted injection: delivered to a validated launch, which never ran
    outcome = out('crash')
    assert outcome['failed_task'] in (e2e.INJECT_TASK, e2e.RESUME_TASK) and outcome['destroyed'] is False, outcome
    assert 'secret(s) had been delivered to this validated launch' in outcome['msg'], outcome
    (rec,) = e2e.records_of(hv, names['crash'])
    e2e.assert_refused_launch(rec, crashed=True)
    assert doms['crash'].state()[0] == SHUTOFF
    assert (ctl('crash')['stage'], ctl('crash')['mnonce']) == ('injected', rec['mnonce']) and ctl('crash')['failed']
    # started before the run: plan fail, reason state, rc 5, untouched
    outcome = out('early')
    assert (outcome['plan'], outcome['reason'], int(outcome['rc']), outcome['failed_task']) == \
        ('fail', 'state', 5, e2e.PLAN_FAIL_TASK), outcome
    assert (tuple(doms['early'].state()), e2e.qemu_pid(hv, names['early'])) == early_before
    assert e2e.records_of(hv, names['early'])[0]['injections'] == [] and ctl('early') is None
    outcome = out('good')
    assert (outcome['plan'], outcome['changed'], outcome['destroyed']) == ('launch', True, False), outcome
    (rec,) = e2e.records_of(hv, names['good'])
    assert rec['finished'] is True and [i['accepted'] for i in rec['injections']] == [True]
    assert doms['good'].state()[0] == RUNNING and ctl('good')['stage'] == 'resumed'


def test_interrupted_together_then_run_again(hv, ovmf, tmp_path, guests, record):
    """ansible-playbook gets SIGINT (its process group, as ^C) or SIGKILL (with its workers: e2e.interrupt_role)
    when the controller's record of the first of a run's two guests says started, validated, injected (six runs
    at once, sev_launch_together); once no module a run sent still runs on the host, one re-run over all twelve.
    Nothing ran or got a secret without validation, after the signals and after the re-run; the re-run leaves a
    launch it cannot prove prelaunch and validated untouched (plan fail, state 5), resumes one validated and
    injected still before its first run (same QEMU, no new injection), launches one that is shut off, and leaves
    a running one it validated."""
    owner = Owner(tmp_path, ovmf)
    cases = [(stage, signum) for stage in ('started', 'validated', 'injected')
             for signum in (signal.SIGINT, signal.SIGKILL)]
    names, doms, runs, triggers = {}, {}, {}, {}
    for case in cases:
        stage, signum = case
        names[case], doms[case] = define(guests, hv, ovmf, 'fleet-%s-%s-' % (
            stage[:3], signal.Signals(signum).name[3:].lower()), 2)
        started = runs[case] = e2e.start_role(tmp_path / ('run-%s-%d' % (stage, signum)), [hv],
                                              owner.play_vars(), host_vars(hv, names[case]), new_session=True)
        triggers[case] = e2e.StageTrigger(owner.state_dir, hv.hostname, doms[case][0].UUIDString(), stage,
                                          lambda started=started, signum=signum: e2e.interrupt_role(started, signum))
        triggers[case].start()
    ended = {}
    for case in cases:
        proc = runs[case][0]
        ended[case] = e2e.end_interrupted_run(runs[case], triggers[case], case[1])[1]
        assert (triggers[case].fired, triggers[case].error) == (case[0], None), case
        if ended[case].endswith('SIGKILL'):
            assert proc.returncode == -signal.SIGKILL, case
    # a module a killed run had sent (an injection, a resume) goes on on the host: let it end first
    assert e2e.wait_until(lambda: not e2e.host_module_pids(hv), 120, 0.2), e2e.host_module_pids(hv)
    every = [name for case in cases for name in names[case]]
    e2e.assert_only_validated_launches_got_anything(
        [rec for name in every for rec in e2e.records_of(hv, name)], owner.state_dir)
    before = {}
    for case in cases:
        for name, dom in zip(names[case], doms[case]):
            recs = e2e.records_of(hv, name)
            before[name] = (tuple(dom.state()), e2e.qemu_pid(hv, name),
                            e2e.controller_record(owner.state_dir, hv.hostname, dom.UUIDString()), recs)
            # before its stage was reached, no launch had a secret accepted; none ran unless injected
            assert not [r for r in recs if r['finished'] and not any(i['accepted'] for i in r['injections'])]
    record('fleet: interrupted runs (together), signals', ', '.join(
        '%s/%s: %s rc %s' % (case[0], signal.Signals(case[1]).name, ended[case], runs[case][0].returncode)
        for case in cases))

    rerun = e2e.run_role(tmp_path / 'rerun', [hv], owner.play_vars(), host_vars(hv, every))
    no_secret_in(rerun.output, owner)
    e2e.assert_only_validated_launches_got_anything(
        [rec for name in every for rec in e2e.records_of(hv, name)], owner.state_dir)
    plans = {}
    for case in cases:
        for name, dom in zip(names[case], doms[case]):
            (state, reason), pid, ctl, recs = before[name]
            outcome = rerun.outcome(hv.hostname, name)
            plans[name] = outcome['plan']
            now = e2e.records_of(hv, name)
            ran = bool(recs) and recs[-1]['finished']
            if ctl and ctl['stage'] == 'resumed' and state == RUNNING:
                # the run went on to its end: left running, unchanged
                assert (outcome['failed'], outcome['plan'], outcome['changed']) == (False, 'ok', False), outcome
                assert (e2e.qemu_pid(hv, name), len(now)) == (pid, len(recs))
            elif state == SHUTOFF:
                # never started, or destroyed by the interrupted run: a new launch, validated, delivered
                assert (outcome['failed'], outcome['plan']) == (False, 'launch'), (case, name, outcome)
                assert len(now) == len(recs) + 1 and now[-1]['finished'], (case, now)
                assert [i['accepted'] for i in now[-1]['injections']] == [True]
            elif ctl and ctl['stage'] == 'injected' and not ctl.get('failed') and not ran:
                # validated and injected, still before its first run: resumed (that launch, same QEMU)
                assert state == PAUSED, (case, name, state)
                assert (outcome['failed'], outcome['plan']) == (False, 'resume'), (case, name, outcome)
                assert e2e.wait_until(lambda name=name: e2e.records_of(hv, name)[-1]['finished'], 15)
                assert e2e.qemu_pid(hv, name) == pid and dom.state()[0] == RUNNING and len(now) == len(recs)
                assert len(now[-1]['injections']) == len(recs[-1]['injections'])
            else:
                # left before validation, or validated but not recorded as injected, or already run:
                # refused, untouched
                assert (outcome['failed'], outcome['plan'], outcome['reason'], int(outcome['rc'])) == \
                    (True, 'fail', 'state', 5), (case, name, ctl, outcome)
                assert (tuple(dom.state()), e2e.qemu_pid(hv, name)) == ((state, reason), pid), (case, name)
                assert [(r['finished'], r['injections']) for r in now] == \
                    [(r['finished'], r['injections']) for r in recs], (case, name)
    record('fleet: re-run plans after the interrupts (together)', ', '.join(
        '%s/%s: %s' % (stage, signal.Signals(signum).name, '+'.join(plans[name] for name in names[stage, signum]))
        for stage, signum in cases))

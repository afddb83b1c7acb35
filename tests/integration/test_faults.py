# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults and concurrency (issue 10, item 7): the role confidential.sev.sev_launch on the EMULATED hypervisors
(real libvirtd 9.0, real QEMU 7.2 under TCG, the emulated secure processor of tests/platform), each step failed
in turn, the controller interrupted at each stage, and 20 launches at once.

What is asserted every time (``invariant``):
* never a running guest without a validated measurement, never a secret to a launch that did not validate:
  in the EMULATED platform's records, every launch that ran (``finished``) or accepted a secret has its mnonce
  and reported measurement in the controller's seen store (claimed only after a match), for that domain;
* a launch this run started is destroyed where libvirt is reachable (shut off, reason destroyed, one launch
  record: never started again); a domain the run did not start is untouched (same QEMU pid, ID and state).
Faults come from the platform (``set_faults``: measure_fails, inject_refused, crash_after_inject), from the
test acting on libvirt between two tasks of the role (``e2e.StageTrigger``: when the controller's own record
reaches a stage), from a bad URI, from libvirtd killed on a dedicated hypervisor, and from signals to
ansible-playbook's process group.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import time

import libvirt

from harness import e2e
from harness.hypervisor import EmulatedHypervisor
from harness.sev_guest import default_policy, sev_guest_xml

SEV_POLICY, ES_POLICY = default_policy(False), default_policy(True)
SHUTOFF, PAUSED, RUNNING = libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_RUNNING
ES1 = e2e.es_overrides(ES_POLICY, 1)
PIN_TASK, READ_TASK, VALIDATE_TASK = e2e.PIN_TASK, e2e.READ_TASK, e2e.VALIDATE_TASK
INJECT_TASK, RESUME_TASK, PLAN_FAIL_TASK = e2e.INJECT_TASK, e2e.RESUME_TASK, e2e.PLAN_FAIL_TASK


class Owner:
    """The guest owner on the controller: a 0700 directory, the role's state directory, LUKS keys."""

    def __init__(self, tmp_path, ovmf):
        self.dir = tmp_path / 'owner'
        self.dir.mkdir(mode=0o700)
        self.state_dir = str(self.dir / 'state')
        self.ovmf = ovmf
        self.keys = {}

    def key(self, label):
        """A LUKS key of its own for guest ``label``; returns the role's secrets list."""
        self.keys[label] = os.urandom(32)
        path = e2e.write_private(self.dir / ('%s.key' % label), self.keys[label])
        return [{'guid': 'luks-key', 'path': path}]

    def play_vars(self, **extra):
        result = {'sev_launch_state_dir': self.state_dir, 'sev_launch_policy': SEV_POLICY,
                  'sev_launch_firmware': self.ovmf, 'sev_launch_secrets': self.key('default')}
        result.update(extra)
        return result

    def no_key_in(self, output):
        for key in self.keys.values():
            assert key.hex() not in output and key.hex().upper() not in output
            assert base64.b64encode(key).decode('ascii') not in output


def host_vars(hvs, guest_lists):
    return {hv.hostname: dict(e2e.lab_root_vars(hv), sev_launch_guests=guest_lists.get(hv.hostname, []))
            for hv in hvs}


def live(dom):
    """((state, reason), ID) of dom now (a virDomain keeps the ID it had when it was looked up)."""
    fresh = dom.connect().lookupByUUIDString(dom.UUIDString())
    return tuple(fresh.state()), fresh.ID()


def gone(conn, uuid):
    try:
        conn.lookupByUUIDString(uuid)
    except libvirt.libvirtError as exc:
        return exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN
    return False


def invariant(hvs, names, owner):
    """No launch of these domains ran or got a secret without a validated measurement (see the docstring)."""
    records = [rec for hv in hvs for rec in hv.launches() if rec.get('domain_name') in names]
    e2e.assert_only_validated_launches_got_anything(records, owner.state_dir)
    return records


def destroyed_once(hv, dom, name):
    """A launch the run started and destroyed: one platform launch, never ran, no secret, shut off (destroyed)."""
    (rec,) = e2e.records_of(hv, name)
    e2e.assert_refused_launch(rec)
    assert tuple(dom.state()) == (SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED), (name, dom.state())
    return rec


# --------------------------------------------------------- each step fails ----

def test_each_step_failed_in_turn(emulated_hypervisors, ovmf, tmp_path, guests, record):
    """One play on the three hypervisors, one guest per fault, next to a good guest and an untouched one:
    libvirt unreachable before the start (a URI with no daemon behind it); the domain vanishing (destroy +
    undefine) after the paused start and after validation; the measurement query failing; a mismatch
    (one firmware byte off); the injection refused; QEMU dying right after an accepted injection; the launch
    destroyed just before the resume; a domain started before the run (plan fail: reason state, rc 5)."""
    hv1, hv2, hv3 = emulated_hypervisors
    owner = Owner(tmp_path, ovmf)
    names, doms, lists = {}, {}, {hv.hostname: [] for hv in emulated_hypervisors}

    def guest(hv, label, xml_kwargs=None, **override):
        name = names[label] = e2e.unique('flt-' + label)
        doms[label] = guests.define(hv, sev_guest_xml(name, ovmf, **(xml_kwargs or {})), name)
        lists[hv.hostname].append(dict(override, domain=name, secrets=owner.key(label)))

    guest(hv1, 'unreachable', uri='qemu+unix:///system?socket=%s' % (tmp_path / 'no-libvirtd-here.sock'))
    guest(hv1, 'measure')
    # the owner trusts other firmware bytes than the host runs (one byte off, far from the footer)
    other_ovmf = e2e.one_byte_off(ovmf, tmp_path / 'OVMF_CODE.other.fd')
    guest(hv1, 'mismatch', firmware=other_ovmf)
    guest(hv1, 'vanish-started')
    guest(hv2, 'refused')
    guest(hv2, 'crash')
    guest(hv2, 'vanish-validated')
    guest(hv3, 'resume-destroyed')
    early = e2e.premade_session(hv3.node_sev()['pdh'], SEV_POLICY, owner.dir, 'session-early')
    guest(hv3, 'early', {'dh_cert': early['dh_cert'], 'session': early['session']}, tik=early['tik'],
          tek=early['tek'])
    guest(hv3, 'good')
    doms['early'].create()
    assert e2e.wait_until(lambda: e2e.records_of(hv3, names['early'])[0]['finished'], 15)
    early_before = live(doms['early']) + (e2e.qemu_pid(hv3, names['early']),)
    uuids = {label: dom.UUIDString() for label, dom in doms.items()}

    def vanish(label):
        def act():
            doms[label].destroy()
            doms[label].undefine()
        return act

    def destroy(label):
        return doms[label].destroy

    triggers = [e2e.StageTrigger(owner.state_dir, hv1.hostname, uuids['vanish-started'], 'started',
                                 vanish('vanish-started')),
                e2e.StageTrigger(owner.state_dir, hv2.hostname, uuids['vanish-validated'], 'validated',
                                 vanish('vanish-validated')),
                e2e.StageTrigger(owner.state_dir, hv3.hostname, uuids['resume-destroyed'], 'injected',
                                 destroy('resume-destroyed'))]
    hv1.set_faults({names['measure']: {'measure_fails': True}})
    hv2.set_faults({names['refused']: {'inject_refused': True}, names['crash']: {'crash_after_inject': True}})
    for trigger in triggers:
        trigger.start()
    try:
        run = e2e.run_role(tmp_path / 'run', emulated_hypervisors, owner.play_vars(),
                           host_vars(emulated_hypervisors, lists))
    finally:
        hv1.clear_faults()
        hv2.clear_faults()
        for trigger in triggers:
            trigger.finish()
    record('faults: 10 guests on 3 hypervisors, each step failed in turn', '%.1fs' % run.seconds)
    assert run.rc != 0
    assert [(t.fired, t.error) for t in triggers] == [('started', None), ('validated', None), ('injected', None)], \
        run.output[-8000:]
    owner.no_key_in(run.output)
    # (the guest started before the run ran without validation by construction: it is the untouched one)
    invariant(emulated_hypervisors, set(names.values()) - {names['early']}, owner)

    def out(hv, label):
        outcome = run.outcome(hv.hostname, names[label])
        assert 'Traceback' not in outcome['msg'], outcome
        return outcome

    def ctl(hv, label):
        return e2e.controller_record(owner.state_dir, hv.hostname, uuids[label])

    # libvirt unreachable before the start: fails at the pin, nothing reaches the platform, untouched
    outcome = out(hv1, 'unreachable')
    assert (outcome['failed_task'], outcome['plan'], outcome['destroyed']) == (PIN_TASK, None, False), outcome
    assert 'nothing was started or destroyed' in outcome['msg']
    assert e2e.records_of(hv1, names['unreachable']) == [] and doms['unreachable'].state()[0] == SHUTOFF
    # the measurement query fails: destroyed, never validated
    outcome = out(hv1, 'measure')
    assert outcome['failed_task'] in (READ_TASK, VALIDATE_TASK) and outcome['destroyed'] is True, outcome
    rec = destroyed_once(hv1, doms['measure'], names['measure'])
    assert rec['faults_applied'] == ['measure_fails'] and ctl(hv1, 'measure')['stage'] == 'started'
    # a mismatch: destroyed
    outcome = out(hv1, 'mismatch')
    assert (outcome['reason'], int(outcome['rc']), outcome['destroyed']) == ('mismatch', 1, True), outcome
    destroyed_once(hv1, doms['mismatch'], names['mismatch'])
    # the domain vanished after the paused start: fails at the next host task, never validated, nothing sent
    outcome = out(hv1, 'vanish-started')
    assert outcome['failed'] is True and outcome['destroyed'] is False, outcome
    assert outcome['failed_task'] in (READ_TASK, VALIDATE_TASK), outcome
    (rec,) = e2e.records_of(hv1, names['vanish-started'])
    e2e.assert_refused_launch(rec)
    assert gone(doms['vanish-started'].connect(), uuids['vanish-started'])
    assert ctl(hv1, 'vanish-started')['stage'] == 'started' and ctl(hv1, 'vanish-started')['failed']
    # the injection refused by the platform: destroyed, nothing accepted
    outcome = out(hv2, 'refused')
    assert (outcome['failed_task'], outcome['destroyed']) == (INJECT_TASK, True), outcome
    rec = destroyed_once(hv2, doms['refused'], names['refused'])
    assert [i['accepted'] for i in rec['injections']] == [False]
    # QEMU died right after an accepted injection: the outcome says the secret was delivered (to a launch
    # that validated), the record says injected; never started again
    outcome = out(hv2, 'crash')
    assert outcome['failed_task'] in (INJECT_TASK, RESUME_TASK) and outcome['destroyed'] is False, outcome
    assert 'secret(s) had been delivered to this validated launch' in outcome['msg'], outcome
    assert 'QEMU died after the injection' in outcome['msg'], outcome
    (rec,) = e2e.records_of(hv2, names['crash'])
    e2e.assert_refused_launch(rec, crashed=True)
    assert doms['crash'].state()[0] == SHUTOFF
    crash_ctl = ctl(hv2, 'crash')
    assert (crash_ctl['stage'], crash_ctl['mnonce']) == ('injected', rec['mnonce']) and crash_ctl['failed'], \
        crash_ctl
    # the domain vanished after validation: the injection fails, nothing accepted
    outcome = out(hv2, 'vanish-validated')
    assert (outcome['failed_task'], outcome['destroyed']) == (INJECT_TASK, False), outcome
    (rec,) = e2e.records_of(hv2, names['vanish-validated'])
    e2e.assert_refused_launch(rec)
    assert ctl(hv2, 'vanish-validated')['stage'] == 'validated'
    # destroyed just before the resume: the resume refuses a shut-off domain (never starts one); the secret went
    # to the validated launch only, which never ran
    outcome = out(hv3, 'resume-destroyed')
    assert (outcome['failed_task'], outcome['destroyed']) == (RESUME_TASK, False), outcome
    assert 'secret(s) had been delivered to this validated launch' in outcome['msg'], outcome
    (rec,) = e2e.records_of(hv3, names['resume-destroyed'])
    assert rec['finished'] is False and [i['accepted'] for i in rec['injections']] == [True]
    assert doms['resume-destroyed'].state()[0] == SHUTOFF
    assert ctl(hv3, 'resume-destroyed')['stage'] == 'injected'
    # started before the run: plan fail, reason state, rc 5 (the README's table), untouched
    outcome = out(hv3, 'early')
    assert (outcome['plan'], outcome['reason'], int(outcome['rc']), outcome['failed_task']) == \
        ('fail', 'state', 5, PLAN_FAIL_TASK), outcome
    assert live(doms['early']) + (e2e.qemu_pid(hv3, names['early']),) == early_before
    assert e2e.records_of(hv3, names['early'])[0]['injections'] == []
    # the good guest, on the host with the destroyed-before-resume and the untouched one: launched, running
    outcome = out(hv3, 'good')
    assert (outcome['failed'], outcome['plan']) == (False, 'launch'), outcome
    (rec,) = e2e.records_of(hv3, names['good'])
    assert rec['finished'] is True and [i['accepted'] for i in rec['injections']] == [True]
    for expected in ('4 of 4 guests failed', '3 of 3 guests failed', '2 of 3 guests failed'):
        assert expected in run.output, expected


def test_libvirt_lost_after_validation(ovmf, tmp_path, record):
    """A dedicated hypervisor whose libvirtd is SIGKILLed when the controller records the measurement as
    validated: the injection cannot reach the host, nothing is accepted, the launch stays paused (before
    its first run) in its QEMU, and the outcome says the destroy could not be done."""
    hv = EmulatedHypervisor(name='ehvfault', hostname='sev-ehvfault')
    hv.start()
    launch_qemu = None
    try:
        owner = Owner(tmp_path, ovmf)
        name = e2e.unique('flt-lost')
        conn = libvirt.open(hv.uri_ssh)
        try:
            uuid = conn.defineXML(sev_guest_xml(name, ovmf)).UUIDString()
        finally:
            conn.close()
        libvirtd = hv.proc.pid
        trigger = e2e.StageTrigger(owner.state_dir, hv.hostname, uuid, 'validated',
                                   lambda: os.kill(libvirtd, signal.SIGKILL), timeout=120)
        trigger.start()
        try:
            run = e2e.run_role(tmp_path / 'run', [hv], owner.play_vars(sev_launch_domain=name), host_vars([hv], {}))
        finally:
            trigger.finish()
        record('faults: libvirtd killed after validation', '%.1fs' % run.seconds)
        assert (trigger.fired, trigger.error) == ('validated', None), run.output[-6000:]
        assert run.rc != 0
        outcome = run.outcome(hv.hostname, name)
        assert (outcome['failed'], outcome['destroyed']) == (True, False), outcome
        assert outcome['failed_task'] == INJECT_TASK, outcome
        assert 'failed too' in outcome['msg'] or 'not destroyed' in outcome['msg'], outcome
        (rec,) = e2e.records_of(hv, name)
        e2e.assert_refused_launch(rec)
        launch_qemu = rec['qemu_pid']
        assert e2e.alive(launch_qemu)
        ctl = e2e.controller_record(owner.state_dir, hv.hostname, uuid)
        assert ctl['stage'] == 'validated' and ctl['failed']['destroyed'] is False, ctl
        owner.no_key_in(run.output)
    finally:
        hv.stop()
    assert launch_qemu is not None and not e2e.alive(launch_qemu)


# ------------------------------------------------- the controller interrupted ----

def test_controller_interrupted_at_each_stage_then_run_again(emulated_hypervisors, ovmf, tmp_path, guests,
                                                             record):
    """ansible-playbook's process group gets SIGINT (as from a terminal's ^C), or it and its workers SIGKILL (the
    controller dying: e2e.interrupt_role), when the controller's record says started, validated, injected (six
    runs at once, two per hypervisor, one guest each); then one re-run over all six. Nothing is resumed or
    injected that was not validated: after the signal no launch ran, except one validated and injected whose
    resume was already under way; on the re-run a launch left before validation, or validated but not recorded as
    injected (or already run), is refused and left as it is (plan fail, state 5); a launch validated and
    injected, still prelaunch, is resumed (same QEMU, no new injection); a launch the interrupted run destroyed
    (a rescue that ran) is launched afresh."""
    owner = Owner(tmp_path, ovmf)
    play_vars = owner.play_vars()
    cases = [(stage, signum) for stage in ('started', 'validated', 'injected')
             for signum in (signal.SIGINT, signal.SIGKILL)]
    hvs = {case: emulated_hypervisors[index // 2] for index, case in enumerate(cases)}
    names, doms, runs, triggers = {}, {}, {}, {}
    for case in cases:
        stage, signum = case
        hv = hvs[case]
        name = names[case] = e2e.unique('flt-%s-%s' % (stage, signal.Signals(signum).name.lower()))
        doms[case] = guests.define(hv, sev_guest_xml(name, ovmf), name)
        started = runs[case] = e2e.start_role(tmp_path / ('run-' + name), [hv], play_vars,
                                              host_vars([hv], {hv.hostname: [{'domain': name}]}), new_session=True)
        triggers[case] = e2e.StageTrigger(owner.state_dir, hv.hostname, doms[case].UUIDString(), stage,
                                          lambda started=started, signum=signum: e2e.interrupt_role(started, signum))
        triggers[case].start()
    t0 = time.monotonic()
    exits = {}
    ended_by = {}
    for case in cases:
        proc = runs[case][0]
        # the invariant must hold whichever signal ended it (a swallowed ^C is pressed again, then killed)
        stdout, ended_by[case] = e2e.end_interrupted_run(runs[case], triggers[case], case[1])
        assert (triggers[case].fired, triggers[case].error) == (case[0], None), case
        exits[case] = proc.returncode
        if case[1] == signal.SIGKILL or ended_by[case].endswith('SIGKILL'):
            assert proc.returncode == -signal.SIGKILL, (case, stdout[-4000:])
        elif proc.returncode == 0:
            # ansible-core 2.19 turns SIGINT into KeyboardInterrupt in its main process only; a ^C that
            # lands where that is swallowed lets the play go on: then it must have ended as a normal launch
            assert 'PLAY RECAP' in stdout, (case, stdout[-4000:])
    interrupted = time.monotonic() - t0
    # A module a killed run had already sent (a resume, an injection) still runs on its host: let each end
    # before reading the state the re-run will meet (seen under load: a resume landing after that reading)
    for hv in emulated_hypervisors:
        assert e2e.wait_until(lambda hv=hv: not e2e.host_module_pids(hv), 120, 0.2), \
            (hv.hostname, e2e.host_module_pids(hv))
    after, ran = {}, {}
    for case in cases:
        hv = hvs[case]
        ctl = e2e.controller_record(owner.state_dir, hv.hostname, doms[case].UUIDString())
        after[case] = (tuple(doms[case].state()), e2e.qemu_pid(hv, names[case]), ctl)
        (rec,) = e2e.records_of(hv, names[case])
        ran[case] = rec['finished']
        if exits[case] == 0:
            assert (ctl['stage'], ctl['failed'], rec['finished']) == ('resumed', None, True), (case, ctl, rec)
            continue
        assert ctl['stage'] == case[0], (case, ctl)
        # A resume already sent when the signal landed completes on the host (the host-side module outlives a
        # killed controller; seen under load with SIGKILL at 'injected'): only a launch validated and injected
        # may have run, which invariant() below checks; before that stage none may.
        assert rec['finished'] is False or case[0] == 'injected', (case, rec)
        if case[0] == 'started':
            assert not [i for i in rec['injections'] if i['accepted']], (case, rec)
    record('faults: interrupted runs, signals and exit status', ', '.join(
        '%s/%s: %s rc %s' % (stage, signal.Signals(signum).name, ended_by[stage, signum], exits[stage, signum])
        for stage, signum in cases))
    invariant(emulated_hypervisors, set(names.values()), owner)

    lists = {}
    for case in cases:
        lists.setdefault(hvs[case].hostname, []).append({'domain': names[case]})
    rerun = e2e.run_role(tmp_path / 'rerun', emulated_hypervisors, play_vars, host_vars(emulated_hypervisors, lists))
    record('faults: SIGINT and SIGKILL at started/validated/injected (6 runs at once), then one re-run',
           'interrupted runs %.1fs, re-run %.1fs' % (interrupted, rerun.seconds))
    owner.no_key_in(rerun.output)
    invariant(emulated_hypervisors, set(names.values()), owner)
    plans = {}
    for case in cases:
        hv, dom, stage = hvs[case], doms[case], case[0]
        (state, reason), pid, ctl = after[case]
        outcome = rerun.outcome(hv.hostname, names[case])
        plans[case] = outcome['plan']
        recs = e2e.records_of(hv, names[case])
        injected_before = [i for i in recs[0]['injections'] if i['accepted']]
        if ctl['stage'] == 'resumed':
            # the signal did not stop the run (SIGINT, above): the validated guest runs, the re-run leaves it
            assert (outcome['failed'], outcome['plan'], outcome['changed']) == (False, 'ok', False), (case, outcome)
            assert (tuple(dom.state()), e2e.qemu_pid(hv, names[case]), len(recs)) == ((state, reason), pid, 1)
        elif state == SHUTOFF:
            # the interrupted run destroyed its launch: the re-run is a new launch, validated, delivered
            assert (outcome['failed'], outcome['plan']) == (False, 'launch'), (case, outcome)
            assert len(recs) == 2 and recs[1]['finished'] and recs[0]['finished'] is False, (case, recs)
        elif stage == 'injected' and not ran[case]:
            # validated and injected, still before its first run: resumed (that launch, same QEMU)
            assert injected_before and state == PAUSED, (case, recs)
            assert (outcome['failed'], outcome['plan']) == (False, 'resume'), (case, outcome)
            assert len(recs) == 1 and e2e.wait_until(lambda: e2e.records_of(hv, names[case])[0]['finished'], 15)
            assert e2e.qemu_pid(hv, names[case]) == pid and dom.state()[0] == RUNNING
            assert len(e2e.records_of(hv, names[case])[0]['injections']) == 1
        else:
            # left before validation, or validated but not recorded as injected, or injected and already run
            # (no longer provably before its first run): refused, untouched
            assert (outcome['failed'], outcome['plan'], outcome['reason'], int(outcome['rc'])) == \
                (True, 'fail', 'state', 5), (case, outcome)
            assert 'left untouched' in outcome['msg'], outcome
            assert (tuple(dom.state()), e2e.qemu_pid(hv, names[case])) == ((state, reason), pid), case
            recs = e2e.records_of(hv, names[case])
            assert len(recs) == 1 and recs[0]['finished'] is ran[case]
            assert [i for i in recs[0]['injections'] if i['accepted']] == injected_before, case
    record('faults: re-run plans after the interrupts', ', '.join(
        '%s/%s: %s' % (stage, signal.Signals(signum).name, plans[stage, signum]) for stage, signum in cases))


# -------------------------------------------------------- 20 launches at once ----

def test_twenty_concurrent_launches_never_cross_secrets(emulated_hypervisors, ovmf, tmp_path, guests, record):
    """20 SEV-ES guests (1 vCPU, 256 MiB, TCG) over the three hypervisors in one play (forks 3), each with
    its own fresh session and its own LUKS key, left paused before their first run: each guest's secret area,
    read back from its memory, holds its own key and nothing else, with the SHA-256 the platform recorded
    for that launch's one accepted injection; each validated measurement (controller record and seen store)
    is that launch's (its mnonce, its domain, its reported measurement); all mnonces and secrets distinct."""
    owner = Owner(tmp_path, ovmf)
    names, doms, lists = {}, {}, {hv.hostname: [] for hv in emulated_hypervisors}
    for index in range(20):
        hv = emulated_hypervisors[index % 3]
        label = 'g%02d' % index
        name = names[label] = e2e.unique('flt-c%02d' % index)
        doms[label] = (hv, guests.define(hv, sev_guest_xml(name, ovmf, vcpus=1, es=True, memory_mib=256), name))
        lists[hv.hostname].append(dict(ES1, domain=name, secrets=owner.key(label)))
    for hv, dom in doms.values():
        assert dom.info()[1] <= 256 * 1024 and dom.info()[3] == 1  # maxMem (KiB), vCPUs
    with open('/proc/meminfo', encoding='ascii') as f:
        available_before = int([line for line in f if line.startswith('MemAvailable:')][0].split()[1])
    run = e2e.run_role(tmp_path / 'run', emulated_hypervisors, owner.play_vars(sev_launch_resume=False),
                       host_vars(emulated_hypervisors, lists), extra_args=['--forks', '3'], timeout=600)
    assert run.rc == 0, run.output[-8000:]
    with open('/proc/meminfo', encoding='ascii') as f:
        available_after = int([line for line in f if line.startswith('MemAvailable:')][0].split()[1])
    owner.no_key_in(run.output)
    t0 = time.monotonic()
    claims = e2e.seen_claims(owner.state_dir)
    assert len(claims) == 20
    mnonces, digests = set(), set()
    for label, (hv, dom) in doms.items():
        outcome = run.outcome(hv.hostname, names[label])
        assert (outcome['failed'], outcome['plan']) == (False, 'launch'), outcome
        (rec,) = e2e.records_of(hv, names[label])
        assert rec['sev_es'] and rec['num_cpus'] == 1 and rec['finished'] is False and dom.state()[0] == PAUSED
        (injection,) = rec['injections']
        assert injection['accepted'] and not injection['after_finish']
        area = hv.read_guest_memory(dom, e2e.SECRET_AREA_GPA, e2e.SECRET_AREA_SIZE)
        assert e2e.parse_secret_table(area) == {e2e.LUKS_KEY_GUID: owner.keys[label]}, label
        assert hashlib.sha256(area[:injection['length']]).hexdigest() == injection['secret_sha256'], label
        ctl = e2e.controller_record(owner.state_dir, hv.hostname, dom.UUIDString())
        assert (ctl['stage'], ctl['mnonce'], ctl['measurement'], ctl['domain_id'], ctl['launch_id']) == \
            ('injected', rec['mnonce'], rec['measurement_reported'], live(dom)[1], outcome['launch_id']), label
        claim = claims[rec['mnonce']]
        assert (claim['context']['domain_uuid'], claim['context']['launch_id'], claim['measurement']) == \
            (dom.UUIDString(), outcome['launch_id'], rec['measurement']), label
        mnonces.add(rec['mnonce'])
        digests.add(injection['secret_sha256'])
    read_back = time.monotonic() - t0
    assert len(mnonces) == 20 and len(digests) == 20
    record('faults: 20 concurrent SEV-ES launches (3 hosts, forks 3), resume false',
           'role %.1fs, 20 read-backs and checks %.1fs, MemAvailable %d -> %d MiB' % (
               run.seconds, read_back, available_before // 1024, available_after // 1024))

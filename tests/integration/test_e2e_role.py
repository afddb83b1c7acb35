# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End to end, the role: confidential.sev.sev_launch on the EMULATED hypervisors.

Real libvirtd 9.0, real QEMU 7.2 under TCG, the emulated secure processor of
tests/platform, reached over ssh as remote hosts; the controller (this
process) is none of them.  Each run is a real ``ansible-playbook`` applying
the role; the tests read the role's per-guest outcomes, the controller's state
directory, the EMULATED platform's launch records and, where the issue asks,
guest memory.

Failure invariant, asserted for every failing guest (``refused``): the guest
never resumed and the platform accepted no secret (its launch record:
``finished`` false, no accepted injection); a launch this run started is
destroyed (libvirt reachable), a domain it did not start is untouched (same
QEMU pid, same state).  Two documented exceptions: QEMU killed right after an
accepted injection (the ``crash_after_inject`` fault: the secret was accepted
by construction and died with the guest, which never ran), and a libvirt
connection lost mid-flow (nothing can be destroyed through it; the launch is
left paused, never resumed, no secret sent).
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal

import libvirt

from harness import e2e
from harness.hypervisor import EmulatedHypervisor
from harness.sev_guest import default_policy, sev_guest_xml

SEV_POLICY, ES_POLICY = default_policy(False), default_policy(True)
SHUTOFF = libvirt.VIR_DOMAIN_SHUTOFF
PAUSED, RUNNING = libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_RUNNING
DEBIAN_OVMF = '/usr/share/OVMF/OVMF_CODE.fd'
# Overrides of an SEV-ES guest with 2 vCPUs on QEMU's EPYC model.
ES2 = e2e.es_overrides(ES_POLICY, 2)
VALIDATE_TASK, START_TASK = e2e.VALIDATE_TASK, e2e.START_TASK
INJECT_TASK, RESUME_TASK = e2e.INJECT_TASK, e2e.RESUME_TASK


class Owner:
    """The guest owner's files on the controller (0700 directory): LUKS key, role state directory."""

    def __init__(self, tmp_path, ovmf):
        self.dir = tmp_path / 'owner'
        self.dir.mkdir(mode=0o700)
        self.key = os.urandom(32)
        self.key_path = e2e.write_private(self.dir / 'luks.key', self.key)
        self.state_dir = str(self.dir / 'state')
        self.ovmf = ovmf

    def play_vars(self, **extra):
        """The role's variables for plain SEV guests with a fresh session and the LUKS key."""
        result = {'sev_launch_state_dir': self.state_dir, 'sev_launch_policy': SEV_POLICY,
                  'sev_launch_firmware': self.ovmf,
                  'sev_launch_secrets': [{'guid': 'luks-key', 'path': self.key_path}]}
        result.update(extra)
        return result

    def table_sha256_matches(self, area, injection):
        """The area read from guest memory holds the decrypted table with the key, as the platform recorded."""
        assert hashlib.sha256(area[:injection['length']]).hexdigest() == injection['secret_sha256']
        assert e2e.parse_secret_table(area) == {e2e.LUKS_KEY_GUID: self.key}


def live_id(dom):
    """The domain's ID now (a virDomain keeps the ID it had when it was looked up)."""
    return dom.connect().lookupByUUIDString(dom.UUIDString()).ID()


def host_vars(hvs, guest_lists):
    """Per host: its lab root files and its sev_launch_guests."""
    return {hv.hostname: dict(e2e.lab_root_vars(hv), sev_launch_guests=guest_lists.get(hv.hostname, []))
            for hv in hvs}


def no_secret_in(output, owner):
    assert owner.key.hex() not in output
    assert base64.b64encode(owner.key).decode('ascii') not in output


def refused(hv, dom, outcome, crashed=False):
    """The failure invariant for a guest whose launch the run started (or tried to start)."""
    assert outcome['failed'] is True, outcome
    recs = e2e.records_of(hv, dom.name())
    assert recs, 'no launch of %s reached the platform' % dom.name()
    for rec in recs:
        e2e.assert_refused_launch(rec, crashed=crashed)
    # never started again (no cold boot), and left shut off
    assert len(recs) == 1, recs
    assert dom.state()[0] == SHUTOFF and not dom.isActive()
    return recs[0]


# ------------------------------------------------------------ success ----

def test_launch_resume_later_rerun_and_a_fresh_session_per_launch(emulated_hypervisors, ovmf, tmp_path, guests,
                                                                  record):
    """SEV-ES, 2 vCPUs, fresh session, LUKS key:
    0. --check on the shut-off domain: would launch, nothing started, written or sent;
    1. sev_launch_resume false: validated, key injected (read back from guest memory), left before its first run;
    2. a re-run resumes that launch (still prelaunch): same QEMU, same ID, no new injection;
    3. a re-run on the launched guest: ok, unchanged, same QEMU pid, no new launch or injection;
    4. after a shutdown, the next run is a new launch with a new session (dhCert, session, TIK, mnonce)."""
    hv = emulated_hypervisors[0]
    owner = Owner(tmp_path, ovmf)
    name = e2e.unique('e2e-role-es')
    dom = guests.define(hv, sev_guest_xml(name, ovmf, vcpus=2, es=True), name)
    uuid = dom.UUIDString()
    guest = dict(ES2, domain=name)

    # 0. --check on the shut-off domain: succeeds, says it would launch, and nothing reaches the platform
    run0 = e2e.run_role(tmp_path / 'run0', [hv], owner.play_vars(), host_vars([hv], {hv.hostname: [guest]}),
                        extra_args=['--check'])
    assert run0.rc == 0, run0.output[-8000:]
    out0 = run0.outcome(hv.hostname, name)
    assert (out0['failed'], out0['plan'], out0['check_mode']) == (False, 'launch', True), out0
    assert out0['msg'].startswith('would launch'), out0
    assert e2e.records_of(hv, name) == [] and dom.state()[0] == SHUTOFF
    assert e2e.controller_record(owner.state_dir, hv.hostname, uuid) is None
    assert '<dhCert>' not in dom.XMLDesc(0)

    # 1. launch, leave it paused before its first run
    run1 = e2e.run_role(tmp_path / 'run1', [hv], owner.play_vars(sev_launch_resume=False),
                        host_vars([hv], {hv.hostname: [guest]}))
    assert run1.rc == 0, run1.output[-8000:]
    out1 = run1.outcome(hv.hostname, name)
    assert (out1['failed'], out1['plan'], out1['changed'], out1['uuid']) == (False, 'launch', True, uuid), out1
    assert 'left paused before its first run' in out1['msg']
    assert dom.state()[0] == PAUSED
    pid, dom_id = e2e.qemu_pid(hv, name), live_id(dom)
    (rec,) = e2e.records_of(hv, name)
    assert rec['launch_start']['ok'] and rec['sev_es'] and rec['num_cpus'] == 2 and rec['qemu_pid'] == pid
    assert rec['finished'] is False
    assert [(i['accepted'], i['after_finish']) for i in rec['injections']] == [(True, False)]
    owner.table_sha256_matches(hv.read_guest_memory(dom, e2e.SECRET_AREA_GPA, e2e.SECRET_AREA_SIZE),
                               rec['injections'][0])
    ctl = e2e.controller_record(owner.state_dir, hv.hostname, uuid)
    expected = ('injected', dom_id, 'fresh', rec['mnonce'])
    assert (ctl['stage'], ctl['domain_id'], ctl['session'], ctl['mnonce']) == expected
    no_secret_in(run1.output, owner)

    # 2. the validated launch, still prelaunch, is resumed: nothing else
    run2 = e2e.run_role(tmp_path / 'run2', [hv], owner.play_vars(), host_vars([hv], {hv.hostname: [guest]}))
    assert run2.rc == 0, run2.output[-8000:]
    out2 = run2.outcome(hv.hostname, name)
    assert (out2['failed'], out2['plan'], out2['changed']) == (False, 'resume', True), out2
    assert dom.state()[0] == RUNNING and (live_id(dom), e2e.qemu_pid(hv, name)) == (dom_id, pid)
    assert e2e.wait_until(lambda: e2e.records_of(hv, name)[0]['finished'], 15)
    (rec,) = e2e.records_of(hv, name)
    assert len(rec['injections']) == 1
    assert e2e.controller_record(owner.state_dir, hv.hostname, uuid)['stage'] == 'resumed'

    # 3. re-run on the launched guest: ok, unchanged, untouched
    run3 = e2e.run_role(tmp_path / 'run3', [hv], owner.play_vars(), host_vars([hv], {hv.hostname: [guest]}))
    assert run3.rc == 0, run3.output[-8000:]
    out3 = run3.outcome(hv.hostname, name)
    assert (out3['failed'], out3['plan'], out3['changed']) == (False, 'ok', False), out3
    assert 'not a re-attestation' in out3['msg']
    assert 'changed=0' in run3.stdout.split('PLAY RECAP')[-1], run3.stdout[-3000:]
    assert dom.state()[0] == RUNNING and (live_id(dom), e2e.qemu_pid(hv, name)) == (dom_id, pid)
    (rec,) = e2e.records_of(hv, name)
    assert len(rec['injections']) == 1 and rec['finished'] is True
    record('e2e role: --check / launch (resume false) / resume / re-run', '%.1fs / %.1fs / %.1fs / %.1fs'
           % (run0.seconds, run1.seconds, run2.seconds, run3.seconds))

    # 4. a new launch of the same domain gets a new session
    xml_before = dom.XMLDesc(0)
    dom.destroy()
    run4 = e2e.run_role(tmp_path / 'run4', [hv], owner.play_vars(), host_vars([hv], {hv.hostname: [guest]}))
    assert run4.rc == 0, run4.output[-8000:]
    out4 = run4.outcome(hv.hostname, name)
    assert (out4['failed'], out4['plan'], out4['changed']) == (False, 'launch', True), out4
    assert out4['launch_id'] != out1['launch_id']
    first, second = e2e.records_of(hv, name)
    assert first['mnonce'] != second['mnonce'] and second['finished'] is True
    assert [i['accepted'] for i in second['injections']] == [True]
    xml_after = dom.XMLDesc(0)
    launches = os.path.join(owner.state_dir, 'hosts', hv.hostname, uuid, 'launches')
    files = {}
    for launch_id in (out1['launch_id'], out4['launch_id']):
        directory = os.path.join(launches, launch_id)
        for file_name in ('tik', 'tek', 'godh.b64', 'session.b64'):
            with open(os.path.join(directory, file_name), 'rb') as f:
                files[launch_id, file_name] = f.read()
        for file_name in ('tik', 'tek'):
            assert oct(os.stat(os.path.join(directory, file_name)).st_mode & 0o777) == '0o600'
    for file_name in ('tik', 'tek', 'godh.b64', 'session.b64'):
        assert files[out1['launch_id'], file_name] != files[out4['launch_id'], file_name], file_name
    # the domain's definition carried each launch's own dhCert and session
    for launch_id, xml in ((out1['launch_id'], xml_before), (out4['launch_id'], xml_after)):
        assert files[launch_id, 'godh.b64'].decode().strip() in xml
        assert files[launch_id, 'session.b64'].decode().strip() in xml
    # the controller saw two different (TIK, mnonce) pairs
    seen = os.path.join(owner.state_dir, 'seen')
    assert len(os.listdir(seen)) == 2
    record('e2e role: second launch, fresh session', '%.1fs' % run4.seconds)


# ----------------------------------------------------------- failures ----

def test_every_mistake_is_refused_and_one_guest_never_touches_another(emulated_hypervisors, ovmf, tmp_path,
                                                                      guests, record):
    """One run of the role on the three hypervisors, several guests each: every mistake fails its own guest
    only (failure invariant), a guest started before validation (running, or suspended after it ran) is left
    untouched, a good guest launches."""
    hv1, hv2, hv3 = emulated_hypervisors
    owner = Owner(tmp_path, ovmf)
    files = tmp_path / 'files'
    files.mkdir()
    kernel = e2e.stand_in_bzimage(str(files / 'vmlinuz'))
    other_kernel = e2e.stand_in_bzimage(str(files / 'vmlinuz.other'))
    initrd = e2e.random_file(str(files / 'initrd.img'), 64 * 1024)
    other_initrd = e2e.random_file(str(files / 'initrd.other'), 64 * 1024)
    cmdline = 'console=ttyS0 root=/dev/mapper/root ro'
    boot = {'kernel': kernel, 'initrd': initrd, 'cmdline': cmdline}
    names = {}

    def guest(hv, label, xml_kwargs=None, **override):
        name = e2e.unique('e2e-' + label)
        names[label] = name
        guests.define(hv, sev_guest_xml(name, ovmf, **(xml_kwargs or {})), name)
        return dict(override, domain=name)

    # sev-ehv1: firmware, vCPU count, TIK, and a domain started (not paused) before validation.
    # The wrong firmware the owner trusts: only the measurement can tell (e2e.one_byte_off).
    other_ovmf = e2e.one_byte_off(ovmf, files / 'OVMF_CODE.other.fd')
    session_a = e2e.premade_session(hv1.node_sev()['pdh'], SEV_POLICY, owner.dir, 'session-a')
    session_b = e2e.premade_session(hv1.node_sev()['pdh'], SEV_POLICY, owner.dir, 'session-b')
    early = e2e.premade_session(hv1.node_sev()['pdh'], SEV_POLICY, owner.dir, 'session-early')
    list1 = [
        guest(hv1, 'firmware', firmware=other_ovmf),
        guest(hv1, 'vcpus', {'vcpus': 2, 'es': True}, **{**ES2, 'num_cpus': 3}),
        guest(hv1, 'tik', {'dh_cert': session_a['dh_cert'], 'session': session_a['session']},
              tik=session_b['tik'], tek=session_a['tek']),
        guest(hv1, 'early', {'dh_cert': early['dh_cert'], 'session': early['session']},
              tik=early['tik'], tek=early['tek']),
    ]
    early_dom = guests.lookup(hv1, names['early'])
    early_dom.create()  # started normally: it runs before anybody validated it
    early_pid, early_id = e2e.qemu_pid(hv1, names['early']), live_id(early_dom)
    assert early_dom.state()[0] == RUNNING

    # sev-ehv2: measured direct boot with the wrong kernel, initrd, cmdline; a session for another platform;
    # secrets for Debian's generic OVMF as shipped (its footer's secret area is base 0, size 0) with no
    # secret_address: nowhere to put them, refused as configuration before anything is hashed (issue 10)
    foreign = e2e.premade_session(hv3.node_sev()['pdh'], SEV_POLICY, owner.dir, 'session-foreign')
    list2 = [
        guest(hv2, 'kernel', boot, **{**boot, 'kernel': other_kernel}),
        guest(hv2, 'initrd', boot, **{**boot, 'initrd': other_initrd}),
        guest(hv2, 'cmdline', boot, **{**boot, 'cmdline': cmdline + ' '}),
        guest(hv2, 'foreign', {'dh_cert': foreign['dh_cert'], 'session': foreign['session']},
              tik=foreign['tik'], tek=foreign['tek']),
        guest(hv2, 'generic-secrets', firmware=DEBIAN_OVMF),
    ]
    # sev-ehv3: injection refused by the platform, QEMU killed between injection and resume, and a good guest
    # ... and a domain that ran, then was suspended: libvirt says paused (user) as for a paused start;
    # QEMU's run state says it ran
    later = e2e.premade_session(hv3.node_sev()['pdh'], SEV_POLICY, owner.dir, 'session-later')
    list3 = [guest(hv3, 'refused'), guest(hv3, 'crash'), guest(hv3, 'good'),
             guest(hv3, 'suspended', {'dh_cert': later['dh_cert'], 'session': later['session']},
                   tik=later['tik'], tek=later['tek'])]
    suspended_dom = guests.lookup(hv3, names['suspended'])
    suspended_dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
    suspended_dom.resume()
    assert e2e.wait_until(lambda: e2e.records_of(hv3, names['suspended'])[0]['finished'], 15)
    suspended_dom.suspend()
    suspended_pid, suspended_id = e2e.qemu_pid(hv3, names['suspended']), live_id(suspended_dom)
    assert suspended_dom.state() == [PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER]
    hv3.set_faults({names['refused']: {'inject_refused': True}, names['crash']: {'crash_after_inject': True}})
    try:
        run = e2e.run_role(tmp_path / 'run', [hv1, hv2, hv3], owner.play_vars(),
                           host_vars([hv1, hv2, hv3], {hv1.hostname: list1, hv2.hostname: list2,
                                                       hv3.hostname: list3}))
    finally:
        hv3.clear_faults()
    record('e2e role: 13 guests on 3 hypervisors (12 refused, 1 launched)', '%.1fs' % run.seconds)
    assert run.rc != 0, run.output[-8000:]
    no_secret_in(run.output, owner)

    def out(hv, label):
        return run.outcome(hv.hostname, names[label])

    def dom(hv, label):
        return guests.lookup(hv, names[label])

    # wrong measured inputs: a mismatch at validation, the launch destroyed, nothing delivered;
    # secrets with no place for them in the trusted firmware: refused as configuration at validation, alike
    for hv, label, expected in ((hv1, 'firmware', ('mismatch', 1)), (hv1, 'vcpus', ('mismatch', 1)),
                                (hv1, 'tik', ('mismatch', 1)), (hv2, 'kernel', ('mismatch', 1)),
                                (hv2, 'initrd', ('mismatch', 1)), (hv2, 'cmdline', ('mismatch', 1)),
                                (hv2, 'generic-secrets', ('config', 4))):
        outcome = out(hv, label)
        assert (outcome['reason'], int(outcome['rc']), outcome['failed_task']) == expected + (VALIDATE_TASK,), \
            (label, outcome)
        assert outcome['destroyed'] is True and 'was destroyed' in outcome['msg'], (label, outcome)
        rec = refused(hv, dom(hv, label), outcome)
        assert rec['launch_start']['ok'] is True and dom(hv, label).info()[0] == SHUTOFF
        assert dom(hv, label).state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED, label
    assert 'secret' in out(hv2, 'generic-secrets')['msg'], out(hv2, 'generic-secrets')
    assert '4 of 4 guests failed' in run.output and '5 of 5 guests failed' in run.output
    # a session made for another platform: the platform refuses LAUNCH_START; nothing ran
    outcome = out(hv2, 'foreign')
    assert outcome['failed_task'] == START_TASK and 'Bad measurement' in outcome['msg'], outcome
    assert outcome['destroyed'] is False
    rec = refused(hv2, dom(hv2, 'foreign'), outcome)
    assert rec['launch_start'] == {'ok': False, 'fw_error': 11, 'message': rec['launch_start']['message']}
    # injection refused by the platform: destroyed, nothing accepted
    outcome = out(hv3, 'refused')
    assert outcome['failed_task'] == INJECT_TASK and outcome['destroyed'] is True, outcome
    rec = refused(hv3, dom(hv3, 'refused'), outcome)
    assert rec['faults_applied'] == ['inject_refused'] and [i['accepted'] for i in rec['injections']] == [False]
    assert dom(hv3, 'refused').state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED
    # QEMU died between injection and resume: the role fails, never starts the domain again
    # (sev_secret_inject reads QEMU's run state after injecting; QEMU is gone by then, so the role fails
    # there or, had the read won the race, at the resume, which refuses a shut-off domain)
    outcome = out(hv3, 'crash')
    assert outcome['failed_task'] in (INJECT_TASK, RESUME_TASK) and outcome['destroyed'] is False, outcome
    assert 'is shutoff: nothing to destroy' in outcome['msg'], outcome
    refused(hv3, dom(hv3, 'crash'), outcome, crashed=True)
    # the guest started before validation: refused and untouched (same QEMU, same ID, still running)
    outcome = out(hv1, 'early')
    assert (outcome['plan'], outcome['changed'], outcome['destroyed']) == ('fail', False, False), outcome
    assert 'left untouched' in outcome['msg']
    assert early_dom.state()[0] == RUNNING and (live_id(early_dom), e2e.qemu_pid(hv1, names['early'])) == \
        (early_id, early_pid)
    (rec,) = e2e.records_of(hv1, names['early'])
    assert rec['injections'] == [] and rec['finished'] is True  # it ran, but got nothing
    # the good guest on the same host as two failures: launched, key delivered, running
    outcome = out(hv3, 'good')
    assert (outcome['failed'], outcome['plan']) == (False, 'launch'), outcome
    (rec,) = e2e.records_of(hv3, names['good'])
    assert rec['finished'] is True and [i['accepted'] for i in rec['injections']] == [True]
    assert dom(hv3, 'good').state()[0] == RUNNING
    # the play fails at the end and lists each failed guest with its reason
    # the guest suspended after it ran: refused, untouched (still paused, same QEMU and ID, nothing injected)
    outcome = out(hv3, 'suspended')
    assert (outcome['plan'], outcome['changed'], outcome['destroyed']) == ('fail', False, False), outcome
    assert suspended_dom.state() == [PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER]
    assert (live_id(suspended_dom), e2e.qemu_pid(hv3, names['suspended'])) == (suspended_id, suspended_pid)
    (rec,) = e2e.records_of(hv3, names['suspended'])
    assert rec['injections'] == []
    for label in ('firmware', 'vcpus', 'tik', 'kernel', 'initrd', 'cmdline', 'foreign', 'generic-secrets',
                  'refused', 'crash', 'early', 'suspended'):
        assert names[label] in run.output, label
    assert '3 of 4 guests failed' in run.output


def test_replayed_measurement_is_refused(emulated_hypervisors, ovmf, tmp_path, guests, record):
    """A pre-made session reused for two launches; the host reports the first launch's (genuine)
    measurement for the second: the controller refuses it as seen before, destroys the launch."""
    hv = emulated_hypervisors[2]
    owner = Owner(tmp_path, ovmf)
    session = e2e.premade_session(hv.node_sev()['pdh'], SEV_POLICY, owner.dir, 'premade')
    name = e2e.unique('e2e-replay')
    dom = guests.define(hv, sev_guest_xml(name, ovmf, dh_cert=session['dh_cert'], session=session['session']),
                        name)
    play_vars = owner.play_vars(sev_launch_domain=name, sev_launch_tik=session['tik'],
                                sev_launch_tek=session['tek'])
    run1 = e2e.run_role(tmp_path / 'run1', [hv], play_vars, host_vars([hv], {}))
    assert run1.rc == 0, run1.output[-8000:]
    assert run1.outcome(hv.hostname, name)['failed'] is False
    dom.destroy()
    hv.set_faults({name: {'replay_measurement': True}})
    try:
        run2 = e2e.run_role(tmp_path / 'run2', [hv], play_vars, host_vars([hv], {}))
    finally:
        hv.clear_faults()
    record('e2e role: replay, launch / replayed', '%.1fs / %.1fs' % (run1.seconds, run2.seconds))
    assert run2.rc != 0
    outcome = run2.outcome(hv.hostname, name)
    assert (outcome['failed'], outcome['reason'], outcome['failed_task']) == (True, 'insecure', VALIDATE_TASK), \
        outcome
    assert 'replay' in outcome['msg'] and outcome['destroyed'] is True, outcome
    first, second = e2e.records_of(hv, name)
    assert second['faults_applied'] == ['replay_measurement']
    assert second['measurement_reported'] == first['measurement'] != second['measurement']
    e2e.assert_refused_launch(second)
    assert dom.state() == [SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED]
    # the controller's seen-before record: one (TIK, mnonce) claim, launch 1's, which refused launch 2
    seen = os.path.join(owner.state_dir, 'seen')
    (tik_dir,) = os.listdir(seen)
    assert os.listdir(os.path.join(seen, tik_dir)) == [first['mnonce'] + '.json']


def test_libvirt_lost_mid_flow(ovmf, tmp_path, record):
    """A dedicated hypervisor whose libvirtd is killed right after the role started the launch paused:
    the role fails (and says the destroy failed too); the guest never resumed, no secret was sent."""
    hv = EmulatedHypervisor(name='ehvlost', hostname='sev-ehvlost')
    hv.start()
    launch_qemu = None
    try:
        owner = Owner(tmp_path, ovmf)
        name = e2e.unique('e2e-lost')
        conn = libvirt.open(hv.uri_ssh)
        try:
            uuid = conn.defineXML(sev_guest_xml(name, ovmf)).UUIDString()
        finally:
            conn.close()
        started = e2e.start_role(tmp_path / 'run', [hv], owner.play_vars(sev_launch_domain=name),
                                 host_vars([hv], {}))

        def launch_started():
            rec = e2e.controller_record(owner.state_dir, hv.hostname, uuid)
            return rec is not None and rec.get('stage') == 'started'
        seen = e2e.wait_until(launch_started, timeout=120, interval=0.02)
        libvirtd = hv.proc.pid
        os.kill(libvirtd, signal.SIGKILL)
        run = e2e.finish_role(started, [hv])
        record('e2e role: libvirtd killed after the paused start', '%.1fs' % run.seconds)
        assert seen, run.output[-8000:]
        assert run.rc != 0
        outcome = run.outcome(hv.hostname, name)
        assert outcome['failed'] is True and outcome['destroyed'] is False, outcome
        # (the next host task after the kill; the kill comes seconds before the injection)
        assert outcome['failed_task'] in ('Read its launch state from the hypervisor (checked on the controller)',
                                          VALIDATE_TASK, INJECT_TASK), outcome
        assert 'failed too' in outcome['msg'] or 'not destroyed' in outcome['msg'], outcome
        (rec,) = e2e.records_of(hv, name)
        e2e.assert_refused_launch(rec)
        # unreachable: the launch stays as it was, paused before its first run, in its QEMU
        launch_qemu = rec['qemu_pid']
        assert e2e.alive(launch_qemu) and not rec['finished']
        ctl = e2e.controller_record(owner.state_dir, hv.hostname, uuid)
        assert ctl['stage'] == 'started' and ctl['failed']['destroyed'] is False, ctl
        no_secret_in(run.output, owner)
        record('e2e role: libvirtd killed mid-flow, outcome', outcome['msg'])
    finally:
        hv.stop()
    # the hypervisor's stop (by its recorded namespace) took the orphaned QEMU with it
    assert launch_qemu is not None and not e2e.alive(launch_qemu)

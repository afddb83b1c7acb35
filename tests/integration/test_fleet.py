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
    play fails at the end naming only that guest.  Its wall time is recorded.
"""

from __future__ import annotations

import base64
import glob
import os

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
    with open(ovmf, 'rb') as f:
        image = bytearray(f.read())
    image[0x1000] ^= 0x01
    other = e2e.write_private(owner.dir / 'OVMF_CODE.other.fd', bytes(image))
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

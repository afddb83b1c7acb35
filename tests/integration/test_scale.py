# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The settings docs/scale.md gives for hundreds of hypervisors, on three emulated ones (issue 11, item 3).

One play applies the role confidential.sev.sev_launch to three EMULATED hypervisors (real libvirtd 9.0,
QEMU 7.2 under TCG, the emulated secure processor) with ``strategy: free``, ``serial: 2`` (batches
[sev-ehv1, sev-ehv2], then [sev-ehv3]), ``--forks 3``, pipelining on, fact gathering off, ssh
ControlPersist (Ansible's default ssh_args), one shared state directory, with the role's per-guest path and
with ``sev_launch_together: true`` (what docs/scale.md advises).  sev-ehv1 is given another chip's
CEK, so every launch on it fails before anything starts; what is asserted:
* every guest has its outcome: sev-ehv1's two failed before the start (nothing started, no launch on its
  platform, domains still shut off); sev-ehv2's and sev-ehv3's four launched, validated, got their own
  secret and run (the platform's records: one launch each, one accepted injection, finished);
* the failing host changed nothing for the others: the same outcomes as a run of the same play without the
  failing host (sev-ehv2 and sev-ehv3 only, fresh guests), field by field;
* the serial batches happened: sev-ehv3's launches started after sev-ehv2's launches were done.
"""

from __future__ import annotations

import json
import os

import libvirt
import pytest

from harness import e2e
from harness.sev_guest import default_policy, sev_guest_xml

POLICY = default_policy(False)
COMPARED = ('failed', 'changed', 'plan', 'reason', 'rc', 'destroyed', 'check_mode')


def scale_play(work, hvs, play_vars, host_vars):
    """ansible-playbook with the docs/scale.md settings; (rc, output, {host: outcomes})."""
    env = {'ANSIBLE_PIPELINING': 'True', 'ANSIBLE_GATHERING': 'explicit', 'ANSIBLE_FORKS': '3'}
    started = e2e.start_role(work, hvs, play_vars, host_vars, extra_args=['--forks', '3'], env=env,
                             play_keys={'strategy': 'free', 'serial': 2})
    run = e2e.finish_role(started, hvs, timeout=900)
    return run.rc, run.output, run.outcomes


def define_guests(guests, hvs, ovmf, prefix):
    """Two plain SEV guests per host; {hostname: [names]}."""
    names = {}
    for hv in hvs:
        for k in range(2):
            name = e2e.unique('%s-%s-%d' % (prefix, hv.hostname[-4:], k))
            guests.define(hv, sev_guest_xml(name, ovmf, vcpus=1, es=False, policy=POLICY, memory_mib=256), name)
            names.setdefault(hv.hostname, []).append(name)
    return names


def by_domain(outcomes, host, name):
    found = [o for o in outcomes.get(host) or [] if o['domain'] == name]
    assert len(found) == 1, (host, name, outcomes)
    return found[0]


def assert_launched(hv, guests, owner_state, outcome, name, key):
    """One guest launched by this run: validated, its own secret accepted once, running."""
    assert (outcome['failed'], outcome['plan'], outcome['reason'], outcome['rc']) == (False, 'launch', 'ok', 0), \
        outcome
    (rec,) = e2e.records_of(hv, name)
    (injection,) = rec['injections']
    assert injection['accepted'] and rec['finished'], rec
    dom = guests.lookup(hv, name)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING, (name, dom.state())
    ctl = e2e.controller_record(owner_state, hv.hostname, dom.UUIDString())
    assert (ctl['stage'], ctl['launch_id'], ctl['mnonce']) == ('resumed', outcome['launch_id'], rec['mnonce'])
    assert key.hex() not in json.dumps(outcome)
    return ctl


@pytest.mark.parametrize('together', [False, True], ids=['per-guest', 'together'])
def test_scale_settings_three_hosts_one_failing(emulated_hypervisors, ovmf, tmp_path, guests, record, together):
    hv1, hv2, hv3 = emulated_hypervisors
    owner = tmp_path / 'owner'
    owner.mkdir(mode=0o700)
    key = os.urandom(32)
    key_path = e2e.write_private(owner / 'luks.key', key)
    play_vars = {'sev_launch_policy': POLICY, 'sev_launch_firmware': ovmf, 'sev_launch_together': together,
                 'sev_launch_secrets': [{'guid': 'luks-key', 'path': key_path}]}

    # 1. the three hosts, sev-ehv1 with sev-ehv2's CEK (another chip): its launches fail before the start
    names = define_guests(guests, emulated_hypervisors, ovmf, 'scl')
    state = str(owner / 'state')
    host_vars = {hv.hostname: dict(e2e.lab_root_vars(hv), sev_launch_guests=[{'domain': n}
                                                                             for n in names[hv.hostname]])
                 for hv in emulated_hypervisors}
    host_vars[hv1.hostname]['sev_launch_cek_file'] = os.path.join(hv2.export_dir, 'cek.cert')
    rc, output, outcomes = scale_play(tmp_path / 'run', emulated_hypervisors,
                                      dict(play_vars, sev_launch_state_dir=state), host_vars)
    assert rc == 2, output[-6000:]          # a host failed (the role's final task), the play ran on
    assert set(outcomes) == {hv1.hostname, hv2.hostname, hv3.hostname}, output[-6000:]
    assert '2 of 2 guests failed' in output
    for name in names[hv1.hostname]:
        outcome = by_domain(outcomes, hv1.hostname, name)
        assert outcome['failed'] is True and outcome['destroyed'] is False and outcome['rc'] != 0, outcome
        assert 'session' in (outcome.get('failed_task') or '').lower() or outcome['reason'] != 'ok', outcome
        assert e2e.records_of(hv1, name) == [], 'a launch started on the failing host'
        assert guests.lookup(hv1, name).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    ctl = {}
    for hv in (hv2, hv3):
        for name in names[hv.hostname]:
            ctl[name] = assert_launched(hv, guests, state, by_domain(outcomes, hv.hostname, name), name, key)
    # serial: 2 -> sev-ehv3 (second batch) started after sev-ehv2 (first batch) was done
    last_of_batch1 = max(ctl[n]['stage_times']['resumed'] for n in names[hv2.hostname])
    first_of_batch2 = min(ctl[n]['stage_times']['started'] for n in names[hv3.hostname])
    assert first_of_batch2 >= last_of_batch1, (last_of_batch1, first_of_batch2)

    # 2. the same play without the failing host, on fresh guests: the same outcomes for the others
    control = define_guests(guests, (hv2, hv3), ovmf, 'scc')
    control_vars = {hv.hostname: dict(e2e.lab_root_vars(hv), sev_launch_guests=[{'domain': n}
                                                                                for n in control[hv.hostname]])
                    for hv in (hv2, hv3)}
    control_state = str(owner / 'state-control')
    rc2, output2, outcomes2 = scale_play(tmp_path / 'control', (hv2, hv3),
                                         dict(play_vars, sev_launch_state_dir=control_state), control_vars)
    assert rc2 == 0, output2[-6000:]
    for hv in (hv2, hv3):
        for with_failing, alone in zip(names[hv.hostname], control[hv.hostname]):
            got = by_domain(outcomes, hv.hostname, with_failing)
            want = by_domain(outcomes2, hv.hostname, alone)
            assert_launched(hv, guests, control_state, want, alone, key)
            assert {k: got.get(k) for k in COMPARED} == {k: want.get(k) for k in COMPARED}, (got, want)
    record('scale (%s): strategy free, serial 2, forks 3, pipelining; 6 guests on 3 hosts, one host failing'
           % ('together' if together else 'per-guest'),
           'hosts 2 and 3 launched 4 of 4; host 1 failed 2 of 2 before any start')

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sev_launch role against real daemons (issue 8's defects that need no SEV).

Non-SEV TCG domains: every launch fails validation (remote: no SEV launch
security, config 4; local: the hypervisor is the controller, insecure 3),
which is what the failure paths need.  The success path, the re-run on a
validated guest and the replay refusal need the emulated SEV platform:
they are in tests/integration/test_e2e_role.py, and every step failed in
turn (faults, interrupts, 20 concurrent launches) in test_faults.py (the
role's README lists the variables, state-dir layout and record format).

Each run applies the role through include_role inside a block whose
``always`` writes ``sev_launch_outcomes`` to outcomes-<host>.json, so the
tests read the role's own per-guest outcomes even when the play fails.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import subprocess
import time

import libvirt
import pytest

from ansible_collections.confidential.sev.tests.integration.harness.domain import minimal_domain_xml
from ansible_collections.confidential.sev.tests.integration.harness.libvirtd import Libvirtd
from ansible_collections.confidential.sev.tests.integration.harness.playbook import BIN_DIR, _env, local_inventory

SHUTOFF_DESTROYED = (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED)
RUNNING_BOOTED = (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED)


class RoleRun:
    def __init__(self, proc, seconds, outcomes, state_dir):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.seconds = seconds
        self.outcomes = outcomes
        self.state_dir = state_dir

    def outcome(self, domain):
        found = [item for item in self.outcomes if str(item['domain']) == str(domain)]
        assert len(found) == 1, (domain, self.outcomes, self.output)
        return found[0]


def make_files(work):
    for file_name, size in (('firmware.fd', 4096), ('guest.tik', 16), ('guest.tek', 16)):
        (work / file_name).write_bytes(secrets.token_bytes(size))


def role_vars(work, uri, **extra):
    """A pre-made session (no node PDH without SEV), files on the controller, a private state dir."""
    result = {'sev_launch_uri': uri, 'sev_launch_firmware': str(work / 'firmware.fd'),
              'sev_launch_tik': str(work / 'guest.tik'), 'sev_launch_tek': str(work / 'guest.tek'),
              'sev_launch_state_dir': str(work / 'state')}
    result.update(extra)
    return result


def run_role(work, daemon, kind, variables, check=False, extra_args=(), wait=True, new_session=False):
    """ansible-playbook applying the role to the daemon's host; RoleRun (or the Popen when not ``wait``)."""
    work.mkdir(exist_ok=True)
    if not (work / 'firmware.fd').exists():
        make_files(work)
    if kind == 'local':
        inventory, hosts = local_inventory(str(work / 'inventory.json')), 'localhost'
    else:
        inventory, hosts = daemon.write_inventory(str(work / 'inventory.json')), daemon.hostname
    outcomes_file = str(work / 'outcomes.json')
    if os.path.exists(outcomes_file):
        os.unlink(outcomes_file)
    play = [{'name': 'launch', 'hosts': hosts, 'gather_facts': False, 'vars': variables, 'tasks': [{
        'name': 'apply the role', 'block': [
            {'name': 'sev_launch', 'ansible.builtin.include_role': {'name': 'confidential.sev.sev_launch'}}],
        'always': [{'name': 'write the outcomes', 'delegate_to': 'localhost', 'check_mode': False,
                    'ansible.builtin.copy': {'content': '{{ sev_launch_outcomes | default(none) | to_json }}',
                                             'dest': outcomes_file, 'mode': '0600'}}]}]}]
    (work / 'site.yml').write_text(json.dumps(play, indent=1))
    env = _env(str(work))
    env.update(ANSIBLE_HOME=str(work / 'home'), ANSIBLE_LOCAL_TEMP=str(work / 'tmp'),
               ANSIBLE_REMOTE_TEMP=str(work / 'remote-tmp'), ANSIBLE_PIPELINING='True',
               ANSIBLE_RETRY_FILES_ENABLED='0')
    argv = [os.path.join(BIN_DIR, 'ansible-playbook'), '-i', inventory, 'site.yml'] + list(extra_args)
    if check:
        argv.append('--check')
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=str(work), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=new_session)
    if not wait:
        return proc
    return finish(proc, start, work)


def finish(proc, start, work):
    stdout, stderr = proc.communicate(timeout=300)
    proc.stdout_text = stdout
    seconds = time.monotonic() - start
    outcomes = None
    if (work / 'outcomes.json').exists():
        outcomes = json.loads((work / 'outcomes.json').read_text())
    result = RoleRun(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), seconds, outcomes,
                     str(work / 'state'))
    assert outcomes is not None, result.output
    return result


def qemu_pid(daemon, name):
    with open(daemon.path('run', 'libvirt', 'qemu', name + '.pid'), encoding='ascii') as f:
        return int(f.read().strip())


@pytest.fixture
def domains(request):
    """define(daemon, name) -> virDomain on the daemon's unix socket; all destroyed and undefined afterwards."""
    made = []

    def define(daemon, name=None):
        conn = libvirt.open(daemon.uri_unix)
        dom = conn.defineXML(minimal_domain_xml(name or 'sevrole-%s' % secrets.token_hex(3)))
        made.append((conn, dom))
        return dom
    yield define
    for conn, dom in made:
        try:
            if dom.isActive():
                dom.destroy()
            dom.undefine()
            conn.close()
        except libvirt.libvirtError:
            pass   # its daemon was stopped by the test


def target(request, kind):
    daemon = request.getfixturevalue('libvirtd_' + kind)
    return daemon, (daemon.uri_unix if kind == 'local' else 'qemu:///system')


# ---- a launch that does not validate is destroyed (this launch only) -----------------------------

@pytest.mark.parametrize('kind, reason, rc, words', [
    ('local', 'insecure', 3, 'the hypervisor is this controller'),
    ('remote', 'config', 4, 'not configured with SEV launch security'),
])
def test_a_launch_that_does_not_validate_is_destroyed(request, tmp_path, domains, kind, reason, rc, words):
    daemon, uri = target(request, kind)
    dom = domains(daemon)
    run = run_role(tmp_path, daemon, kind, role_vars(tmp_path, uri, sev_launch_domain=dom.name()))
    assert run.rc != 0, run.output
    outcome = run.outcome(dom.name())
    assert (outcome['failed'], outcome['reason'], int(outcome['rc']), outcome['plan']) == (True, reason, rc, 'launch')
    assert outcome['failed_task'] == 'Validate the measurement on the controller, from the files the guest owner trusts'
    assert words in outcome['msg'] and 'was destroyed' in outcome['msg'], outcome
    assert outcome['uuid'] == dom.UUIDString() and outcome['destroyed'] is True
    assert tuple(dom.state()) == SHUTOFF_DESTROYED
    assert '1 of 1 guests failed: %s: Validate the measurement' % dom.name() in run.output, run.output
    # the controller recorded the launch and its failure, privately
    record = json.loads(open(os.path.join(run.state_dir, 'hosts', 'localhost' if kind == 'local' else daemon.hostname,
                                          dom.UUIDString(), 'current.json'), encoding='utf-8').read())
    assert (record['stage'], record['domain_id'] > 0, record['failed']['destroyed']) == ('started', True, True)
    assert stat.S_IMODE(os.stat(run.state_dir).st_mode) == 0o700


# ---- defect 1: a re-run never powers off a guest this controller did not validate ------------------

@pytest.mark.parametrize('state', ['running', 'paused after it ran'])
def test_rerun_on_a_running_unvalidated_domain_fails_untouched(libvirtd_remote, tmp_path, domains, state):
    """Running, or suspended after it ran (libvirt: PAUSED/user, like a paused start): left as it is."""
    dom = domains(libvirtd_remote)
    dom.create()
    if state != 'running':
        dom.suspend()
    before = tuple(dom.state())
    pid, dom_id = qemu_pid(libvirtd_remote, dom.name()), dom.ID()
    variables = role_vars(tmp_path, 'qemu:///system', sev_launch_domain=dom.name())
    run = run_role(tmp_path, libvirtd_remote, 'remote', variables)
    assert run.rc != 0, run.output
    outcome = run.outcome(dom.name())
    assert (outcome['failed'], outcome['plan'], outcome['changed'], outcome['destroyed']) == (True, 'fail', False,
                                                                                              False)
    assert 'left untouched' in outcome['msg'] and 'no record' in outcome['msg'], outcome
    # the README's table: a refusal of the domain's state is reason state, rc 5 (was error, 6)
    assert (outcome['reason'], int(outcome['rc'])) == ('state', 5), outcome
    assert 'nothing was started or destroyed' in outcome['msg']
    assert (tuple(dom.state()), dom.ID(), qemu_pid(libvirtd_remote, dom.name())) == (before, dom_id, pid)
    assert before == (RUNNING_BOOTED if state == 'running' else (libvirt.VIR_DOMAIN_PAUSED,
                                                                 libvirt.VIR_DOMAIN_PAUSED_USER))


def test_relaunch_destroys_the_unvalidated_launch_and_launches_again(libvirtd_remote, tmp_path, domains):
    dom = domains(libvirtd_remote)
    dom.create()
    old_id = dom.ID()
    run = run_role(tmp_path, libvirtd_remote, 'remote', role_vars(
        tmp_path, 'qemu:///system', sev_launch_guests=[{'domain': dom.name(), 'if_active': 'relaunch'}]))
    outcome = run.outcome(dom.name())
    assert (outcome['plan'], outcome['failed'], outcome['reason']) == ('relaunch', True, 'config'), outcome
    # a new launch (new ID) was started, failed validation and was destroyed
    assert int(outcome['domain_id']) > old_id and outcome['destroyed'] is True
    assert tuple(dom.state()) == SHUTOFF_DESTROYED


# ---- defect 2: a domain named like another's ID never lets the role touch that other --------------

def test_a_domain_named_like_another_domains_id_is_looked_up_by_name(libvirtd_remote, tmp_path, domains):
    prod = domains(libvirtd_remote, 'prod-db-%s' % secrets.token_hex(2))
    prod.create()
    prod_id, prod_pid = prod.ID(), qemu_pid(libvirtd_remote, prod.name())
    named = domains(libvirtd_remote, str(prod_id))    # shut off, named like prod's runtime ID
    variables = role_vars(tmp_path, 'qemu:///system', sev_launch_domain=prod_id)   # an int in YAML
    run = run_role(tmp_path, libvirtd_remote, 'remote', variables)
    outcome = run.outcome(prod_id)
    assert outcome['uuid'] == named.UUIDString() != prod.UUIDString()
    assert (outcome['plan'], outcome['reason'], outcome['destroyed']) == ('launch', 'config', True), outcome
    assert tuple(named.state()) == SHUTOFF_DESTROYED
    after = (tuple(prod.state()), prod.ID(), qemu_pid(libvirtd_remote, prod.name()))
    assert after == (RUNNING_BOOTED, prod_id, prod_pid)


# ---- defect 5: --check, sev_launch_resume false on ansible-core 2.19, both reasons ------------------

def test_check_mode_on_a_shut_off_domain_succeeds_and_changes_nothing(libvirtd_remote, tmp_path, domains):
    dom = domains(libvirtd_remote)
    before = tuple(dom.state())
    run = run_role(tmp_path, libvirtd_remote, 'remote',
                   role_vars(tmp_path, 'qemu:///system', sev_launch_domain=dom.name()), check=True)
    assert run.rc == 0, run.output
    outcome = run.outcome(dom.name())
    assert (outcome['plan'], outcome['failed'], outcome['changed'], outcome['check_mode']) == ('launch', False,
                                                                                               True, True)
    assert outcome['msg'].startswith('would launch: the domain is shutoff'), outcome
    assert 'destroyed' not in run.output.replace('"destroyed"', '')
    assert tuple(dom.state()) == before and not dom.isActive()
    assert not os.path.exists(run.state_dir)       # nothing written on the controller either


def test_check_mode_fails_where_the_real_run_would_fail_before_starting(libvirtd_remote, tmp_path, domains):
    """A fresh session (no TIK/TEK given) without the chip's CEK: --check says so, as the real run would."""
    dom = domains(libvirtd_remote)
    variables = role_vars(tmp_path, 'qemu:///system', sev_launch_domain=dom.name(), sev_launch_policy=7)
    del variables['sev_launch_tik'], variables['sev_launch_tek']
    run = run_role(tmp_path, libvirtd_remote, 'remote', variables, check=True)
    assert run.rc != 0, run.output
    outcome = run.outcome(dom.name())
    assert (outcome['failed'], outcome['failed_task']) == (True, 'Check what a launch needs (in check mode too)')
    assert 'sev_launch_cek_file' in outcome['msg'] and 'nothing was started' in outcome['msg'], outcome
    assert not dom.isActive()


def test_resume_false_given_as_a_string_works_on_ansible_core_2_19(libvirtd_remote, tmp_path, domains):
    """-e sev_launch_resume=false is the string 'false': every condition on it goes through | bool."""
    dom = domains(libvirtd_remote)
    variables = role_vars(tmp_path, 'qemu:///system', sev_launch_domain=dom.name())
    checked = run_role(tmp_path / 'check', libvirtd_remote, 'remote', variables, check=True,
                       extra_args=['-e', 'sev_launch_resume=false'])
    assert checked.rc == 0 and checked.outcome(dom.name())['plan'] == 'launch', checked.output
    run = run_role(tmp_path / 'run', libvirtd_remote, 'remote', variables, extra_args=['-e', 'sev_launch_resume=false'])
    outcome = run.outcome(dom.name())
    # it fails where a non-SEV domain must, in validation, not in a conditional
    assert (outcome['reason'], outcome['destroyed']) == ('config', True), outcome
    assert 'Conditional result' not in run.output and 'broken conditional' not in run.output.lower()
    assert tuple(dom.state()) == SHUTOFF_DESTROYED


def test_a_failure_whose_destroy_fails_too_reports_both_reasons(tmp_path, domains):
    """A private daemon, stopped once the controller has recorded the started launch (the role held
    with SIGSTOP meanwhile): the next libvirt step fails, the rescue's destroy cannot reach libvirt
    either, and the outcome carries both reasons."""
    daemon = Libvirtd(name='rolefail')
    daemon.start()
    try:
        dom = domains(daemon)
        state_dir = tmp_path / 'state'
        start = time.monotonic()
        proc = run_role(tmp_path, daemon, 'local', role_vars(tmp_path, daemon.uri_unix, sev_launch_domain=dom.name()),
                        wait=False, new_session=True)
        launches = state_dir / 'hosts' / 'localhost' / dom.UUIDString() / 'launches'
        deadline = time.monotonic() + 120
        stage = None
        while stage != 'started' and time.monotonic() < deadline and proc.poll() is None:
            try:
                record = launches / os.listdir(launches)[0] / 'record.json'
                stage = json.loads(record.read_text()).get('stage')
            except (OSError, IndexError, ValueError):
                pass
            if stage != 'started':
                time.sleep(0.005)
        assert stage == 'started', 'the role never recorded the started launch'
        os.killpg(proc.pid, signal.SIGSTOP)    # hold the role while its hypervisor goes away
        try:
            probe = libvirt.open(daemon.uri_unix)
            launch_id = probe.lookupByUUIDString(dom.UUIDString()).ID()   # the started launch's ID
            probe.close()
            assert launch_id > 0
            daemon.stop()              # libvirtd (and the launch's QEMU) gone: the destroy cannot reach it
        finally:
            os.killpg(proc.pid, signal.SIGCONT)
        run = finish(proc, start, tmp_path)
        outcome = run.outcome(dom.name())
        assert outcome['failed'] is True, outcome
        marker = 'destroying the launch this run started (domain ID %d) failed too' % launch_id
        assert marker in outcome['msg'], outcome
        assert outcome['msg'].index(marker) > 0                                  # the original reason first
        assert outcome['destroy_msg'] and outcome['destroy_msg'] in outcome['msg']   # and the destroy's
        assert outcome['destroyed'] is False
    finally:
        daemon.stop()


# ---- defect 6: allow_local relaxes the local rule, and nothing else -----------------------------

def test_allow_local_relaxes_only_the_local_rule(libvirtd_local, tmp_path, domains):
    dom = domains(libvirtd_local)
    refused = run_role(tmp_path / 'strict', libvirtd_local, 'local',
                       role_vars(tmp_path, libvirtd_local.uri_unix, sev_launch_domain=dom.name()))
    first = refused.outcome(dom.name())
    assert (first['reason'], int(first['rc'])) == ('insecure', 3) and 'hypervisor is this controller' in first['msg']
    allowed = run_role(tmp_path / 'allowed', libvirtd_local, 'local',
                       role_vars(tmp_path, libvirtd_local.uri_unix, sev_launch_domain=dom.name(),
                                 sev_launch_allow_local=True))
    second = allowed.outcome(dom.name())
    # past the local rule, the next rule still applies: a domain without SEV launch security
    assert (second['reason'], int(second['rc'])) == ('config', 4), second
    assert 'not configured with SEV launch security' in second['msg'] and second['destroyed'] is True
    assert tuple(dom.state()) == SHUTOFF_DESTROYED


# ---- several guests: one guest's failure never stops or touches another ------------------------------

def test_per_guest_outcomes_with_one_bad_guest(libvirtd_remote, tmp_path, domains):
    running = domains(libvirtd_remote)
    running.create()
    pid = qemu_pid(libvirtd_remote, running.name())
    shutoff = domains(libvirtd_remote)
    missing = 'sevrole-missing-%s' % secrets.token_hex(3)
    guests = [{'domain': shutoff.name()}, {'domain': missing}, {'domain': running.name()},
              {'domain': shutoff.name(), 'bogus_option': 1}]
    variables = role_vars(tmp_path, 'qemu:///system', sev_launch_guests=guests)
    checked = run_role(tmp_path / 'check', libvirtd_remote, 'remote', variables, check=True)
    assert checked.rc != 0 and [item['failed'] for item in checked.outcomes] == [False, True, True, True]
    assert checked.outcomes[0]['plan'] == 'launch' and 'would launch' in checked.outcomes[0]['msg']
    run = run_role(tmp_path / 'run', libvirtd_remote, 'remote', variables)
    assert run.rc != 0 and len(run.outcomes) == 4, run.output
    first, second, third, fourth = run.outcomes
    assert (first['reason'], first['destroyed']) == ('config', True), first        # launched, did not validate
    assert second['failed_task'].startswith('Pin the domain') and 'nothing was started' in second['msg'], second
    assert missing in second['msg']
    assert (third['plan'], third['destroyed']) == ('fail', False) and 'left untouched' in third['msg'], third
    assert 'bogus_option' in fourth['msg'], fourth
    assert '4 of 4 guests failed' in run.output
    for outcome in run.outcomes:
        assert str(outcome['domain']) in run.output
    assert (tuple(running.state()), qemu_pid(libvirtd_remote, running.name())) == (RUNNING_BOOTED, pid)
    assert tuple(shutoff.state()) == SHUTOFF_DESTROYED

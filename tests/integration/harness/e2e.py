# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the end-to-end tests (test_e2e_launch.py, test_e2e_role.py).

The emulated hypervisors (harness/hypervisor.py) are reached over ssh as
remote hosts; Ansible runs the host-side modules there, the controller-side
ones here.  These helpers define guests on them through libvirt-python (over
the hypervisor's ssh URI, as an administrator would), write the guest owner's
files on the controller, read what the EMULATED platform saw (its launch
records, guest memory through pmemsave), run the role with ansible-playbook,
and check the failure invariant.

Also a small CLI, run by playbooks on the controller between two tasks:

    python harness/e2e.py pmemsave --uri URI --domain NAME_OR_UUID --gpa N --size N --out FILE

writes ``size`` bytes of the guest's memory at ``gpa`` to FILE (0600), through
QMP ``pmemsave`` (FILE must be a path QEMU can write inside the hypervisor's
namespace: /tmp is shared).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

# The secret table (OVMF's SecretTable): GUID || u32 length || entries (GUID || u32 length || value).
SECRET_TABLE_GUID = uuid.UUID('1e74f542-71dd-4d66-963e-ef4287ff173b')
LUKS_KEY_GUID = uuid.UUID('736869e5-84f0-4973-92ec-06879ce3da0b')
_HEADER = struct.Struct('<16sI')
# AmdSev's secret area, which harness/sev_guest.patched_ovmf writes into the footer.
SECRET_AREA_GPA, SECRET_AREA_SIZE = 0x810000, 0xc00
# QEMU 7.2's EPYC model: family 23, model 1, stepping 2 (they enter SEV-ES VMSAs).
EPYC_FMS = (23, 1, 2)

# Names of the role's tasks (roles/sev_launch/tasks) that tests fail, trigger on or expect in a failure.
PIN_TASK = 'Pin the domain (its name or UUID resolved once; its UUID from here on)'
PLAN_FAIL_TASK = 'Leave an active launch this controller did not validate untouched'
START_TASK = 'Start the domain paused, before anything runs in it (with this launch\'s session)'
READ_TASK = 'Read its launch state from the hypervisor (checked on the controller)'
VALIDATE_TASK = 'Validate the measurement on the controller, from the files the guest owner trusts'
INJECT_TASK = 'Inject the secrets into this launch, still before its first run'
RESUME_TASK = 'Let the validated launch run (this launch only; resume never starts a domain)'


def es_overrides(es_policy, num_cpus):
    """The role's per-guest overrides for an SEV-ES guest with num_cpus vCPUs on QEMU's EPYC model."""
    return {'policy': es_policy, 'num_cpus': num_cpus, 'cpu_family': EPYC_FMS[0], 'cpu_model': EPYC_FMS[1],
            'cpu_stepping': EPYC_FMS[2], 'require_policy': ['NODBG', 'NOKS', 'ES']}


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


# ---------------------------------------------------------------- waiting ----

def wait_until(predicate, timeout=30.0, interval=0.05):
    """predicate()'s first truthy value, polled every ``interval`` s; its last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def alive(pid):
    """pid exists and is not a zombie."""
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii', errors='replace') as f:
            return f.read().rpartition(')')[2].split()[0] not in ('Z', 'X')
    except (OSError, IndexError):
        return False


def unique(prefix):
    return '%s-%s' % (prefix, secrets.token_hex(3))


# ----------------------------------------------------- guest owner's files ----

def write_private(path, data):
    """data (bytes) to path, 0600 from creation; returns path (str)."""
    path = str(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(data)
    return path


def stand_in_bzimage(path, size_kib=256):
    """A file QEMU's x86 loader takes for a bzImage (boot protocol 2.15 header), random otherwise.

    Its bytes are hashed into the kernel hashes table; what it does once
    resumed does not matter (the guest is destroyed right after).
    """
    setup_sects = 4
    image = bytearray(os.urandom((setup_sects + 1) * 512 + size_kib * 1024))
    image[0x1f1] = setup_sects
    image[0x1fe:0x200] = b'\x55\xaa'
    image[0x202:0x206] = b'HdrS'
    image[0x206:0x208] = (0x020f).to_bytes(2, 'little')
    image[0x211] = 0x01                                      # loadflags: LOADED_HIGH (bzImage)
    image[0x22c:0x230] = (0x37ffffff).to_bytes(4, 'little')  # initrd_addr_max
    image[0x236:0x238] = b'\0\0'                             # xloadflags
    image[0x238:0x23c] = (2048).to_bytes(4, 'little')        # cmdline_size
    with open(path, 'wb') as f:
        f.write(image)
    os.chmod(path, 0o644)
    return str(path)


def one_byte_off(ovmf, path):
    """The firmware the guests run with one byte off, far from the footer table (so its hash table and
    secret area are still there: only the measurement can tell), written 0600 to path; returns path (str).
    What an owner trusting the wrong firmware holds: a mismatch at validation."""
    with open(ovmf, 'rb') as f:
        image = bytearray(f.read())
    image[0x1000] ^= 0x01
    return write_private(path, bytes(image))


def random_file(path, size):
    with open(path, 'wb') as f:
        f.write(os.urandom(size))
    os.chmod(path, 0o644)
    return str(path)


def premade_session(pdh_b64, policy, directory, stem):
    """A guest owner's session for the platform whose PDH is pdh_b64, made by the engine.

    Returns {dh_cert, session (base64 for the XML), tik, tek (0600 file paths)}.
    """
    # pylint: disable=import-outside-toplevel
    from ansible_collections.confidential.sev.plugins.module_utils.sev.certs import parse_sev_cert
    from ansible_collections.confidential.sev.plugins.module_utils.sev.session import create_session
    session = create_session(parse_sev_cert(base64.b64decode(pdh_b64), 'PDH'), policy)
    return {'dh_cert': base64.b64encode(session.godh).decode('ascii'),
            'session': base64.b64encode(session.session).decode('ascii'),
            'tik': write_private(os.path.join(str(directory), stem + '.tik'), session.keys.tik),
            'tek': write_private(os.path.join(str(directory), stem + '.tek'), session.keys.tek)}


# -------------------------------------------------------------- evidence ----

def parse_secret_table(data):
    """{GUID: value} of the secret table at the start of data (ValueError if there is none)."""
    if len(data) < _HEADER.size:
        raise ValueError('shorter than a table header')
    guid, table_len = _HEADER.unpack_from(data)
    if uuid.UUID(bytes_le=guid) != SECRET_TABLE_GUID:
        raise ValueError('no secret table GUID at the start (%s)' % uuid.UUID(bytes_le=guid))
    if not _HEADER.size <= table_len <= len(data):
        raise ValueError('table length %d does not fit %d bytes' % (table_len, len(data)))
    entries, offset = {}, _HEADER.size
    while offset < table_len:
        guid, entry_len = _HEADER.unpack_from(data, offset)
        if entry_len < _HEADER.size or offset + entry_len > table_len:
            raise ValueError('entry length %d at offset %d does not fit' % (entry_len, offset))
        entries[uuid.UUID(bytes_le=guid)] = bytes(data[offset + _HEADER.size:offset + entry_len])
        offset += entry_len
    return entries


def records_of(hv, name):
    """The EMULATED platform's launch records of domain ``name`` on hv, oldest first."""
    return [rec for rec in hv.launches() if rec.get('domain_name') == name]


def qemu_pid(hv, name):
    """The QEMU pid libvirt keeps for an active domain on hv (None when there is none)."""
    try:
        with open(hv.path('run', 'libvirt', 'qemu', name + '.pid'), encoding='ascii') as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def host_module_pids(hv):
    """Ansible modules still running on hv: with pipelining (ansible_env) each is
    ``/bin/sh -c '<python> && sleep 0'`` and its ``<python>``, in hv's namespace.
    A module a killed controller had already sent goes on to its end: its ssh
    session outlives the controller."""
    interpreter = sys.executable
    wrapper = ['/bin/sh', '-c', interpreter + ' && sleep 0']
    found = set()
    for pid in hv.pids():
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                argv = f.read().decode('utf-8', 'replace').split('\0')[:-1]
        except OSError:
            continue
        if argv in ([interpreter], wrapper):
            found.add(pid)
    return found


def assert_refused_launch(rec, crashed=False):
    """The failure invariant for one launch the emulator recorded: never resumed, no secret accepted.

    crashed: QEMU was killed right after an ACCEPTED injection (crash_after_inject):
    the secret was accepted by construction, and then died with the guest; it must
    still never have run.
    """
    assert rec['finished'] is False, 'launch %d of %s resumed: %s' % (rec['seq'], rec['domain_name'], rec)
    accepted = [inj for inj in rec['injections'] if inj['accepted']]
    if crashed:
        assert len(accepted) == 1 and rec['faults_applied'] == ['crash_after_inject'], rec
    else:
        assert not accepted, 'launch %d of %s: the platform accepted a secret: %s' % (
            rec['seq'], rec['domain_name'], rec['injections'])


# --------------------------------------------------------------- domains ----

class Guests:
    """Domains defined on the emulated hypervisors; each is destroyed and undefined by cleanup()."""

    def __init__(self):
        self.defined = []          # (conn, name)
        self._conns = {}

    def conn(self, hv):
        # pylint: disable-next=import-outside-toplevel
        import libvirt
        if hv.hostname not in self._conns:
            self._conns[hv.hostname] = libvirt.open(hv.uri_ssh)
        return self._conns[hv.hostname]

    def define(self, hv, xml, name):
        dom = self.conn(hv).defineXML(xml)
        self.defined.append((hv, name))
        return dom

    def lookup(self, hv, name):
        return self.conn(hv).lookupByName(name)

    def cleanup(self):
        # pylint: disable-next=import-outside-toplevel
        import libvirt
        problems = []
        for hv, name in self.defined:
            try:
                dom = self.conn(hv).lookupByName(name)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    problems.append('%s on %s: %s' % (name, hv.hostname, exc))
        self.defined = []
        for conn in self._conns.values():
            try:
                conn.close()
            except libvirt.libvirtError:
                pass
        self._conns = {}
        if problems:
            raise AssertionError('cleanup of e2e domains: %s' % '; '.join(problems))


# ------------------------------------------------------------- ansible ----

def inventory(path, hvs, host_vars=None):
    """An inventory with the hypervisors (their ssh variables plus host_vars[hostname]); returns path."""
    hosts = {}
    for hv in hvs:
        hosts[hv.hostname] = dict(hv.ansible_host_vars(), **(host_vars or {}).get(hv.hostname, {}))
    with open(path, 'w', encoding='utf-8') as f:
        json.dump({'all': {'hosts': hosts}}, f, indent=2)
    return str(path)


def lab_root_vars(hv):
    """Role variables that verify hv's EMULATED chain up to its lab root (trusted explicitly)."""
    return {'sev_launch_cek_file': os.path.join(hv.export_dir, 'cek.cert'),
            'sev_launch_ark_file': os.path.join(hv.export_dir, 'lab_ark.cert'),
            'sev_launch_ask_file': os.path.join(hv.export_dir, 'lab_ask.cert'),
            'sev_launch_lab_root': True}


class RoleRun:
    """One finished ansible-playbook run of the role: rc, output, per-host outcomes."""

    def __init__(self, rc, stdout, stderr, seconds, outcomes):
        self.rc, self.stdout, self.stderr, self.seconds, self.outcomes = rc, stdout, stderr, seconds, outcomes
        self.output = stdout + stderr

    def outcome(self, host, domain):
        found = [item for item in self.outcomes.get(host) or [] if str(item['domain']) == str(domain)]
        assert len(found) == 1, 'no single outcome for %s on %s: %s\n%s' % (
            domain, host, self.outcomes, self.output[-6000:])
        return found[0]


def ansible_env(work):
    # pylint: disable-next=import-outside-toplevel
    from harness.playbook import _env
    env = _env(str(work))
    env.update(ANSIBLE_HOME=os.path.join(str(work), 'home'), ANSIBLE_LOCAL_TEMP=os.path.join(str(work), 'tmp'),
               ANSIBLE_REMOTE_TEMP=os.path.join(str(work), 'remote-tmp'), ANSIBLE_PIPELINING='True',
               ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_LOCALHOST_WARNING='0')
    return env


def start_role(work, hvs, play_vars, host_vars=None, extra_args=(), new_session=False, env=None, play_keys=None):
    """Start ansible-playbook applying confidential.sev.sev_launch to hvs; (Popen, start time, outcome paths).

    new_session: ansible-playbook leads its own process group (its pid), so that
    interrupt_role() can signal it and its workers as a terminal's ^C would.
    env: extra environment for ansible-playbook (e.g. a log file, a callback).
    play_keys: extra keys of the play (e.g. strategy, serial).
    """
    work = str(work)
    for sub in ('home', 'tmp', 'remote-tmp', 'outcomes'):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    control_dir = None
    if new_session:
        control_dir, host_vars = own_control_masters(hvs, host_vars)
    inv = inventory(os.path.join(work, 'inventory.json'), hvs, host_vars)
    outcome_dir = os.path.join(work, 'outcomes')
    for name in os.listdir(outcome_dir):
        os.unlink(os.path.join(outcome_dir, name))
    play = [{'name': 'e2e sev_launch', 'hosts': ','.join(hv.hostname for hv in hvs), 'gather_facts': False,
             'vars': play_vars, 'tasks': [{
                 'name': 'apply the role', 'block': [
                     {'name': 'sev_launch', 'ansible.builtin.include_role': {'name': 'confidential.sev.sev_launch'}}],
                 'always': [{'name': 'write the outcomes', 'delegate_to': 'localhost', 'check_mode': False,
                             'changed_when': False,
                             'ansible.builtin.copy': {
                                 'content': '{{ sev_launch_outcomes | default(none) | to_json }}',
                                 'dest': outcome_dir + '/{{ inventory_hostname }}.json', 'mode': '0600'}}]}]}]
    play[0].update(play_keys or {})
    path = os.path.join(work, 'site.yml')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(play, f, indent=1)
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inv, path] + list(extra_args)
    # pylint: disable-next=consider-using-with
    run_env = ansible_env(work)
    run_env.update(env or {})
    proc = subprocess.Popen(argv, cwd=work, env=run_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=new_session)
    proc.control_dir = control_dir
    return proc, time.monotonic(), outcome_dir


def own_control_masters(hvs, host_vars=None):
    """(directory, host_vars): host_vars with the run's own ssh ControlMaster directory for each of hvs,
    instead of the hypervisor's (which concurrent runs share), so that end_control_masters() can end the
    run's connections as its controller's death would. Short, for the 108-byte limit of a socket path."""
    control_dir = tempfile.mkdtemp(prefix='sevcp-')
    return control_dir, {hv.hostname: dict((host_vars or {}).get(hv.hostname, {}), ansible_control_path_dir=control_dir)
                         for hv in hvs}


def end_control_masters(control_dir):
    """Ask each ssh ControlMaster with a socket in control_dir (own_control_masters) to exit, then remove
    control_dir. A session the master carried ends; a module it had fully sent goes on (host_module_pids)."""
    if not control_dir or not os.path.isdir(control_dir):
        return
    for name in os.listdir(control_dir):
        subprocess.run(['ssh', '-S', os.path.join(control_dir, name), '-O', 'exit', 'controlmaster'],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)
    shutil.rmtree(control_dir, ignore_errors=True)


def children_of(pid):
    """Pids whose parent is pid (field 4 of /proc/PID/stat)."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry, encoding='ascii', errors='replace') as f:
                fields = f.read().rpartition(')')[2].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry))
    return found


def interrupt_role(started, signum):
    """signum to a start_role(..., new_session=True) run (its own pid and process group, recorded by Popen).

    SIGINT goes to that process group, as a terminal's ^C: ansible-playbook stops its workers itself.
    SIGKILL is the controller dying: ansible-core's workers lead sessions of their own (setsid), out of
    that group, and would finish their task; so ansible-playbook is stopped first (no new worker), each of
    its children is killed with the process group it leads, then ansible-playbook's group, then the run's
    ssh ControlMasters (started with new_session, they are its own: own_control_masters), which outlive
    it otherwise. A module a worker had already sent whole to a host goes on there (host_module_pids)."""
    proc = started[0]
    if proc.poll() is not None:
        return
    if signum != signal.SIGKILL:
        os.killpg(proc.pid, signum)
        return
    os.killpg(proc.pid, signal.SIGSTOP)
    for child in children_of(proc.pid):
        try:
            if os.getpgid(child) == child:
                os.killpg(child, signal.SIGKILL)
            else:
                os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.killpg(proc.pid, signal.SIGKILL)
    end_control_masters(getattr(proc, 'control_dir', None))


def kill_role_group(started):
    """SIGKILL whatever is left of that run's process group, and end its own ssh ControlMasters."""
    try:
        os.killpg(started[0].pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    end_control_masters(getattr(started[0], 'control_dir', None))


def end_interrupted_run(started, trigger, signum, timeout=300):
    """(stdout, how it ended, e.g. 'SIGINT' or 'SIGINT+SIGKILL') of a start_role(..., new_session=True) run
    that ``trigger`` (a StageTrigger) interrupts with signum: waits until the trigger fired or the run ended,
    then until the run ends. ansible-core 2.19 may hang after one SIGINT (seen with a worker between two
    tasks): ^C is pressed again, then the run is killed, as a user would. Then the trigger is stopped and
    whatever is left of the run killed."""
    proc = started[0]
    try:
        wait_until(lambda: trigger.fired or proc.poll() is not None, timeout, 0.2)
        ended_by = signal.Signals(signum).name
        for last_resort in (signal.SIGINT, signal.SIGKILL, None):
            try:
                stdout = proc.communicate(timeout=30)[0]
                break
            except subprocess.TimeoutExpired:
                if last_resort is None:
                    raise
                interrupt_role(started, last_resort)
                ended_by += '+' + signal.Signals(last_resort).name
    finally:
        trigger.finish()
        kill_role_group(started)
    return stdout, ended_by


def finish_role(started, hvs, timeout=400):
    proc, t0, outcome_dir = started
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError('ansible-playbook timed out after %d s\n%s' % (timeout, stdout[-6000:]))
    outcomes = {}
    for hv in hvs:
        path = os.path.join(outcome_dir, hv.hostname + '.json')
        if os.path.exists(path):
            with open(path, encoding='utf-8') as f:
                outcomes[hv.hostname] = json.load(f)
    return RoleRun(proc.returncode, stdout, stderr, time.monotonic() - t0, outcomes)


def run_role(work, hvs, play_vars, host_vars=None, extra_args=(), timeout=400):
    return finish_role(start_role(work, hvs, play_vars, host_vars, extra_args), hvs, timeout)


def run_tasks(work, hvs, tasks, host_vars=None, timeout=400):
    """One play of ``tasks`` on all of hvs at once (ansible-playbook); (results, seconds, output).

    results is {hostname: {task: registered result}}: each host's registered
    ``r_<task>`` variables are written to work/results/<host>.json by a last
    task on the controller.  Module tasks (harness.playbook.module_task) ignore
    errors, so a failed one is a result to assert on; anything else that fails
    fails the run (AssertionError with Ansible's output).
    """
    work = str(work)
    for sub in ('home', 'tmp', 'remote-tmp', 'results'):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    inv = inventory(os.path.join(work, 'inventory.json'), hvs, host_vars)
    registered = [task['register'] for task in tasks if 'register' in task]
    dump = {'name': 'write results', 'delegate_to': 'localhost', 'ansible.builtin.copy': {
        'content': '{{ {%s} | to_json }}' % ', '.join("'%s': %s" % (reg[2:], reg) for reg in registered),
        'dest': os.path.join(work, 'results') + '/{{ inventory_hostname }}.json', 'mode': '0600'}}
    play = [{'name': 'e2e', 'hosts': ','.join(hv.hostname for hv in hvs), 'gather_facts': False,
             'tasks': list(tasks) + [dump]}]
    path = os.path.join(work, 'playbook.yml')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(play, f, indent=1)
    t0 = time.monotonic()
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inv, path],
                          cwd=work, env=ansible_env(work), capture_output=True, text=True, timeout=timeout,
                          check=False)
    seconds = time.monotonic() - t0
    results = {}
    for hv in hvs:
        result_path = os.path.join(work, 'results', hv.hostname + '.json')
        if proc.returncode != 0 or not os.path.exists(result_path):
            raise AssertionError('ansible-playbook %s exited %d\n%s\n%s' % (
                path, proc.returncode, proc.stdout[-20000:], proc.stderr[-5000:]))
        with open(result_path, encoding='utf-8') as f:
            results[hv.hostname] = json.load(f)
    return results, seconds, proc.stdout + proc.stderr


def controller_record(state_dir, host, domain_uuid):
    """The role's current.json for (host, domain), or None."""
    path = os.path.join(str(state_dir), 'hosts', host, domain_uuid, 'current.json')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


STAGE_ORDER = ('started', 'validated', 'injected', 'resumed')


class StageTrigger(threading.Thread):
    """Calls action() once, as soon as the controller's record of (host, domain_uuid) reaches ``stage``.

    Polls the role's current.json (every ``interval`` s, up to ``timeout``) from
    a thread while a role run goes on; ``fired`` is the stage seen when it
    acted (None if it never did), ``error`` what action() raised.
    """

    def __init__(self, state_dir, host, domain_uuid, stage, action, timeout=300.0, interval=0.02):
        super().__init__(daemon=True)
        self.state_dir, self.host, self.domain_uuid = str(state_dir), host, domain_uuid
        self.stage, self.action, self.timeout, self.interval = stage, action, timeout, interval
        self.fired, self.error = None, None
        self._stop_event = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.timeout
        while not self._stop_event.is_set() and time.monotonic() < deadline:
            rec = controller_record(self.state_dir, self.host, self.domain_uuid)
            if rec and rec.get('stage') in STAGE_ORDER and \
                    STAGE_ORDER.index(rec['stage']) >= STAGE_ORDER.index(self.stage):
                self.fired = rec['stage']
                try:
                    self.action()
                except Exception as exc:  # pylint: disable=broad-exception-caught  # reported by the test
                    self.error = exc
                return
            time.sleep(self.interval)

    def finish(self):
        self._stop_event.set()
        self.join(10)


def seen_claims(state_dir):
    """{mnonce hex: seen record}: every measurement the controller validated (its replay store)."""
    claims = {}
    seen = os.path.join(str(state_dir), 'seen')
    for tik_dir in os.listdir(seen) if os.path.isdir(seen) else ():
        for name in os.listdir(os.path.join(seen, tik_dir)):
            with open(os.path.join(seen, tik_dir, name), encoding='utf-8') as f:
                claim = json.load(f)
            claims[claim['mnonce']] = claim
    return claims


def assert_only_validated_launches_got_anything(launch_records, state_dir):
    """The invariant over what the EMULATED platform saw: a launch that ran (``finished``) or accepted a
    secret is one whose measurement this controller validated (its mnonce and reported measurement are in
    the controller's seen store, for that domain)."""
    claims = seen_claims(state_dir)
    for rec in launch_records:
        accepted = [inj for inj in rec['injections'] if inj['accepted']]
        if not (rec['finished'] or accepted):
            continue
        claim = claims.get(rec['mnonce'])
        assert claim is not None, 'launch %d of %s ran or got a secret, never validated: %s' % (
            rec['seq'], rec['domain_name'], rec)
        assert claim['context']['domain_uuid'] == rec['domain_uuid'], (claim, rec)
        assert claim['measurement'] == rec['measurement_reported'], (claim, rec)


# ------------------------------------------------------------------ CLI ----

def pmemsave(uri, domain, gpa, size, out):
    """size bytes of guest memory at gpa into out (0600), via QMP pmemsave (before resume)."""
    # pylint: disable=import-outside-toplevel
    import libvirt
    import libvirt_qemu
    target = os.path.realpath(out)
    conn = libvirt.open(uri)
    try:
        try:
            dom = conn.lookupByUUIDString(domain)
        except libvirt.libvirtError:
            dom = conn.lookupByName(domain)
        if os.path.exists(target):
            os.unlink(target)
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        cmd = {'execute': 'pmemsave', 'arguments': {'val': gpa, 'size': size, 'filename': target}}
        reply = json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps(cmd), 0))
    finally:
        conn.close()
    if 'return' not in reply:
        raise SystemExit('pmemsave of %d bytes at 0x%x: %s' % (size, gpa, reply))
    if os.path.getsize(target) != size:
        raise SystemExit('pmemsave wrote %d bytes, not %d' % (os.path.getsize(target), size))


def main(argv=None):
    parser = argparse.ArgumentParser(description='e2e test helpers')
    sub = parser.add_subparsers(dest='command', required=True)
    mem = sub.add_parser('pmemsave')
    mem.add_argument('--uri', required=True)
    mem.add_argument('--domain', required=True)
    mem.add_argument('--gpa', required=True, type=lambda text: int(text, 0))
    mem.add_argument('--size', required=True, type=lambda text: int(text, 0))
    mem.add_argument('--out', required=True)
    args = parser.parse_args(argv)
    pmemsave(args.uri, args.domain, args.gpa, args.size, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())

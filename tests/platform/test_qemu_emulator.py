# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End to end through the EMULATED SEV platform's ``run`` with the real QEMU 7.2 (TCG, -S), no libvirt.

Each test starts QEMU the way libvirt 9.0 does (an already-listening monitor fd, JSON -object,
-blockdev pflash, pc.ram backend) and kills it by its pid.  The guest owner's side is
guest_owner.py (cryptography), the reference digest comes from virt-qemu-sev-validate.
"""

from __future__ import annotations

import array
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid

import pytest

from ansible_collections.confidential.sev.tests.platform import emulator_records as records
from ansible_collections.confidential.sev.tests.platform import guest_owner as owner
from ansible_collections.confidential.sev.tests.platform import launch_model as lm
from ansible_collections.confidential.sev.tests.platform import qemu_emulator as emu
from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw

QEMU = '/usr/bin/qemu-system-x86_64'
OVMF_CODE = '/usr/share/OVMF/OVMF_CODE.fd'
OVMF_VARS = '/usr/share/OVMF/OVMF_VARS.fd'
VALIDATE = '/usr/bin/virt-qemu-sev-validate'
SECRET_GPA = 0x810000


@pytest.fixture(scope='module')
def platform_state(tmp_path_factory):
    state = str(tmp_path_factory.mktemp('emulated-platform'))
    platform, created = emu.init_state(state)
    assert created
    return state, platform


@pytest.fixture(scope='module')
def patched_firmware(tmp_path_factory):
    return lm.patch_footer_areas(OVMF_CODE, str(tmp_path_factory.mktemp('fw') / 'OVMF_CODE.sev.fd'))


class Guest:
    """One QEMU started through ``qemu_emulator run`` as libvirt would start it."""

    def __init__(self, state, workdir, name, firmware, policy=None, session=None, vcpus=1, cpu='EPYC',
                 kernel_hashes=False, kernel=None, paused=True, memory_mib=128):
        self.state, self.name = state, name
        self.workdir = workdir
        self.monitor_path = os.path.join(workdir, name + '.monitor')
        self.stderr_path = os.path.join(workdir, name + '.stderr')
        vars_copy = os.path.join(workdir, name + '_VARS.fd')
        shutil.copyfile(OVMF_VARS, vars_copy)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.monitor_path)
        listener.listen(1)
        machine = 'pc-q35-7.2,usb=off,dump-guest-core=off,memory-backend=pc.ram'
        if policy is not None:
            machine += ',confidential-guest-support=lsec0'
        machine += ',pflash0=libvirt-pflash0-format,pflash1=libvirt-pflash1-format'
        argv = ['-name', 'guest=%s,debug-threads=on' % name]
        if paused:
            argv.append('-S')
        argv += [
            '-blockdev', json.dumps({'driver': 'file', 'filename': firmware, 'node-name': 'libvirt-pflash0-storage',
                                     'auto-read-only': True, 'discard': 'unmap'}),
            '-blockdev', json.dumps({'node-name': 'libvirt-pflash0-format', 'read-only': True, 'driver': 'raw',
                                     'file': 'libvirt-pflash0-storage'}),
            '-blockdev', json.dumps({'driver': 'file', 'filename': vars_copy, 'node-name': 'libvirt-pflash1-storage',
                                     'auto-read-only': True, 'discard': 'unmap'}),
            '-blockdev', json.dumps({'node-name': 'libvirt-pflash1-format', 'read-only': False, 'driver': 'raw',
                                     'file': 'libvirt-pflash1-storage'}),
            '-machine', machine, '-accel', 'tcg']
        if cpu:
            argv += ['-cpu', cpu]
        argv += ['-m', str(memory_mib), '-object', json.dumps({'qom-type': 'memory-backend-ram', 'id': 'pc.ram',
                                                               'size': memory_mib << 20}),
                 '-overcommit', 'mem-lock=off', '-smp', '%d,sockets=%d,cores=1,threads=1' % (vcpus, vcpus),
                 '-uuid', str(uuid.uuid4()), '-display', 'none', '-no-user-config', '-nodefaults',
                 '-chardev', 'socket,id=charmonitor,fd=%d,server=on,wait=off' % listener.fileno(),
                 '-mon', 'chardev=charmonitor,id=monitor,mode=control', '-rtc', 'base=utc', '-no-shutdown',
                 '-boot', 'strict=on']
        if kernel:
            argv += ['-kernel', kernel, '-append', 'console=ttyS0']
        if policy is not None:
            sev = {'qom-type': 'sev-guest', 'id': 'lsec0', 'cbitpos': 47, 'reduced-phys-bits': 1, 'policy': policy}
            if session is not None:
                for key, data in (('dh-cert-file', session[0]), ('session-file', session[1])):
                    path = os.path.join(workdir, '%s-%s.base64' % (name, key))
                    with open(path, 'w', encoding='ascii') as stream:
                        stream.write(base64.b64encode(data).decode())
                    sev[key] = path
            if kernel_hashes:
                sev['kernel-hashes'] = True
            argv += ['-object', json.dumps(sev)]
        argv += ['-msg', 'timestamp=on']
        with open(self.stderr_path, 'wb') as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, '-m', emu.MODULE, 'run', '--state', state, '--real-qemu', QEMU, '--'] + argv,
                pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                env={'PYTHONPATH': emu.collection_root(), 'PATH': '/usr/bin:/bin'})
        listener.close()
        self.sock = self.stream = None
        self._ids = 0

    def stderr(self):
        with open(self.stderr_path, encoding='utf-8', errors='replace') as stream:
            return stream.read()

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.monitor_path)
        self.stream = self.sock.makefile('rb')
        self._ids = 0
        greeting = json.loads(self.stream.readline())
        assert greeting['QMP']['version']['qemu']['major'] == 7
        assert self.qmp('qmp_capabilities') == {'return': {}, 'id': 'test-1'}
        return self

    def qmp(self, execute, fds=(), **arguments):
        self._ids += 1
        message = {'execute': execute, 'id': 'test-%d' % self._ids}
        if arguments:
            message['arguments'] = arguments
        data = (json.dumps(message) + '\r\n').encode()
        if fds:
            self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))])
        else:
            self.sock.sendall(data)
        while True:
            line = self.stream.readline()
            if not line:
                raise EOFError('monitor closed')
            reply = json.loads(line)
            if 'event' not in reply:
                assert reply['id'] == message['id']
                return reply

    def record(self):
        mine = [rec for rec in records.load_launches(self.state) if rec['domain_name'] == self.name]
        assert len(mine) == 1
        return mine[0]

    def wait_exit(self, timeout=60):
        return self.proc.wait(timeout=timeout)

    def kill(self):
        """SIGKILL to the QEMU this test started (its pid is the one ``run`` exec'ed in)."""
        if self.sock is not None:
            self.sock.close()
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture
def guests(platform_state, tmp_path):
    started = []

    def start(name, firmware, **kwargs):
        guest = Guest(platform_state[0], str(tmp_path), name, firmware, **kwargs)
        started.append(guest)
        return guest
    yield start
    for guest in started:
        guest.kill()


def wait_gone(pid, timeout=10):
    """Whether ``pid`` has exited (gone or a zombie) within ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open('/proc/%d/status' % pid, encoding='ascii') as stream:
                if any(line.startswith('State:\tZ') for line in stream):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def unique(prefix):
    return '%s-%s' % (prefix, uuid.uuid4().hex[:8])


def validate(firmware, measurement, tik, tek, tmp_path, policy, vcpus, cpu_fms):
    """virt-qemu-sev-validate (offline) on the reported measurement: exit status and output."""
    (tmp_path / 'tik').write_bytes(tik)
    (tmp_path / 'tek').write_bytes(tek)
    args = ['/usr/bin/python3', VALIDATE, '--measurement', measurement, '--api-major', '1', '--api-minor', '55',
            '--build-id', '21', '--policy', str(policy), '--firmware', firmware,
            '--tik', str(tmp_path / 'tik'), '--tek', str(tmp_path / 'tek')]
    if policy & lm.POLICY_ES:
        args += ['--num-cpus', str(vcpus), '--cpu-family', str(cpu_fms[0]), '--cpu-model', str(cpu_fms[1]),
                 '--cpu-stepping', str(cpu_fms[2])]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout + done.stderr


# ---- the whole launch ----------------------------------------------------------------------

@pytest.mark.parametrize('policy, vcpus, cpu, fms', [
    (0x3, 1, 'EPYC', (23, 1, 2)),
    (0x7, 2, 'EPYC-Milan', (25, 1, 1)),
])
def test_launch_measure_inject_cont(platform_state, patched_firmware, guests, tmp_path, policy, vcpus, cpu, fms):
    state, platform = platform_state
    godh, session, tek, tik = owner.make_session(platform.pdh_cert, policy)
    name = unique('e2e')
    guest = guests(name, patched_firmware, policy=policy, session=(godh, session), vcpus=vcpus, cpu=cpu).connect()
    record = guest.record()
    assert record['qemu_pid'] == guest.proc.pid and record['launch_start']['ok'] is True

    info = guest.qmp('query-sev')['return']
    assert info == {'enabled': True, 'api-major': 1, 'api-minor': 55, 'build-id': 21, 'policy': policy,
                    'state': 'launch-secret', 'handle': record['seq']}
    assert guest.qmp('query-status')['return']['status'] == 'prelaunch'

    blob_b64 = guest.qmp('query-sev-launch-measure')['return']['data']
    blob = base64.b64decode(blob_b64)
    assert len(blob) == 48
    # The digest, independently: the firmware file, then (SEV-ES) the VMSAs virt-qemu-sev-validate builds.
    status, output = validate(patched_firmware, blob_b64, tik, tek, tmp_path, policy, vcpus, fms)
    assert status == 0, output
    if not policy & lm.POLICY_ES:
        with open(patched_firmware, 'rb') as stream:
            digest = hashlib.sha256(stream.read()).digest()
        assert owner.expected_measure(tik, (1, 55), 21, policy, digest, blob[32:]) == blob[:32]
    # The wrong TIK does not validate (the check above can fail).
    assert validate(patched_firmware, blob_b64, os.urandom(16), tek, tmp_path, policy, vcpus, fms)[0] == 1
    record = guest.record()
    assert record['measurement'] == blob_b64 == record['measurement_reported']
    assert (record['sev_es'], record['num_cpus'], record['cpu_model']) == (bool(policy & 4), vcpus, cpu)
    assert record['cpu_signature'] == list(fms) and record['mnonce'] == blob[32:].hex()

    secret = b'emulated luks key\n'
    table = owner.secret_table([(owner.LUKS_KEY_GUID, secret)])
    header, payload = owner.secret_packet(tek, tik, blob[:32], table)
    assert guest.qmp('sev-inject-launch-secret', **{'packet-header': header, 'secret': payload}) == {
        'return': {}, 'id': 'test-%d' % guest._ids}  # pylint: disable=protected-access
    dump = str(tmp_path / 'secret.bin')
    assert guest.qmp('pmemsave', val=SECRET_GPA, size=len(table), filename=dump)['return'] == {}
    with open(dump, 'rb') as stream:
        assert stream.read() == table
    mem_file = os.path.join(state, 'mem', 'launch-%d.ram' % record['seq'])
    assert stat.S_IMODE(os.stat(mem_file).st_mode) == 0o600 and os.path.getsize(mem_file) == 128 << 20
    # libvirt reconnecting (e.g. after a libvirtd restart) finds the same launch.
    guest.sock.close()
    guest.connect()
    assert guest.qmp('query-sev-launch-measure')['return']['data'] == blob_b64
    injection = guest.record()['injections'][-1]
    assert injection == {'accepted': True, 'error': None, 'gpa': SECRET_GPA, 'length': len(table),
                         'secret_sha256': hashlib.sha256(table).hexdigest(), 'after_finish': False}

    assert guest.qmp('cont') == {'return': {}, 'id': 'test-%d' % guest._ids}  # pylint: disable=protected-access
    assert guest.qmp('query-sev')['return']['state'] == 'running'
    assert guest.qmp('query-status')['return']['status'] == 'running'
    assert guest.qmp('query-sev-launch-measure')['return']['data'] == blob_b64
    refused = guest.qmp('sev-inject-launch-secret', **{'packet-header': header, 'secret': payload})
    assert refused['error'] == {'class': 'GenericError', 'desc': 'SEV: Not in correct state. (LSECRET) 3'}
    record = guest.record()
    assert record['finished'] is True
    assert record['injections'][-1]['accepted'] is False and record['injections'][-1]['after_finish'] is True
    proxy_pid = record['proxy_pid']
    guest.kill()
    assert wait_gone(proxy_pid), 'the QMP proxy outlived its QEMU'
    assert not os.path.exists(mem_file)


def test_inject_with_explicit_gpa_and_a_bad_mac(platform_state, patched_firmware, guests, tmp_path):
    state, platform = platform_state
    godh, session, tek, tik = owner.make_session(platform.pdh_cert, 0x1)
    guest = guests(unique('gpa'), patched_firmware, policy=0x1, session=(godh, session)).connect()
    blob = base64.b64decode(guest.qmp('query-sev-launch-measure')['return']['data'])
    table = owner.secret_table([(uuid.uuid4(), b'x' * 40)])
    header, payload = owner.secret_packet(tek, os.urandom(16), blob[:32], table)
    bad = guest.qmp('sev-inject-launch-secret', gpa=0x200000, **{'packet-header': header, 'secret': payload})
    assert bad['error']['desc'] == "SEV: failed to inject secret ret=-5 fw_error=11 'Bad measurement'"
    header, payload = owner.secret_packet(tek, tik, blob[:32], table)
    outside = guest.qmp('sev-inject-launch-secret', gpa=0x7ffff000, **{'packet-header': header, 'secret': payload})
    assert outside['error']['desc'].startswith('SEV: Failed to calculate guest address')
    assert guest.qmp('sev-inject-launch-secret', gpa=0x200000,
                     **{'packet-header': header, 'secret': payload})['return'] == {}
    dump = str(tmp_path / 'at-gpa.bin')
    guest.qmp('pmemsave', val=0x200000, size=len(table), filename=dump)
    with open(dump, 'rb') as stream:
        assert stream.read() == table
    assert [entry['accepted'] for entry in guest.record()['injections']] == [False, False, True]


# ---- refusals at LAUNCH_START and before ---------------------------------------------------------

def test_session_for_another_pdh_fails_the_launch_like_qemu(platform_state, patched_firmware, guests):
    other = fw.EmulatedPlatform()
    godh, session, dummy, dummy = owner.make_session(other.pdh_cert, 0x3)
    guest = guests(unique('otherpdh'), patched_firmware, policy=0x3, session=(godh, session))
    assert guest.wait_exit() == 1
    assert "qemu-system-x86_64: sev_launch_start: LAUNCH_START ret=1 fw_error=11 'Bad measurement'" in guest.stderr()
    assert 'EMULATED' in guest.stderr()
    record = guest.record()
    assert record['launch_start']['ok'] is False and record['launch_start']['fw_error'] == 11
    assert record['measurement'] is None


def test_session_for_another_policy_fails_the_launch(platform_state, patched_firmware, guests):
    godh, session, dummy, dummy = owner.make_session(platform_state[1].pdh_cert, 0x1)
    guest = guests(unique('policy'), patched_firmware, policy=0x3, session=(godh, session))
    assert guest.wait_exit() == 1
    assert "LAUNCH_START ret=1 fw_error=11 'Bad measurement'" in guest.stderr()


def test_kernel_hashes_refused_with_debian_firmware(platform_state, guests, tmp_path):
    kernel = tmp_path / 'bzImage'
    kernel.write_bytes(os.urandom(4096))
    guest = guests(unique('khash'), OVMF_CODE, policy=0x1, kernel_hashes=True, kernel=str(kernel))
    assert guest.wait_exit() == 1
    assert 'SEV: guest firmware hashes table area is invalid (base=0x0 size=0x0)' in guest.stderr()


# ---- faults ----------------------------------------------------------------------------------------

def test_fault_measure_fails(platform_state, patched_firmware, guests):
    state, platform = platform_state
    godh, session, dummy, dummy = owner.make_session(platform.pdh_cert, 0x1)
    name = unique('fmeasure')
    guest = guests(name, patched_firmware, policy=0x1, session=(godh, session)).connect()
    records.set_faults(state, {name: {'measure_fails': True}})
    try:
        reply = guest.qmp('query-sev-launch-measure')
    finally:
        records.clear_faults(state)
    assert reply['error'] == {'class': 'GenericError', 'desc': 'SEV launch measurement is not available'}
    assert guest.record()['faults_applied'] == ['measure_fails']
    assert 'data' in guest.qmp('query-sev-launch-measure')['return']


def test_fault_inject_refused(platform_state, patched_firmware, guests):
    state, platform = platform_state
    godh, session, tek, tik = owner.make_session(platform.pdh_cert, 0x1)
    name = unique('finject')
    guest = guests(name, patched_firmware, policy=0x1, session=(godh, session)).connect()
    blob = base64.b64decode(guest.qmp('query-sev-launch-measure')['return']['data'])
    header, payload = owner.secret_packet(tek, tik, blob[:32], owner.secret_table([(uuid.uuid4(), b'k')]))
    records.set_faults(state, {'*': {'inject_refused': True}})
    try:
        reply = guest.qmp('sev-inject-launch-secret', **{'packet-header': header, 'secret': payload})
    finally:
        records.clear_faults(state)
    assert reply['error']['desc'] == "SEV: failed to inject secret ret=-5 fw_error=11 'Bad measurement'"
    record = guest.record()
    assert record['faults_applied'] == ['inject_refused'] and record['injections'][0]['accepted'] is False


def test_fault_crash_after_inject(platform_state, patched_firmware, guests):
    state, platform = platform_state
    godh, session, tek, tik = owner.make_session(platform.pdh_cert, 0x1)
    name = unique('fcrash')
    guest = guests(name, patched_firmware, policy=0x1, session=(godh, session)).connect()
    blob = base64.b64decode(guest.qmp('query-sev-launch-measure')['return']['data'])
    header, payload = owner.secret_packet(tek, tik, blob[:32], owner.secret_table([(uuid.uuid4(), b'k')]))
    records.set_faults(state, {name: {'crash_after_inject': True}})
    try:
        assert guest.qmp('sev-inject-launch-secret', **{'packet-header': header, 'secret': payload})['return'] == {}
        assert guest.wait_exit(30) == -signal.SIGKILL
    finally:
        records.clear_faults(state)
    record = guest.record()
    assert record['faults_applied'] == ['crash_after_inject'] and record['injections'][0]['accepted'] is True
    assert record['finished'] is False


def test_fault_replay_measurement(platform_state, patched_firmware, guests):
    state, platform = platform_state
    name = unique('freplay')
    godh, session, dummy, dummy = owner.make_session(platform.pdh_cert, 0x1)
    first = guests(name, patched_firmware, policy=0x1, session=(godh, session)).connect()
    earlier = first.qmp('query-sev-launch-measure')['return']['data']
    first.kill()
    godh, session, tek, tik = owner.make_session(platform.pdh_cert, 0x1)
    second = guests(name + '-2', patched_firmware, policy=0x1, session=(godh, session)).connect()
    records.set_faults(state, {name + '-2': {'replay_measurement': True}})
    try:
        reported = second.qmp('query-sev-launch-measure')['return']['data']
    finally:
        records.clear_faults(state)
    record = second.record()
    assert reported == earlier == record['measurement_reported'] != record['measurement']
    assert record['faults_applied'] == ['replay_measurement']
    # The replayed value does not validate with this launch's TIK, and a secret bound to it is refused.
    with open(patched_firmware, 'rb') as stream:
        digest = hashlib.sha256(stream.read()).digest()
    blob = base64.b64decode(reported)
    assert owner.expected_measure(tik, (1, 55), 21, 0x1, digest, blob[32:]) != blob[:32]
    header, payload = owner.secret_packet(tek, tik, blob[:32], owner.secret_table([(uuid.uuid4(), b'k')]))
    refused = second.qmp('sev-inject-launch-secret', **{'packet-header': header, 'secret': payload})
    assert refused['error']['desc'] == "SEV: failed to inject secret ret=-5 fw_error=11 'Bad measurement'"


# ---- pass-through -----------------------------------------------------------------------------------

def test_guest_without_sev_passes_through(platform_state, patched_firmware, guests):
    state = platform_state[0]
    before = len(records.load_launches(state))
    guest = guests(unique('nosev'), patched_firmware).connect()
    assert guest.qmp('query-sev')['return']['enabled'] is False
    assert guest.qmp('query-sev-launch-measure')['error']['desc'] == 'SEV launch measurement is not available'
    capabilities = guest.qmp('query-sev-capabilities')['return']
    assert capabilities == emu.load_node_sev(state) and capabilities['cbitpos'] == 47
    # A file descriptor passed with SCM_RIGHTS reaches the real QEMU: it can be closed there by name.
    read_end, write_end = os.pipe()
    try:
        assert guest.qmp('getfd', fds=(read_end,), fdname='probe-fd')['return'] == {}
    finally:
        os.close(read_end)
        os.close(write_end)
    assert guest.qmp('closefd', fdname='probe-fd')['return'] == {}
    assert 'not found' in guest.qmp('closefd', fdname='probe-fd')['error']['desc']
    assert len(records.load_launches(state)) == before


def test_capability_probe_as_libvirt_runs_it(platform_state, tmp_path):
    """The launcher script, an empty environment, -daemonize and a QMP unix path, as libvirt 9.0 probes."""
    state = platform_state[0]
    launcher = emu.write_launcher(state, QEMU, str(tmp_path / 'qemu-system-x86_64'))
    qmp_path, pidfile = str(tmp_path / 'qmp.monitor'), str(tmp_path / 'qmp.pid')
    done = subprocess.run([launcher, '-S', '-no-user-config', '-nodefaults', '-nographic',
                           '-machine', 'none,accel=kvm:tcg', '-qmp', 'unix:%s,server=on,wait=off' % qmp_path,
                           '-pidfile', pidfile, '-daemonize'], env={}, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    with open(pidfile, encoding='ascii') as stream:
        daemon_pid = int(stream.read())
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(qmp_path)
        stream = sock.makefile('rb')
        assert 'QMP' in json.loads(stream.readline())
        for command in ('qmp_capabilities', 'query-sev-capabilities'):
            sock.sendall((json.dumps({'execute': command}) + '\r\n').encode())
            reply = json.loads(stream.readline())
        assert reply == {'return': emu.load_node_sev(state)}
        sock.sendall(b'{"execute": "qom-list-types", "arguments": {"implements": "confidential-guest-support"}}\r\n')
        assert 'sev-guest' in [entry['name'] for entry in json.loads(stream.readline())['return']]
        sock.close()
    finally:
        os.kill(daemon_pid, signal.SIGKILL)
    assert wait_gone(daemon_pid)


def test_sev_es_without_cpu_or_prelaunch(platform_state, patched_firmware, guests, tmp_path):
    """No -cpu: QEMU's default qemu64 gives the VMSA's RDX; no -S: LAUNCH_FINISH at once, as QEMU does."""
    state, platform = platform_state
    godh, session, tek, tik = owner.make_session(platform.pdh_cert, 0x5)
    guest = guests(unique('nocpu'), patched_firmware, policy=0x5, session=(godh, session), cpu=None,
                   paused=False).connect()
    assert guest.qmp('query-sev')['return']['state'] == 'running'
    blob_b64 = guest.qmp('query-sev-launch-measure')['return']['data']
    status, output = validate(patched_firmware, blob_b64, tik, tek, tmp_path, 0x5, 1, (15, 107, 1))
    assert status == 0, output
    assert validate(patched_firmware, blob_b64, tik, tek, tmp_path, 0x5, 1, (23, 1, 2))[0] == 1
    record = guest.record()
    assert (record['cpu_model'], record['cpu_signature'], record['finished']) == ('qemu64', [15, 107, 1], True)
    header, payload = owner.secret_packet(tek, tik, base64.b64decode(blob_b64)[:32],
                                          owner.secret_table([(uuid.uuid4(), b'k')]))
    refused = guest.qmp('sev-inject-launch-secret', **{'packet-header': header, 'secret': payload})
    assert refused['error']['desc'] == 'SEV: Not in correct state. (LSECRET) 3'

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The harness works: real libvirtd instances, reachable as promised, cleaned up.

Also pins down what libvirt 9.0 answers on the paths the libvirt modules will
meet (states and reasons, error codes): tests/integration/README.md has the
table, and every row of it is asserted here.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import libvirt
import libvirt_qemu
import pytest

from harness import e2e
from harness.domain import SEV_LAUNCH_SECURITY_XML, error_domain_name, error_name, minimal_domain_xml, state_name
from harness.libvirtd import (REGISTRY_DIR, Libvirtd, RemoteLibvirtd, cleanup_stale, free_tcp_port,
                              processes_by_rundir)

SHUTOFF_UNKNOWN = (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_UNKNOWN)
SHUTOFF_DESTROYED = (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED)
PAUSED_USER = (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER)
RUNNING_BOOTED = (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED)
RUNNING_UNPAUSED = (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_UNPAUSED)

TRANSPORTS = [('local', 'unix'), ('local', 'tcp'), ('remote', 'tcp'), ('remote', 'ssh'), ('remote', 'libssh')]


def daemon_of(request, kind):
    return request.getfixturevalue('libvirtd_' + kind)


def expect_error(record, label, func, code, from_domain, contains):
    """Call func, which must raise libvirtError(code, from_domain, '...contains...')."""
    t0 = time.monotonic()
    with pytest.raises(libvirt.libvirtError) as info:
        func()
    elapsed = time.monotonic() - t0
    err = info.value
    record(label, '%s (%d), %s (%d): %r [%.2fs]' % (
        error_name(err.get_error_code()), err.get_error_code(),
        error_domain_name(err.get_error_domain()), err.get_error_domain(), err.get_error_message(), elapsed))
    assert (err.get_error_code(), err.get_error_domain()) == (code, from_domain), str(err)
    assert contains in err.get_error_message()
    return err, elapsed


def qemu_pid(daemon, name):
    """QEMU's pid from libvirt's pid file in the private /run/libvirt."""
    with open(daemon.path('run', 'libvirt', 'qemu', name + '.pid'), encoding='ascii') as f:
        return int(f.read().strip())


def pid_alive(pid):
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii', errors='replace') as f:
            return f.read().rpartition(')')[2].split()[0] not in ('Z', 'X')
    except OSError:
        return False


def wait_gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pid_alive(pid)


def known_hosts_state():
    path = os.path.expanduser('~/.ssh/known_hosts')
    try:
        with open(path, 'rb') as f:
            return f.read()
    except FileNotFoundError:
        return None


# ------------------------------------------------------------ reachability ----

def test_unix_socket_reaches_the_private_daemon(libvirtd_local, connect, make_domain):
    d = libvirtd_local
    assert d.socket_path.startswith(d.rundir + '/')
    conn = connect(d.uri_unix)
    assert conn.getType() == 'QEMU'
    assert conn.getLibVersion() >= 9000000
    dom = make_domain(conn).define()
    # its /etc/libvirt is the run directory's, not the machine's
    assert os.path.isfile(d.path('etc', 'qemu', dom.name + '.xml'))
    assert not os.path.exists(os.path.join('/etc/libvirt/qemu', dom.name + '.xml'))


def test_tcp_reaches_the_same_daemon(libvirtd_local, connect, make_domain):
    d = libvirtd_local
    assert d.uri_tcp == 'qemu+tcp://127.0.0.1:%d/system' % d.tcp_port
    dom = make_domain(connect(d.uri_unix)).define()
    over_tcp = connect(d.uri_tcp)
    assert over_tcp.lookupByName(dom.name).UUIDString() == dom.dom.UUIDString()
    assert over_tcp.getHostname() == connect(d.uri_unix).getHostname()


def test_local_daemon_reports_this_hosts_name(libvirtd_local, connect):
    name = connect(libvirtd_local.uri_tcp).getHostname()
    assert name.split('.')[0] == socket.gethostname().split('.')[0]


def test_remote_host_is_another_host(libvirtd_remote, libvirtd_local, connect, record):
    r = libvirtd_remote
    remote_name = connect(r.uri_tcp).getHostname()
    record('remote getHostname()', remote_name)
    assert remote_name == 'sev-hv1'
    assert remote_name != socket.gethostname()
    assert remote_name != connect(libvirtd_local.uri_tcp).getHostname()
    # the same name over ssh and inside the namespaces
    assert connect(r.uri_ssh).getHostname() == remote_name
    assert r.ssh('hostname').stdout.strip() == remote_name
    # other network and UTS namespaces than this process
    for ns in ('net', 'uts'):
        assert os.readlink('/proc/%d/ns/%s' % (r.proc.pid, ns)) != os.readlink('/proc/self/ns/' + ns)
    # the address is routed into our veth, never out of the machine
    route = subprocess.run(['ip', '-j', 'route', 'get', r.addr], capture_output=True, text=True, check=True)
    assert json.loads(route.stdout)[0]['dev'] == r.veth


def test_remote_hostname_is_gethostname_of_the_namespace(libvirtd_remote, connect):
    """libvirt asks gethostname() on every call: renaming the UTS namespace shows."""
    r = libvirtd_remote
    conn = connect(r.uri_tcp)
    # a dotted name: libvirt returns it without a resolver lookup
    subprocess.run(r.nsenter_argv('hostname', 'sev-hv1.renamed.test'), check=True)
    try:
        assert conn.getHostname() == 'sev-hv1.renamed.test'
        assert socket.gethostname() != 'sev-hv1.renamed.test'
    finally:
        subprocess.run(r.nsenter_argv('hostname', r.hostname), check=True)
    assert conn.getHostname() == r.hostname


def test_remote_and_local_daemons_are_separate(libvirtd_remote, libvirtd_local, connect, make_domain):
    local, remote = connect(libvirtd_local.uri_tcp), connect(libvirtd_remote.uri_tcp)
    on_remote = make_domain(remote).define()
    on_local = make_domain(local).define()
    assert on_remote.name not in local.listDefinedDomains()
    assert on_local.name not in remote.listDefinedDomains()
    assert os.path.isfile(libvirtd_remote.path('etc', 'qemu', on_remote.name + '.xml'))


def test_ssh_uri_does_not_touch_users_known_hosts(libvirtd_remote, connect):
    before = known_hosts_state()
    for uri in (libvirtd_remote.uri_ssh, libvirtd_remote.uri_ssh + '&no_verify=1'):
        assert connect(uri).getHostname() == libvirtd_remote.hostname
    assert known_hosts_state() == before


def test_ansible_runs_modules_on_the_remote_host(libvirtd_remote):
    """The inventory variables reach sev-hv1, whose qemu:///system is the private daemon."""
    r = libvirtd_remote
    os.makedirs(r.path('ansible'), exist_ok=True)
    probe = r.path('ansible', 'probe.py')
    with open(probe, 'w', encoding='utf-8') as f:
        f.write('import libvirt, os, socket\n'
                'conn = libvirt.open("qemu:///system")\n'
                'print("PROBE", socket.gethostname(), conn.getHostname(), os.path.exists("/run/libvirt/libvirt-sock"))\n')
    inventory = r.write_inventory(r.path('ansible', 'inventory.yml'))
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_HOST_KEY_CHECKING='True',
               ANSIBLE_LOCAL_TEMP=r.path('ansible', 'tmp'))
    ansible = os.path.join(os.path.dirname(sys.executable), 'ansible')
    res = subprocess.run([ansible, r.hostname, '-i', inventory, '-o', '-m', 'ansible.builtin.command',
                          '-a', '%s %s' % (r.python_interpreter, probe)],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'PROBE sev-hv1 sev-hv1 True' in res.stdout, res.stdout


def test_controller_killed_leaves_only_the_module_it_sent(libvirtd_remote, tmp_path):
    """e2e.interrupt_role(SIGKILL) kills ansible, its workers (which lead sessions of their own) and ends its
    ssh ControlMaster; e2e.host_module_pids (test_faults and test_fleet wait on it) sees the module the killed
    controller had sent, still running on the host, until it ends; nothing when no module runs."""
    r = libvirtd_remote
    assert e2e.host_module_pids(r) == set()
    work = str(tmp_path)
    for sub in ('home', 'tmp', 'remote-tmp'):
        os.makedirs(os.path.join(work, sub))
    control_dir, host_vars = e2e.own_control_masters([r])
    inventory = e2e.inventory(os.path.join(work, 'inventory.json'), [r], host_vars)
    ansible = os.path.join(os.path.dirname(sys.executable), 'ansible')
    # pylint: disable-next=consider-using-with
    proc = subprocess.Popen([ansible, r.hostname, '-i', inventory, '-m', 'ansible.builtin.command', '-a', 'sleep 6'],
                            env=e2e.ansible_env(work), cwd=work, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    proc.control_dir = control_dir
    try:
        seen = e2e.wait_until(lambda: e2e.host_module_pids(r), 60, 0.1)
        assert len(seen) == 2, seen      # the /bin/sh -c wrapper and the module's python
        workers = e2e.children_of(proc.pid)
        (socket_name,) = os.listdir(control_dir)
        check = subprocess.run(['ssh', '-S', os.path.join(control_dir, socket_name), '-O', 'check', 'x'],
                               capture_output=True, text=True, timeout=30, check=False)
        master = int(re.search(r'Master running \(pid=(\d+)\)', check.stderr).group(1))
        assert workers and all(os.getpgid(pid) == pid for pid in workers), workers   # setsid
        e2e.interrupt_role((proc,), signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert e2e.wait_until(lambda: not [pid for pid in workers if e2e.alive(pid)], 2, 0.05), workers
        # the run's ssh ControlMaster ended too
        assert not os.path.exists(control_dir) and e2e.wait_until(lambda: not e2e.alive(master), 5, 0.05)
        assert e2e.host_module_pids(r) == seen       # the module it had sent goes on
        assert e2e.wait_until(lambda: not e2e.host_module_pids(r), 60, 0.1)
    finally:
        e2e.kill_role_group((proc,))


# --------------------------------------------------------------- lifecycle ----

@pytest.mark.parametrize('kind,transport', TRANSPORTS, ids=['%s-%s' % t for t in TRANSPORTS])
def test_lifecycle(request, kind, transport, connect, make_domain, record):
    d = daemon_of(request, kind)
    conn = connect(d.uris[transport])
    dom = make_domain(conn)
    t0 = time.monotonic()
    dom.define()
    assert dom.state() == SHUTOFF_UNKNOWN, state_name(dom.state())

    dom.start(paused=True)
    assert dom.state() == PAUSED_USER, state_name(dom.state())
    pid = qemu_pid(d, dom.name)
    assert pid_alive(pid)
    # QEMU runs in the instance's namespaces: stop() will find it
    assert pid in d.pids()

    dom.resume()
    assert dom.state() == RUNNING_UNPAUSED, state_name(dom.state())
    dom.suspend()
    assert dom.state() == PAUSED_USER, state_name(dom.state())
    dom.resume()
    assert dom.state() == RUNNING_UNPAUSED, state_name(dom.state())

    dom.destroy()
    assert dom.state() == SHUTOFF_DESTROYED, state_name(dom.state())
    assert wait_gone(pid), 'QEMU %d still running after destroy' % pid

    dom.undefine()
    with pytest.raises(libvirt.libvirtError) as info:
        conn.lookupByName(dom.name)
    assert info.value.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN
    record('lifecycle define..undefine over %s-%s' % (kind, transport), '%.2fs' % (time.monotonic() - t0))


def test_states_paused_at_start_versus_paused_by_user(libvirtd_local, connect, make_domain, record):
    """Both are PAUSED/PAUSED_USER in libvirt 9.0; only QEMU's run state differs."""
    dom = make_domain(connect(libvirtd_local.uri_tcp)).define()

    def qmp_status():
        reply = libvirt_qemu.qemuMonitorCommand(dom.dom, '{"execute":"query-status"}', 0)
        return json.loads(reply)['return']['status']

    dom.start(paused=True)
    at_start = dom.state()
    record('state after createWithFlags(VIR_DOMAIN_START_PAUSED)', '%s %s, QMP status %r'
           % (state_name(at_start), at_start, qmp_status()))
    assert at_start == PAUSED_USER
    assert qmp_status() == 'prelaunch'
    dom.resume()
    record('state after resume()', '%s %s' % (state_name(dom.state()), dom.state()))
    dom.suspend()
    by_user = dom.state()
    record('state after suspend()', '%s %s, QMP status %r' % (state_name(by_user), by_user, qmp_status()))
    assert by_user == PAUSED_USER
    assert qmp_status() == 'paused'
    dom.destroy()

    dom.start()
    record('state after create() without flags', '%s %s' % (state_name(dom.state()), dom.state()))
    assert dom.state() == RUNNING_BOOTED
    assert qmp_status() == 'running'
    dom.destroy()
    record('state after destroy()', '%s %s' % (state_name(dom.state()), dom.state()))


def test_wrong_state_errors(libvirtd_local, connect, make_domain, record):
    dom = make_domain(connect(libvirtd_local.uri_tcp)).define()
    dom.start(paused=True)
    dom.suspend()  # suspending a paused domain is not an error
    assert dom.state() == PAUSED_USER
    record('suspend() a paused domain', 'no error, state stays %s' % state_name(dom.state()))
    dom.resume()
    invalid = libvirt.VIR_ERR_OPERATION_INVALID
    expect_error(record, 'resume() a running domain', dom.resume, invalid, libvirt.VIR_FROM_QEMU,
                 'domain is already running')
    expect_error(record, 'create() a running domain', dom.dom.create, invalid, libvirt.VIR_FROM_QEMU,
                 'domain is already running')
    dom.destroy()
    for label, call in (('destroy() a shut-off domain', dom.dom.destroy),
                        ('suspend() a shut-off domain', dom.dom.suspend),
                        ('resume() a shut-off domain', dom.dom.resume)):
        expect_error(record, label, call, invalid, libvirt.VIR_FROM_DOMAIN, 'domain is not running')
    dom.undefine()
    expect_error(record, 'state() on the handle of an undefined domain', dom.dom.state,
                 libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_FROM_QEMU, 'no domain with matching uuid')


# ------------------------------------------------------------------ errors ----

@pytest.mark.parametrize('kind,transport', [('local', 'tcp'), ('remote', 'ssh')])
def test_unknown_domain(request, kind, transport, connect, record):
    conn = connect(daemon_of(request, kind).uris[transport])
    expect_error(record, 'lookupByName(unknown) over %s-%s' % (kind, transport),
                 lambda: conn.lookupByName('sevh-no-such-domain'),
                 libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_FROM_QEMU, "no domain with matching name 'sevh-no-such-domain'")
    expect_error(record, 'lookupByUUIDString(unknown)',
                 lambda: conn.lookupByUUIDString('c7a5fdbd-edaf-9455-926a-d65c16db1809'),
                 libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_FROM_QEMU, 'no domain with matching uuid')


def test_unreachable_uris_fail_fast(libvirtd_remote, record):
    r = libvirtd_remote
    port = free_tcp_port()
    elapsed = expect_error(record, 'open qemu+tcp://127.0.0.1:<closed port>/system',
                           lambda: libvirt.open('qemu+tcp://127.0.0.1:%d/system' % port),
                           libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, 'Connection refused')[1]
    assert elapsed < 5
    elapsed = expect_error(record, 'open qemu+unix:///system?socket=<missing>',
                           lambda: libvirt.open('qemu+unix:///system?socket=' + r.path('no-such-sock')),
                           libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, 'No such file or directory')[1]
    assert elapsed < 5
    # nothing listens on port 2 in the remote namespace
    closed_ssh = r.uri_ssh.replace(':%d/' % r.ssh_port, ':2/')
    elapsed = expect_error(record, 'open qemu+ssh://root@<remote>:<closed port>/system',
                           lambda: libvirt.open(closed_ssh),
                           libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, 'Connection refused')[1]
    assert elapsed < 10


def test_ssh_host_key_is_checked(libvirtd_remote, record):
    """Without the harness's known_hosts (command= wrapper) the host key is unknown."""
    r = libvirtd_remote
    before = known_hosts_state()
    expect_error(record, 'open qemu+ssh with keyfile only (host key not in ~/.ssh/known_hosts)',
                 lambda: libvirt.open('qemu+ssh://root@%s/system?keyfile=%s' % (r.addr, r.ssh_key)),
                 libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, 'Host key verification failed')
    expect_error(record, 'open qemu+libssh with an empty known_hosts',
                 lambda: libvirt.open('qemu+libssh://root@%s/system?keyfile=%s&known_hosts=/dev/null&sshauth=privkey'
                                      % (r.addr, r.ssh_key)),
                 libvirt.VIR_ERR_LIBSSH, libvirt.VIR_FROM_LIBSSH, "Can't verify the session host key")
    assert known_hosts_state() == before


@pytest.mark.parametrize('kind', ['local', 'remote'])
def test_capabilities_have_host_cpu_signature(request, kind, connect, record):
    caps = ET.fromstring(connect(daemon_of(request, kind).uri_tcp).getCapabilities())
    sig = caps.find('./host/cpu/signature')
    assert sig is not None, 'no <host><cpu><signature> in capabilities'
    values = {k: int(sig.get(k)) for k in ('family', 'model', 'stepping')}
    record('%s host cpu' % kind, '%s %s' % (caps.findtext('./host/cpu/vendor'), values))
    assert values['family'] > 0
    assert caps.findtext('./host/cpu/arch') == 'x86_64'


@pytest.mark.parametrize('kind,transport', [('local', 'tcp'), ('remote', 'ssh')])
def test_sev_info_unsupported(request, kind, transport, connect, record):
    conn = connect(daemon_of(request, kind).uris[transport])
    expect_error(record, 'getSEVInfo() over %s-%s' % (kind, transport), conn.getSEVInfo,
                 libvirt.VIR_ERR_OPERATION_UNSUPPORTED, libvirt.VIR_FROM_QEMU, 'QEMU does not support SEV guest')
    domcaps = ET.fromstring(conn.getDomainCapabilities(None, 'x86_64', None, 'qemu'))
    sev = domcaps.find('./features/sev')
    record('getDomainCapabilities() <sev>', ET.tostring(sev, encoding='unicode').strip())
    assert sev is not None and sev.get('supported') == 'no'


def test_sev_domain_is_refused(libvirtd_local, connect, record):
    conn = connect(libvirtd_local.uri_tcp)
    xml = minimal_domain_xml('sevh-sev-guest', extra_xml=SEV_LAUNCH_SECURITY_XML)
    message = 'SEV launch security is not supported with this QEMU binary'
    expect_error(record, 'defineXML(<launchSecurity type="sev">)', lambda: conn.defineXML(xml),
                 libvirt.VIR_ERR_CONFIG_UNSUPPORTED, libvirt.VIR_FROM_QEMU, message)
    expect_error(record, 'createXML(<launchSecurity type="sev">, START_PAUSED)',
                 lambda: conn.createXML(xml, libvirt.VIR_DOMAIN_START_PAUSED),
                 libvirt.VIR_ERR_CONFIG_UNSUPPORTED, libvirt.VIR_FROM_QEMU, message)
    assert 'sevh-sev-guest' not in conn.listDefinedDomains()


def test_launch_security_calls_on_a_plain_domain(libvirtd_local, connect, make_domain, record):
    dom = make_domain(connect(libvirtd_local.uri_tcp)).define()
    info = dom.dom.launchSecurityInfo()
    record('launchSecurityInfo() of a shut-off non-SEV domain', repr(info))
    assert info == {}
    dom.start(paused=True)
    info = dom.dom.launchSecurityInfo()
    record('launchSecurityInfo() of a paused non-SEV domain', repr(info))
    assert info == {}
    params = {libvirt.VIR_DOMAIN_LAUNCH_SECURITY_SEV_SECRET_HEADER: 'AAAA',
              libvirt.VIR_DOMAIN_LAUNCH_SECURITY_SEV_SECRET: 'AAAA'}
    expect_error(record, 'setLaunchSecurityState() on a paused non-SEV domain',
                 lambda: dom.dom.setLaunchSecurityState(params, 0),
                 libvirt.VIR_ERR_OPERATION_UNSUPPORTED, libvirt.VIR_FROM_QEMU,
                 'setting a launch secret is only supported in SEV-enabled domains')


# ---------------------------------------------------------------- clean-up ----

def test_stop_kills_qemu_and_removes_everything():
    with Libvirtd(name='stoptest') as d:
        rundir, name = d.rundir, os.path.basename(d.rundir)
        conn = d.connect(d.uri_tcp)
        conn.defineXML(minimal_domain_xml('sevh-stop')).createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        qemu = qemu_pid(d, 'sevh-stop')
        pids = d.pids()
        assert qemu in pids and d.proc.pid in pids
        conn.close()
    assert not any(pid_alive(p) for p in pids)
    assert not os.path.exists(rundir)
    assert name not in processes_by_rundir()
    with open('/proc/self/mountinfo', encoding='utf-8') as f:
        assert name not in f.read()
    d.stop()  # idempotent


def test_leftovers_of_a_killed_run_are_swept():
    """A run killed without stop(): the next cleanup_stale() removes all of it, by its record."""
    r = RemoteLibvirtd(name='crash', hostname='sev-crash')
    r.start()
    conn = r.connect(r.uri_tcp)
    conn.defineXML(minimal_domain_xml('sevh-crash')).createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
    conn.close()
    rundir, veth, pids, record_path = r.rundir, r.veth, r.pids(), r.record_path
    assert qemu_pid(r, 'sevh-crash') in pids and len(pids) >= 3  # libvirtd, sshd, QEMU
    with open(record_path, encoding='utf-8') as f:
        rec = json.load(f)
    # the record names what cleanup may touch, taken while it started
    assert rec['rundir'] == rundir and rec['pid'] == r.proc.pid and rec['mntns'] == r.mntns
    assert rec['veth'] == veth and rec['veth_ifindex'] == int(open('/sys/class/net/%s/ifindex' % veth).read())
    # simulate the death of the owner: its locks vanish, nothing is stopped
    for lock in r._locks:  # pylint: disable=protected-access
        lock.close()
    atexit.unregister(r._stop_at_exit)  # pylint: disable=protected-access
    removed = cleanup_stale()
    r.proc.wait(timeout=10)
    assert not any(pid_alive(p) for p in pids), removed
    assert not os.path.exists(rundir)
    assert not os.path.exists('/sys/class/net/' + veth)
    assert not os.path.exists(record_path)
    assert any(rundir in line for line in removed)
    assert any(re.search(r'qemu', line) for line in removed), removed


def test_cleanup_ignores_what_it_did_not_record(tmp_path):
    """No record, no action: a run-dir-like directory whose mounts a live process
    uses, and a record whose run directory is not the one its name says, stay."""
    name = 'sevh-unrec-%s' % os.urandom(4).hex()
    fake = os.path.join('/tmp', name)
    os.makedirs(os.path.join(fake, 'a'))
    os.makedirs(os.path.join(fake, 'b'))
    holder = subprocess.Popen(  # pylint: disable=consider-using-with
        ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c',
         'mount --bind %s/a %s/b && echo ready && exec sleep 120' % (fake, fake)],
        stdout=subprocess.PIPE, text=True)
    bogus = os.path.join(REGISTRY_DIR, 'sevh-bogus-%s.json' % os.urandom(4).hex())
    try:
        assert holder.stdout.readline().strip() == 'ready'
        assert holder.pid in processes_by_rundir().get(name, set())  # the old pattern would have killed it
        os.makedirs(REGISTRY_DIR, exist_ok=True)
        with open(bogus, 'w', encoding='utf-8') as f:
            json.dump({'rundir': fake, 'pid': holder.pid}, f)
        removed = cleanup_stale()
        assert pid_alive(holder.pid)
        assert os.path.isdir(fake)
        assert os.path.exists(bogus)
        assert not any(name in line and 'left alone' not in line for line in removed), removed
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
        if os.path.exists(bogus):
            os.unlink(bogus)
        subprocess.run(['rm', '-rf', '--one-file-system', fake], check=True)


def test_fresh_instances_do_not_disturb_running_ones(libvirtd_local, connect):
    """cleanup_stale() at every start must leave held instances alone."""
    before = connect(libvirtd_local.uri_tcp).getHostname()
    assert not any(os.path.basename(libvirtd_local.rundir) in line for line in cleanup_stale())
    assert libvirtd_local.running
    assert connect(libvirtd_local.uri_unix).getHostname() == before

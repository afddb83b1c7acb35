# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private, real libvirtd instances for integration tests (no systemd needed).

``Libvirtd`` runs Debian's monolithic ``/usr/sbin/libvirtd`` (libvirt 9.0 on
Debian 12 ships no virtqemud binary) as root in a private mount namespace
(``unshare --mount --propagation private`` around a generated shell script).
Inside it, directories of a run directory are bind-mounted over ``/run``,
``/etc/libvirt``, ``/var/lib/libvirt``, ``/var/cache/libvirt`` and
``/var/log/libvirt``: the daemon sees a fresh, empty configuration and state,
and neither sees nor touches any other libvirtd on the machine.  It is started
with ``--listen`` (libvirt >= 5.6 only honours ``listen_tcp`` with that flag
when it is not socket-activated) and listens on

* its unix socket, reachable from outside the namespace through the run
  directory: ``qemu+unix:///system?socket=RUNDIR/run/libvirt/libvirt-sock``;
* TCP without authentication: ``qemu+tcp://ADDR:PORT/system``.

``RemoteLibvirtd`` additionally unshares a network and a UTS namespace: the
daemon and an ``sshd`` of its own run on a host named e.g. ``sev-hv1`` that
is reachable from the default namespace over a veth pair with addresses from
198.51.100.0/24 (TEST-NET-2; this machine's own network is 192.0.2.0/24, so
TEST-NET-1 is taken).  The namespaces are anonymous (no ``ip netns add``):
they vanish with their last process, and with them every mount and the veth
pair, so an interrupted run leaves nothing that a later one cannot sweep.

Ownership and leftovers: every instance holds an abstract unix socket named
after its run directory (and remote ones one per address slot) as a lock that
the kernel drops when the owning process dies, and keeps a record of what it
made in a registry directory (``REGISTRY_DIR``): run directory, the start
process's pid and start time, its mount and network namespaces, veth and its
ifindex, slot.  ``cleanup_stale()`` (called by ``start()``) acts only on
records whose lock nobody holds: it kills the processes in the recorded mount
namespace (confirmed by the run directory's mounts in their mountinfo),
deletes the recorded veth if it is still the recorded interface, removes the
recorded run directory, then the record.  Nothing is found by name pattern.

Plain Python: stdlib and libvirt-python only.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

import libvirt

LIBVIRTD = '/usr/sbin/libvirtd'
SSHD = '/usr/sbin/sshd'
RUNDIR_BASE = '/tmp'
# Run directory names: sevh-<name>-<8 hex>; they appear in /proc/PID/mountinfo
# of every process of an instance (libvirtd, sshd, QEMU).
_RUNDIR_NAME_RE = re.compile(r'sevh-[a-z0-9]{1,16}-[0-9a-f]{8}')
_RUNDIR_IN_PATH_RE = re.compile(r'(?:^|/)(sevh-[a-z0-9]{1,16}-[0-9a-f]{8})(?:/|$)')
_LOCK_PREFIX = 'confidential.sev.harness/'
# One JSON record per instance, named after its run directory: what cleanup
# may touch when the instance's owner died without stop().
REGISTRY_DIR = os.path.join(RUNDIR_BASE, 'sevh-registry')
# Remote instances: slot N uses 198.51.100.(4N+1)/30 (default namespace end,
# interface sevhN) and 198.51.100.(4N+2)/30 (eth0 inside the namespace).
REMOTE_NET = ipaddress.IPv4Network('198.51.100.0/24')
MAX_SLOTS = REMOTE_NET.num_addresses // 4
# Directories of the run directory and where the daemon sees them.
BIND_MOUNTS = (
    ('run', '/run'),
    ('etc', '/etc/libvirt'),
    ('lib', '/var/lib/libvirt'),
    ('cache', '/var/cache/libvirt'),
    ('log', '/var/log/libvirt'),
)
_ENV = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8', 'HOME': '/root'}


class HarnessError(RuntimeError):
    """The harness could not start or stop a daemon; the message has the logs."""


# --------------------------------------------------------------- helpers ----

def _try_lock(name):
    """Bind an abstract unix socket as a lock: the socket, or None if taken."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind('\0' + _LOCK_PREFIX + name)
    except OSError:
        sock.close()
        return None
    return sock


def _run(argv, check=True, timeout=30):
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=timeout, env=_ENV, check=False)
    if check and res.returncode != 0:
        raise HarnessError('%s failed (exit %d): %s' % (shlex.join(argv), res.returncode,
                                                        (res.stderr or res.stdout).strip()))
    return res


def _alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii', errors='replace') as f:
            state = f.read().rpartition(')')[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ('Z', 'X')


def _comm(pid):
    try:
        with open('/proc/%d/comm' % pid, encoding='utf-8', errors='replace') as f:
            return f.read().strip()
    except OSError:
        return '?'


def processes_by_rundir():
    """Map run-directory name -> pids whose mount namespace has its mounts.

    Reads one /proc/PID/mountinfo per mount namespace other than ours: the
    bind mounts' root field names the run directory, also after it was
    deleted (the kernel appends //deleted).
    """
    try:
        mine = os.readlink('/proc/self/ns/mnt')
    except OSError:
        mine = None
    by_ns = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            ns = os.readlink('/proc/%s/ns/mnt' % entry)
        except OSError:
            continue
        if ns != mine:
            by_ns.setdefault(ns, []).append(int(entry))
    found = {}
    for pids in by_ns.values():
        text = None
        for pid in pids:
            try:
                with open('/proc/%d/mountinfo' % pid, encoding='utf-8', errors='replace') as f:
                    text = f.read()
                break
            except OSError:
                continue
        if text is None:
            continue
        names = set()
        for line in text.splitlines():
            fields = line.split(' ')
            if len(fields) > 4:
                m = _RUNDIR_IN_PATH_RE.search(fields[3])
                if m:
                    names.add(m.group(1))
        for name in names:
            found.setdefault(name, set()).update(pids)
    return found


def terminate(pids, grace=5.0):
    """SIGTERM pids, SIGKILL what is left after grace seconds; return survivors."""
    pids = {p for p in pids if p != os.getpid() and _alive(p)}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            pids = {p for p in pids if _alive(p)}
            if pids:
                time.sleep(0.05)
        if not pids:
            break
    return pids


def proc_starttime(pid):
    """Start time of pid in clock ticks since boot (/proc/PID/stat field 22), or None.

    A pid plus its start time names one process; a recycled pid has another.
    """
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii', errors='replace') as f:
            return int(f.read().rpartition(')')[2].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _ns_id(pid, kind):
    """'mnt:[4026532...]' of a process's namespace, or None."""
    try:
        return os.readlink('/proc/%d/ns/%s' % (pid, kind))
    except OSError:
        return None


def _mountinfo_mentions(pid, rundir):
    """True if a mount of pid's namespace has its root in rundir (bind mounts)."""
    try:
        with open('/proc/%d/mountinfo' % pid, encoding='utf-8', errors='replace') as f:
            text = f.read()
    except OSError:
        return False
    for line in text.splitlines():
        fields = line.split(' ')
        if len(fields) > 4:
            root = re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), fields[3])
            if root == rundir or root.startswith(rundir + '/'):
                return True
    return False


def processes_in_mntns(mntns, rundir):
    """Pids whose mount namespace is mntns ('mnt:[N]') and carries rundir's mounts.

    Both must hold: a namespace inode number can be reused once the namespace
    is gone, the run directory's binds exist only in the one we made.
    """
    rundir = os.path.realpath(rundir)
    found = set()
    confirmed = None
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        if _ns_id(int(entry), 'mnt') != mntns:
            continue
        if confirmed is None:
            confirmed = _mountinfo_mentions(int(entry), rundir)
            if not confirmed:
                return set()
        found.add(int(entry))
    return found


def registry_dir(base=RUNDIR_BASE):
    """The registry of instance records for run directories under base."""
    if os.path.realpath(base) == os.path.realpath(RUNDIR_BASE):
        return REGISTRY_DIR
    return os.path.join(base, 'sevh-registry')


def _write_record(path, record):
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write('\n')
    os.replace(tmp, path)


def _ifindex(link):
    try:
        with open('/sys/class/net/%s/ifindex' % link, encoding='ascii') as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def cleanup_stale(base=RUNDIR_BASE, only=None):
    """Remove what earlier, interrupted runs of this harness left, by their records.

    Only records whose run-directory lock nobody holds are acted on, so
    concurrent test runs (another session on the same machine) are safe, and
    only what a record names is touched: processes in its mount namespace
    (or its start process, by pid and start time), its veth if the interface
    still has the recorded ifindex, its run directory.  only: a set of run
    directory names to restrict it to.  Returns a list of what was removed,
    for logging.
    """
    removed = []
    registry = registry_dir(base)
    try:
        entries = sorted(os.listdir(registry))
    except FileNotFoundError:
        return removed
    for entry in entries:
        stem, ext = os.path.splitext(entry)
        if ext != '.json' or not _RUNDIR_NAME_RE.fullmatch(stem) or (only is not None and stem not in only):
            continue
        lock = _try_lock('rundir/' + stem)
        if lock is None:
            continue  # its owner lives
        try:
            removed.extend(_clean_record(os.path.join(registry, entry), stem, base))
        finally:
            lock.close()
    return removed


def _clean_record(record_path, stem, base):
    """Undo one dead instance's record; called with its run-directory lock held."""
    removed = []
    try:
        with open(record_path, encoding='utf-8') as f:
            rec = json.load(f)
    except (OSError, ValueError):
        # a record is replaced atomically: an unreadable one is not ours to act on
        return ['unreadable record %s left alone' % record_path]
    rundir = os.path.join(os.path.realpath(base), stem)
    if rec.get('rundir') != rundir:
        return ['record %s names %r, not %s: left alone' % (record_path, rec.get('rundir'), rundir)]
    pids = set()
    start_pid, start_time = rec.get('pid'), rec.get('pid_starttime')
    mntns = rec.get('mntns')
    if isinstance(start_pid, int) and start_time is not None and proc_starttime(start_pid) == start_time:
        pids.add(start_pid)
        mntns = mntns or _ns_id(start_pid, 'mnt')
    if mntns and mntns != _ns_id(os.getpid(), 'mnt'):
        pids |= processes_in_mntns(mntns, rundir)
    if pids:
        removed.extend('process %d (%s) of %s' % (p, _comm(p), stem) for p in sorted(pids))
        survivors = terminate(pids, grace=2.0)
        if survivors:
            raise HarnessError('stale processes of %s survive SIGKILL: %s' % (stem, sorted(survivors)))
    veth, ifindex, slot = rec.get('veth'), rec.get('veth_ifindex'), rec.get('slot')
    if veth and ifindex is not None and _ifindex(veth) == ifindex:
        slot_lock = _try_lock('slot/%s' % slot)
        if slot_lock is not None:
            try:
                if _run(['ip', 'link', 'del', veth], check=False).returncode == 0:
                    removed.append('veth %s (ifindex %d)' % (veth, ifindex))
            finally:
                slot_lock.close()
    if os.path.lexists(rundir):
        mounted = _mounts_under(rundir)
        if mounted:
            # never rmtree across a mount point; our binds live only in the
            # daemons' namespaces, so this is somebody else's doing
            raise HarnessError('stale %s has mounts in this namespace: %s' % (rundir, mounted))
        shutil.rmtree(rundir, ignore_errors=True)
        removed.append('run directory ' + rundir)
    os.unlink(record_path)
    return removed


def _mounts_under(path):
    """Mount points of this process's namespace at or below path."""
    path = os.path.realpath(path)
    found = []
    with open('/proc/self/mountinfo', encoding='utf-8', errors='replace') as f:
        for line in f:
            fields = line.split(' ')
            if len(fields) > 4:
                point = re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), fields[4])
                if point == path or point.startswith(path + '/'):
                    found.append(point)
    return found


def free_tcp_port(addr='127.0.0.1'):
    """A TCP port nothing listens on right now (for configs and negative tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def _tail(path, lines=40):
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            text = f.read()
    except OSError as e:
        return '(%s: %s)' % (path, e.strerror)
    return '\n'.join(text.splitlines()[-lines:]) or '(empty)'


# --------------------------------------------------------------- daemons ----

class Libvirtd:
    """A private libvirtd in its own mount namespace, on a unix socket and TCP.

    with Libvirtd() as d:
        conn = libvirt.open(d.uri_tcp)

    qemu_user/qemu_group: None keeps Debian's default (libvirt-qemu:kvm);
    both work for TCG domains.  Extra qemu.conf / libvirtd.conf lines can be
    appended (e.g. to turn cgroups back on).
    """

    kind = 'local'

    def __init__(self, name='local', listen_addr='127.0.0.1', tcp_port=None, qemu_user=None,
                 qemu_group=None, start_timeout=60.0, base_dir=RUNDIR_BASE,
                 qemu_conf_extra='', libvirtd_conf_extra='', log_level=3):
        if not re.fullmatch(r'[a-z0-9]{1,16}', name):
            raise ValueError('name must be 1-16 of [a-z0-9]: %r' % name)
        self.name = name
        self.listen_addr = listen_addr
        self.tcp_port = tcp_port
        self.qemu_user = qemu_user
        self.qemu_group = qemu_group
        self.start_timeout = start_timeout
        self.base_dir = base_dir
        self.qemu_conf_extra = qemu_conf_extra
        self.libvirtd_conf_extra = libvirtd_conf_extra
        self.log_level = log_level
        self.rundir = None
        self.proc = None
        self.mntns = None
        self.start_seconds = None
        self.stale_removed = []
        self._locks = []
        self.record_path = None
        self._record = {}

    # ----------------------------------------------------------- paths ----
    def path(self, *parts):
        """A path in the run directory, as seen from the default namespace."""
        return os.path.join(self.rundir, *parts)

    @property
    def socket_path(self):
        return self.path('run', 'libvirt', 'libvirt-sock')

    @property
    def libvirtd_log(self):
        return self.path('log', 'libvirtd.log')

    @property
    def daemon_output(self):
        return self.path('daemon.out')

    def qemu_log(self, domain_name):
        """QEMU's stdout/stderr log of a domain (stdio_handler = "file")."""
        return self.path('log', 'qemu', domain_name + '.log')

    # ------------------------------------------------------------ URIs ----
    @property
    def uri_unix(self):
        return 'qemu+unix:///system?socket=' + self.socket_path

    @property
    def connect_host(self):
        """Address clients in the default namespace use for TCP."""
        if self.listen_addr in ('0.0.0.0', '', None):
            return '127.0.0.1'
        return self.listen_addr

    @property
    def uri_tcp(self):
        return 'qemu+tcp://%s:%d/system' % (self.connect_host, self.tcp_port)

    @property
    def uris(self):
        return {'unix': self.uri_unix, 'tcp': self.uri_tcp}

    def warm_up(self):
        """Make the daemon probe QEMU now (getCapabilities), not in the first define.

        The probe takes ~4 s per fresh daemon (its capability cache is empty).
        Returns the seconds it took.
        """
        t0 = time.monotonic()
        conn = self.connect()
        try:
            conn.getCapabilities()
        finally:
            conn.close()
        return time.monotonic() - t0

    def connect(self, uri=None):
        """libvirt.open() on uri (default: the unix socket)."""
        return libvirt.open(uri or self.uri_unix)

    # ----------------------------------------------------- lifecycle ----
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        if self.proc is not None:
            raise HarnessError('already started')
        if os.geteuid() != 0:
            raise HarnessError('the libvirtd harness needs root (namespaces, mounts, veth, /dev/kvm)')
        t0 = time.monotonic()
        self.stale_removed = cleanup_stale(self.base_dir)
        # stop() at interpreter exit too, whatever ended the run
        atexit.register(self._stop_at_exit)
        try:
            self._make_rundir()
            self._prepare()
            self._write_configs()
            _fix_dev_kvm()
            self._launch()
            self._wait_ready(t0 + self.start_timeout)
        except BaseException:
            try:
                self.stop()
            except HarnessError as e:
                sys.stderr.write('harness: cleanup after failed start: %s\n' % e)
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _stop_at_exit(self):
        try:
            self.stop()
        except HarnessError as e:
            sys.stderr.write('harness: %s\n' % e)

    def _make_rundir(self):
        while True:
            basename = 'sevh-%s-%s' % (self.name, secrets.token_hex(4))
            lock = _try_lock('rundir/' + basename)
            if lock is not None:
                break
        self._locks.append(lock)
        path = os.path.join(os.path.realpath(self.base_dir), basename)
        # the record first: whatever exists later is named in it
        registry = registry_dir(self.base_dir)
        os.makedirs(registry, mode=0o700, exist_ok=True)
        self.record_path = os.path.join(registry, basename + '.json')
        self._record = {'rundir': path, 'kind': self.kind, 'owner_pid': os.getpid(),
                        'owner_starttime': proc_starttime(os.getpid())}
        _write_record(self.record_path, self._record)
        os.mkdir(path, 0o755)
        self.rundir = path
        for sub, _target in BIND_MOUNTS:
            os.mkdir(self.path(sub), 0o755)

    def _prepare(self):
        """Subclass hook: allocate resources before configs are written."""
        if self.tcp_port is None:
            self.tcp_port = free_tcp_port(self.connect_host)

    def _write_configs(self):
        q = json.dumps  # a JSON string literal is a valid libvirt conf string
        libvirtd_conf = [
            '# generated by tests/integration/harness/libvirtd.py',
            'listen_tls = 0',
            'listen_tcp = 1',
            'tcp_port = %s' % q(str(self.tcp_port)),
            'listen_addr = %s' % q(self.listen_addr),
            'auth_tcp = "none"',
            'auth_unix_rw = "none"',
            'auth_unix_ro = "none"',
            'unix_sock_rw_perms = "0700"',
            'log_outputs = %s' % q('%d:file:/var/log/libvirt/libvirtd.log' % self.log_level),
            self.libvirtd_conf_extra,
        ]
        qemu_conf = [
            '# generated by tests/integration/harness/libvirtd.py',
            'security_driver = "none"',
            # no per-domain mount namespace (cannot move /dev/pts in a namespace)
            'namespaces = [ ]',
            # no cgroup directories left in the host hierarchy, no name clashes
            # with other daemons' machine/qemu-N-NAME groups
            'cgroup_controllers = [ ]',
            # QEMU output straight to /var/log/libvirt/qemu/NAME.log: no virtlogd
            'stdio_handler = "file"',
            # no trusted.libvirt.security.* xattrs on host files
            'remember_owner = 0',
        ]
        if self.qemu_user:
            qemu_conf.append('user = %s' % q(self.qemu_user))
        if self.qemu_group:
            qemu_conf.append('group = %s' % q(self.qemu_group))
        qemu_conf.append(self.qemu_conf_extra)
        _write(self.path('etc', 'libvirtd.conf'), '\n'.join(libvirtd_conf) + '\n')
        _write(self.path('etc', 'qemu.conf'), '\n'.join(qemu_conf) + '\n')
        _write(self.path('start.sh'), self._script(), 0o755)

    def _unshare_args(self):
        return ['unshare', '--mount', '--propagation', 'private']

    def _script_setup(self):
        """Subclass hook: shell lines run after the bind mounts."""
        return []

    def _script(self):
        lines = [
            '#!/bin/sh',
            '# generated by tests/integration/harness/libvirtd.py; runs in a private mount namespace',
            'set -eu',
            'mount --make-rprivate /',
        ]
        for sub, target in BIND_MOUNTS:
            lines.append('mount --bind %s %s' % (shlex.quote(self.path(sub)), target))
        lines += self._script_setup()
        lines.append('exec %s --listen --config /etc/libvirt/libvirtd.conf' % LIBVIRTD)
        return '\n'.join(lines) + '\n'

    def _launch(self):
        with open(self.daemon_output, 'wb') as out:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                self._unshare_args() + ['--', '/bin/sh', self.path('start.sh')],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.rundir, env=_ENV, start_new_session=True)
        self.update_record(pid=self.proc.pid, pid_starttime=proc_starttime(self.proc.pid))

    def update_record(self, **fields):
        """Add what this instance made to its registry record (for cleanup_stale)."""
        self._record.update(fields)
        _write_record(self.record_path, self._record)

    def _await_mntns(self, deadline):
        """Record the start process's own mount namespace once unshare made it."""
        mine = _ns_id(os.getpid(), 'mnt')
        while True:
            ns = _ns_id(self.proc.pid, 'mnt')
            if ns is not None and ns != mine:
                self.mntns = ns
                self.update_record(mntns=ns, netns=_ns_id(self.proc.pid, 'net'))
                return
            if not self.running or time.monotonic() > deadline:
                raise HarnessError('the mount namespace never appeared\n' + self.logs())
            time.sleep(0.02)

    def _after_launch(self, deadline):
        """Subclass hook: runs once the daemon process exists."""

    def _check_ready(self):
        """Raise libvirt.libvirtError / OSError until the daemon answers."""
        for uri in (self.uri_unix, self.uri_tcp):
            conn = libvirt.open(uri)
            try:
                conn.getHostname()
            finally:
                conn.close()

    def _wait_ready(self, deadline):
        self._await_mntns(deadline)
        self._after_launch(deadline)
        last = None
        while True:
            if not self.running:
                raise HarnessError('%s libvirtd exited with status %s during start-up\n%s'
                                   % (self.kind, self.proc.returncode, self.logs()))
            try:
                self._check_ready()
                break
            except (libvirt.libvirtError, OSError, subprocess.SubprocessError, HarnessError) as e:
                last = e
            if time.monotonic() > deadline:
                raise HarnessError('%s libvirtd not ready after %.0fs (last error: %s)\n%s'
                                   % (self.kind, self.start_timeout, last, self.logs()))
            time.sleep(0.1)

    def logs(self, lines=40):
        """Tails of the daemon's logs, for error messages."""
        if not self.rundir:
            return '(no run directory)'
        return ('--- %s (start script and libvirtd stderr) ---\n%s\n--- %s ---\n%s'
                % (self.daemon_output, _tail(self.daemon_output, lines),
                   self.libvirtd_log, _tail(self.libvirtd_log, lines)))

    def pids(self):
        """Processes of this instance: libvirtd, QEMU, sshd (by their mounts)."""
        pids = set()
        if self.running:
            pids.add(self.proc.pid)
        if self.rundir and self.mntns:
            pids |= processes_in_mntns(self.mntns, self.rundir)
        elif self.rundir:
            # start failed before the namespace was recorded
            pids |= processes_by_rundir().get(os.path.basename(self.rundir), set())
        return pids

    def _teardown_extra(self):
        """Subclass hook: remove resources outside the namespaces."""

    def _released(self):
        """Subclass hook: the locks were released."""

    def stop(self):
        """Kill libvirtd and everything in its namespaces, remove the run dir."""
        problems = []
        if self.rundir:
            # libvirtd first: QEMU then dies without a daemon reacting to it.
            if self.running:
                terminate({self.proc.pid}, grace=5.0)
            survivors = terminate(self.pids(), grace=5.0)
            if survivors:
                problems.append('processes survive SIGKILL: %s'
                                % ', '.join('%d (%s)' % (p, _comm(p)) for p in sorted(survivors)))
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                problems.append('start process %d did not exit' % self.proc.pid)
        try:
            self._teardown_extra()
        except HarnessError as e:
            problems.append(str(e))
        if self.rundir and not problems:
            # The namespaces die with their last process and take the mounts
            # along; a bind mount still present would make rmtree fail.
            left = processes_by_rundir().get(os.path.basename(self.rundir))
            if left:
                problems.append('processes still use %s: %s' % (self.rundir, sorted(left)))
            elif _mounts_under(self.rundir):
                problems.append('mounts below %s: %s' % (self.rundir, _mounts_under(self.rundir)))
            else:
                shutil.rmtree(self.rundir, ignore_errors=True)
                if os.path.exists(self.rundir):
                    problems.append('could not remove ' + self.rundir)
        if not problems:
            if self.record_path:
                try:
                    os.unlink(self.record_path)
                except FileNotFoundError:
                    pass
            for lock in self._locks:
                lock.close()
            self._locks = []
            self.proc = None
            self.rundir = None
            self.mntns = None
            self.record_path = None
            self._released()
            atexit.unregister(self._stop_at_exit)
        if problems:
            raise HarnessError('stopping %s libvirtd (%s): %s' % (self.kind, self.rundir, '; '.join(problems)))


class RemoteLibvirtd(Libvirtd):
    """libvirtd + sshd as a separate "host": own network, UTS and mount namespaces.

    From the default namespace the host is ``self.addr`` (198.51.100.2 for
    slot 0) over a veth pair; it calls itself ``hostname``.  URIs:
    ``uri_tcp`` (qemu+tcp), ``uri_ssh`` (qemu+ssh, OpenSSH client) and
    ``uri_libssh`` (libvirt's libssh transport); ``ansible_host_vars()`` gives
    what an inventory needs to run modules on it.
    """

    kind = 'remote'

    def __init__(self, name='remote', hostname='sev-hv1', slot=None, tcp_port=16509,
                 ssh_port=22, python_interpreter=None, listen_addr='0.0.0.0', **kwargs):
        # 0.0.0.0 inside the namespace: its eth0 and lo only
        super().__init__(name=name, listen_addr=listen_addr, tcp_port=tcp_port, **kwargs)
        self.hostname = hostname
        self._slot_param = slot
        self.slot = slot
        self._slot_lock = None
        self.ssh_port = ssh_port
        self.python_interpreter = python_interpreter or sys.executable
        self.addr = None
        self.host_addr = None

    @property
    def veth(self):
        return 'sevh%d' % self.slot

    @property
    def connect_host(self):
        return self.addr

    # ssh material, all in the run directory
    @property
    def ssh_key(self):
        return self.path('ssh', 'id_ed25519')

    @property
    def known_hosts(self):
        return self.path('ssh', 'known_hosts')

    @property
    def sshd_log(self):
        return self.path('ssh', 'sshd.log')

    @property
    def ssh_options(self):
        """OpenSSH client options: only this key, only this known_hosts file."""
        return ['-F', '/dev/null',
                '-o', 'UserKnownHostsFile=' + self.known_hosts,
                '-o', 'GlobalKnownHostsFile=/dev/null',
                '-o', 'StrictHostKeyChecking=yes',
                '-o', 'IdentitiesOnly=yes',
                '-o', 'BatchMode=yes',
                '-o', 'ConnectTimeout=5',
                '-i', self.ssh_key,
                '-p', str(self.ssh_port)]

    def ssh_argv(self, *command):
        return ['ssh'] + self.ssh_options + ['root@' + self.addr, '--'] + list(command)

    def ssh(self, *command, check=True, timeout=30):
        """Run a command on the "remote host" over ssh; CompletedProcess."""
        return _run(self.ssh_argv(*command), check=check, timeout=timeout)

    def nsenter_argv(self, *command):
        """Run a command in the namespaces directly (no ssh), e.g. for debugging."""
        return ['nsenter', '--target', str(self.proc.pid), '--mount', '--uts', '--net', '--'] + list(command)

    @property
    def uri_ssh(self):
        # libvirt 9.0's "ssh" transport runs the OpenSSH client: keyfile -> -i,
        # no_verify=1 -> -o StrictHostKeyChecking=no; it has no known_hosts
        # parameter (libssh/libssh2 only).  command= names the ssh binary: a
        # wrapper that adds our UserKnownHostsFile keeps the host key checked
        # and ~/.ssh/known_hosts untouched.
        return ('qemu+ssh://root@%s:%d/system?keyfile=%s&command=%s'
                % (self.addr, self.ssh_port, self.ssh_key, self.path('ssh', 'ssh')))

    @property
    def uri_libssh(self):
        return ('qemu+libssh://root@%s:%d/system?keyfile=%s&known_hosts=%s&sshauth=privkey'
                % (self.addr, self.ssh_port, self.ssh_key, self.known_hosts))

    @property
    def uris(self):
        return {'unix': self.uri_unix, 'tcp': self.uri_tcp, 'ssh': self.uri_ssh,
                'libssh': self.uri_libssh}

    def ansible_host_vars(self):
        """Inventory variables to run modules on this host over ssh."""
        return {
            'ansible_connection': 'ssh',
            'ansible_host': self.addr,
            'ansible_port': self.ssh_port,
            'ansible_user': 'root',
            'ansible_ssh_private_key_file': self.ssh_key,
            'ansible_ssh_common_args': ' '.join(
                '-o %s' % o for o in ('UserKnownHostsFile=' + self.known_hosts,
                                      'GlobalKnownHostsFile=/dev/null',
                                      'StrictHostKeyChecking=yes',
                                      'IdentitiesOnly=yes')),
            'ansible_python_interpreter': self.python_interpreter,
            # ssh ControlMaster sockets die with the run directory
            'ansible_control_path_dir': self.path('ssh', 'cp'),
        }

    def write_inventory(self, path=None, host=None):
        """A YAML (JSON-syntax) inventory with this host; returns its path."""
        path = path or self.path('inventory.yml')
        host = host or self.hostname
        _write(path, json.dumps({'all': {'hosts': {host: self.ansible_host_vars()}}}, indent=2) + '\n')
        return path

    # ------------------------------------------------------- lifecycle ----
    def _prepare(self):
        self._take_slot()
        net = list(REMOTE_NET.subnets(new_prefix=30))[self.slot]
        self.host_addr, self.addr = str(net[1]), str(net[2])
        _check_no_overlap(net, self.veth)
        os.mkdir(self.path('ssh'), 0o700)
        os.mkdir(self.path('run', 'sshd'), 0o755)  # sshd's privilege separation dir
        for key, comment in (('host_ed25519_key', 'sevh-host'), ('id_ed25519', 'sevh-client')):
            _run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment,
                  '-f', self.path('ssh', key)])
        shutil.copy(self.ssh_key + '.pub', self.path('ssh', 'authorized_keys'))
        with open(self.path('ssh', 'host_ed25519_key.pub'), encoding='ascii') as f:
            hostkey = ' '.join(f.read().split()[:2])
        name = self.addr if self.ssh_port == 22 else '[%s]:%d' % (self.addr, self.ssh_port)
        _write(self.known_hosts, '%s %s\n' % (name, hostkey))
        _write(self.path('ssh', 'sshd_config'), '\n'.join([
            '# generated by tests/integration/harness/libvirtd.py',
            'Port %d' % self.ssh_port,
            'ListenAddress %s' % self.addr,
            'HostKey %s' % self.path('ssh', 'host_ed25519_key'),
            'PidFile /run/sshd.pid',
            'AuthorizedKeysFile %s' % self.path('ssh', 'authorized_keys'),
            'PermitRootLogin prohibit-password',
            'PubkeyAuthentication yes',
            'PasswordAuthentication no',
            'KbdInteractiveAuthentication no',
            'UsePAM no',
            # /tmp (1777) is a parent of the key files
            'StrictModes no',
            'PrintMotd no',
            'Subsystem sftp /usr/lib/openssh/sftp-server',
            'LogLevel VERBOSE',
        ]) + '\n')
        # ssh binary for libvirt's qemu+ssh (URI parameter command=)
        _write(self.path('ssh', 'ssh'), '#!/bin/sh\nexec ssh %s "$@"\n' % ' '.join(
            shlex.quote(o) for o in self.ssh_options[:-4]), 0o755)
        _write(self.path('hosts'), '127.0.0.1 localhost\n%s %s\n' % (self.addr, self.hostname))

    def _take_slot(self):
        slots = [self.slot] if self.slot is not None else range(MAX_SLOTS)
        for slot in slots:
            lock = _try_lock('slot/%d' % slot)
            if lock is not None:
                if os.path.exists('/sys/class/net/sevh%d' % slot):
                    # not recorded by a dead instance (start() ran cleanup_stale
                    # first), so not ours to delete: leave the slot alone
                    lock.close()
                    continue
                self._slot_lock = lock
                self._locks.append(lock)
                self.slot = slot
                self.update_record(slot=slot, veth=self.veth)
                return
        raise HarnessError('no free address slot (tried %s; a slot whose sevhN interface exists '
                           'without a record is skipped)' % list(slots))

    def _unshare_args(self):
        return super()._unshare_args() + ['--uts', '--net']

    def _script_setup(self):
        q = shlex.quote
        return [
            'hostname %s' % q(self.hostname),
            'mount --bind %s /etc/hosts' % q(self.path('hosts')),
            '# the harness moves eth0 in from the default namespace',
            'n=0',
            'until ip link show dev eth0 >/dev/null 2>&1; do',
            '  n=$((n + 1))',
            '  if [ "$n" -gt 400 ]; then echo "harness: eth0 never appeared" >&2; exit 1; fi',
            '  sleep 0.05',
            'done',
            'ip link set lo up',
            'ip addr add %s/30 dev eth0' % self.addr,
            'ip link set eth0 up',
            '%s -f %s -E %s' % (SSHD, q(self.path('ssh', 'sshd_config')), q(self.sshd_log)),
        ]

    def _after_launch(self, deadline):
        mine = os.readlink('/proc/self/ns/net')
        while True:
            try:
                if os.readlink('/proc/%d/ns/net' % self.proc.pid) != mine:
                    break
            except OSError:
                pass
            if not self.running or time.monotonic() > deadline:
                raise HarnessError('the network namespace never appeared\n' + self.logs())
            time.sleep(0.02)
        _run(['ip', 'link', 'add', self.veth, 'type', 'veth', 'peer', 'name', 'eth0',
              'netns', str(self.proc.pid)])
        self.update_record(veth_ifindex=_ifindex(self.veth))
        _run(['ip', 'addr', 'add', '%s/30' % self.host_addr, 'dev', self.veth])
        _run(['ip', 'link', 'set', self.veth, 'up'])

    def _check_ready(self):
        super()._check_ready()
        self.ssh('true', timeout=10)

    def logs(self, lines=40):
        text = super().logs(lines)
        if self.rundir and os.path.exists(self.path('ssh')):
            text += '\n--- %s ---\n%s' % (self.sshd_log, _tail(self.sshd_log, lines))
        return text

    def _released(self):
        self._slot_lock = None
        self.slot = self._slot_param

    def _teardown_extra(self):
        # The veth dies with the namespace; delete it anyway in case the
        # namespace is still held by something outside our process list.
        if self._slot_lock is None:
            return  # never had a slot, or already released it
        if os.path.exists('/sys/class/net/' + self.veth):
            res = _run(['ip', 'link', 'del', self.veth], check=False)
            if res.returncode != 0 and os.path.exists('/sys/class/net/' + self.veth):
                raise HarnessError('ip link del %s: %s' % (self.veth, res.stderr.strip()))


# ------------------------------------------------------------ internals ----

def _write(path, text, mode=0o644):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    os.chmod(path, mode)


def _fix_dev_kvm():
    """QEMU as libvirt-qemu (group kvm) must open /dev/kvm for its probes.

    As root:root 0600 every define re-probes (~50 s); see
    /work/shared/docs/sev-emulation.md.
    """
    if os.path.exists('/dev/kvm'):
        _run(['chgrp', 'kvm', '/dev/kvm'])
        _run(['chmod', '660', '/dev/kvm'])


def _check_no_overlap(net, own_link):
    """Refuse an address range the machine already routes elsewhere.

    Otherwise traffic meant for the namespace could leave the machine.
    """
    routes = json.loads(_run(['ip', '-j', '-4', 'route', 'show', 'table', 'all']).stdout or '[]')
    for route in routes:
        dst = route.get('dst')
        if not dst or dst == 'default' or route.get('dev') == own_link:
            continue
        try:
            other = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if other.overlaps(net) and other.prefixlen > 0:
            raise HarnessError('%s overlaps route %s dev %s on this machine; refusing to use it'
                               % (net, dst, route.get('dev')))

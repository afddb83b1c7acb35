# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Emulated SEV hypervisors: a real libvirtd + sshd whose QEMU is the emulated platform.

``EmulatedHypervisor`` is a ``RemoteLibvirtd`` (own mount, UTS and network
namespaces, hostname, 198.51.100.x address, sshd) in whose private mount
namespace, before libvirtd starts:

* the real ``/usr/bin/qemu-system-x86_64`` is bind-mounted to
  ``RUNDIR/qemu/qemu-system-x86_64.real`` (outside the namespace that path is
  an empty file), then the emulator's launcher (``qemu_emulator launcher
  STATE --real-qemu THAT --out RUNDIR/qemu/qemu-system-x86_64``) over
  ``/usr/bin/qemu-system-x86_64``: libvirt's capability probes, its
  ``getSEVInfo`` (which always uses the DEFAULT emulator, not a domain's
  ``<emulator>``) and every domain run the emulator;
* ``/dev`` is an overlay of the host's ``/dev`` (upper and work directories in
  the run directory) with its sub-mounts (``/dev/pts``, ``/dev/shm``, ...)
  bound back and a ``/dev/sev`` character node added: libvirt stats
  ``/dev/sev`` for the devices cgroup at every SEV start even with
  ``cgroup_controllers = [ ]``.  The node has ``/dev/null``'s numbers, so
  nothing can use it as an SEV device; it lives in the run directory's upper
  layer, never in the host's ``/dev``, and goes with the run directory;
* ``qemu.conf`` has ``user = "root"``, ``group = "root"`` (the emulator reads
  its platform keys, 0600 root) and, as every harness daemon,
  ``namespaces = [ ]`` and ``cgroup_controllers = [ ]``; the capability cache
  is private (``/var/cache/libvirt`` is the run directory's).

The platform state (``state_dir``, contract A's STATE: keys, records,
``export/``) is ``RUNDIR/emulator`` unless a ``state_dir`` is given; a given
one is kept at stop (the PDH outlives restarts, as a real platform's does).

``emulate=False`` runs a pass-through launcher instead of the emulator (the
real QEMU through the same binds): the namespace machinery can be tested
without the platform, and libvirt then reports SEV unsupported.
"""

from __future__ import annotations

import importlib
import json
import os
import shlex
import subprocess
import sys

import libvirt_qemu

from harness.libvirtd import HarnessError, RemoteLibvirtd, _write

DEFAULT_QEMU = '/usr/bin/qemu-system-x86_64'
EMULATOR_MODULE = 'ansible_collections.confidential.sev.tests.platform.qemu_emulator'
RECORDS_MODULE = 'ansible_collections.confidential.sev.tests.platform.emulator_records'
# The repository's build/ tree: the emulator is imported from there, as
# ansible_collections.confidential.sev.tests.platform (contract A).
REPO = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..'))
COLLECTION_ROOT = os.path.join(REPO, 'build')
# QEMU run from a path other than /usr/bin finds neither its modules nor its
# data directories by itself (sev-emulation.md); the pass-through needs them.
QEMU_MODULE_DIR = '/usr/lib/x86_64-linux-gnu/qemu'
QEMU_DATA_DIRS = ('/usr/share/qemu', '/usr/share/seabios', '/usr/lib/ipxe/qemu')


def _emulator_env():
    return {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8', 'HOME': '/root',
            'PYTHONPATH': COLLECTION_ROOT}


def _dev_submounts():
    """Direct sub-mounts of /dev in this namespace (e.g. /dev/pts, /dev/shm), once each."""
    found = []
    with open('/proc/self/mountinfo', encoding='utf-8', errors='replace') as f:
        for line in f:
            fields = line.split(' ')
            if len(fields) <= 4:
                continue
            point = fields[4].replace('\\040', ' ')
            if point.startswith('/dev/') and point.count('/') == 2 and point not in found:
                found.append(point)
    return found


class EmulatedHypervisor(RemoteLibvirtd):
    """A "host" with an emulated SEV platform: libvirtd + sshd + emulating QEMU launcher.

    with EmulatedHypervisor(name='ehv1', hostname='sev-ehv1') as hv:
        conn = libvirt.open(hv.uri_ssh)
        conn.getSEVInfo()      # the emulated PDH, chain, cpu0-id
    """

    kind = 'emulated'

    def __init__(self, name='ehv1', hostname='sev-ehv1', state_dir=None, emulate=True,
                 api='1.55', build_id=21, **kwargs):
        kwargs.setdefault('qemu_user', 'root')
        kwargs.setdefault('qemu_group', 'root')
        super().__init__(name=name, hostname=hostname, **kwargs)
        self._state_dir_param = state_dir
        self.emulate = emulate
        self.api = api
        self.build_id = build_id

    # ------------------------------------------------------------ paths ----
    @property
    def state_dir(self):
        """The emulator's STATE directory, as seen from outside (and inside)."""
        if self._state_dir_param:
            return os.path.realpath(self._state_dir_param)
        return self.path('emulator') if self.rundir else None

    @property
    def export_dir(self):
        return os.path.join(self.state_dir, 'export') if self.state_dir else None

    @property
    def real_qemu(self):
        """Where the real QEMU binary is inside the namespace (an empty file outside)."""
        return self.path('qemu', 'qemu-system-x86_64.real')

    @property
    def launcher(self):
        """The launcher seen as /usr/bin/qemu-system-x86_64 inside the namespace."""
        return self.path('qemu', 'qemu-system-x86_64')

    # ------------------------------------------------------- lifecycle ----
    def _prepare(self):
        super()._prepare()
        os.mkdir(self.path('qemu'), 0o755)
        for sub in ('dev', 'dev/upper', 'dev/work', 'dev/merged', 'mem'):
            os.mkdir(self.path(sub), 0o700)
        # bind-mount target for the real binary
        _write(self.real_qemu, '', 0o755)
        if self.emulate:
            self._emulator('init', self.state_dir, '--api', str(self.api), '--build-id', str(self.build_id))
            self._emulator('launcher', self.state_dir, '--real-qemu', self.real_qemu, '--out', self.launcher)
            if not os.access(self.launcher, os.X_OK):
                raise HarnessError('qemu_emulator launcher wrote no executable %s' % self.launcher)
        else:
            _write(self.launcher, '#!/bin/sh\n# pass-through: the real QEMU, no emulation\n'
                   'QEMU_MODULE_DIR=%s exec %s %s "$@"\n'
                   % (QEMU_MODULE_DIR, shlex.quote(self.real_qemu),
                      ' '.join('-L %s' % shlex.quote(d) for d in QEMU_DATA_DIRS)), 0o755)

    def _emulator(self, *args):
        argv = [sys.executable, '-m', EMULATOR_MODULE] + list(args)
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=120, env=_emulator_env(), check=False)
        if res.returncode != 0:
            raise HarnessError('%s failed (exit %d): %s' % (shlex.join(argv), res.returncode,
                                                            (res.stderr or res.stdout).strip()))
        return res

    def _script_setup(self):
        q = shlex.quote
        merged = self.path('dev', 'merged')
        lines = [
            '# /dev: an overlay of the host /dev plus a /dev/sev node that exists only here',
            'mount -t overlay overlay -o %s %s' % (
                q('lowerdir=/dev,upperdir=%s,workdir=%s' % (self.path('dev', 'upper'), self.path('dev', 'work'))),
                q(merged)),
        ]
        for sub in _dev_submounts():
            lines.append('mount --rbind %s %s' % (q(sub), q(merged + sub[len('/dev'):])))
        lines += [
            'mknod -m 600 %s c 1 3' % q(os.path.join(merged, 'sev')),
            'mount --move %s /dev' % q(merged),
            '# the real QEMU first, then the launcher over the default emulator',
            'mount --bind %s %s' % (q(DEFAULT_QEMU), q(self.real_qemu)),
            'mount --bind %s %s' % (q(self.launcher), DEFAULT_QEMU),
        ]
        return lines + super()._script_setup()

    # --------------------------------------------------------- platform ----
    def _records(self):
        if COLLECTION_ROOT not in sys.path:
            sys.path.insert(0, COLLECTION_ROOT)
        return importlib.import_module(RECORDS_MODULE)

    def launches(self):
        """The emulator's launch records (contract A), sorted by seq."""
        return self._records().load_launches(self.state_dir)

    def set_faults(self, mapping):
        self._records().set_faults(self.state_dir, mapping)

    def clear_faults(self):
        self._records().clear_faults(self.state_dir)

    def node_sev(self):
        """The platform's export/node_sev.json (what getSEVInfo should report)."""
        with open(os.path.join(self.export_dir, 'node_sev.json'), encoding='utf-8') as f:
            return json.load(f)

    def read_guest_memory(self, dom, gpa, size):
        """size bytes of dom's guest-physical memory at gpa (QMP pmemsave via the monitor).

        QEMU writes the file inside the namespace, at a run-directory path that
        is the same path outside.  Taints the domain (custom monitor command).
        """
        target = self.path('mem', '%s-%x-%d-%s.bin' % (dom.UUIDString(), gpa, size, os.urandom(4).hex()))
        cmd = {'execute': 'pmemsave', 'arguments': {'val': gpa, 'size': size, 'filename': target}}
        reply = json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps(cmd), 0))
        if 'return' not in reply:
            raise HarnessError('pmemsave of %d bytes at 0x%x: %s' % (size, gpa, reply))
        try:
            with open(target, 'rb') as f:
                data = f.read()
        finally:
            os.unlink(target)
        if len(data) != size:
            raise HarnessError('pmemsave wrote %d bytes, not %d' % (len(data), size))
        return data

    def status(self):
        """What a user of this host needs, as JSON-able data (scripts/hypervisor.sh status)."""
        return {
            'name': self.name,
            'hostname': self.hostname,
            'addr': self.addr,
            'slot': self.slot,
            'uris': self.uris,
            'ansible_host_vars': self.ansible_host_vars(),
            'state_dir': self.state_dir,
            'export_dir': self.export_dir,
            'rundir': self.rundir,
            'pid': self.proc.pid if self.proc else None,
            'emulated': self.emulate,
        }

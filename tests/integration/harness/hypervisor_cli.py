# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An emulated SEV hypervisor outside pytest (scripts/hypervisor.sh runs this).

  hypervisor_cli.py start  NAME [--state-dir DIR] [--timeout S]
  hypervisor_cli.py status NAME [--state-dir DIR]
  hypervisor_cli.py stop   NAME [--state-dir DIR] [--purge]

An instance is owned by a *holder* process (``hold``, started detached by
``start``): the harness's locks are abstract sockets that die with the
process holding them, so something must live as long as the instance.  The
holder takes a lock of its own for DIR/NAME, starts an ``EmulatedHypervisor``
with hostname NAME, writes ``DIR/NAME.pid`` and then ``DIR/NAME.json`` (the
status), and on SIGTERM/SIGINT/SIGHUP stops exactly that instance and removes
both files.  Its output goes to ``DIR/NAME.log``.  The emulated platform's
state (keys, records, export/) is ``DIR/NAME.platform``: kept across stop and
start, so the PDH outlives a restart like a real platform's; ``stop --purge``
removes it too.

Exit codes: 0 success (start: running, status printed; stop: stopped or was
not running; status: running, status printed); 1 failure (start failed, stop
could not stop it; the log tail is on stderr); 2 usage error; 3 (status
only) not running (a JSON object with "running": false is printed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import libvirt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=wrong-import-position
from harness.hypervisor import EmulatedHypervisor  # noqa: E402
from harness.libvirtd import (HarnessError, _alive, _tail, _try_lock, _write_record, cleanup_stale,  # noqa: E402
                              proc_starttime)

DEFAULT_STATE_DIR = '/tmp/confidential-sev-hypervisors'
NAME_RE = re.compile(r'[a-z][a-z0-9-]{0,30}[a-z0-9]')
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3


def _quiet_libvirt(_ctx, _err):
    """libvirt prints every error to stderr, also the expected ones while polling a start."""


libvirt.registerErrorHandler(_quiet_libvirt, None)


class Paths:
    def __init__(self, state_dir, name):
        self.state_dir = os.path.realpath(state_dir)
        self.name = name
        self.pid = os.path.join(self.state_dir, name + '.pid')
        self.json = os.path.join(self.state_dir, name + '.json')
        self.log = os.path.join(self.state_dir, name + '.log')
        self.platform = os.path.join(self.state_dir, name + '.platform')

    @property
    def lock_name(self):
        # abstract socket names are short: a digest of the instance's path
        return 'hypervisor/' + hashlib.sha256(os.path.join(self.state_dir, self.name).encode()).hexdigest()[:32]


def _read_status(paths):
    try:
        with open(paths.json, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _read_pid(paths):
    try:
        with open(paths.pid, encoding='ascii') as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _holder_alive(paths):
    """(held, pid, status): is the instance lock held, and the running holder's pid and status.

    Running means: the lock is held, the pidfile's process exists and its
    start time is the one the holder wrote in the status.  held without a
    status: a holder is still starting.
    """
    lock = _try_lock(paths.lock_name)
    if lock is not None:
        lock.close()
        return False, None, None
    pid, status = _read_pid(paths), _read_status(paths)
    if pid is None or status is None or status.get('holder_pid') != pid:
        return True, pid, None
    if not _alive(pid) or proc_starttime(pid) != status.get('holder_starttime'):
        return True, None, None
    return True, pid, status


def _remove(*paths):
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _print(status):
    sys.stdout.write(json.dumps(status, indent=2, sort_keys=True) + '\n')


# ----------------------------------------------------------------- holder ----

def cmd_hold(paths, emulate=True):
    """Own one instance until a signal; runs detached (see cmd_start)."""
    lock = _try_lock(paths.lock_name)
    if lock is None:
        print('holder: %s/%s is held by another holder' % (paths.state_dir, paths.name), flush=True)
        return EXIT_OK
    stop_signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    # block them first: a stop during start-up is handled once start() is done
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    _remove(paths.json)
    with open(paths.pid, 'w', encoding='ascii') as f:
        f.write('%d\n' % os.getpid())
    hv = EmulatedHypervisor(name=(re.sub('[^a-z0-9]', '', paths.name)[:16] or 'hv'),
                            hostname=paths.name, state_dir=paths.platform, emulate=emulate)
    t0 = time.monotonic()
    try:
        hv.start()
    except (HarnessError, OSError, subprocess.SubprocessError) as e:
        print('holder: start failed: %s' % e, flush=True)
        _remove(paths.pid)
        return EXIT_FAILED
    status = dict(hv.status(), name=paths.name, libvirtd_name=hv.name, running=True, holder_pid=os.getpid(),
                  holder_starttime=proc_starttime(os.getpid()), start_seconds=round(time.monotonic() - t0, 2),
                  pidfile=paths.pid, log=paths.log, inventory=hv.write_inventory(host=paths.name))
    _write_record(paths.json, status)
    os.chmod(paths.json, 0o644)
    print('holder: %s running at %s (%s), pid %d' % (paths.name, hv.addr, hv.rundir, os.getpid()), flush=True)
    signum = signal.sigwait(stop_signals)
    print('holder: signal %d, stopping' % signum, flush=True)
    try:
        hv.stop()
    except HarnessError as e:
        print('holder: stop failed: %s' % e, flush=True)
        return EXIT_FAILED
    _remove(paths.json, paths.pid)
    lock.close()
    print('holder: stopped', flush=True)
    return EXIT_OK


# --------------------------------------------------------------- commands ----

def cmd_start(paths, timeout, emulate=True):
    held, _pid, status = _holder_alive(paths)
    if status is not None:
        _print(status)
        return EXIT_OK
    holder = None
    if not held:
        # no holder: files left by a dead one are stale (its instance's
        # processes, mounts and run dir are swept by cleanup_stale at start)
        _remove(paths.json, paths.pid)
        with open(paths.log, 'ab') as log:
            holder = subprocess.Popen(  # pylint: disable=consider-using-with
                [sys.executable, os.path.abspath(__file__), 'hold', paths.name, '--state-dir', paths.state_dir]
                + ([] if emulate else ['--passthrough']),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, env=dict(os.environ))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _holder_alive(paths)[2]
        if status is not None:
            _print(status)
            return EXIT_OK
        if holder is not None and holder.poll() is not None:
            # exit 0 without a status: another holder won the race; keep waiting
            if holder.returncode != 0:
                sys.stderr.write('hypervisor %s failed to start (holder exit %d); %s:\n%s\n'
                                 % (paths.name, holder.returncode, paths.log, _tail(paths.log, 60)))
                return EXIT_FAILED
            holder = None
        time.sleep(0.1)
    sys.stderr.write('hypervisor %s not running after %ds; %s:\n%s\n'
                     % (paths.name, timeout, paths.log, _tail(paths.log, 60)))
    return EXIT_FAILED


def cmd_status(paths):
    held, _pid, status = _holder_alive(paths)
    if status is not None:
        _print(status)
        return EXIT_OK
    _print({'name': paths.name, 'running': False, 'starting': held,
            'state_dir': paths.platform, 'pidfile': paths.pid})
    return EXIT_NOT_RUNNING


def cmd_stop(paths, purge, timeout=60):
    held, pid, status = _holder_alive(paths)
    if held and status is None:
        # still starting: wait for it to finish starting (its signals are blocked till then)
        deadline = time.monotonic() + timeout
        while held and status is None and time.monotonic() < deadline:
            time.sleep(0.1)
            held, pid, status = _holder_alive(paths)
        if held and status is None:
            sys.stderr.write('hypervisor %s: a holder is still starting after %ds; %s:\n%s\n'
                             % (paths.name, timeout, paths.log, _tail(paths.log, 60)))
            return EXIT_FAILED
    if status is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and proc_starttime(pid) == status['holder_starttime'] and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid) and proc_starttime(pid) == status['holder_starttime']:
            sys.stderr.write('hypervisor %s: holder %d did not stop in %ds; %s:\n%s\n'
                             % (paths.name, pid, timeout, paths.log, _tail(paths.log, 60)))
            return EXIT_FAILED
        if os.path.exists(paths.json):
            sys.stderr.write('hypervisor %s: the holder could not stop it cleanly; %s:\n%s\n'
                             % (paths.name, paths.log, _tail(paths.log, 60)))
            return EXIT_FAILED
        sys.stderr.write('hypervisor %s stopped\n' % paths.name)
    else:
        if _read_status(paths):
            # its holder died without stopping it: sweep exactly that instance's record
            rundir = _read_status(paths).get('rundir')
            if rundir:
                for line in cleanup_stale(os.path.dirname(rundir), only={os.path.basename(rundir)}):
                    sys.stderr.write('removed %s\n' % line)
        _remove(paths.json, paths.pid)
        sys.stderr.write('hypervisor %s was not running\n' % paths.name)
    if purge:
        shutil.rmtree(paths.platform, ignore_errors=True)
        _remove(paths.log)
    return EXIT_OK


def main(argv=None):
    parser = argparse.ArgumentParser(prog='hypervisor.sh', description=__doc__.split('\n', 1)[0])
    parser.add_argument('command', choices=('start', 'stop', 'status', 'hold'))
    parser.add_argument('name', help='hostname of the emulated hypervisor, e.g. sev-demo1')
    parser.add_argument('--state-dir', default=os.environ.get('SEV_HYPERVISOR_STATE_DIR', DEFAULT_STATE_DIR))
    parser.add_argument('--timeout', type=int, default=120, help='start: seconds to wait (default 120)')
    parser.add_argument('--passthrough', action='store_true',
                        help='start: the real QEMU without the emulator (debugging the harness; no SEV)')
    parser.add_argument('--purge', action='store_true', help="stop: also remove the platform's state")
    args = parser.parse_args(argv)
    if not NAME_RE.fullmatch(args.name):
        parser.error('NAME must be a hostname of 2-32 of [a-z0-9-], starting with a letter: %r' % args.name)
    if os.geteuid() != 0:
        sys.stderr.write('hypervisor.sh needs root (namespaces, mounts, veth)\n')
        return EXIT_FAILED
    os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
    paths = Paths(args.state_dir, args.name)
    if args.command == 'hold':
        return cmd_hold(paths, emulate=not args.passthrough)
    if args.command == 'start':
        return cmd_start(paths, args.timeout, emulate=not args.passthrough)
    if args.command == 'status':
        return cmd_status(paths)
    return cmd_stop(paths, args.purge)


if __name__ == '__main__':
    sys.exit(main())

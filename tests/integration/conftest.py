# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the integration suite: real, private libvirtd instances.

``libvirtd_local``  a libvirtd in its own mount namespace (unix socket + TCP on
                    127.0.0.1:<free port>), session-scoped.
``libvirtd_remote`` libvirtd + sshd on a "host" of their own (network, UTS and
                    mount namespaces; hostname sev-hv1; 198.51.100.2 for slot 0),
                    session-scoped.
``emulated_hypervisors`` three EmulatedHypervisor hosts running at once
                    (sev-ehv1..3, each its own slot and address, sshd, an
                    emulated SEV platform behind a real libvirtd), session-scoped;
                    ``emulated_hv`` is the first of them.

Nothing is skipped: if a daemon cannot start, every test that uses it ERRORS
with the daemon's log tail (HarnessError).  Root is required.

``connect(uri)`` opens a connection that is closed after the test;
``make_domain(conn)`` returns a MiniDomain with a unique name that is
destroyed and undefined after the test; ``record(what, value)`` adds a line
to the "libvirt observations" section printed at the end of the run.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import libvirt
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=wrong-import-position
from harness import e2e  # noqa: E402
from harness.domain import MiniDomain  # noqa: E402
from harness.hypervisor import EmulatedHypervisor  # noqa: E402
from harness.libvirtd import HarnessError, Libvirtd, RemoteLibvirtd  # noqa: E402
from harness.sev_guest import patched_ovmf  # noqa: E402

OBSERVATIONS = []


def _ignore_libvirt_errors(_ctx, _err):
    """libvirt prints every error to stderr by default; tests check them instead."""


libvirt.registerErrorHandler(_ignore_libvirt_errors, None)


def _interrupt(_signum, _frame):
    # SIGTERM (e.g. from timeout(1)) -> KeyboardInterrupt: pytest still tears
    # the session fixtures down, so no daemon outlives the run.
    raise KeyboardInterrupt('SIGTERM')


if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope='session')
def record():
    def _record(what, value):
        OBSERVATIONS.append((what, value))
    return _record


@pytest.fixture(scope='session')
def libvirtd_local(record):
    daemon = Libvirtd(name='local')
    daemon.start()
    record('local libvirtd start', '%.2fs; %s' % (daemon.start_seconds, daemon.uris))
    record('local QEMU capability probe (first getCapabilities)', '%.2fs' % daemon.warm_up())
    if daemon.stale_removed:
        record('leftovers removed before start', '; '.join(daemon.stale_removed))
    yield daemon
    daemon.stop()


@pytest.fixture(scope='session')
def libvirtd_remote(record):
    daemon = RemoteLibvirtd(name='remote', hostname='sev-hv1')
    daemon.start()
    record('remote libvirtd+sshd start', '%.2fs; %s' % (daemon.start_seconds, daemon.uris))
    record('remote QEMU capability probe (first getCapabilities)', '%.2fs' % daemon.warm_up())
    if daemon.stale_removed:
        record('leftovers removed before start', '; '.join(daemon.stale_removed))
    yield daemon
    daemon.stop()


@pytest.fixture(scope='session')
def emulated_hypervisors(record):
    """Three emulated SEV hypervisors at once; the test process is none of them."""
    hvs = [EmulatedHypervisor(name='ehv%d' % n, hostname='sev-ehv%d' % n) for n in (1, 2, 3)]
    started = []
    try:
        t0 = time.monotonic()
        for hv in hvs:
            hv.start()
            started.append(hv)
            record('emulated hypervisor %s start' % hv.hostname, '%.2fs; slot %d, %s, %s'
                   % (hv.start_seconds, hv.slot, hv.addr, hv.rundir))
            if hv.stale_removed:
                record('leftovers removed before start', '; '.join(hv.stale_removed))
        # the three capability probes (through the emulator) in parallel
        with ThreadPoolExecutor(len(hvs)) as pool:
            probes = list(pool.map(lambda hv: hv.warm_up(), hvs))
        record('emulated hypervisors: capability probes (parallel)', ', '.join('%.2fs' % p for p in probes))
        record('emulated hypervisors: 3 ready', '%.2fs' % (time.monotonic() - t0))
        yield hvs
    finally:
        problems = []
        for hv in started:
            try:
                hv.stop()
            except HarnessError as e:
                problems.append(str(e))
        if problems:
            raise HarnessError('; '.join(problems))


@pytest.fixture(scope='session')
def emulated_hv(emulated_hypervisors):  # pylint: disable=redefined-outer-name
    return emulated_hypervisors[0]


@pytest.fixture(scope='module')
def ovmf(tmp_path_factory):
    """The footer-patched OVMF the guests of a test module boot, also the trusted copy on the controller."""
    return patched_ovmf(str(tmp_path_factory.mktemp('firmware') / 'OVMF_CODE.sev.fd'))


@pytest.fixture
def guests():
    """Domains a test defines on the emulated hypervisors (e2e.Guests), removed after it."""
    made = e2e.Guests()
    yield made
    made.cleanup()


@pytest.fixture
def connect():
    conns = []

    def _open(uri):
        conn = libvirt.open(uri)
        conns.append(conn)
        return conn
    yield _open
    for conn in conns:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass


@pytest.fixture
def make_domain(connect):  # pylint: disable=redefined-outer-name,unused-argument
    # depends on connect: its connections close only after the cleanup below
    made = []

    def _make(conn, prefix='sevh', **kwargs):
        dom = MiniDomain(conn, '%s-%s' % (prefix, secrets.token_hex(3)), **kwargs)
        made.append(dom)
        return dom
    yield _make
    for dom in made:
        dom.cleanup()


def pytest_terminal_summary(terminalreporter):
    if OBSERVATIONS:
        terminalreporter.section('libvirt observations (tests/integration)')
        for what, value in OBSERVATIONS:
            terminalreporter.write_line('%s: %s' % (what, value))

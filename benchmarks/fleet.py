# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet benchmark (issue 11): attest N guests with the role confidential.sev.sev_launch on EMULATED
hypervisors, and split the wall time per guest into QEMU's own start, Ansible's per-task cost and
attestation.  A benchmark, not a test: it prints figures and PASS/FAIL against the goals, writes them to
a JSON file, and exits 0 whatever they say (1 only if it could not measure: a hypervisor did not start,
a launch failed, ...).  Run it with scripts/benchmark_fleet.sh (root; see benchmarks/README.md).

Cases, for each N of --sizes and each launch path (the role's per-guest path, today's default, and
``sev_launch_together: true`` when the role has it):
  one host    N guests on one emulated hypervisor, one play;
  three hosts N guests spread over three emulated hypervisors, one play (forks >= 3);
  initrd      N_initrd guests on one host, measured direct boot with kernel + a 512 MiB initrd shared by
              all of them (N_initrd chosen by memory: QEMU holds the initrd in each guest process).
Every guest: plain SEV (policy 0x3), 1 vCPU, a fresh session per launch (the role's default), one
LUKS-key secret injected, left paused (sev_launch_resume: false).

Method, per case and run (interleaved, --runs, median reported):
  baseline  the same N guests started paused with plain libvirt-python (over each host's unix socket)
            at the same concurrency as the play (one thread per host, guests one after another within a
            host, as the role starts them), then destroyed: QEMU's (and libvirtd's) own start;
  play      ansible-playbook applying the role to the hosts, timed from spawn to exit; every guest's
            controller record must say it was injected, else the run is an error;
  share     per guest = (play wall - baseline wall) / N;
  split     from a timing callback (benchmarks/callback_plugins/fleet_timing.py): the controller-side
            attestation tasks (sev_session: chain + fresh session; sev_measurement_validate) as a share
            of all task time, scaled to the play's wall; Ansible's per-task cost = share - attestation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))
if os.path.join(REPO, 'build') not in sys.path:
    sys.path.insert(0, os.path.join(REPO, 'build'))

# pylint: disable=wrong-import-position
import libvirt  # noqa: E402

from harness import e2e  # noqa: E402
from harness.hypervisor import EmulatedHypervisor  # noqa: E402
from harness.libvirtd import HarnessError  # noqa: E402
from harness.sev_guest import default_policy, patched_ovmf, sev_guest_xml  # noqa: E402

POLICY = default_policy(False)           # NODBG | NOKS, plain SEV
MIB = 1024 * 1024
ATTEST_ACTIONS = ('confidential.sev.sev_session', 'confidential.sev.sev_measurement_validate')
BATCH_ACTION = 'confidential.sev.sev_launch_batch'
GOAL_SHARE, MOONSHOT_SHARE, GOAL_INITRD = 0.5, 0.2, 0.05   # s per guest at 50 guests, one host


def _quiet(_ctx, _err):
    """libvirt prints every error to stderr; the benchmark reports its own."""


libvirt.registerErrorHandler(_quiet, None)


def progress(msg):
    sys.stderr.write('[fleet %s] %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stderr.flush()


def mem_available_mib():
    with open('/proc/meminfo', encoding='ascii') as f:
        for line in f:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) // 1024
    raise RuntimeError('no MemAvailable in /proc/meminfo')


def vm_rss_mib(pid):
    with open('/proc/%d/status' % pid, encoding='ascii') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return 0.0


def role_has_together():
    with open(os.path.join(REPO, 'roles', 'sev_launch', 'defaults', 'main.yml'), encoding='utf-8') as f:
        return 'sev_launch_together:' in f.read()


class Fleet:
    """The emulated hypervisors this benchmark started (and only those), and the guests it defined."""

    def __init__(self, work, n_hosts):
        self.work = work
        self.hvs = []
        self.n_hosts = n_hosts
        self.conns = {}
        self.defined = []   # (hv, name)

    def start(self):
        for n in range(1, self.n_hosts + 1):
            hv = EmulatedHypervisor(name='fleet%d' % n, hostname='sev-fleet%d' % n)
            hv.start()
            self.hvs.append(hv)
            progress('hypervisor %s up at %s (%.1fs)' % (hv.hostname, hv.addr, hv.start_seconds))
        with ThreadPoolExecutor(len(self.hvs)) as pool:
            probes = list(pool.map(lambda hv: hv.warm_up(), self.hvs))
        progress('capability probes: %s' % ', '.join('%.1fs' % p for p in probes))

    def conn(self, hv):
        if hv.hostname not in self.conns:
            self.conns[hv.hostname] = libvirt.open(hv.uri_unix)
        return self.conns[hv.hostname]

    def define(self, hv, name, xml):
        dom = self.conn(hv).defineXML(xml)
        self.defined.append((hv, name))
        return dom

    def destroy_all(self, guests):
        """Destroy every active guest of ``guests`` [(hv, name)] (kept defined)."""
        for hv, name in guests:
            dom = self.conn(hv).lookupByName(name)
            if dom.isActive():
                dom.destroy()

    def undefine(self, guests):
        for hv, name in guests:
            try:
                dom = self.conn(hv).lookupByName(name)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
            if (hv, name) in self.defined:
                self.defined.remove((hv, name))

    def stop(self):
        problems = []
        try:
            self.undefine(list(self.defined))
        except libvirt.libvirtError as exc:
            problems.append('undefine: %s' % exc)
        for conn in self.conns.values():
            try:
                conn.close()
            except libvirt.libvirtError:
                pass
        self.conns = {}
        for hv in self.hvs:
            try:
                hv.stop()
            except HarnessError as exc:
                problems.append(str(exc))
        self.hvs = []
        return problems


class Inputs:
    """The guest owner's files: firmware, one LUKS key, and for the initrd case kernel + initrd."""

    def __init__(self, work, initrd_mib):
        self.dir = os.path.join(work, 'owner')
        os.makedirs(self.dir, mode=0o700)
        self.firmware = patched_ovmf(os.path.join(work, 'OVMF_CODE.sev.fd'))
        self.key = e2e.write_private(os.path.join(self.dir, 'luks.key'), os.urandom(32))
        self.initrd_mib = initrd_mib
        self.kernel = self.initrd = None
        self.cmdline = 'console=ttyS0 root=/dev/vda1 fleet-benchmark'

    def make_boot_files(self):
        if self.kernel:
            return
        boot = os.path.join(self.dir, 'boot')
        os.makedirs(boot)
        self.kernel = e2e.stand_in_bzimage(os.path.join(boot, 'vmlinuz'), size_kib=8 * 1024)
        self.initrd = os.path.join(boot, 'initrd.img')
        chunk = 16 * MIB
        with open(self.initrd, 'wb') as f:
            for dummy in range(self.initrd_mib * MIB // chunk):
                f.write(os.urandom(chunk))
        os.chmod(self.initrd, 0o644)


class Case:
    """N guests placed on hosts; defined once, launched once per run."""

    def __init__(self, key, label, fleet, inputs, placement, boot=False, memory_mib=256, strategy='linear'):
        self.key, self.label, self.fleet, self.inputs = key, label, fleet, inputs
        self.strategy = strategy
        self.placement = placement        # [(hv, name)]
        self.boot = boot
        self.memory_mib = memory_mib

    @property
    def n(self):
        return len(self.placement)

    def hosts(self):
        seen = []
        for hv, dummy in self.placement:
            if hv not in seen:
                seen.append(hv)
        return seen

    def define(self, sessions):
        for hv, name in self.placement:
            session = sessions[hv.hostname]
            boot = dict(kernel=self.inputs.kernel, initrd=self.inputs.initrd,
                        cmdline=self.inputs.cmdline) if self.boot else {}
            self.fleet.define(hv, name, sev_guest_xml(name, self.inputs.firmware, vcpus=1, es=False,
                                                      policy=POLICY, dh_cert=session['dh_cert'],
                                                      session=session['session'],
                                                      memory_mib=self.memory_mib, **boot))

    def baseline(self, parallel_per_host=1):
        """Seconds to start all guests paused with plain libvirt-python, one thread per host
        (parallel_per_host threads within a host); then destroys them (not timed)."""
        by_host = {}
        for hv, name in self.placement:
            by_host.setdefault(hv, []).append(name)
        errors = []
        # one connection per worker, opened before the clock starts
        workers = []
        for hv, names in by_host.items():
            for k in range(parallel_per_host):
                workers.append((libvirt.open(hv.uri_unix), names[k::parallel_per_host]))

        def start_all(conn, names):
            try:
                for name in names:
                    conn.lookupByName(name).createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
            except libvirt.libvirtError as exc:  # reported below
                errors.append(str(exc))

        threads = [threading.Thread(target=start_all, args=w) for w in workers]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - t0
        for conn, dummy in workers:
            conn.close()
        self.fleet.destroy_all(self.placement)
        if errors:
            raise RuntimeError('baseline start failed: %s' % '; '.join(errors[:3]))
        return seconds


def ansible_env(work, timing_out):
    env = e2e.ansible_env(work)
    env.update(ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, 'callback_plugins'),
               ANSIBLE_CALLBACKS_ENABLED='fleet_timing', FLEET_TIMING_OUT=timing_out,
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.minimal', ANSIBLE_DISPLAY_SKIPPED_HOSTS='0')
    return env


def run_play(case, path, run_dir, together):
    """One ansible-playbook run of the role on the case's hosts; returns a dict of figures."""
    os.makedirs(run_dir)
    for sub in ('home', 'tmp', 'remote-tmp'):
        os.makedirs(os.path.join(run_dir, sub))
    state_dir = os.path.join(run_dir, 'state')
    guests = {}
    for hv, name in case.placement:
        guests.setdefault(hv.hostname, []).append({'domain': name})
    host_vars = {hv.hostname: dict(e2e.lab_root_vars(hv), sev_launch_guests=guests[hv.hostname])
                 for hv in case.hosts()}
    inv = e2e.inventory(os.path.join(run_dir, 'inventory.json'), case.hosts(), host_vars)
    play_vars = {'sev_launch_state_dir': state_dir, 'sev_launch_policy': POLICY,
                 'sev_launch_firmware': case.inputs.firmware, 'sev_launch_resume': False,
                 'sev_launch_secrets': [{'guid': 'luks-key', 'path': case.inputs.key}]}
    if case.boot:
        play_vars.update(sev_launch_kernel=case.inputs.kernel, sev_launch_initrd=case.inputs.initrd,
                         sev_launch_cmdline=case.inputs.cmdline)
    if together:
        play_vars['sev_launch_together'] = True
    play = [{'name': 'fleet benchmark (%s, %s)' % (case.label, path), 'hosts': 'all', 'gather_facts': False,
             'strategy': case.strategy, 'vars': play_vars, 'roles': [{'role': 'confidential.sev.sev_launch'}]}]
    site = os.path.join(run_dir, 'site.yml')
    with open(site, 'w', encoding='utf-8') as f:
        json.dump(play, f, indent=1)
    timing_out = os.path.join(run_dir, 'timing.json')
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inv, site,
            '--forks', str(max(5, len(case.hosts())))]
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=run_dir, env=ansible_env(run_dir, timing_out), capture_output=True,
                          text=True, check=False, timeout=3600)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError('ansible-playbook (%s, %s) exited %d:\n%s\n%s' % (
            case.label, path, proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:]))
    # every guest launched, validated and got its secret (left paused)
    not_ok = []
    for hv, name in case.placement:
        uuid = case.fleet.conn(hv).lookupByName(name).UUIDString()
        rec = e2e.controller_record(state_dir, hv.hostname, uuid)
        if not rec or rec.get('stage') != 'injected' or rec.get('failed'):
            not_ok.append('%s on %s: %s' % (name, hv.hostname, rec and (rec.get('stage'), rec.get('failed'))))
        elif case.fleet.conn(hv).lookupByName(name).state()[0] != libvirt.VIR_DOMAIN_PAUSED:
            not_ok.append('%s on %s is not paused' % (name, hv.hostname))
    if not_ok:
        raise RuntimeError('%d guests not launched as expected: %s' % (len(not_ok), '; '.join(not_ok[:5])))
    with open(timing_out, encoding='utf-8') as f:
        timing = json.load(f)
    return dict(wall=wall, **split_tasks(timing, case.n))


def split_tasks(timing, n):
    """Per-action totals, attestation time scaled to wall, and digest-cache statistics."""
    entries = [e for e in timing['entries'] if e.get('start') is not None]
    total = sum(e['end'] - e['start'] for e in entries)
    first = min((e['start'] for e in entries), default=timing['t0'])
    last = max((e['end'] for e in entries), default=timing['end'])
    span = max(last - first, 1e-9)
    concurrency = total / span if total else 1.0
    by_action = {}
    for e in entries:
        agg = by_action.setdefault(e['action'], {'count': 0, 'seconds': 0.0})
        agg['count'] += 1
        agg['seconds'] += e['end'] - e['start']
    attest = sum(e['end'] - e['start'] for e in entries if e['action'] in ATTEST_ACTIONS)
    hashed, hits, misses, reported = 0, 0, 0, False
    for e in entries:
        caches = [e['digest_cache']] if 'digest_cache' in e else e.get('item_digest_cache') or []
        for cache in caches:
            reported = True
            hashed += cache.get('hashed_bytes') or 0
            hits += cache.get('hits') or 0
            misses += cache.get('misses') or 0
    return {'tasks': len(entries), 'tasks_per_guest': len(entries) / n, 'task_seconds': total,
            'concurrency': concurrency, 'attest_seconds': attest, 'attest_wall': attest / concurrency,
            'batch_tasks': sum(1 for e in entries if e['action'] == BATCH_ACTION),
            'by_action': by_action,
            'digest_cache': {'reported': reported, 'hashed_bytes': hashed, 'hits': hits, 'misses': misses}}


def measure_rss(fleet, inputs, hv, sessions, boot, memory_mib, count=2):
    """Median QEMU VmRSS (MiB) of ``count`` paused guests, started the way the cases start them."""
    placement = [(hv, e2e.unique('fleet-rss')) for dummy in range(count)]
    case = Case('rss', 'rss', fleet, inputs, placement, boot=boot, memory_mib=memory_mib)
    case.define(sessions)
    rss = []
    try:
        for dummy, name in placement:
            fleet.conn(hv).lookupByName(name).createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        time.sleep(1.0)
        for dummy, name in placement:
            pid = e2e.qemu_pid(hv, name)
            rss.append(vm_rss_mib(pid) if pid else 0.0)
    finally:
        fleet.undefine(placement)
    return statistics.median(rss)


def module_round_trip(fleet, work, tasks=12):
    """Seconds per trivial module task on one emulated host (ansible.builtin.ping over ssh, pipelining)."""
    hv = fleet.hvs[0]
    run_dir = os.path.join(work, 'calibrate')
    for sub in ('home', 'tmp', 'remote-tmp'):
        os.makedirs(os.path.join(run_dir, sub))
    inv = e2e.inventory(os.path.join(run_dir, 'inventory.json'), [hv])
    play = [{'name': 'calibrate', 'hosts': 'all', 'gather_facts': False,
             'tasks': [{'name': 'ping %d' % k, 'ansible.builtin.ping': {}} for k in range(tasks)]}]
    site = os.path.join(run_dir, 'site.yml')
    with open(site, 'w', encoding='utf-8') as f:
        json.dump(play, f)
    timing_out = os.path.join(run_dir, 'timing.json')
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inv, site],
                          cwd=run_dir, env=ansible_env(run_dir, timing_out), capture_output=True, text=True,
                          check=False, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError('calibration play failed: %s' % proc.stdout[-3000:])
    with open(timing_out, encoding='utf-8') as f:
        entries = json.load(f)['entries']
    # the first task opens the ssh connection: leave it out
    return statistics.median(e['end'] - e['start'] for e in entries[1:])


def median(values):
    return statistics.median(values) if values else None


def summarize(results):
    """Median over runs of each figure of one (case, path)."""
    runs = results['runs']
    n = results['n']
    keys = ('wall', 'baseline', 'attest_wall', 'tasks_per_guest', 'concurrency')
    out = {k: median([r[k] for r in runs]) for k in keys}
    shares = [(r['wall'] - r['baseline']) / n for r in runs]
    out['share'] = median(shares)
    out['wall_per_guest'] = out['wall'] / n
    out['qemu_per_guest'] = out['baseline'] / n
    out['attest_per_guest'] = out['attest_wall'] / n
    out['ansible_per_guest'] = out['share'] - out['attest_per_guest']
    out['digest_cache'] = runs[-1]['digest_cache']
    out['runs'] = len(runs)
    out['shares'] = shares
    return out


def estimate_together_attestation(summary):
    """The together path validates inside its one batch task: its attestation per guest is estimated from
    the per-guest path of the same case (its sev_session + sev_measurement_validate task time per guest,
    minus the cost of as many trivial controller-side tasks: the median sev_launch_record task)."""
    for key, s in summary.items():
        if s['path'] != 'together':
            continue
        ref = summary.get(key[:-len('together')] + 'per-guest')
        if not ref:
            continue
        acts = ref['by_action']
        attest = sum(acts.get(a, {}).get('seconds', 0.0) for a in ATTEST_ACTIONS)
        count = sum(acts.get(a, {}).get('count', 0) for a in ATTEST_ACTIONS)
        rec = acts.get('confidential.sev.sev_launch_record')
        overhead = rec['seconds'] / rec['count'] if rec and rec['count'] else 0.0
        s['attest_per_guest'] = max(0.0, (attest - count * overhead) / ref['n'])
        s['attest_estimated'] = True
        s['ansible_per_guest'] = s['share'] - s['attest_per_guest']


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--sizes', default='10,50,100',
                        help='guest counts (comma-separated; sizes the memory cannot hold are dropped, '
                        'and said so); default 10,50,100')
    parser.add_argument('--runs', type=int, default=3, help='runs per case (median; at least 3 unless --quick)')
    parser.add_argument('--quick', action='store_true',
                        help='one run, sizes 10, initrd case with 3 guests: a smoke run, not for figures')
    parser.add_argument('--paths', default='auto',
                        help='per-guest, together or both (comma-separated); auto: both when the role has '
                        'sev_launch_together, else per-guest')
    parser.add_argument('--cases', default='one,three,initrd', help='one, three, initrd (comma-separated)')
    parser.add_argument('--three-strategy', default='free', choices=('free', 'linear'),
                        help='play strategy of the three-host case (default free, as docs/scale.md advises)')
    parser.add_argument('--initrd-mib', type=int, default=512)
    parser.add_argument('--initrd-guests', type=int, default=10,
                        help='guests of the initrd case (lowered if the memory cannot hold them)')
    parser.add_argument('--memory-fraction', type=float, default=0.5,
                        help='share of MemAvailable the guests may use (the machine is shared)')
    parser.add_argument('--json', default=None, help='write the figures here (default WORKDIR/../fleet.json)')
    parser.add_argument('--workdir', default=os.environ.get('FLEET_WORKDIR'),
                        help='parent of the temporary work directory (default /var/tmp)')
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 1
        args.sizes = '10' if args.sizes == '10,50,100' else args.sizes
        args.initrd_guests = min(args.initrd_guests, 3)
    elif args.runs < 3:
        parser.error('--runs must be at least 3 (the goals are medians of >= 3 runs); use --quick for one')
    try:
        args.sizes = sorted({int(s) for s in args.sizes.split(',') if s.strip()})
    except ValueError:
        parser.error('--sizes must be comma-separated integers: %r' % args.sizes)
    if not args.sizes or min(args.sizes) < 1:
        parser.error('--sizes must be positive integers')
    args.cases = [c.strip() for c in args.cases.split(',') if c.strip()]
    bad = [c for c in args.cases if c not in ('one', 'three', 'initrd')]
    if bad:
        parser.error('--cases: unknown %s (one, three, initrd)' % ', '.join(bad))
    if args.paths == 'auto':
        args.paths = ['per-guest', 'together'] if role_has_together() else ['per-guest']
    else:
        args.paths = [p.strip() for p in args.paths.split(',') if p.strip()]
        bad = [p for p in args.paths if p not in ('per-guest', 'together')]
        if bad:
            parser.error('--paths: unknown %s (per-guest, together)' % ', '.join(bad))
        if 'together' in args.paths and not role_has_together():
            parser.error('--paths together: the role has no sev_launch_together yet')
    return args


def fmt(value, spec='%.3f'):
    return '-' if value is None else spec % value


def report(meta, summary):
    """The printed table and the goals (stdout)."""
    lines = ['confidential.sev fleet benchmark (issue 11)',
             '  host      %s' % meta['host'],
             '  guests    plain SEV (policy 0x3), 1 vCPU, %d MiB, fresh session per launch, 1 secret, left paused'
             % meta['memory_mib'],
             '  memory    QEMU RSS per paused guest %.0f MiB (%s MiB with the %d MiB initrd); MemAvailable '
             '%d MiB at start; sizes run: %s%s' % (
                 meta['rss_mib'], fmt(meta['rss_initrd_mib'], '%.0f'), meta['initrd_mib'], meta['mem_available_mib'],
                 meta['sizes'], ('; dropped: %s' % meta['dropped']) if meta['dropped'] else ''),
             '  method    share = (play wall - plain-libvirt paused start of the same guests) / N; median of %d '
             'run(s)' % meta['runs'],
             '  load      load average %.1f at start, %.1f at end (2 CPUs shared with other work: figures are noisy)'
             % (meta['loadavg_start'][0], meta['loadavg_end'][0]),
             '  calibr.   one trivial module task (ping over ssh, pipelining) on one host: %.3f s'
             % meta['module_round_trip'],
             '',
             '%-24s %-9s %4s %8s %8s | %8s %8s %8s %8s %6s' % (
                 'case', 'path', 'N', 'play s', 'qemu s', 'wall/g', 'qemu/g', 'share/g', 'attest/g',
                 'tasks/g'),
             '-' * 110]
    for key, s in summary.items():
        lines.append('%-24s %-9s %4d %8.1f %8.1f | %8.3f %8.3f %8.3f %8.3f%s %6.2f   (ansible/g %.3f)' % (
            s['label'], s['path'], s['n'], s['wall'], s['baseline'], s['wall_per_guest'], s['qemu_per_guest'],
            s['share'], s['attest_per_guest'], '*' if s.get('attest_estimated') else ' ', s['tasks_per_guest'],
            s['ansible_per_guest']))
    if any(s.get('attest_estimated') for s in summary.values()):
        lines.append('* together: attestation runs inside the one sev_launch_batch task; estimated from the '
                     'per-guest path\'s session + validation tasks minus their task overhead')
    lines.append('')
    lines.append('initrd (%d MiB, shared by all guests of the case)' % meta['initrd_mib'])
    for key, s in summary.items():
        if s['case'] != 'initrd':
            continue
        ref = summary.get('one-%d-%s' % (s['n'], s['path']))
        cost = s['share'] - ref['share'] if ref else None
        s['initrd_cost_per_guest'] = cost
        cache = s['digest_cache']
        hashed = ('%d bytes = %.1f x the initrd (hits %d, misses %d)' % (
            cache['hashed_bytes'], cache['hashed_bytes'] / (meta['initrd_mib'] * MIB), cache['hits'],
            cache['misses'])) if cache['reported'] else 'not reported (no digest_cache in the results)'
        lines.append('  %-9s N=%-3d initrd cost per guest %s s (share %.3f vs %s without initrd); hashed: %s' % (
            s['path'], s['n'], fmt(cost), s['share'], fmt(ref and ref['share']), hashed))
    lines.append('')
    lines.append('goal / figure                                                   measured     goal    result')
    lines.append('-' * 96)
    goals = []
    for path in meta['paths']:
        s = summary.get('one-50-%s' % path)
        if s:
            goals.append(('share per guest, 50 guests, one host (%s)' % path, s['share'], GOAL_SHARE))
            goals.append(('  moonshot (%s)' % path, s['share'], MOONSHOT_SHARE))
        ini = [v for v in summary.values() if v['case'] == 'initrd' and v['path'] == path
               and v.get('initrd_cost_per_guest') is not None]
        if ini:
            goals.append(('initrd cost per guest, N=%d (%s)' % (ini[0]['n'], path),
                          ini[0]['initrd_cost_per_guest'], GOAL_INITRD))
    for what, value, goal in goals:
        result = 'PASS' if value <= goal else 'FAIL'
        lines.append('%-62s %7.3f s  <= %.2f s  %s' % (what, value, goal, result))
        meta.setdefault('goals', []).append({'what': what.strip(), 'measured': value, 'goal': goal,
                                             'result': result})
    if not goals:
        lines.append('(no 50-guest one-host case in this run: the goals are not graded)')
    return '\n'.join(lines)


def host_description():
    cpu = 'unknown CPU'
    try:
        with open('/proc/cpuinfo', encoding='ascii', errors='replace') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return '%s, %d CPUs, %d MiB RAM; Python %s; %s' % (
        cpu, os.cpu_count(), os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // MIB,
        platform.python_version(), platform.platform())


def _interrupt(_signum, _frame):
    # SIGTERM (and SIGINT, which a shell's background job inherits as ignored) -> KeyboardInterrupt:
    # the finally clause of main() still undefines the guests and stops the hypervisors it started
    raise KeyboardInterrupt('signal')


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    if os.geteuid() != 0:
        sys.stderr.write('benchmarks/fleet.py needs root (emulated hypervisors: namespaces, veth)\n')
        return 1
    parent = args.workdir or '/var/tmp'
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix='confidential-sev-fleet-', dir=parent)
    json_path = args.json or os.path.join(parent, 'confidential-sev-fleet.json')
    progress('work directory %s' % work)
    t_start = time.monotonic()
    fleet = Fleet(work, 3 if 'three' in args.cases else 1)
    summary, meta = {}, {}
    try:
        fleet.start()
        inputs = Inputs(work, args.initrd_mib)
        sessions = {hv.hostname: e2e.premade_session(hv.node_sev()['pdh'], POLICY, inputs.dir,
                                                     'baseline-' + hv.hostname) for hv in fleet.hvs}
        hv1 = fleet.hvs[0]
        available = mem_available_mib()
        rss = measure_rss(fleet, inputs, hv1, sessions, boot=False, memory_mib=256)
        progress('QEMU RSS per paused guest: %.0f MiB; MemAvailable %d MiB' % (rss, available))
        budget = available * args.memory_fraction
        sizes = [n for n in args.sizes if n * rss <= budget]
        dropped = [n for n in args.sizes if n not in sizes]
        if dropped:
            progress('dropping sizes %s: %d guests x %.0f MiB > %.0f MiB budget' % (
                dropped, max(dropped), rss, budget))
        rss_initrd, n_initrd = None, 0
        if 'initrd' in args.cases:
            inputs.make_boot_files()
            rss_initrd = measure_rss(fleet, inputs, hv1, sessions, boot=True, memory_mib=1024, count=1)
            n_initrd = max(1, min(args.initrd_guests, int(budget // max(rss_initrd, 1))))
            progress('QEMU RSS per paused guest with the %d MiB initrd: %.0f MiB -> %d guests' % (
                args.initrd_mib, rss_initrd, n_initrd))
            if n_initrd not in sizes and 'one' in args.cases:
                sizes = sorted(set(sizes) | {n_initrd})   # its no-initrd reference
        round_trip = module_round_trip(fleet, work)
        progress('trivial module task: %.3f s' % round_trip)
        meta = {'host': host_description(), 'loadavg_start': os.getloadavg(), 'memory_mib': 256, 'rss_mib': rss,
                'rss_initrd_mib': rss_initrd,
                'initrd_mib': args.initrd_mib, 'initrd_guests': n_initrd, 'mem_available_mib': available,
                'sizes': sizes, 'dropped': dropped, 'runs': args.runs, 'paths': args.paths,
                'module_round_trip': round_trip, 'together_in_role': role_has_together(),
                'three_strategy': args.three_strategy}
        cases = []
        for n in sizes:
            if 'one' in args.cases:
                cases.append(Case('one-%d' % n, 'one host, %d guests' % n, fleet, inputs,
                                  [(hv1, 'fl1-%03d' % k) for k in range(n)]))
            if 'three' in args.cases and n >= 3:
                # strategy free: under the default linear strategy the hosts' per-guest includes are
                # different task objects, and linear runs hosts in lockstep only on the same task, so
                # the three hosts' launches run one host after another (docs/scale.md)
                cases.append(Case('three-%d' % n, 'three hosts, %d guests' % n, fleet, inputs,
                                  [(fleet.hvs[k % 3], 'fl3-%03d' % k) for k in range(n)],
                                  strategy=args.three_strategy))
        if n_initrd:
            cases.append(Case('initrd-%d' % n_initrd, 'one host, %d, initrd' % n_initrd, fleet, inputs,
                              [(hv1, 'fli-%03d' % k) for k in range(n_initrd)], boot=True, memory_mib=1024))
        for case in cases:
            case.define(sessions)
            try:
                for path in args.paths:
                    key = '%s-%s' % (case.key, path)
                    res = {'case': case.key.split('-')[0], 'label': case.label, 'path': path, 'n': case.n,
                           'runs': []}
                    for run in range(args.runs):
                        baseline = case.baseline()
                        progress('%s %s run %d: baseline %.1fs' % (case.label, path, run + 1, baseline))
                        figures = run_play(case, path, os.path.join(work, '%s-r%d' % (key, run)),
                                           together=(path == 'together'))
                        figures['baseline'] = baseline
                        res['runs'].append(figures)
                        progress('%s %s run %d: play %.1fs, share %.3f s/guest' % (
                            case.label, path, run + 1, figures['wall'], (figures['wall'] - baseline) / case.n))
                        fleet.destroy_all(case.placement)
                    summary[key] = dict(summarize(res), case=res['case'], label=case.label, path=path, n=case.n,
                                        by_action=res['runs'][-1]['by_action'])
            finally:
                fleet.undefine(case.placement)
        meta['loadavg_end'] = os.getloadavg()
        estimate_together_attestation(summary)
        text = report(meta, summary)
        sys.stdout.write(text + '\n')
        meta['seconds'] = time.monotonic() - t_start
        with open(json_path, 'w', encoding='utf-8') as f:
            json.dump({'meta': meta, 'cases': summary}, f, indent=1, sort_keys=True)
        sys.stdout.write('(figures written to %s; benchmark took %.0f s; exit code 0 regardless of the goals)\n'
                         % (json_path, meta['seconds']))
        return 0
    except (RuntimeError, HarnessError, libvirt.libvirtError, OSError, subprocess.SubprocessError) as exc:
        sys.stderr.write('fleet benchmark could not measure: %s\n' % exc)
        return 1
    except KeyboardInterrupt:
        sys.stderr.write('fleet benchmark interrupted: stopping what it started\n')
        return 1
    finally:
        problems = fleet.stop()
        for problem in problems:
            sys.stderr.write('stopping: %s\n' % problem)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the validation engine against the hashing limit and the reference tool.

A benchmark, not a test: it prints a table, ratios and PASS/FAIL against the
targets, and always exits 0 once it has produced numbers.  Run it through
``scripts/benchmark.sh`` (project venv, PYTHONPATH=build).  See
benchmarks/README.md for the method.

The case: 4 MiB synthetic firmware with a usable SEV hash table, 16 MiB
kernel, 512 MiB initrd (random bytes), a cmdline, plain SEV policy with
measured direct boot, one secret.  Inputs are generated once into the work
directory ($BENCH_WORKDIR, else $TMPDIR/confidential-sev-bench) and reused.

This file is also its own child process (``--child MODE``): the engine is
measured in fresh interpreters so that timings and memory figures do not
depend on what the parent did.
"""

from __future__ import annotations

import os
import sys
import time

MIB = 1 << 20
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = 'ansible_collections.confidential.sev.plugins.module_utils'


# --------------------------------------------------------------------------
# /proc helpers (shared by parent and children)
# --------------------------------------------------------------------------

def proc_status_kib(field):
    """VmRSS / VmHWM etc. of this process, in KiB."""
    with open('/proc/self/status') as stream:
        for line in stream:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        with open('/proc/self/clear_refs', 'w') as stream:
            stream.write('5')
    except OSError:
        return False
    return proc_status_kib('VmHWM') <= proc_status_kib('VmRSS') + 64


# --------------------------------------------------------------------------
# Child processes: kept at the top and light on imports
# --------------------------------------------------------------------------

def child_main(mode, params_path, repeat):
    """Run in a fresh interpreter; print one JSON object on stdout."""
    import json
    started = time.perf_counter()
    import importlib
    validate_options = importlib.import_module(ENGINE + '.validate_options')
    files = importlib.import_module(ENGINE + '.sev.files')
    import_seconds = time.perf_counter() - started
    with open(params_path) as stream:
        params = json.load(stream)
    out = {'mode': mode, 'import_s': import_seconds}

    def run():
        # A fresh dict each time: the engine must not depend on mutations.
        result = validate_options.run_validation(dict(params), files.read_small_file)
        if not result.get('valid'):
            raise SystemExit('engine did not validate: %s' % {k: result.get(k) for k in
                                                              ('reason', 'rc', 'msg', 'digests')})
        return result

    if mode == 'imports':
        out.update(rss_kib=proc_status_kib('VmRSS'), hwm_kib=proc_status_kib('VmHWM'))
    elif mode == 'one':
        import gc
        gc.collect()
        hwm_imports = proc_status_kib('VmHWM')
        rss_before = proc_status_kib('VmRSS')
        reset_ok = reset_peak_rss()
        rss_before = min(rss_before, proc_status_kib('VmRSS'))
        t0 = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - t0
        hwm_after = proc_status_kib('VmHWM')
        out.update(validate_s=seconds, rss_before_kib=rss_before, hwm_imports_kib=hwm_imports,
                   hwm_reset=reset_ok, hwm_after_kib=hwm_after,
                   rss_after_kib=proc_status_kib('VmRSS'),
                   # With a working reset this is exact; without it, VmHWM also
                   # covers the import phase, so the figure can only be too high.
                   extra_kib=hwm_after - rss_before,
                   launch_digest=result['launch_digest'], sizes=result['sizes'],
                   digests=result['digests'], secret_guids=result['secret_guids'],
                   has_secret=bool(result.get('secret_header')), warnings=result['warnings'])
    elif mode == 'loop':
        import hashlib
        run()  # warm-up: first-use costs (lazy imports, OpenSSL cipher init) are not counted
        times = []
        for dummy in range(repeat):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        # Floor for Python: hashlib over the same bytes, one thread, sequential,
        # the same 1 MiB readinto loop the engine uses.
        buffer = bytearray(MIB)
        view = memoryview(buffer)
        floor = []
        for dummy in range(repeat):
            t0 = time.perf_counter()
            for name in ('firmware', 'kernel', 'initrd'):
                hasher = hashlib.sha256()
                with open(params[name], 'rb', buffering=0) as stream:
                    while True:
                        count = stream.readinto(buffer)
                        if not count:
                            break
                        hasher.update(view[:count])
            floor.append(time.perf_counter() - t0)
        out.update(validate_s=times, hashlib_seq_s=floor)
    else:
        raise SystemExit('unknown child mode %r' % mode)
    print(json.dumps(out))


if __name__ == '__main__' and len(sys.argv) > 1 and sys.argv[1] == '--child':
    child_main(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    sys.exit(0)


# --------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------

import argparse  # noqa: E402
import base64  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import ssl  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

REFERENCE = ['/usr/bin/python3', '/usr/bin/virt-qemu-sev-validate']
OPENSSL = shutil.which('openssl') or '/usr/bin/openssl'
API_MAJOR, API_MINOR, BUILD_ID = 1, 55, 21
POLICY = 0x3  # NODBG | NOKS: plain SEV (no ES bit)
CMDLINE = 'console=ttyS0 root=/dev/vda1 ro quiet loglevel=3 systemd.show_status=false'
SECRET_ALIAS = 'luks-key'
GENERATOR_VERSION = 1

TARGET_VS_OPENSSL = 1.15
TARGET_VS_REFERENCE = 1.0
TARGET_EXTRA_MIB = 64.0
# "Independent of file size": doubling (or more) the initrd may move the
# engine's extra memory by allocator noise only, far below what reading the
# file would cost.
TOLERANCE_GROWTH_MIB = 4.0


def log(message):
    print('[bench] %s' % message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- imports --

def ensure_importable(workdir):
    """Make ``ansible_collections.confidential.sev`` importable here and in children.

    Prefer build/ (scripts/setup.sh's symlink); else a private symlink tree
    in the work directory, never touching the repository outside benchmarks/.
    """
    candidates = [os.path.join(REPO, 'build')] + [p for p in sys.path if p]
    for root in candidates:
        link = os.path.join(root, 'ansible_collections', 'confidential', 'sev')
        if os.path.isdir(link) and os.path.samefile(link, REPO):
            break
    else:
        root = os.path.join(workdir, 'collections')
        link = os.path.join(root, 'ansible_collections', 'confidential', 'sev')
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.islink(link):
            os.symlink(REPO, link)
    if root not in sys.path:
        sys.path.insert(0, root)
    parts = [root] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p and p != root]
    os.environ['PYTHONPATH'] = os.pathsep.join(parts)
    return root


# ------------------------------------------------------------------ inputs --

def write_random(path, size, seed):
    """``size`` random bytes (os.urandom; ``seed`` only names the file's purpose)."""
    del seed
    temp = path + '.part'
    with open(temp, 'wb') as stream:
        left = size
        while left:
            chunk = min(left, 8 * MIB)
            stream.write(os.urandom(chunk))
            left -= chunk
    os.replace(temp, path)


def prepare_inputs(workdir, initrd_mib, big_mib, big_real):
    """Generate the case once; reuse files whose size (and generator version) match."""
    firmware_mod = importlib.import_module('ansible_collections.confidential.sev.tests.support.firmware')
    os.makedirs(workdir, exist_ok=True)
    manifest_path = os.path.join(workdir, 'manifest.json')
    try:
        with open(manifest_path) as stream:
            manifest = json.load(stream)
    except (OSError, ValueError):
        manifest = {}
    if manifest.get('version') != GENERATOR_VERSION:
        manifest = {'version': GENERATOR_VERSION, 'files': {}}

    def path(name):
        return os.path.join(workdir, name)

    wanted = {
        'firmware.fd': 4 * MIB,
        'vmlinuz': 16 * MIB,
        'initrd-%dM.img' % initrd_mib: initrd_mib * MIB,
        'initrd-%dM-%s.img' % (big_mib, 'real' if big_real else 'sparse'): big_mib * MIB,
        'tik.bin': 16, 'tek.bin': 16, 'secret.bin': 32,
    }
    generated = []
    for name, size in wanted.items():
        full = path(name)
        if manifest['files'].get(name) == size and os.path.isfile(full) and os.path.getsize(full) == size:
            continue
        t0 = time.perf_counter()
        if name == 'firmware.fd':
            rng = random.Random(0x5e7)
            fill = rng.randbytes(64 * 1024)
            footer = len(firmware_mod.build_image(body_size=0))
            image = firmware_mod.build_image(body_size=size - footer, fill=fill)
            assert len(image) == size
            with open(full, 'wb') as stream:
                stream.write(image)
        elif name.endswith('-sparse.img'):
            with open(full, 'wb') as stream:
                stream.truncate(size)
        elif name.endswith('.bin'):
            data = os.urandom(size)
            while not any(data):  # an all-zero TIK/TEK is refused (insecure)
                data = os.urandom(size)
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, 'wb') as stream:
                stream.write(data)
        else:
            write_random(full, size, name)
        manifest['files'][name] = size
        generated.append('%s (%.1f s)' % (name, time.perf_counter() - t0))
    with open(manifest_path, 'w') as stream:
        json.dump(manifest, stream, indent=1)
    if generated:
        # Write back now: background writeback of fresh dirty pages would
        # compete with the runs below (wall time far above CPU time).
        t0 = time.perf_counter()
        os.sync()
        log('generated: %s; sync %.1f s' % (', '.join(generated), time.perf_counter() - t0))
    else:
        log('reusing inputs in %s' % workdir)
    names = list(wanted)
    return dict(firmware=path(names[0]), kernel=path(names[1]), initrd=path(names[2]),
                big_initrd=path(names[3]), tik=path('tik.bin'), tek=path('tek.bin'),
                secret=path('secret.bin'))


def warm_cache(paths):
    """Read every file once, so all runs see a warm page cache."""
    buffer = bytearray(8 * MIB)
    total = 0
    t0 = time.perf_counter()
    for name in paths:
        with open(name, 'rb', buffering=0) as stream:
            while True:
                count = stream.readinto(buffer)
                if not count:
                    break
                total += count
    return total, time.perf_counter() - t0


# ------------------------------------------------------------ subprocesses --

class Run:
    def __init__(self, rc, wall, maxrss_kib, cpu, stdout, stderr):
        self.rc, self.wall, self.maxrss_kib, self.cpu = rc, wall, maxrss_kib, cpu
        self.stdout, self.stderr = stdout, stderr


GNU_TIME = '/usr/bin/time'


def gnu_time_available():
    try:
        out = subprocess.run([GNU_TIME, '--version'], capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return 'GNU' in out.stdout + out.stderr


HAVE_GNU_TIME = gnu_time_available()


def run_child(argv, shell=False):
    """Run to completion: wall time, max RSS (KiB) and CPU time of the command.

    Max RSS comes from GNU time, which forks the command from its own small
    process.  wait4() on a direct child of this Python process is no good:
    Linux carries the forking process's peak RSS (``hiwater_rss`` of the mm
    replaced at exec) into the child's ru_maxrss, so every child would show
    at least this process's peak (~40 MiB here).  Without GNU time that
    floored figure is all there is, and the report says so.
    """
    if shell:
        argv = ['/bin/sh', '-c', argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile('r', suffix='.time') as usage_file:
        if HAVE_GNU_TIME:
            argv = [GNU_TIME, '-q', '-o', usage_file.name, '-f', '%M %U %S'] + list(argv)
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        dummy, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        maxrss, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        if HAVE_GNU_TIME:
            fields = usage_file.read().split()
            maxrss, cpu = int(fields[-3]), float(fields[-2]) + float(fields[-1])
        out.seek(0)
        err.seek(0)
        return Run(proc.returncode, wall, maxrss, cpu,
                   out.read().decode('utf-8', 'replace'), err.read().decode('utf-8', 'replace'))


def reference_argv(inputs, initrd, measurement, outdir, debug=False):
    argv = REFERENCE + ([] if not debug else ['--debug']) + [
        '--quiet', '--measurement', measurement,
        '--api-major', str(API_MAJOR), '--api-minor', str(API_MINOR), '--build-id', str(BUILD_ID),
        '--policy', str(POLICY), '--firmware', inputs['firmware'], '--kernel', inputs['kernel'],
        '--initrd', initrd, '--cmdline', CMDLINE, '--tik', inputs['tik'], '--tek', inputs['tek'],
        '--inject-secret', '%s:%s' % (SECRET_ALIAS, inputs['secret']),
        '--secret-header', os.path.join(outdir, 'secret-header.b64'),
        '--secret-payload', os.path.join(outdir, 'secret-payload.b64')]
    return argv


def reference_measurement(inputs, initrd, outdir):
    """A valid measurement blob: the reference tool's computed MEASURE || our MNONCE.

    Runs virt-qemu-sev-validate --debug with a zero MEASURE; it logs the MAC
    it computes (and the launch digest) before refusing the mismatch.
    """
    mnonce = os.urandom(16)
    zero_measure = base64.b64encode(bytes(32) + mnonce).decode('ascii')
    run = run_child(reference_argv(inputs, initrd, zero_measure, outdir, debug=True))
    computed = re.search(r'Measurement computed\(hex\): ([0-9a-f]{64})', run.stderr)
    digest = re.search(r'Measured-data\(sha256\): ([0-9a-f]{64})', run.stderr)
    if computed is None or digest is None:
        raise SystemExit('virt-qemu-sev-validate --debug did not print the computed measurement '
                         '(rc %d):\n%s' % (run.rc, run.stderr[-2000:]))
    blob = base64.b64encode(bytes.fromhex(computed.group(1)) + mnonce).decode('ascii')
    return blob, digest.group(1), run


def engine_params(inputs, initrd, measurement):
    spec = importlib.import_module(ENGINE + '.validate_options').ARGUMENT_SPEC
    params = {name: option.get('default') for name, option in spec.items()}
    params.update(measurement=measurement, api_major=API_MAJOR, api_minor=API_MINOR,
                  build_id=BUILD_ID, policy=POLICY, firmware=inputs['firmware'],
                  kernel=inputs['kernel'], initrd=initrd, cmdline=CMDLINE,
                  tik=inputs['tik'], tek=inputs['tek'],
                  secrets=[{'guid': SECRET_ALIAS, 'path': inputs['secret']}])
    return params


def engine_child(python, mode, params_path, repeat=1):
    run = run_child([python, os.path.abspath(__file__), '--child', mode, params_path, str(repeat)])
    if run.rc != 0:
        raise SystemExit('engine child (%s) failed with rc %d:\n%s%s'
                         % (mode, run.rc, run.stdout[-2000:], run.stderr[-4000:]))
    return run, json.loads(run.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------- report ---

def med(values):
    return statistics.median(values)


def fmt_s(values):
    return '%7.3f s %7.3f %7.3f' % (med(values), min(values), max(values))


def mib(kib):
    return kib / 1024.0


def verdict(ok):
    return 'PASS' if ok else 'FAIL'


def cpu_description():
    model, flags = platform.processor() or '?', set()
    try:
        with open('/proc/cpuinfo') as stream:
            for line in stream:
                if line.startswith('model name') and model in ('?', 'x86_64', ''):
                    model = line.split(':', 1)[1].strip()
                elif line.startswith('flags'):
                    flags = set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return '%s, %d CPUs, sha_ni=%s, avx2=%s' % (
        model, os.cpu_count() or 0, 'yes' if 'sha_ni' in flags else 'no',
        'yes' if 'avx2' in flags else 'no')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    # Outside the repository by default: galaxy.yml's build_ignore does not
    # know about benchmark inputs, and 1.5 GiB must never end up in a tarball.
    parser.add_argument('--workdir', default=os.environ.get('BENCH_WORKDIR') or
                        os.path.join(tempfile.gettempdir(), 'confidential-sev-bench'),
                        help='where inputs are generated and kept (default $BENCH_WORKDIR, '
                        'else $TMPDIR/confidential-sev-bench)')
    parser.add_argument('--repeat', type=int, default=5, help='repetitions per measurement (>= 3; median)')
    parser.add_argument('--initrd-mib', type=int, default=512)
    parser.add_argument('--big-initrd-mib', type=int, default=1024,
                        help='initrd size for the memory-independence run')
    parser.add_argument('--big-real', action='store_true',
                        help='random bytes for the big initrd instead of a sparse file')
    parser.add_argument('--json', metavar='PATH', help='also write all raw numbers here')
    args = parser.parse_args()
    if args.repeat < 3:
        parser.error('--repeat must be at least 3')
    started = time.perf_counter()
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    ensure_importable(workdir)
    python = sys.executable
    n = args.repeat

    for tool in (REFERENCE[0], REFERENCE[1], OPENSSL):
        if not os.path.exists(tool):
            raise SystemExit('missing %s' % tool)

    # 1. Inputs and a warm page cache.
    inputs = prepare_inputs(workdir, args.initrd_mib, args.big_initrd_mib, args.big_real)
    outdir = os.path.join(workdir, 'out')
    os.makedirs(outdir, exist_ok=True)
    size_bytes, warm_s = warm_cache([inputs[k] for k in ('firmware', 'kernel', 'initrd', 'big_initrd')])
    log('page cache warmed: %.0f MiB read in %.2f s' % (size_bytes / MIB, warm_s))
    main_files = [inputs['firmware'], inputs['kernel'], inputs['initrd']]
    main_bytes = sum(os.path.getsize(p) for p in main_files)
    big_bytes = sum(os.path.getsize(p) for p in (inputs['firmware'], inputs['kernel'], inputs['big_initrd']))

    # 2. Valid measurements, computed by the reference tool (also its warm-up).
    log('reference --debug: computing valid measurements')
    blob, ref_digest, dummy = reference_measurement(inputs, inputs['initrd'], outdir)
    big_blob, big_ref_digest, dummy = reference_measurement(inputs, inputs['big_initrd'], outdir)
    params_path = os.path.join(workdir, 'params-main.json')
    big_params_path = os.path.join(workdir, 'params-big.json')
    for target, initrd, measurement in ((params_path, inputs['initrd'], blob),
                                        (big_params_path, inputs['big_initrd'], big_blob)):
        with open(target, 'w') as stream:
            json.dump(engine_params(inputs, initrd, measurement), stream, indent=1)

    # 3-5. Rounds: each round runs every measurement once, so that drift in
    # the machine's speed (a shared VM, writeback) hits all of them alike
    # instead of biasing whichever block ran during it.
    openssl_runs = {
        'openssl dgst -sha256 fw kernel initrd': [OPENSSL, 'dgst', '-sha256'] + main_files,
        'cat fw kernel initrd | openssl dgst -sha256': None,
        'openssl dgst -sha256 initrd (largest file only)': [OPENSSL, 'dgst', '-sha256', inputs['initrd']],
    }
    cat_cmd = 'cat %s | %s dgst -sha256' % (' '.join("'%s'" % p for p in main_files), OPENSSL)
    openssl = dict((label, []) for label in openssl_runs)
    loop = {'validate_s': [], 'hashlib_seq_s': []}
    fresh, fresh_runs, big, big_runs, imports_runs, reference = [], [], [], [], [], []
    for round_index in range(n):
        log('round %d/%d: openssl x3, engine (loop, fresh, fresh big, import only), reference'
            % (round_index + 1, n))
        # The limit: OpenSSL over the same bytes.
        for label, argv in openssl_runs.items():
            run = run_child(cat_cmd, shell=True) if argv is None else run_child(argv)
            if run.rc != 0:
                raise SystemExit('%s failed: %s' % (label, run.stderr))
            openssl[label].append(run)
        # Our engine: a warm in-process call, then fresh processes (wall + extra memory).
        dummy, data = engine_child(python, 'loop', params_path, 1)
        for key in loop:
            loop[key].extend(data[key])
        run, data = engine_child(python, 'one', params_path)
        fresh_runs.append(run)
        fresh.append(data)
        run, data = engine_child(python, 'one', big_params_path)
        big_runs.append(run)
        big.append(data)
        run, dummy = engine_child(python, 'imports', params_path)
        imports_runs.append(run)
        # The reference tool on the same case.
        run = run_child(reference_argv(inputs, inputs['initrd'], blob, outdir))
        if run.rc != 0:
            raise SystemExit('virt-qemu-sev-validate failed (rc %d): %s' % (run.rc, run.stderr))
        reference.append(run)
    log('reference on the big initrd (1 run)')
    ref_big = run_child(reference_argv(inputs, inputs['big_initrd'], big_blob, outdir))
    if ref_big.rc != 0:
        raise SystemExit('virt-qemu-sev-validate (big) failed (rc %d): %s' % (ref_big.rc, ref_big.stderr))

    # ------------------------------------------------------------ report ---
    ours_in = med(loop['validate_s'])
    ours_fresh = med([r.wall for r in fresh_runs])
    lim = med([r.wall for r in openssl['openssl dgst -sha256 fw kernel initrd']])
    ref = med([r.wall for r in reference])
    extra_main = [mib(d['extra_kib']) for d in fresh]
    extra_big = [mib(d['extra_kib']) for d in big]
    imports_maxrss = med([r.maxrss_kib for r in imports_runs])
    extra_main_rusage = med([r.maxrss_kib for r in fresh_runs]) - imports_maxrss
    extra_big_rusage = med([r.maxrss_kib for r in big_runs]) - imports_maxrss
    digest_ok = (all(d['launch_digest'] == ref_digest for d in fresh)
                 and all(d['launch_digest'] == big_ref_digest for d in big))

    def rate(seconds, nbytes=main_bytes):
        return '%6.0f' % (nbytes / MIB / seconds)

    lines = []
    emit = lines.append
    emit('confidential.sev engine benchmark')
    interpreter = '%s %s' % (platform.python_implementation(), platform.python_version())
    emit('  host      %s; %s; Linux %s' % (cpu_description(), interpreter, platform.release()))
    version = subprocess.run([OPENSSL, 'version'], capture_output=True, text=True, check=False)
    emit('  openssl   %s' % version.stdout.strip())
    emit('  hashlib   %s (engine interpreter: %s)' % (ssl.OPENSSL_VERSION, python))
    emit('  case      firmware %.0f MiB (synthetic, usable hash table), kernel %.0f MiB, initrd %.0f MiB '
         '(random), cmdline %d B,' % (os.path.getsize(inputs['firmware']) / MIB,
                                      os.path.getsize(inputs['kernel']) / MIB,
                                      os.path.getsize(inputs['initrd']) / MIB, len(CMDLINE)))
    emit('            policy 0x%x (plain SEV) + measured direct boot + 1 secret (%s); %.0f MiB hashed'
         % (POLICY, SECRET_ALIAS, main_bytes / MIB))
    emit('  big case  same, initrd %.0f MiB %s (memory independence)'
         % (os.path.getsize(inputs['big_initrd']) / MIB, 'random' if args.big_real else 'sparse'))
    emit('  method    warm page cache; %d interleaved rounds, median (min, max); max RSS from %s' % (
        n, 'GNU time (%M)' if HAVE_GNU_TIME else
        'wait4() - NO GNU time: child figures are floored at this process\'s peak RSS'))
    emit('  verdict   engine valid=True on every run; launch digest %s the reference tool\'s (%s...)'
         % ('equals' if digest_ok else 'DIFFERS FROM', ref_digest[:16]))
    emit('')
    emit('%-52s %9s %7s %7s %7s %8s %9s' % ('measurement', 'median', 'min', 'max', 'MiB/s', 'CPU s', 'max RSS'))
    emit('-' * 104)

    def row(label, runs, nbytes=main_bytes):
        walls = [r.wall for r in runs]
        emit('%-52s %s %s %8.3f %6.0f MiB' % (label, fmt_s(walls),
                                              rate(med(walls), nbytes) if nbytes else '%6s' % '-',
                                              med([r.cpu for r in runs]),
                                              mib(med([r.maxrss_kib for r in runs]))))

    emit('limit: OpenSSL over the same bytes (process wall)')
    for label, runs in openssl.items():
        nbytes = os.path.getsize(inputs['initrd']) if 'largest' in label else main_bytes
        row('  ' + label, runs, nbytes)
    emit('  %-50s %s %s' % ('Python hashlib, 1 thread, sequential (in-process)',
                            fmt_s(loop['hashlib_seq_s']), rate(med(loop['hashlib_seq_s']))))
    emit('ours: confidential.sev run_validation()')
    emit('  %-50s %s %s' % ('in-process, after import and one warm-up call', fmt_s(loop['validate_s']),
                            rate(ours_in)))
    emit('  %-50s %s %s' % ('in a fresh process, validate() only (1st call)',
                            fmt_s([d['validate_s'] for d in fresh]),
                            rate(med([d['validate_s'] for d in fresh]))))
    row('  fresh python process: start+import+validate', fresh_runs)
    row('  same, %.0f MiB initrd' % (os.path.getsize(inputs['big_initrd']) / MIB), big_runs, big_bytes)
    row('  fresh python process: start+import only', imports_runs, 0)
    emit('reference: virt-qemu-sev-validate (process wall)')
    row('  same case', reference)
    row('  same, %.0f MiB initrd (1 run)' % (os.path.getsize(inputs['big_initrd']) / MIB), [ref_big], big_bytes)
    emit('')
    emit('extra memory of one validation (peak RSS during it - RSS after imports)')
    emit('  %-50s %s' % ('method', '  initrd %4.0f MiB   initrd %4.0f MiB' % (
        os.path.getsize(inputs['initrd']) / MIB, os.path.getsize(inputs['big_initrd']) / MIB)))
    emit('  %-50s %10.1f MiB %15.1f MiB   (max of runs: %.1f / %.1f)' % (
        '/proc/self/status VmHWM (reset after import: %s)' % ('yes' if all(d['hwm_reset'] for d in fresh + big) else 'NO'),
        med(extra_main), med(extra_big), max(extra_main), max(extra_big)))
    emit('  %-50s %10.1f MiB %15.1f MiB' % ('max RSS(validate process) - max RSS(import only)',
                                            mib(extra_main_rusage), mib(extra_big_rusage)))
    emit('  %-50s %10.1f MiB %15.1f MiB' % ('reference tool: whole-process max RSS',
                                            mib(med([r.maxrss_kib for r in reference])),
                                            mib(ref_big.maxrss_kib)))
    emit('')
    ratio_lim = ours_in / lim
    ratio_ref = ours_fresh / ref
    extra_worst = max(extra_main + extra_big)
    if HAVE_GNU_TIME:  # without it the max-RSS difference is floored, so not evidence
        extra_worst = max(extra_worst, mib(extra_main_rusage), mib(extra_big_rusage))
    growth = med(extra_big) - med(extra_main)
    checks = [  # (short name, label, value, target, ok)
        ('ours/openssl', 'ours / openssl      (in-process run_validation / openssl dgst fw kernel initrd)',
         '%.2f' % ratio_lim, '<= %.2f' % TARGET_VS_OPENSSL, ratio_lim <= TARGET_VS_OPENSSL),
        ('ours/reference', 'ours / reference    (fresh-process wall / virt-qemu-sev-validate wall)',
         '%.2f' % ratio_ref, '<  %.2f' % TARGET_VS_REFERENCE, ratio_ref < TARGET_VS_REFERENCE),
        ('extra memory', 'extra memory        (worst of both methods, both sizes)',
         '%.1f MiB' % extra_worst, '<  %.0f MiB' % TARGET_EXTRA_MIB, extra_worst < TARGET_EXTRA_MIB),
        ('size independence', 'size independence   (extra(big) - extra(main), medians)',
         '%+.1f MiB' % growth, '<= %.0f MiB' % TOLERANCE_GROWTH_MIB, growth <= TOLERANCE_GROWTH_MIB),
        ('correctness', 'correctness         (valid, launch digest == reference)',
         'yes' if digest_ok else 'no', 'yes', digest_ok),
    ]
    emit('%-82s %9s %10s  %s' % ('ratio / figure', 'value', 'target', 'result'))
    emit('-' * 104)
    for dummy, label, value, target, ok in checks:
        emit('%-82s %9s %10s  %s' % (label, value, target, verdict(ok)))
    emit('  for information: fresh-process ours / openssl = %.2f; in-process ours / reference = %.2f;'
         % (ours_fresh / lim, ours_in / ref))
    emit('  engine over the Python 1-thread floor: %+.3f s; openssl on the largest file alone: %.3f s'
         % (ours_in - med(loop['hashlib_seq_s']),
            med([r.wall for r in openssl['openssl dgst -sha256 initrd (largest file only)']])))
    failed = [check[0] for check in checks if not check[-1]]
    emit('')
    emit('OVERALL: %s' % ('PASS (all targets met)' if not failed else 'FAIL: ' + ', '.join(failed)))
    emit('(benchmark run took %.0f s; exit code is 0 regardless)' % (time.perf_counter() - started))
    sys.stderr.flush()
    print('\n'.join(lines), flush=True)

    if args.json:
        raw = {
            'openssl': {k: [vars(r) | {'stdout': None, 'stderr': None} for r in v] for k, v in openssl.items()},
            'engine_loop': loop, 'engine_fresh': fresh, 'engine_big': big,
            'engine_fresh_runs': [{'wall': r.wall, 'maxrss_kib': r.maxrss_kib} for r in fresh_runs],
            'engine_big_runs': [{'wall': r.wall, 'maxrss_kib': r.maxrss_kib} for r in big_runs],
            'imports_runs': [{'wall': r.wall, 'maxrss_kib': r.maxrss_kib} for r in imports_runs],
            'reference': [{'wall': r.wall, 'maxrss_kib': r.maxrss_kib, 'cpu': r.cpu} for r in reference],
            'reference_big': {'wall': ref_big.wall, 'maxrss_kib': ref_big.maxrss_kib},
            'checks': [{'what': c[1], 'value': c[2], 'target': c[3], 'pass': c[4]} for c in checks],
        }
        with open(args.json, 'w') as stream:
            json.dump(raw, stream, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())

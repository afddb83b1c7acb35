# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Micro-benchmark (not a test): N validations of launches that share one
firmware, kernel and initrd, without and with a DigestCache.

    PYTHONPATH=build .venv/bin/python benchmarks/digest_cache.py [--guests 50] [--initrd-mib 512] [--sparse]

Three runs over the same files, each validating N launches (SEV-ES, 2 vCPUs,
measured direct boot) that all match:

* ``none``: no cache, every validation hashes firmware, kernel and initrd (as before issue 11);
* ``shared``: one DigestCache (with a file) for all N, as sev_launch_batch shares one per host;
* ``file``: a fresh DigestCache per validation reading the same file, as N
  one-guest tasks with ``digest_cache`` do (the firmware, whose hash state lives
  in memory only, is hashed each time);
* ``forks``: ``--forks`` processes at once, each with its own DigestCache on one
  file, sharing the N validations (forked workers on several hosts).

``--sparse`` makes the initrd a sparse file (no disk I/O, zeros hash at the
same speed as data); by default it is written with random bytes, page cache
warm after the first read.  Files are left to age past the cache's MIN_AGE
before timing.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import struct
import sys
import tempfile
import time

from ansible_collections.confidential.sev.plugins.module_utils.sev import digest_cache as dc
from ansible_collections.confidential.sev.plugins.module_utils.sev.digest_cache import DigestCache
from ansible_collections.confidential.sev.plugins.module_utils.sev.keys import load_keys
from ansible_collections.confidential.sev.plugins.module_utils.sev.launch_digest import compute_launch_digest
from ansible_collections.confidential.sev.plugins.module_utils.sev.ovmf import read_footer
from ansible_collections.confidential.sev.plugins.module_utils.sev.validation import ValidationRequest, validate
from ansible_collections.confidential.sev.plugins.module_utils.sev.vmsa import build_vmsas
from ansible_collections.confidential.sev.tests.support import firmware as fwb

MiB = 1 << 20
TIK = bytes(range(1, 17))
TEK = bytes(range(17, 33))
MNONCE = bytes(range(16))
POLICY = 0x7          # NODBG, NOKS, ES
CMDLINE = b'console=ttyS0 root=/dev/vda1'
SKU = (25, 1, 1)


def make_files(directory, initrd_mib, sparse):
    paths = {}
    firmware = fwb.build_image(body_size=4 * MiB - 4096)
    for name, data in (('firmware', firmware), ('kernel', os.urandom(12 * MiB))):
        paths[name] = os.path.join(directory, name)
        with open(paths[name], 'wb') as stream:
            stream.write(data)
    paths['initrd'] = os.path.join(directory, 'initrd')
    with open(paths['initrd'], 'wb') as stream:
        if sparse:
            stream.truncate(initrd_mib * MiB)
        else:
            chunk = os.urandom(MiB)
            for dummy in range(initrd_mib):
                stream.write(chunk)
    return paths


def measurement_for(paths, reset_address):
    cpu0, cpu1 = build_vmsas(reset_address, *SKU)
    digest = compute_launch_digest(paths['firmware'], paths['kernel'], paths['initrd'], CMDLINE,
                                   cpu0, cpu1, 2).digest
    message = bytes([4, 0, 24, 15]) + struct.pack('<I', POLICY) + digest + MNONCE
    return base64.b64encode(hmac.new(TIK, message, hashlib.sha256).digest() + MNONCE).decode('ascii')


def request(paths, measurement):
    return ValidationRequest(measurement=measurement, api_major=0, api_minor=24, build_id=15, policy=POLICY,
                             firmware=paths['firmware'], keys=load_keys(tik=TIK, tek=TEK), kernel=paths['kernel'],
                             initrd=paths['initrd'], cmdline=CMDLINE, num_cpus=2, cpu_family=SKU[0],
                             cpu_model=SKU[1], cpu_stepping=SKU[2])


def run(mode, paths, measurement, guests, cache_path):
    shared = DigestCache(cache_path) if mode == 'shared' else None
    totals = {'hits': 0, 'misses': 0, 'hashed_bytes': 0}
    per_guest = []
    start = time.perf_counter()
    for dummy in range(guests):
        one = time.perf_counter()
        cache = shared if mode == 'shared' else (DigestCache(cache_path) if mode == 'file' else None)
        before = cache.stats() if cache is not None else None
        result = validate(request(paths, measurement), digest_cache=cache)
        if not result.valid:
            raise SystemExit('benchmark launch did not validate (%s)' % mode)
        if cache is None:
            totals['misses'] += 3
            totals['hashed_bytes'] += sum(result.launch_digest.sizes.values())
        else:
            after = cache.stats()
            for key in totals:
                totals[key] += after[key] - before[key]
        per_guest.append(time.perf_counter() - one)
    wall = time.perf_counter() - start
    per_guest.sort()
    return dict(mode=mode, guests=guests, wall_s=round(wall, 3), per_guest_ms=round(1000 * wall / guests, 2),
                median_ms=round(1000 * per_guest[len(per_guest) // 2], 2),
                max_ms=round(1000 * per_guest[-1], 2), **totals)


def _fork_worker(paths, measurement, guests, cache_path, barrier, queue):
    barrier.wait()
    queue.put(run('shared', paths, measurement, guests, cache_path))


def run_forks(paths, measurement, guests, cache_path, forks):
    """``forks`` processes at once (Ansible's default is 5), each validating
    guests/forks launches with its own DigestCache on one file, as forked
    workers running sev_launch_batch (or one-guest tasks) on several hosts."""
    context = multiprocessing.get_context('fork')
    barrier, queue = context.Barrier(forks + 1), context.Queue()
    share = [guests // forks + (1 if index < guests % forks else 0) for index in range(forks)]
    processes = [context.Process(target=_fork_worker, args=(paths, measurement, count, cache_path, barrier, queue))
                 for count in share]
    for process in processes:
        process.start()
    barrier.wait()
    start = time.perf_counter()
    results = [queue.get(timeout=1800) for dummy in processes]
    wall = time.perf_counter() - start
    for process in processes:
        process.join(60)
    totals = dict((key, sum(item[key] for item in results)) for key in ('hits', 'misses', 'hashed_bytes'))
    return dict(mode='forks', forks=forks, guests=guests, wall_s=round(wall, 3),
                per_guest_ms=round(1000 * wall / guests, 2), **totals)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--guests', type=int, default=50)
    parser.add_argument('--initrd-mib', type=int, default=512)
    parser.add_argument('--sparse', action='store_true')
    parser.add_argument('--modes', default='none,shared,file,forks')
    parser.add_argument('--forks', type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='sev-digest-bench-') as directory:
        os.chmod(directory, 0o700)
        made = time.perf_counter()
        paths = make_files(directory, args.initrd_mib, args.sparse)
        made = time.perf_counter() - made
        measurement = measurement_for(paths, read_footer(paths['firmware']).sev_es_reset_address)
        # Let the files age past MIN_AGE, or nothing would be cached (see digest_cache.py).
        time.sleep(max(0.0, dc.MIN_AGE + 0.2 - made))
        results = []
        for mode in args.modes.split(','):
            cache_path = os.path.join(directory, 'digests-%s.json' % mode)
            if mode == 'forks':
                results.append(run_forks(paths, measurement, args.guests, cache_path, args.forks))
            else:
                results.append(run(mode, paths, measurement, args.guests, cache_path))
        sizes = dict((name, os.path.getsize(path)) for name, path in paths.items())
    print(json.dumps({'python': sys.version.split()[0], 'cpus': os.cpu_count(), 'sparse_initrd': args.sparse,
                      'sizes': sizes, 'results': results}, indent=2))


if __name__ == '__main__':
    main()

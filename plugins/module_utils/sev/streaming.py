# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chunked file hashing, several files at once.

Kernels and initrds can be hundreds of MiB: every file is hashed through one
reused buffer, so memory does not grow with file size.  The firmware, kernel
and initrd digests are independent streams; hashlib releases the GIL while it
hashes, so on two cores they run side by side.
"""

from __future__ import annotations

import concurrent.futures
import os

from .errors import UnsupportedUsage

CHUNK_SIZE = 1 << 20


def hash_file(path, hasher, what='file', chunk_size=CHUNK_SIZE):
    """Feed the whole file at ``path`` into ``hasher``; return the byte count.

    ``what`` names the input in error messages (e.g. 'kernel').
    """
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    total = 0
    try:
        with open(path, 'rb', buffering=0) as stream:
            while True:
                count = stream.readinto(buffer)
                if not count:
                    break
                hasher.update(view[:count])
                total += count
    except OSError as exc:
        raise UnsupportedUsage('%s: cannot read %s: %s' % (what, path, exc.strerror or exc))
    return total


def hash_files(jobs, chunk_size=CHUNK_SIZE):
    """Hash several files concurrently.

    ``jobs`` maps a name to ``(path, hasher)``.  Returns name -> byte count.
    The first error (in job order) is raised once all threads have stopped.
    """
    if not jobs:
        return {}
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    if workers == 1:
        return dict((name, hash_file(path, hasher, name, chunk_size))
                    for name, (path, hasher) in jobs.items())
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = dict((name, pool.submit(hash_file, path, hasher, name, chunk_size))
                       for name, (path, hasher) in jobs.items())
    return dict((name, future.result()) for name, future in futures.items())

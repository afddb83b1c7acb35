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
import functools
import os

from .errors import UnsupportedUsage
from .files import open_regular

CHUNK_SIZE = 1 << 20


def hash_file(path, hasher, what='file', chunk_size=CHUNK_SIZE, keep_tail=0):
    """Feed the whole regular file at ``path`` into ``hasher``.

    Returns the byte count, or with ``keep_tail`` (a byte count) the pair
    (byte count, the last ``keep_tail`` bytes hashed): what is parsed from the
    end of a file is then exactly what was measured, never a second read.
    ``what`` names the input in error messages (e.g. 'kernel').
    """
    with open_regular(path, what) as stream:
        return hash_stream(stream, hasher, what, path, chunk_size, keep_tail)


def hash_stream(stream, hasher, what='file', path=None, chunk_size=CHUNK_SIZE, keep_tail=0):
    """hash_file on an already open binary stream (read to its end).

    The digest cache opens the file itself, so that the identity it keys on
    (fstat) and the bytes hashed come from one descriptor."""
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    tail = bytearray()
    total = 0
    try:
        while True:
            count = stream.readinto(buffer)
            if not count:
                break
            hasher.update(view[:count])
            total += count
            if keep_tail:
                tail += view[max(0, count - keep_tail):count]
                if len(tail) > keep_tail:
                    del tail[:len(tail) - keep_tail]
    except OSError as exc:
        raise UnsupportedUsage('%s: cannot read %s: %s' % (what, path, exc.strerror or exc))
    if keep_tail:
        return total, bytes(tail)
    return total


def run_concurrently(calls):
    """Run independent calls (name -> callable) side by side, one thread per
    call up to the CPU count.  Returns name -> result; the first error (in
    call order) is raised once all threads have stopped."""
    if not calls:
        return {}
    workers = max(1, min(len(calls), os.cpu_count() or 1))
    if workers == 1:
        return dict((name, call()) for name, call in calls.items())
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = dict((name, pool.submit(call)) for name, call in calls.items())
    return dict((name, future.result()) for name, future in futures.items())


def hash_files(jobs, chunk_size=CHUNK_SIZE):
    """Hash several files concurrently.

    ``jobs`` maps a name to ``(path, hasher)`` or ``(path, hasher, keep_tail)``.
    Returns name -> what hash_file returns for it.
    The first error (in job order) is raised once all threads have stopped.
    """
    return run_concurrently(dict(
        (name, functools.partial(hash_file, job[0], job[1], name, chunk_size, *job[2:]))
        for name, job in jobs.items()))

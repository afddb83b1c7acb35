# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chunked hashing: right digests, constant memory, errors that name the input."""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc

import pytest

from ansible_collections.confidential.sev.plugins.module_utils.sev import streaming
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage

MiB = 1024 * 1024
# sha256 of 256 MiB of zero bytes (`truncate -s 256M z && sha256sum z`).
SHA256_256MIB_ZEROS = 'a6d72ac7690f53be6ae46ba88506bd97302a093f7108472bd9efc3cefda06484'


def write(path, data):
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize('size', [0, 1, 6, 7, 8, 13, 14, 15, 1000])
def test_hash_file_matches_hashlib_across_chunk_boundaries(tmp_path, size):
    data = os.urandom(size)
    hasher = hashlib.sha256()
    count = streaming.hash_file(write(tmp_path / 'f', data), hasher, chunk_size=7)
    assert count == size
    assert hasher.digest() == hashlib.sha256(data).digest()


def test_hash_file_default_chunk(tmp_path):
    data = os.urandom(streaming.CHUNK_SIZE * 2 + 12345)
    hasher = hashlib.sha384()
    assert streaming.hash_file(write(tmp_path / 'f', data), hasher) == len(data)
    assert hasher.digest() == hashlib.sha384(data).digest()


def test_hash_file_continues_an_existing_stream(tmp_path):
    hasher = hashlib.sha256(b'prefix')
    streaming.hash_file(write(tmp_path / 'f', b'body'), hasher)
    assert hasher.digest() == hashlib.sha256(b'prefixbody').digest()


def test_missing_file_names_the_input(tmp_path):
    missing = str(tmp_path / 'vmlinuz-absent')
    with pytest.raises(UnsupportedUsage) as info:
        streaming.hash_file(missing, hashlib.sha256(), what='kernel')
    message = str(info.value)
    assert message.startswith('kernel: ')
    assert missing in message
    assert 'No such file or directory' in message
    assert info.value.rc == 2 and info.value.reason == 'unsupported'


def test_directory_is_a_usage_error(tmp_path):
    with pytest.raises(UnsupportedUsage, match='^initrd: .* is not a regular file \\(a directory\\)'):
        streaming.hash_file(str(tmp_path), hashlib.sha256(), what='initrd')


def test_os_error_while_reading_is_a_usage_error(tmp_path, monkeypatch):
    """Any OSError (here EACCES, which root cannot provoke with chmod) is mapped."""
    path = write(tmp_path / 'kernel', b'x')

    class Refusing:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def readinto(self, buffer):
            raise PermissionError(13, 'Permission denied', path)
    monkeypatch.setattr(streaming, 'open_regular', lambda *args: Refusing())
    with pytest.raises(UnsupportedUsage) as info:
        streaming.hash_file(path, hashlib.sha256(), what='kernel')
    assert str(info.value) == 'kernel: cannot read %s: Permission denied' % path


@pytest.fixture(params=[1, 2, 8], ids=lambda n: 'cpus=%d' % n)
def cpu_count(request, monkeypatch):
    """Exercise both the sequential (1 worker) and the threaded path."""
    monkeypatch.setattr(streaming.os, 'cpu_count', lambda: request.param)
    return request.param


def test_hash_files_gives_the_same_digests_as_hashlib(tmp_path, cpu_count):
    contents = {
        'firmware': os.urandom(3 * MiB + 17),
        'kernel': os.urandom(MiB),
        'initrd': b'',
        'extra': os.urandom(12345),
    }
    hashers = {name: hashlib.sha256() for name in contents}
    jobs = dict((name, (write(tmp_path / name, data), hashers[name]))
                for name, data in contents.items())
    counts = streaming.hash_files(jobs, chunk_size=65536)
    assert counts == dict((name, len(data)) for name, data in contents.items())
    for name, data in contents.items():
        assert hashers[name].hexdigest() == hashlib.sha256(data).hexdigest(), name


def test_hash_files_empty_jobs():
    assert streaming.hash_files({}) == {}


def test_hash_files_missing_file_names_the_input(tmp_path, cpu_count):
    good = write(tmp_path / 'fw', b'firmware')
    missing = str(tmp_path / 'initrd.img')
    jobs = {'firmware': (good, hashlib.sha256()), 'initrd': (missing, hashlib.sha256())}
    with pytest.raises(UnsupportedUsage) as info:
        streaming.hash_files(jobs)
    assert str(info.value).startswith('initrd: cannot read %s' % missing)


def test_hash_files_reports_the_first_error_in_job_order(tmp_path, cpu_count):
    jobs = {'kernel': (str(tmp_path / 'k'), hashlib.sha256()),
            'initrd': (str(tmp_path / 'i'), hashlib.sha256())}
    with pytest.raises(UnsupportedUsage, match='^kernel: '):
        streaming.hash_files(jobs)


def test_hash_files_runs_jobs_in_parallel(tmp_path, monkeypatch):
    """With 2 workers, two jobs are in flight at the same time."""
    monkeypatch.setattr(streaming.os, 'cpu_count', lambda: 2)
    barrier = threading.Barrier(2, timeout=10)

    class MeetingHasher:
        def __init__(self):
            self.met = False
            self.inner = hashlib.sha256()

        def update(self, data):
            if not self.met:
                barrier.wait()      # raises BrokenBarrierError if the other job never starts
                self.met = True
            self.inner.update(data)

    first, second = MeetingHasher(), MeetingHasher()
    streaming.hash_files({'a': (write(tmp_path / 'a', b'aa'), first),
                          'b': (write(tmp_path / 'b', b'bb'), second)})
    assert first.met and second.met
    assert first.inner.digest() == hashlib.sha256(b'aa').digest()


def traced_peak(function):
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_file_size(tmp_path):
    big = tmp_path / 'big-sparse'
    with open(big, 'wb') as stream:
        stream.truncate(256 * MiB)
    small = tmp_path / 'small-sparse'
    with open(small, 'wb') as stream:
        stream.truncate(MiB)

    big_hasher, small_hasher = hashlib.sha256(), hashlib.sha256()
    big_peak = traced_peak(lambda: streaming.hash_files({'kernel': (str(big), big_hasher)}))
    small_peak = traced_peak(lambda: streaming.hash_files({'kernel': (str(small), small_hasher)}))

    assert big_hasher.hexdigest() == SHA256_256MIB_ZEROS
    assert small_hasher.digest() == hashlib.sha256(bytes(MiB)).digest()
    assert big_peak < 4 * MiB, big_peak
    # The 256x larger file costs (almost) nothing more.
    assert big_peak - small_peak < MiB // 4, (big_peak, small_peak)


def test_memory_with_several_files_in_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming.os, 'cpu_count', lambda: 2)
    paths = []
    for name in ('firmware', 'kernel'):
        path = tmp_path / name
        with open(path, 'wb') as stream:
            stream.truncate(64 * MiB)
        paths.append(str(path))
    hashers = [hashlib.sha256(), hashlib.sha256()]
    peak = traced_peak(lambda: streaming.hash_files(
        {'firmware': (paths[0], hashers[0]), 'kernel': (paths[1], hashers[1])}))
    assert peak < 6 * MiB, peak
    zeros_64 = hashlib.sha256()
    for dummy in range(64):
        zeros_64.update(bytes(MiB))
    assert hashers[0].digest() == hashers[1].digest() == zeros_64.digest()

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DigestCache: a cached digest never lets a changed file through.

Entries are stored only for files whose last change is older than the
cache's min_age before the read (timestamps are coarse); the tests use a
short min_age and settle() past it instead of the 2-second default.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import stat
import time

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.confidential.sev.plugins.module_utils.sev import digest_cache as dc, launch_digest
from ansible_collections.confidential.sev.plugins.module_utils.sev.digest_cache import DigestCache
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import (
    IncorrectConfig, InsecureUsage, SevError, UnsupportedUsage,
)

MIN_AGE = 0.05


def settle():
    """Let the files written so far become older than MIN_AGE."""
    time.sleep(MIN_AGE * 2)


def sha(data):
    return hashlib.sha256(data).digest()


def make_file(directory, name, data):
    path = directory / name
    path.write_bytes(data)
    return str(path)


@pytest.fixture
def private(tmp_path):
    """A directory only its owner can write, as the role's state directory."""
    directory = tmp_path / 'state'
    directory.mkdir(mode=0o700)
    return directory


def cache_at(private, **kwargs):
    return DigestCache(str(private / 'digests.json'), min_age=MIN_AGE, **kwargs)


def rewrite_keeping_size_and_mtime(path, data):
    """New content, same size, the old atime/mtime put back (ctime still moves)."""
    info = os.stat(path)
    assert len(data) == info.st_size
    with open(path, 'r+b') as stream:
        stream.write(data)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (info.st_size, info.st_mtime_ns, info.st_ino)
    assert after.st_ctime_ns != info.st_ctime_ns


# ---- memory ---------------------------------------------------------------------------

def test_memory_cache_hashes_a_file_once(tmp_path):
    data = os.urandom(300000)
    path = make_file(tmp_path, 'initrd', data)
    settle()
    cache = DigestCache(min_age=MIN_AGE)
    first = cache.sha256(path, 'initrd')
    second = cache.sha256(path, 'initrd')
    assert first.digest == second.digest == sha(data)
    assert first.size == second.size == len(data)
    assert cache.stats() == {'hits': 1, 'misses': 1, 'hashed_bytes': len(data)}


def test_a_fresh_file_is_hashed_every_time(tmp_path):
    """Changed less than min_age ago: a change in the same timestamp tick would
    not move ctime, so nothing is cached."""
    path = make_file(tmp_path, 'kernel', b'kernel')
    cache = DigestCache(min_age=60)
    for dummy in range(3):
        assert cache.sha256(path, 'kernel').digest == sha(b'kernel')
    assert cache.stats() == {'hits': 0, 'misses': 3, 'hashed_bytes': 18}


def test_default_min_age_is_two_seconds():
    assert dc.MIN_AGE == 2.0
    assert DigestCache().min_age_ns == 2 * 10 ** 9


def test_firmware_state_is_a_fresh_copy_each_time(tmp_path):
    data = os.urandom(70000)
    path = make_file(tmp_path, 'OVMF.fd', data)
    settle()
    cache = DigestCache(min_age=MIN_AGE)
    first = cache.firmware(path, keep_tail=100)
    first.state.update(b'a hash table')
    second = cache.firmware(path, keep_tail=100)
    assert second.state.digest() == sha(data), 'the cached state was changed by a caller'
    assert first.state.digest() == sha(data + b'a hash table')
    assert second.tail == data[-100:] and second.size == len(data)
    assert cache.stats() == {'hits': 1, 'misses': 1, 'hashed_bytes': len(data)}


def test_content_changed_keeping_size_and_mtime_is_hashed_again(tmp_path):
    path = make_file(tmp_path, 'initrd', b'A' * 4096)
    settle()
    cache = DigestCache(min_age=MIN_AGE)
    assert cache.sha256(path, 'initrd').digest == sha(b'A' * 4096)
    rewrite_keeping_size_and_mtime(path, b'B' * 4096)
    assert cache.sha256(path, 'initrd').digest == sha(b'B' * 4096)
    assert cache.stats()['misses'] == 2 and cache.stats()['hits'] == 0


def test_firmware_changed_keeping_size_and_mtime_is_hashed_again(tmp_path):
    path = make_file(tmp_path, 'OVMF.fd', b'A' * 4096)
    settle()
    cache = DigestCache(min_age=MIN_AGE)
    cache.firmware(path, keep_tail=16)
    rewrite_keeping_size_and_mtime(path, b'B' * 4096)
    found = cache.firmware(path, keep_tail=16)
    assert found.state.digest() == sha(b'B' * 4096) and found.tail == b'B' * 16


def test_symlink_swap_reads_the_new_target(tmp_path):
    """The identity comes from the opened descriptor: a symlink pointed at
    another file with the same size and mtime is another inode."""
    one = make_file(tmp_path, 'one', b'1' * 100)
    two = make_file(tmp_path, 'two', b'2' * 100)
    os.utime(two, ns=(os.stat(one).st_atime_ns, os.stat(one).st_mtime_ns))
    link = tmp_path / 'kernel'
    link.symlink_to(one)
    settle()
    cache = DigestCache(min_age=MIN_AGE)
    assert cache.sha256(str(link), 'kernel').digest == sha(b'1' * 100)
    link.unlink()
    link.symlink_to(two)
    assert cache.sha256(str(link), 'kernel').digest == sha(b'2' * 100)


def test_rename_over_the_file_reads_the_new_file(tmp_path):
    path = make_file(tmp_path, 'kernel', b'1' * 100)
    settle()
    cache = DigestCache(min_age=MIN_AGE)
    cache.sha256(path, 'kernel')
    other = make_file(tmp_path, 'other', b'2' * 100)
    os.utime(other, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns))
    os.replace(other, path)
    assert cache.sha256(path, 'kernel').digest == sha(b'2' * 100)


@pytest.mark.parametrize('change', ['append', 'same_size'])
def test_a_file_changed_while_hashed_fails_and_is_not_cached(tmp_path, monkeypatch, change):
    path = make_file(tmp_path, 'initrd', b'A' * 1000)
    settle()
    real = dc.hash_stream

    def hash_then_change(stream, hasher, *args):
        result = real(stream, hasher, *args)
        if change == 'append':
            with open(path, 'ab') as other:
                other.write(b'more')
        else:
            time.sleep(MIN_AGE)
            rewrite_keeping_size_and_mtime(path, b'B' * 1000)
        return result

    cache = cache_at(tmp_path)
    monkeypatch.setattr(dc, 'hash_stream', hash_then_change)
    with pytest.raises(UnsupportedUsage, match='^initrd: .* changed while it was being hashed'):
        cache.sha256(path, 'initrd')
    monkeypatch.setattr(dc, 'hash_stream', real)
    assert not os.path.exists(tmp_path / 'digests.json')
    expected = b'A' * 1000 + b'more' if change == 'append' else b'B' * 1000
    assert cache.sha256(path, 'initrd').digest == sha(expected)


def test_non_regular_input_is_refused_naming_it(tmp_path):
    cache = DigestCache()
    with pytest.raises(UnsupportedUsage, match='^kernel: .* is not a regular file'):
        cache.sha256(str(tmp_path), 'kernel')
    with pytest.raises(UnsupportedUsage, match='^initrd: cannot read'):
        cache.sha256(str(tmp_path / 'missing'), 'initrd')


# ---- pins -----------------------------------------------------------------------------

def test_parse_pin_accepts_hex_any_case_and_a_label():
    digest = sha(b'x').hex()
    assert dc.parse_pin(digest.upper(), 'kernel_sha256') == digest
    assert dc.parse_pin('sha256:' + digest, 'kernel_sha256') == digest
    assert dc.parse_pin(None, 'kernel_sha256') is None


@pytest.mark.parametrize('value', ['', 'abc', sha(b'x').hex() + '0', 'g' * 64, 42, 'sha512:' + '0' * 64])
def test_parse_pin_refuses_anything_else_naming_the_option(value):
    with pytest.raises(UnsupportedUsage, match='^initrd_sha256 must be a SHA-256 digest in hex'):
        dc.parse_pin(value, 'initrd_sha256')


def test_check_pin_fails_closed_as_config_showing_only_digests():
    actual, pinned = sha(b'evil'), sha(b'good').hex()
    with pytest.raises(IncorrectConfig) as info:
        dc.check_pin('kernel_sha256', 'kernel', '/boot/vmlinuz', actual, pinned)
    message = str(info.value)
    assert info.value.rc == 4
    assert message.startswith('kernel_sha256: the kernel /boot/vmlinuz has SHA-256 %s, not the pinned %s'
                              % (actual.hex(), pinned))
    dc.check_pin('kernel_sha256', 'kernel', '/boot/vmlinuz', actual, actual.hex())


def test_a_pinned_key_stores_only_the_pinned_digest(private):
    path = make_file(private, 'kernel', b'kernel')
    settle()
    cache = cache_at(private)
    wrong_pin = sha(b'other').hex()
    assert cache.sha256(path, 'kernel', pin=wrong_pin).digest == sha(b'kernel')
    assert cache.sha256(path, 'kernel', pin=wrong_pin).digest == sha(b'kernel')
    assert cache.stats()['hits'] == 0, 'a digest that is not the pin was cached under the pin'
    assert not os.path.exists(private / 'digests.json')
    right_pin = sha(b'kernel').hex()
    cache.sha256(path, 'kernel', pin=right_pin)
    entries = json.loads((private / 'digests.json').read_text())['entries']
    assert [key.split(':')[5] for key in entries] == [right_pin]
    assert cache.sha256(path, 'kernel', pin=right_pin).digest == sha(b'kernel')
    assert cache.stats()['hits'] == 1


# ---- the file -------------------------------------------------------------------------

def test_cache_file_is_shared_0600_and_written_atomically(private):
    kernel = make_file(private, 'kernel', b'k' * 5000)
    initrd = make_file(private, 'initrd', b'i' * 7000)
    settle()
    first = cache_at(private)
    first.sha256(kernel, 'kernel')
    first.sha256(initrd, 'initrd')
    for name in ('digests.json', 'digests.json.lock'):
        info = os.lstat(private / name)
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert sorted(os.listdir(private)) == ['digests.json', 'digests.json.lock', 'initrd', 'kernel']
    document = json.loads((private / 'digests.json').read_text())
    assert document['format'] == dc.FORMAT and document['version'] == dc.VERSION
    assert sorted(entry['sha256'] for entry in document['entries'].values()) == sorted(
        [sha(b'k' * 5000).hex(), sha(b'i' * 7000).hex()])
    # A second process (a forked worker) reads them without hashing.
    second = cache_at(private)
    assert second.sha256(kernel, 'kernel').digest == sha(b'k' * 5000)
    assert second.sha256(initrd, 'initrd').digest == sha(b'i' * 7000)
    assert second.stats() == {'hits': 2, 'misses': 0, 'hashed_bytes': 0}


def test_entries_written_by_another_worker_later_are_picked_up(private):
    kernel = make_file(private, 'kernel', b'k' * 5000)
    settle()
    early = cache_at(private)
    cache_at(private).sha256(kernel, 'kernel')
    assert early.sha256(kernel, 'kernel').digest == sha(b'k' * 5000)
    assert early.stats() == {'hits': 1, 'misses': 0, 'hashed_bytes': 0}


def test_check_mode_cache_reads_but_never_writes(private):
    kernel = make_file(private, 'kernel', b'k')
    settle()
    cache = cache_at(private, read_only=True)
    cache.sha256(kernel, 'kernel')
    assert cache.sha256(kernel, 'kernel').digest == sha(b'k')
    assert cache.stats()['hits'] == 1
    assert os.listdir(private) == ['kernel']


def test_firmware_state_is_never_written_to_the_file(private):
    firmware = make_file(private, 'OVMF.fd', b'f' * 100)
    settle()
    cache_at(private).firmware(firmware)
    assert not os.path.exists(private / 'digests.json')


def _worker(directory, index, barrier, results):
    cache = DigestCache(os.path.join(directory, 'digests.json'), min_age=MIN_AGE)
    barrier.wait()
    for name in ('shared', 'own%d' % index):
        cache.sha256(os.path.join(directory, name), name)
    results.put(cache.stats())


def test_concurrent_workers_merge_their_entries_and_hash_a_shared_file_once(private):
    """Forked workers writing one cache at once: every entry survives, the file
    stays valid, and the file they all reach at once is hashed by one of them
    (the others wait for its digest)."""
    workers = 6
    shared = b'shared' * 400000
    make_file(private, 'shared', shared)
    for index in range(workers):
        make_file(private, 'own%d' % index, b'own%d' % index * 1000)
    settle()
    context = multiprocessing.get_context('fork')
    barrier = context.Barrier(workers)
    results = context.Queue()
    processes = [context.Process(target=_worker, args=(str(private), index, barrier, results))
                 for index in range(workers)]
    for process in processes:
        process.start()
    stats = [results.get(timeout=60) for dummy in processes]
    for process in processes:
        process.join(60)
    assert [process.exitcode for process in processes] == [0] * workers
    assert sum(item['misses'] for item in stats) == workers + 1
    assert sum(item['hits'] for item in stats) == workers - 1
    assert sum(item['hashed_bytes'] for item in stats) == len(shared) + sum(
        len(b'own%d' % index * 1000) for index in range(workers))
    entries = json.loads((private / 'digests.json').read_text())['entries']
    assert sorted(key.rsplit('/', 1)[1] for key in entries) == sorted(
        ['shared'] + ['own%d' % index for index in range(workers)])
    reader = cache_at(private)
    for index in range(workers):
        assert reader.sha256(str(private / ('own%d' % index)), 'own').digest == sha(b'own%d' % index * 1000)
    assert reader.stats()['misses'] == 0
    assert not [name for name in os.listdir(private) if name.startswith('.digests-')]


def _measured_files_worker(directory, barrier, results):
    cache = DigestCache(os.path.join(directory, 'digests.json'), min_age=MIN_AGE)
    barrier.wait()
    files = launch_digest.hash_measured_files(*(os.path.join(directory, name) for name in ('fw', 'kernel', 'initrd')),
                                              digest_cache=cache)
    results.put((cache.stats(), files.kernel_digest, files.initrd_digest))


def test_workers_hashing_kernel_and_initrd_in_threads_hash_each_once(private):
    """Each worker hashes its kernel and initrd in two threads at once: a worker
    waiting for another's initrd while it hashes its kernel is no deadlock, and
    each file is still hashed by one worker only."""
    workers = 4
    for name, size in (('fw', 1000), ('kernel', 3 << 20), ('initrd', 6 << 20)):
        make_file(private, name, name.encode() * (size // len(name)))
    settle()
    context = multiprocessing.get_context('fork')
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [context.Process(target=_measured_files_worker, args=(str(private), barrier, results))
                 for dummy in range(workers)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for dummy in processes]
    for process in processes:
        process.join(60)
    assert [process.exitcode for process in processes] == [0] * workers
    assert sum(stats['misses'] for stats, dummy, dummy2 in outcomes) == workers + 2   # a firmware state each
    assert set((kernel, initrd) for dummy, kernel, initrd in outcomes) == {
        (sha(b'kernel' * ((3 << 20) // 6)), sha(b'initrd' * ((6 << 20) // 6)))}


@pytest.mark.parametrize('content, why', [
    (b'{"not json', 'is not valid JSON'),
    (b'\x00\x01binary key material', 'is not valid JSON'),
    (b'{"entries": {}}', 'has no "format"'),
    (b'[1, 2]', 'has no "format"'),
])
def test_a_file_that_is_not_a_cache_is_refused_and_kept(private, content, why):
    path = private / 'digests.json'
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(UnsupportedUsage, match='^digest_cache: .*%s.*, so it is not a digest cache' % why) as info:
        cache_at(private)
    assert info.value.rc == 2
    assert path.read_bytes() == content
    assert 'binary key' not in str(info.value)


@pytest.mark.parametrize('content, warning', [
    (b'', 'is empty'),
    (json.dumps({'format': dc.FORMAT, 'version': 99, 'entries': {}}).encode(), 'is not a version 1 cache'),
])
def test_an_empty_or_other_version_cache_is_ignored_with_a_warning_and_rewritten(private, content, warning):
    path = private / 'digests.json'
    path.write_bytes(content)
    path.chmod(0o600)
    kernel = make_file(private, 'kernel', b'k')
    settle()
    cache = cache_at(private)
    assert any(warning in text for text in cache.warnings)
    cache.sha256(kernel, 'kernel')
    assert json.loads(path.read_text())['version'] == dc.VERSION


def test_malformed_entries_are_dropped_with_a_warning(private):
    kernel = make_file(private, 'kernel', b'kernel')
    settle()
    info = os.stat(kernel)
    key = dc.entry_key(kernel, dc.identity(info))
    good = {'sha256': sha(b'kernel').hex(), 'size': 6, 'stored': 1}
    entries = {
        key: good,
        key.replace(':6:', ':7:', 1): dict(good, size=6),                        # size disagrees with the key
        dc.entry_key(kernel, dc.identity(info), sha(b'x').hex()): good,        # pinned key, other digest
        'garbage': good,
        key + 'x': dict(good, sha256='not hex'),
    }
    path = private / 'digests.json'
    path.write_text(json.dumps({'format': dc.FORMAT, 'version': dc.VERSION, 'entries': entries}))
    path.chmod(0o600)
    cache = cache_at(private)
    assert cache.warnings == ['digest_cache: %s had 4 malformed entries, ignored' % path]
    assert cache.sha256(kernel, 'kernel').digest == sha(b'kernel')
    assert cache.stats()['hits'] == 1


def test_two_digests_for_one_identity_are_both_dropped(private):
    """Only tampering makes the file disagree with what this process hashed."""
    kernel = make_file(private, 'kernel', b'kernel')
    settle()
    cache = cache_at(private)
    cache.sha256(kernel, 'kernel')
    path = private / 'digests.json'
    document = json.loads(path.read_text())
    key = next(iter(document['entries']))
    document['entries'][key]['sha256'] = sha(b'evil').hex()
    time.sleep(0.01)
    path.write_text(json.dumps(document))
    other = make_file(private, 'other', b'other')
    settle()
    cache.sha256(other, 'other')   # a miss: the cache re-reads the file and meets the conflict
    assert any('two digests for one file identity' in text for text in cache.warnings)
    assert cache.sha256(kernel, 'kernel').digest == sha(b'kernel')
    assert cache.sha256(kernel, 'kernel').digest == sha(b'kernel')
    # never used again, and dropped from the file
    assert sha(b'evil').hex() not in path.read_text()
    assert sha(b'kernel').hex() not in path.read_text()
    assert cache.stats()['misses'] == 4


@pytest.mark.parametrize('mode', [0o644, 0o640, 0o602, 0o660])
def test_a_cache_file_others_may_read_or_write_is_refused(private, mode):
    path = private / 'digests.json'
    path.write_text(json.dumps({'format': dc.FORMAT, 'version': dc.VERSION, 'entries': {}}))
    path.chmod(mode)
    with pytest.raises(InsecureUsage, match='^digest_cache: .* is mode %04o, not 0600' % mode) as info:
        cache_at(private)
    assert info.value.rc == 3


def test_a_cache_file_owned_by_another_user_is_refused(private):
    path = private / 'digests.json'
    path.write_text(json.dumps({'format': dc.FORMAT, 'version': dc.VERSION, 'entries': {}}))
    path.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)
        expected = 'belongs to uid 65534, not to this user'
    else:
        pytest.fail('the unit tests run as root here (chown needs it)')
    with pytest.raises(InsecureUsage, match=expected):
        cache_at(private)


@pytest.mark.parametrize('name', ['digests.json', 'digests.json.lock'])
def test_a_symlinked_cache_or_lock_file_is_refused(private, tmp_path, name):
    target = tmp_path / 'elsewhere'
    target.write_text(json.dumps({'format': dc.FORMAT, 'version': dc.VERSION, 'entries': {}}))
    target.chmod(0o600)
    (private / name).symlink_to(target)
    kernel = make_file(private, 'kernel', b'k')
    settle()
    with pytest.raises(InsecureUsage, match='is a symbolic link; refused'):
        cache_at(private).sha256(kernel, 'kernel')
    assert target.read_text().startswith('{"format"')


def test_a_cache_path_that_is_a_directory_or_fifo_is_refused(private):
    (private / 'digests.json').mkdir()
    with pytest.raises(InsecureUsage, match='is a directory, not a regular file'):
        cache_at(private)
    os.mkfifo(private / 'fifo.json', 0o600)
    with pytest.raises(InsecureUsage, match='is a FIFO, not a regular file'):
        DigestCache(str(private / 'fifo.json'))


def test_a_directory_others_can_write_is_refused(tmp_path):
    shared = tmp_path / 'shared'
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(InsecureUsage, match='^digest_cache: the directory .* is mode 0777, writable by other users'):
        DigestCache(str(shared / 'digests.json'))
    shared.chmod(0o775)
    with pytest.raises(InsecureUsage, match='writable by its group'):
        DigestCache(str(shared / 'digests.json'))
    shared.chmod(0o1777)
    DigestCache(str(shared / 'digests.json'))


@pytest.mark.parametrize('path, match', [('', 'a path to the cache file is required'),
                                         ('a\0b', 'a path to the cache file is required'),
                                         ('/nonexistent-dir/digests.json', 'does not exist')])
def test_bad_cache_paths_are_usage_errors(path, match):
    with pytest.raises(UnsupportedUsage, match='^digest_cache: .*' + match):
        DigestCache(path)


def test_an_unwritable_cache_is_a_warning_not_a_failure(private, monkeypatch):
    kernel = make_file(private, 'kernel', b'k')
    settle()
    cache = cache_at(private)

    def refuse(*args, **kwargs):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(dc.tempfile, 'mkstemp', refuse)
    assert cache.sha256(kernel, 'kernel').digest == sha(b'k')
    assert cache.warnings == ['digest_cache: cannot write %s: No space left on device; the cache was not written'
                              % (private / 'digests.json')]
    assert not os.path.exists(private / 'digests.json')


# ---- properties -----------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=10)
KEYS = st.one_of(st.text(max_size=80), st.builds(
    lambda numbers, pin, path: '%s:%s:%s' % (':'.join(str(n) for n in numbers), pin, path),
    st.lists(st.integers(-3, 10 ** 12), min_size=5, max_size=5),
    st.sampled_from(['-', sha(b'a').hex(), sha(b'b').hex()]), st.text(max_size=10)))
ENTRIES = st.fixed_dictionaries({}, optional={
    'sha256': st.sampled_from([sha(b'a').hex(), sha(b'b').hex(), 'zz', '']) | JSON,
    'size': st.integers(-1, 10 ** 12) | JSON, 'stored': st.integers(0, 10) | JSON})


@given(document=st.one_of(JSON, st.fixed_dictionaries({
    'format': st.just(dc.FORMAT), 'version': st.just(dc.VERSION),
    'entries': st.dictionaries(KEYS, ENTRIES | JSON, max_size=5)})))
def test_any_cache_content_is_refused_or_yields_only_well_formed_entries(tmp_path_factory, document):
    directory = tmp_path_factory.mktemp('prop')
    directory.chmod(0o700)
    cache = DigestCache(str(directory / 'digests.json'))
    try:
        entries = cache._parse(json.dumps(document).encode())   # pylint: disable=protected-access
    except SevError as exc:
        assert exc.rc == 2 and 'not a digest cache' in str(exc)
        return
    for key, value in entries.items():
        fields = key.split(':', 6)
        assert len(fields) == 7 and value['size'] == int(fields[2])
        assert dc.HEX_SHA256.match(value['sha256'])
        assert fields[5] in ('-', value['sha256'])


@settings(max_examples=12)
@given(steps=st.lists(st.tuples(st.sampled_from(['rewrite', 'lookup', 'replace']), st.binary(min_size=8, max_size=8)),
                      min_size=1, max_size=5))
def test_a_cached_digest_is_always_the_current_content(tmp_path_factory, steps):
    """Whatever sequence of same-size rewrites (mtime kept), replacements and
    lookups, a lookup returns the SHA-256 of what the file holds now."""
    directory = tmp_path_factory.mktemp('state')
    directory.chmod(0o700)
    path = make_file(directory, 'initrd', b'initial!')
    content = b'initial!'
    cache = DigestCache(str(directory / 'digests.json'), min_age=0.02)
    time.sleep(0.04)
    for action, data in steps:
        if action == 'rewrite':
            rewrite_keeping_size_and_mtime(path, data)
            content = data
            time.sleep(0.04)
        elif action == 'replace':
            temp = make_file(directory, 'new', data)
            os.utime(temp, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns))
            os.replace(temp, path)
            content = data
            time.sleep(0.04)
        assert cache.sha256(path, 'initrd').digest == sha(content)
        assert DigestCache(str(directory / 'digests.json'), min_age=0.02).sha256(path, 'initrd').digest == sha(content)

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SHA-256 digests of the measured files, cached by file identity.

A fleet boots the same few firmware, kernel and initrd files; a 512 MiB
initrd costs about half a second to hash, for every guest.  A DigestCache
hashes each distinct file once: in memory for the validations of one
process, and, with a path, in a JSON file on the controller that forked
Ansible workers share.

Correctness rules (see docs/security.md, "Digest cache"):

* The identity is taken with fstat from the very descriptor that is hashed,
  never from a second lookup of the path (a symlink or rename swap between
  the two would pair one file's identity with another's digest).  It is
  (path, device, inode, size, mtime_ns, ctime_ns) plus the user's pinned
  sha256 when given.  ctime cannot be set from user space: a file rewritten
  with its size and mtime restored (os.utime) gets a new ctime, so a new key.
* The descriptor is fstat-ed again after hashing; an identity that changed
  while the file was read, or a byte count that is not the size, fails
  closed (the digest is not used, nothing is cached).
* An entry is stored only when the file's last change (mtime and ctime) is
  older than MIN_AGE seconds before the read began.  Timestamps have a
  granularity (a clock tick, 2 s on FAT): a change in the same tick as the
  previous one would not change ctime ("racy git").  With the margin, any
  change after the read began gets a newer timestamp than the one keyed on.
* The cache file is trusted: whoever writes it can pair a file with any
  digest.  It must be a regular file (not a symlink) owned by this user,
  mode 0600, in a directory nobody else can write (or sticky); anything else
  is refused, never silently used.  A file of ours that is not a cache at all
  (not JSON, no format marker: perhaps a key at a mistyped path) is refused,
  never overwritten.  An empty cache, another version of the format or
  malformed entries are ignored, with a warning: ignoring an entry only costs
  hashing again.
* Writes are atomic (a 0600 temporary file renamed over the cache) under an
  exclusive fcntl lock on a 0600 lock file next to it; the writer re-reads and
  merges what other workers wrote meanwhile.  Two entries that disagree on
  one key are both dropped (it cannot happen without tampering).  Workers
  that miss one key at once wait for the one hashing it (a byte-range lock
  per key), then read its digest: forks reaching one initrd hash it once.

The cache holds digests, sizes and paths of public files: no key, no secret.
It knows nothing of Ansible.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import os
import re
import stat
import tempfile
import threading
import time

from .errors import IncorrectConfig, InsecureUsage, UnsupportedUsage
from .files import open_regular
from .streaming import CHUNK_SIZE, hash_stream

FORMAT = 'confidential.sev digest cache'
VERSION = 1
# Seconds between a file's last change and the start of its read before its
# digest may be cached (see the module docstring): covers a kernel clock tick
# and FAT's 2-second timestamps.
MIN_AGE = 2.0
# Bounds: a cache file bigger than this is not ours; the oldest entries go first.
MAX_CACHE_BYTES = 16 << 20
MAX_ENTRIES = 10000
# Seconds between two attempts to take a key another worker is hashing.
IN_FLIGHT_POLL = 0.02
HEX_SHA256 = re.compile(r'^[0-9a-f]{64}$')
KEY_NUMBERS = re.compile(r'^[0-9]+:[0-9]+:[0-9]+:-?[0-9]+:-?[0-9]+$')


def parse_pin(value, option):
    """A pinned SHA-256 as given by the user (hex, any case, optional
    'sha256:' prefix) -> 64 lowercase hex digits, or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise UnsupportedUsage('%s must be a SHA-256 digest in hex (64 hex digits), got a %s'
                               % (option, type(value).__name__))
    text = value.strip().lower()
    if text.startswith('sha256:'):
        text = text[len('sha256:'):]
    if not HEX_SHA256.match(text):
        raise UnsupportedUsage('%s must be a SHA-256 digest in hex (64 hex digits), got %d characters that are '
                               'not one' % (option, len(value)))
    return text


def check_pin(option, what, path, digest, pin):
    """Fail closed (config error, naming the option) when ``digest`` (bytes) is
    not the pinned one.  The message shows the two digests and nothing else."""
    if pin is None:
        return
    if not hmac.compare_digest(digest.hex(), pin):
        raise IncorrectConfig('%s: the %s %s has SHA-256 %s, not the pinned %s: it is not the file the play pins, '
                              'so nothing is validated with it' % (option, what, path, digest.hex(), pin))


def identity(info):
    """The fields of an os.stat_result a file's content is keyed by."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def entry_key(path, ident, pin=None):
    """The cache key: identity, the user's pin (or '-'), then the path (which
    may contain any character but NUL, so it goes last)."""
    return '%d:%d:%d:%d:%d:%s:%s' % (ident + (pin or '-', os.path.abspath(os.fsdecode(path))))


class FileDigest:
    """One hashed file: its SHA-256, size and, for the firmware, the hash
    state after it (to continue the launch digest) and its last bytes."""

    __slots__ = ('digest', 'size', 'state', 'tail')

    def __init__(self, digest, size, state=None, tail=b''):
        self.digest = digest
        self.size = size
        self.state = state
        self.tail = tail


def _kind(mode):
    for test, name in ((stat.S_ISDIR, 'a directory'), (stat.S_ISLNK, 'a symbolic link'),
                       (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'),
                       (stat.S_ISFIFO, 'a FIFO'), (stat.S_ISSOCK, 'a socket')):
        if test(mode):
            return name
    return 'not a regular file'


class DigestCache:
    """File digests keyed by identity; see the module docstring.

    ``path``: the cache file (None: memory only).  ``read_only``: use the
    file but never write it (check mode).  ``min_age``: see MIN_AGE.
    ``option`` names the cache in messages.  Thread-safe.
    """

    def __init__(self, path=None, read_only=False, min_age=None, option='digest_cache'):
        self.path = path
        self.read_only = read_only
        self.min_age_ns = int((MIN_AGE if min_age is None else min_age) * 1e9)
        self.option = option
        # every warning so far; take_warnings() hands out each once
        self.warnings = []
        self._warnings_taken = 0
        self._hits = self._misses = self._hashed_bytes = 0
        # key -> hex digest, from disk or hashed here
        self._digests = {}
        # key -> FileDigest with a hash state (firmware): memory only, a
        # hashlib state cannot be saved
        self._states = {}
        self._loaded_stamp = None
        self._lock = threading.RLock()
        self._key_locks = {}
        # keys met with two different digests (see _conflict)
        self._poisoned = set()
        self._lock_fd = self._lock_pid = None
        if path is not None:
            if not isinstance(path, str) or not path or '\0' in path:
                raise UnsupportedUsage('%s: a path to the cache file is required (no NUL byte)' % option)
            self.path = os.path.abspath(path)
            self._check_directory()
            self._reload()

    # -- statistics ----------------------------------------------------------

    def stats(self):
        """{'hits', 'misses', 'hashed_bytes'} since this cache was made."""
        with self._lock:
            return {'hits': self._hits, 'misses': self._misses, 'hashed_bytes': self._hashed_bytes}

    def take_warnings(self):
        """The warnings not taken yet (each is reported once, by whoever takes it)."""
        with self._lock:
            new = self.warnings[self._warnings_taken:]
            self._warnings_taken = len(self.warnings)
            return new

    # -- hashing -------------------------------------------------------------

    def sha256(self, path, what, pin=None, only_cached=False):
        """FileDigest (digest, size) of the regular file at ``path``.
        ``only_cached``: None instead of hashing on a miss (not counted)."""
        return self._get(path, what, pin, keep_state=False, only_cached=only_cached)

    def firmware(self, path, what='firmware', pin=None, keep_tail=0, only_cached=False):
        """FileDigest with the hash state after the file (``state``, a fresh
        copy the caller may update) and its last ``keep_tail`` bytes."""
        found = self._get(path, what, pin, keep_state=True, keep_tail=keep_tail, only_cached=only_cached)
        return None if found is None else FileDigest(found.digest, found.size, found.state.copy(), found.tail)

    def _key_lock(self, key):
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _lookup(self, key, keep_state):
        with self._lock:
            if keep_state:
                return self._states.get(key)
            hexdigest = self._digests.get(key)
            if hexdigest is None and self.path is not None:
                # another worker may have hashed it since we last read the file
                self._reload()
                hexdigest = self._digests.get(key)
            return None if hexdigest is None else FileDigest(bytes.fromhex(hexdigest), int(key.split(':')[2]))

    def _get(self, path, what, pin, keep_state, keep_tail=0, only_cached=False):
        with open_regular(path, what) as stream:
            # The clock before the first fstat: a change after this instant
            # gets a newer ctime than any entry stored (see MIN_AGE).
            started = time.time_ns()
            before = os.fstat(stream.fileno())
            ident = identity(before)
            key = entry_key(path, ident, pin)
            with self._key_lock(key):
                found = self._lookup(key, keep_state)
                if found is None and not only_cached:
                    with self._in_flight(key, keep_state):
                        # what the worker we waited for has just stored
                        found = self._lookup(key, keep_state)
                        if found is None:
                            return self._hash(stream, path, what, pin, key, before, started, keep_state, keep_tail)
                if found is not None:
                    with self._lock:
                        self._hits += 1
                return found

    def _hash(self, stream, path, what, pin, key, before, started, keep_state, keep_tail):
        """Hash the open stream, check its identity again, store when settled."""
        hasher = hashlib.sha256()
        result = hash_stream(stream, hasher, what, path, CHUNK_SIZE, keep_tail)
        size, tail = result if keep_tail else (result, b'')
        after = os.fstat(stream.fileno())
        with self._lock:
            self._misses += 1
            self._hashed_bytes += size
        if identity(after) != identity(before) or size != before.st_size:
            raise UnsupportedUsage(
                '%s: %s changed while it was being hashed (size, modification or change time differ, or '
                'fewer bytes than its size were read): its digest is not used; validate again once it '
                'no longer changes' % (what, path))
        found = FileDigest(hasher.digest(), size, hasher.copy() if keep_state else None, tail)
        settled = max(before.st_mtime_ns, before.st_ctime_ns) + self.min_age_ns < started
        pinned_ok = pin is None or hmac.compare_digest(found.digest.hex(), pin)
        if settled and pinned_ok:
            # a pinned key only ever holds the pinned digest
            self._store(key, found, keep_state)
        return found

    @contextlib.contextmanager
    def _in_flight(self, key, keep_state):
        """While this worker hashes a file for the cache file, other workers
        (processes) wanting the same key wait, then read the digest from the
        file instead of hashing it too: forks that reach one initrd at once
        hash it once.  A byte-range lock (one byte at an offset derived from
        the key) on the lock file; any failure to lock only costs a second
        hash, never correctness."""
        if self.path is None or self.read_only or keep_state:
            yield
            return
        offset = int.from_bytes(hashlib.sha256(key.encode('utf-8', 'surrogateescape')).digest()[:4], 'big')
        with self._lock:
            handle = self._lock_handle()
        # Polled, never a blocking wait: the kernel tracks these locks per
        # process, and two workers each hashing one file in one thread while
        # waiting for the other's file in another would look like a deadlock
        # (EDEADLK) that is none.  A holder that dies releases its lock.
        while True:
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
                locked = True
                break
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    locked = False      # cannot lock here: at worst a second hash
                    break
            time.sleep(IN_FLIGHT_POLL)
        try:
            yield
        finally:
            if locked:
                fcntl.lockf(handle, fcntl.LOCK_UN, 1, offset)

    def _store(self, key, found, keep_state):
        with self._lock:
            if key in self._poisoned:
                return
            if keep_state:
                self._states[key] = found
            else:
                self._digests[key] = found.digest.hex()
            if self.path is not None and not self.read_only and not keep_state:
                self._save({key: found.digest.hex()})

    # -- the file ------------------------------------------------------------

    def _check_directory(self):
        directory = os.path.dirname(self.path)
        try:
            info = os.stat(directory)
        except OSError as exc:
            raise UnsupportedUsage('%s: the directory %s does not exist or cannot be read: %s'
                                   % (self.option, directory, exc.strerror or exc))
        if not stat.S_ISDIR(info.st_mode):
            raise UnsupportedUsage('%s: %s is not a directory' % (self.option, directory))
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            raise InsecureUsage('%s: the directory %s is mode %04o, writable by %s: they could replace the cache '
                                'and pair any file with any digest; use a directory only its owner can write '
                                '(the role\'s state directory is 0700)'
                                % (self.option, directory, stat.S_IMODE(info.st_mode),
                                   'other users' if info.st_mode & 0o002 else 'its group'))

    def _check_ours(self, info, what):
        """Refuse a cache or lock file that this user did not make: a foreign
        one is never trusted, nor silently replaced."""
        if not stat.S_ISREG(info.st_mode):
            raise InsecureUsage('%s: %s is %s, not a regular file; refused (a cache file is only ever a regular '
                                'file this user made, mode 0600)' % (self.option, what, _kind(info.st_mode)))
        if info.st_uid != os.geteuid():
            raise InsecureUsage('%s: %s belongs to uid %d, not to this user (uid %d); refused: whoever can write '
                                'it decides which digest a file has' % (self.option, what, info.st_uid, os.geteuid()))
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise InsecureUsage('%s: %s is mode %04o, not 0600; refused (this collection writes it 0600; '
                                'another mode means someone else made or changed it: check, then remove it)'
                                % (self.option, what, stat.S_IMODE(info.st_mode)))

    def _open_checked(self, path, flags, what):
        """Open without following a symlink, then check the descriptor."""
        try:
            handle = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InsecureUsage('%s: %s is a symbolic link; refused (a cache file is only ever a regular file '
                                    'this user made, mode 0600)' % (self.option, what))
            raise UnsupportedUsage('%s: cannot open %s: %s' % (self.option, what, exc.strerror or exc))
        try:
            self._check_ours(os.fstat(handle), what)
        except BaseException:
            os.close(handle)
            raise
        return handle

    def _read_file(self, known_stamp=None):
        """(entries from the file, its stamp); a refusal for a foreign file;
        ({}, stamp) with a warning for one that is ours but not a cache.
        (None, stamp) when the file is still the one read at ``known_stamp``."""
        handle = self._open_checked(self.path, os.O_RDONLY, self.path)
        if handle is None:
            return {}, None
        with os.fdopen(handle, 'rb') as stream:
            info = os.fstat(stream.fileno())
            stamp = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            if known_stamp is not None and stamp == known_stamp:
                return None, stamp
            try:
                data = stream.read(MAX_CACHE_BYTES + 1)
            except OSError as exc:
                raise UnsupportedUsage('%s: cannot read %s: %s' % (self.option, self.path, exc.strerror or exc))
        return self._parse(data), stamp

    def _warn(self, message):
        if message not in self.warnings:
            self.warnings.append(message)

    def _parse(self, data):
        """Entries of a cache file that is ours.  Something that is not a cache
        at all (not JSON, no format marker: a key at a mistyped path?) is
        refused, never overwritten; an empty file, another version of the
        format or malformed entries are ignored with a warning."""
        ignored = '%s: %s %%s; its entries are ignored (files are hashed again) and it is rewritten' \
            % (self.option, self.path)
        not_a_cache = '%s: %s %%s, so it is not a digest cache this collection wrote; refused rather than ' \
            'overwritten (remove it, or give digest_cache another path)' % (self.option, self.path)
        if not data.strip():
            self._warn(ignored % 'is empty')
            return {}
        if len(data) > MAX_CACHE_BYTES:
            raise UnsupportedUsage(not_a_cache % ('is larger than %d bytes' % MAX_CACHE_BYTES))
        try:
            document = json.loads(data.decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            raise UnsupportedUsage(not_a_cache % 'is not valid JSON')
        if not isinstance(document, dict) or document.get('format') != FORMAT:
            raise UnsupportedUsage(not_a_cache % ('has no "format": "%s"' % FORMAT))
        if document.get('version') != VERSION or not isinstance(document.get('entries'), dict):
            self._warn(ignored % ('is not a version %d cache' % VERSION))
            return {}
        entries, bad = {}, 0
        for key, value in document['entries'].items():
            if self._entry_ok(key, value):
                entries[key] = value
            else:
                bad += 1
        if bad:
            self._warn('%s: %s had %d malformed entr%s, ignored'
                       % (self.option, self.path, bad, 'y' if bad == 1 else 'ies'))
        return entries

    @staticmethod
    def _entry_ok(key, value):
        """An entry's shape: digest hex, a key of 7 fields whose size agrees,
        and a pinned key holding exactly its pin."""
        if not isinstance(key, str) or not isinstance(value, dict):
            return False
        fields = key.split(':', 6)
        digest = value.get('sha256')
        if len(fields) != 7 or not isinstance(digest, str) or not HEX_SHA256.match(digest):
            return False
        if not KEY_NUMBERS.match(':'.join(fields[:5])) or value.get('size') != int(fields[2]):
            return False
        if not isinstance(value.get('stored'), (int, float)) or isinstance(value.get('stored'), bool):
            return False
        return fields[5] == '-' or fields[5] == digest

    def _reload(self):
        """Merge the file's entries into memory when it changed since last read."""
        entries, stamp = self._read_file(self._loaded_stamp)
        self._loaded_stamp = stamp
        if entries:
            self._merge_into_memory(entries)

    def _conflict(self, key):
        """One identity, two digests: only tampering or a bug does that.  The
        key is never used again by this cache, and dropped from the file."""
        self._poisoned.add(key)
        self._digests.pop(key, None)
        self._warn('%s: two digests for one file identity (%s); neither is used'
                   % (self.option, key.split(':', 6)[6]))

    def _merge_into_memory(self, entries):
        for key, value in entries.items():
            if key in self._poisoned:
                continue
            known = self._digests.get(key)
            if known is not None and known != value['sha256']:
                self._conflict(key)
                continue
            self._digests[key] = value['sha256']

    def _lock_handle(self):
        """The lock file's descriptor, opened once per process and kept open:
        closing any descriptor of a file drops all of the process's byte-range
        locks on it (POSIX), and a descriptor inherited over fork would share
        its flock with the parent.  Called with self._lock held."""
        if self._lock_fd is None or self._lock_pid != os.getpid():
            self._lock_fd = self._open_checked(self.path + '.lock', os.O_RDWR | os.O_CREAT, self.path + '.lock')
            self._lock_pid = os.getpid()
        return self._lock_fd

    def close(self):
        """Close the lock file (the cache stays usable; it is opened again when needed)."""
        with self._lock:
            if self._lock_fd is not None and self._lock_pid == os.getpid():
                os.close(self._lock_fd)
            self._lock_fd = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # pylint: disable=broad-except
            pass

    def _save(self, new):
        """Merge ``new`` (key -> hex digest) into the file, atomically, under
        the lock.  Called with self._lock held (threads are serialized there:
        flock does not exclude two threads of one process).  A failure to lock
        or write is a warning: the digests in hand are right either way."""
        try:
            handle = self._lock_handle()
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as exc:
            self._warn('%s: cannot lock %s.lock: %s; the cache was not written'
                       % (self.option, self.path, exc.strerror or exc))
            return
        try:
            entries, dummy = self._read_file()
            now = int(time.time())
            for key, digest in new.items():
                old = entries.get(key)
                if old is not None and old['sha256'] != digest:
                    self._conflict(key)
                    continue
                entries[key] = {'sha256': digest, 'size': int(key.split(':')[2]), 'stored': now}
            for key in self._poisoned:
                entries.pop(key, None)
            if len(entries) > MAX_ENTRIES:
                keep = sorted(entries, key=lambda name: entries[name]['stored'], reverse=True)[:MAX_ENTRIES]
                entries = dict((name, entries[name]) for name in keep)
            self._write(json.dumps({'format': FORMAT, 'version': VERSION, 'entries': entries},
                                   sort_keys=True, indent=0).encode('utf-8'))
            self._merge_into_memory(entries)
            self._loaded_stamp = None
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, data):
        directory = os.path.dirname(self.path)
        temp = None
        try:
            # mkstemp creates the file 0600 (O_EXCL): never readable by others, even briefly
            handle, temp = tempfile.mkstemp(prefix='.digests-', dir=directory)
            with os.fdopen(handle, 'wb') as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp, self.path)
            temp = None
        except OSError as exc:
            self._warn('%s: cannot write %s: %s; the cache was not written'
                       % (self.option, self.path, exc.strerror or exc))
        finally:
            if temp is not None:
                try:
                    os.unlink(temp)
                except OSError:
                    pass

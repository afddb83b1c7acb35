# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret hygiene: look for key and secret bytes in every byte a run leaves behind.

``needles(name, secret)`` turns one secret into every form a leak could take:
raw bytes, lower and upper hex, Python's bytes repr, and base64 (standard and
URL-safe) at all three alignments (the secret starting at byte 0, 1 or 2 of a
3-byte group, so that a secret embedded in a longer base64 blob is found too:
only the characters the secret alone determines are searched).

``scan_tree`` / ``scan_bytes`` search files and captured output for them.
``FileCapture`` reads, through fanotify, every file written under some
directories while a run happens, so that a temporary file (e.g. a
Vault-decrypted key) is seen even if it was deleted a millisecond later.
``check_private_modes`` checks a controller state directory: 0700 directories,
0600 files.

Guest memory and the EMULATED platform's own key store are excluded by
``emulator_private``: the first receives the injected secret by design, the
second stands in for the secure processor's firmware.
"""

from __future__ import annotations

import base64
import ctypes
import os
import select
import stat
import struct
import threading

# fanotify(7): struct fanotify_event_metadata, flags
_FAN_EVENT = struct.Struct('=IBBHQii')
FAN_CLOSE_WRITE, FAN_Q_OVERFLOW = 0x8, 0x4000
FAN_CLOEXEC, FAN_NONBLOCK = 0x1, 0x2
FAN_MARK_ADD, FAN_MARK_FILESYSTEM = 0x1, 0x100
AT_FDCWD = -100


def _b64_inner(data, shift, encode):
    """The base64 characters fully determined by ``data`` placed at byte ``shift`` of a 3-byte group."""
    encoded = encode(b'\0' * shift + data).decode('ascii')
    first = -(-shift // 3) * 4                    # first group that holds only data bytes
    last = ((shift + len(data)) // 3) * 4         # end of the last complete group
    return encoded[first:last]


def needles(name, secret):
    """{form name: bytes to search} for one secret (bytes, at least 8 long so that no form is trivial)."""
    if len(secret) < 8:
        raise ValueError('%s: a secret shorter than 8 bytes gives needles that match by chance' % name)
    forms = {'raw': secret, 'hex': secret.hex().encode(), 'HEX': secret.hex().upper().encode(),
             'repr': repr(secret)[2:-1].encode('ascii')}
    for shift in (0, 1, 2):
        forms['base64@%d' % shift] = _b64_inner(secret, shift, base64.b64encode).encode()
        forms['base64url@%d' % shift] = _b64_inner(secret, shift, base64.urlsafe_b64encode).encode()
    # a repr of printable bytes is the bytes themselves: keep only distinct forms
    return {'%s/%s' % (name, form): value for form, value in forms.items()
            if form == 'raw' or value != secret}


def all_needles(secrets_by_name):
    found = {}
    for name, secret in secrets_by_name.items():
        found.update(needles(name, secret))
    return found


def scan_bytes(data, needle_map, where):
    """['<where>: <needle name> at <offset>', ...] for every needle found in data."""
    hits = []
    for name, needle in needle_map.items():
        offset = data.find(needle)
        if offset >= 0:
            hits.append('%s: %s at offset %d' % (where, name, offset))
    return hits


def emulator_private(path):
    """True for the EMULATED platform's key store (STATE/platform) and guest memory (STATE/mem, RUNDIR/mem).

    STATE is recognised by its records/ and export/ siblings, a hypervisor's run
    directory (where pmemsave writes guest memory) by its run/, qemu/ and lib/
    siblings: nothing is excluded by name alone.
    """
    parts = os.path.realpath(path).split(os.sep)
    for i in range(len(parts) - 1, 0, -1):
        parent = os.sep.join(parts[:i]) or os.sep
        if parts[i] == 'platform' and os.path.isdir(os.path.join(parent, 'records')) \
                and os.path.isdir(os.path.join(parent, 'export')):
            return True
        if parts[i] == 'mem' and (os.path.isdir(os.path.join(parent, 'records'))
                                  or all(os.path.isdir(os.path.join(parent, d)) for d in ('run', 'qemu', 'lib'))):
            return True
    return False


def scan_tree(root, needle_map, allowed=(), exclude=emulator_private):
    """(hits, files scanned, bytes scanned) over every regular file under root.

    ``allowed``: paths (the intended 0600 key and secret files) that may hold
    secrets; ``exclude(path)``: emulated firmware and guest memory.  Symlinks are
    not followed (their targets are scanned where they live).
    """
    allowed = {os.path.realpath(p) for p in allowed}
    hits, files, size = [], 0, 0
    for directory, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not exclude(os.path.join(directory, d))]
        for file_name in names:
            path = os.path.join(directory, file_name)
            if os.path.realpath(path) in allowed or exclude(path):
                continue
            try:
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode):
                    continue
                with open(path, 'rb') as f:
                    data = f.read()
            except FileNotFoundError:
                continue  # removed while we walked (a daemon's transient file)
            files += 1
            size += len(data)
            hits += scan_bytes(data, needle_map, path)
    return hits, files, size


def check_private_modes(root, public_names=()):
    """Problems with a controller state directory: each directory must be 0700, each file 0600.

    ``public_names``: file names that hold public data by design (e.g. the
    dhCert and session the host receives in the domain XML anyway); they may be
    0644, never writable by others, and only inside the 0700 directories.
    """
    problems = []
    for directory, _dirs, names in os.walk(root):
        for entry in [directory] + [os.path.join(directory, n) for n in names]:
            info = os.lstat(entry)
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                problems.append('%s: a symlink' % entry)
            elif stat.S_ISDIR(info.st_mode):
                if mode != 0o700:
                    problems.append('%s: mode %o, not 700' % (entry, mode))
            elif os.path.basename(entry) in public_names:
                if mode not in (0o600, 0o644):
                    problems.append('%s: mode %o, not 600 or 644 (public)' % (entry, mode))
            elif mode != 0o600:
                problems.append('%s: mode %o, not 600' % (entry, mode))
    return problems


class FileCapture:
    """Every regular file written under some directories during a run, as written, deleted or not.

    fanotify(7) on the filesystems holding ``roots``: each close-after-write
    event carries a descriptor of the file it happened to (the kernel keeps the
    file alive until the event is read), so a temporary file that was written,
    read and deleted in a few milliseconds (e.g. a Vault-decrypted key) is read
    here all the same.  Needs CAP_SYS_ADMIN (root).  Only paths under ``roots``
    are kept, minus ``skip(path)`` and the emulated firmware and guest memory.
    ``captured`` is {path: [((st_dev, st_ino), each distinct content seen)]}:
    the inode recognises an intended output written under a temporary name
    and renamed into place.
    """

    def __init__(self, roots, max_bytes_per_file=4 << 20, skip=None):
        self.roots = [os.path.realpath(r).rstrip(os.sep) + os.sep for r in roots]
        self.max_bytes = max_bytes_per_file
        self.skip = skip or (lambda path: False)
        self.captured = {}
        self.modes = {}               # path -> its mode when last written
        self.truncated = []           # files larger than max_bytes (only their head was read)
        self.overflowed = False
        self.events = 0
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int,
                                             ctypes.c_char_p]
        self._fan = -1
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self._fan = self._libc.fanotify_init(FAN_CLOEXEC | FAN_NONBLOCK, os.O_RDONLY | os.O_LARGEFILE)
        if self._fan < 0:
            raise OSError(ctypes.get_errno(), 'fanotify_init (needs root)')
        for root in self.roots:
            if self._libc.fanotify_mark(self._fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_CLOSE_WRITE,
                                        AT_FDCWD, os.fsencode(root)) < 0:
                raise OSError(ctypes.get_errno(), 'fanotify_mark %s' % root)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._drain()
        os.close(self._fan)
        return False

    def _keep(self, fd):
        path = os.readlink('/proc/self/fd/%d' % fd)
        if path.endswith(' (deleted)'):
            path = path[:-len(' (deleted)')]
        if not any(path.startswith(root) for root in self.roots) or self.skip(path) or emulator_private(path):
            return
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return
        if info.st_size > self.max_bytes:
            self.truncated.append(path)
        data = os.pread(fd, min(info.st_size, self.max_bytes), 0)
        seen = self.captured.setdefault(path, [])
        version = ((info.st_dev, info.st_ino), data)
        if version not in seen:
            seen.append(version)
        self.modes[path] = stat.S_IMODE(info.st_mode)

    def _drain(self):
        while True:
            try:
                buf = os.read(self._fan, 1 << 16)
            except BlockingIOError:
                return
            offset = 0
            while offset + _FAN_EVENT.size <= len(buf):
                event_len, _vers, _res, _meta_len, mask, fd, _pid = _FAN_EVENT.unpack_from(buf, offset)
                offset += event_len
                if mask & FAN_Q_OVERFLOW:
                    self.overflowed = True
                if fd < 0:
                    continue
                self.events += 1
                try:
                    self._keep(fd)
                finally:
                    os.close(fd)

    def _loop(self):
        while not self._stop.is_set():
            ready, _w, _x = select.select([self._fan], [], [], 0.05)
            if ready:
                self._drain()

    def scan(self, needle_map, allowed=()):
        """(hits, files captured) over every captured version of every file.

        A version is allowed when it is a version of an ``allowed`` path, or the
        same inode with the same bytes (that output before its rename into place).
        """
        allowed_versions = set()
        for path in allowed:
            allowed_versions.update(self.captured.get(path, ()))
            try:
                info = os.stat(path)
                with open(path, 'rb') as f:
                    allowed_versions.add(((info.st_dev, info.st_ino), f.read(self.max_bytes)))
            except FileNotFoundError:
                pass  # removed since (the demo removes its files): its captured versions stand for it
        allowed = {os.path.realpath(p) for p in allowed}
        hits = []
        for path, versions in self.captured.items():
            if os.path.realpath(path) in allowed:
                continue
            for n, version in enumerate(versions):
                if version in allowed_versions:
                    continue    # an intended output before its rename into place
                hits += scan_bytes(version[1], needle_map, '%s (captured version %d)' % (path, n))
        return hits, len(self.captured)

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Output files on the controller: checked, written together, atomically.

Every output path is checked before anything is written:

* it must be absent or a regular file: never a symlink (which could point at
  another file to overwrite), a directory, a device (root replacing /dev/null)
  or a FIFO (opening one with no reader hangs); checked with lstat, nothing is
  opened;
* its directory must exist, and must not be writable by other users unless it
  has the sticky bit (like /tmp): whoever can write the directory can swap
  the files after we wrote them.  Private outputs (keys, secret packets,
  launch records) also refuse a group-writable directory; public ones
  (certificates, sessions, reference values) accept it.
* no two outputs, and no output and input, may be one file: compared by
  real path, and by device and inode where the file exists (hard links).

Then every output is written to a temporary file in its target's directory
(created 0600 by mkstemp, given its final mode with fchmod before any data,
so nothing is ever chmod'ed through a path), synced, and only when all are
written, renamed over the targets, and the directories synced.  If a rename
fails, the outputs already renamed are removed again, so a set of outputs is
never left half new (no secret header without its payload).

Failures are usage errors (rc 2) naming the option; a directory others can
write is insecure (rc 3).  Messages name paths, never file contents.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile

from .errors import InsecureUsage, UnsupportedUsage

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


class Output:
    """One output: the option that names it, its path, its bytes, its mode."""

    __slots__ = ('option', 'path', 'data', 'mode')

    def __init__(self, option, path, data, mode=PRIVATE_MODE):
        self.option = option
        self.path = path
        self.data = data
        self.mode = mode

    @property
    def private(self):
        return not self.mode & 0o077

    def __repr__(self):
        return '<Output %s %s mode %04o (content hidden)>' % (self.option, self.path, self.mode)


def _kind(mode):
    for test, name in ((stat.S_ISDIR, 'a directory'), (stat.S_ISLNK, 'a symbolic link'),
                       (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'),
                       (stat.S_ISFIFO, 'a FIFO'), (stat.S_ISSOCK, 'a socket')):
        if test(mode):
            return name
    return 'not a regular file'


def _lstat(path, option):
    """os.lstat, None when absent; bad paths are usage errors naming ``option``."""
    if not isinstance(path, str) or not path:
        raise UnsupportedUsage('%s: an output path is required' % option)
    if '\0' in path:
        raise UnsupportedUsage('%s: the output path contains a NUL byte' % option)
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UnsupportedUsage('%s: cannot inspect %s: %s' % (option, path, getattr(exc, 'strerror', None) or exc))


def check_output_path(path, option, private=True):
    """Refuse an output path that is not absent or a regular file, or whose
    directory is missing or writable by others (see the module docstring)."""
    info = _lstat(path, option)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise UnsupportedUsage('%s: %s is %s, not a regular file; an output is only ever written as a new regular '
                               'file or over one (refused, nothing written)' % (option, path, _kind(info.st_mode)))
    directory = os.path.dirname(os.path.abspath(path))
    try:
        dir_info = os.stat(directory)
    except OSError as exc:
        raise UnsupportedUsage('%s: the directory %s does not exist or cannot be read: %s'
                               % (option, directory, exc.strerror or exc))
    if not stat.S_ISDIR(dir_info.st_mode):
        raise UnsupportedUsage('%s: %s is not a directory' % (option, directory))
    writable_by_others = dir_info.st_mode & (0o022 if private else 0o002)
    if writable_by_others and not dir_info.st_mode & stat.S_ISVTX:
        raise InsecureUsage('%s: the directory %s is mode %04o, writable by %s: they could replace the file after '
                            'it is written; use a directory only its owner can write (chmod go-w)'
                            % (option, directory, stat.S_IMODE(dir_info.st_mode),
                               'other users' if dir_info.st_mode & 0o002 else 'its group'))


def _identity(path):
    """(real path, (st_dev, st_ino) or None) of a path."""
    real = os.path.realpath(path)
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return real, None
    return real, (info.st_dev, info.st_ino)


def check_distinct(outputs, inputs=()):
    """Refuse two outputs that are one file, or an output that is also an input.

    ``outputs`` and ``inputs`` are sequences of (option, path); inputs that are
    None are skipped.  Compares real paths (symlinks in the directories
    resolved) and, where the file exists, device and inode (hard links).
    """
    seen = []
    for role, pairs in (('output', outputs), ('input', inputs)):
        for option, path in pairs:
            if path is None:
                continue
            if not isinstance(path, str) or '\0' in path:
                if role == 'input':
                    continue    # the input's own reading reports it
                _lstat(path, option)
            real, inode = _identity(path)
            for other_role, other_option, other_real, other_inode in seen:
                if real == other_real or (inode is not None and inode == other_inode):
                    if other_role == 'output' and role == 'output':
                        raise UnsupportedUsage('%s and %s are the same file (%s): each output needs its own path '
                                               '(refused, nothing written)' % (other_option, option, real))
                    if role == 'input':
                        raise UnsupportedUsage('%s is also the input %s (%s): writing it would destroy the input '
                                               '(refused, nothing written)' % (other_option, option, real))
            if role == 'output':
                seen.append((role, option, real, inode))


def check_outputs(outputs, inputs=()):
    """Every check write_outputs makes before writing: each path, then distinctness.
    ``outputs`` are Output objects (data not needed)."""
    for output in outputs:
        check_output_path(output.path, output.option, output.private)
    check_distinct([(output.option, output.path) for output in outputs], inputs)


def _sync_directory(directory):
    try:
        handle = os.open(directory, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError as exc:
        # some file systems cannot sync a directory; the rename itself is done
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise UnsupportedUsage('the outputs were written in %s, but syncing the directory failed: %s'
                                   % (directory, exc.strerror or exc))
    finally:
        os.close(handle)


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def write_outputs(outputs, inputs=()):
    """Check, then write every Output atomically and together (see the module docstring)."""
    outputs = list(outputs)
    check_outputs(outputs, inputs)
    temps = []
    try:
        for output in outputs:
            directory = os.path.dirname(os.path.abspath(output.path))
            try:
                handle, temp_path = tempfile.mkstemp(prefix='.sev-', dir=directory)
            except OSError as exc:
                raise UnsupportedUsage('%s: cannot write in %s: %s (nothing written)'
                                       % (output.option, directory, exc.strerror or exc))
            temps.append(temp_path)
            try:
                # the final mode on the descriptor, before any data and before the rename
                os.fchmod(handle, output.mode)
                with os.fdopen(handle, 'wb') as stream:
                    handle = None
                    stream.write(output.data)
                    stream.flush()
                    os.fsync(stream.fileno())
            except OSError as exc:
                raise UnsupportedUsage('%s: cannot write %s: %s (nothing written)'
                                       % (output.option, output.path, exc.strerror or exc))
            finally:
                if handle is not None:
                    os.close(handle)
    except BaseException:
        for temp_path in temps:
            _unlink_quietly(temp_path)
        raise
    renamed = []
    try:
        for output, temp_path in zip(outputs, temps):
            try:
                os.replace(temp_path, output.path)
            except OSError as exc:
                raise UnsupportedUsage('%s: cannot write %s: %s (the outputs written with it were removed again: '
                                       '%s)' % (output.option, output.path, exc.strerror or exc,
                                                ', '.join(done.option for done in renamed) or 'none'))
            renamed.append(output)
    except BaseException:
        for done in renamed:
            _unlink_quietly(done.path)
        for temp_path in temps[len(renamed):]:
            _unlink_quietly(temp_path)
        raise
    for directory in sorted(set(os.path.dirname(os.path.abspath(output.path)) for output in outputs)):
        _sync_directory(directory)


def write_output(path, data, mode=PRIVATE_MODE, option='output', inputs=()):
    """One output, checked and written atomically."""
    write_outputs([Output(option, path, data, mode)], inputs)

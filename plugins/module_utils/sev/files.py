# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small-file input and private output."""

from __future__ import annotations

import os
import stat

from .errors import UnsupportedUsage
from .outputs import PRIVATE_MODE, write_output

# Key, VMSA and secret files are small; anything bigger is the wrong file.
MAX_SMALL_FILE = 1 << 20
VAULT_MAGIC = b'$ANSIBLE_VAULT'


class NotRegularFile(UnsupportedUsage):
    """The path names a device, FIFO, directory or socket: refused before reading."""


def describe_path(path, secret=False):
    """How a message names a path: as given, or hidden for key and secret
    options, where a user may have pasted the key itself instead of a path."""
    if secret:
        return 'the given path (not shown: a key or secret option)'
    return repr(path) if isinstance(path, str) and not path.isprintable() else str(path)


def open_regular(path, what, secret=False):
    """Open ``path`` for reading and return a binary stream, or refuse.

    Only a regular file is accepted, checked on the opened descriptor (no
    race with a rename): a device (/dev/zero, /dev/urandom, also through a
    symlink), a FIFO or a directory would hang the task or exhaust memory.
    O_NONBLOCK keeps opening a FIFO with no writer from blocking; it does not
    change reads from a regular file.
    """
    shown = describe_path(path, secret)
    if not isinstance(path, (str, bytes)) or not path:
        raise UnsupportedUsage('%s: a path is required' % what)
    if (b'\0' if isinstance(path, bytes) else '\0') in path:
        raise NotRegularFile('%s: the path contains a NUL byte' % what)
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0)
                         | getattr(os, 'O_NOCTTY', 0))
    except (OSError, ValueError) as exc:
        reason = getattr(exc, 'strerror', None) or type(exc).__name__
        raise UnsupportedUsage('%s: cannot read %s: %s' % (what, shown, reason))
    try:
        mode = os.fstat(handle).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile('%s: %s is not a regular file (%s); refused before reading it'
                                 % (what, shown, _kind(mode)))
        return os.fdopen(handle, 'rb')
    except BaseException:
        os.close(handle)
        raise


def _kind(mode):
    for test, name in ((stat.S_ISDIR, 'a directory'), (stat.S_ISCHR, 'a character device'),
                       (stat.S_ISBLK, 'a block device'), (stat.S_ISFIFO, 'a FIFO'),
                       (stat.S_ISSOCK, 'a socket')):
        if test(mode):
            return name
    return 'not a regular file'


def check_not_vault(path, what):
    """Measured files are public: refuse an Ansible Vault file rather than hash its ciphertext."""
    with open_regular(path, what) as stream:
        try:
            magic = stream.read(len(VAULT_MAGIC))
        except OSError as exc:
            raise UnsupportedUsage('%s: cannot read %s: %s' % (what, describe_path(path), exc.strerror or exc))
    if magic == VAULT_MAGIC:
        raise UnsupportedUsage('%s: %s is Ansible Vault-encrypted; measured files must be given in '
                               'clear (they are not secret)' % (what, describe_path(path)))
    return path


def read_small_file(path, what, limit=MAX_SMALL_FILE, secret=False):
    """The bytes of a small regular file; errors name the input, never its content
    (nor, with ``secret``, its path)."""
    with open_regular(path, what, secret) as stream:
        try:
            data = stream.read(limit + 1)
        except OSError as exc:
            raise UnsupportedUsage('%s: cannot read %s: %s' % (what, describe_path(path, secret),
                                                               exc.strerror or exc))
    if len(data) > limit:
        raise UnsupportedUsage('%s: %s is larger than %d bytes' % (what, describe_path(path, secret), limit))
    return data


def write_private_file(path, data, option='output'):
    """Write ``data`` to ``path`` atomically, mode 0600 from creation, after the
    checks of sev/outputs.py (only ever a new or a regular file; no directory
    others can write)."""
    write_output(path, data, PRIVATE_MODE, option)


def write_file_atomically(path, data, mode, option='output'):
    """Write ``data`` to ``path`` atomically with ``mode`` (set on the temporary
    file before the rename), after the checks of sev/outputs.py."""
    write_output(path, data, mode, option)

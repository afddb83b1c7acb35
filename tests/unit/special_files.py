# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Non-regular files where an output is expected, for the output-safety tests
(issue 10): a device node, a FIFO, a directory or a symlink, and a watchdog
that fails a test instead of hanging when a write blocks on a FIFO."""

from __future__ import annotations

import contextlib
import os
import signal
import stat

KINDS = ['device', 'fifo', 'directory', 'symlink']


class Hung(BaseException):
    """Not an OSError (TimeoutError is one, which the code under test may turn into a refusal)."""


@contextlib.contextmanager
def watchdog(seconds=10):
    """Raise Hung when the block runs longer than ``seconds`` (an output opened as a FIFO blocks forever)."""
    def expired(signum, frame):
        raise Hung('blocked for %d s: an output was opened as a FIFO' % seconds)
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def make_special(path, kind, victim_name=None):
    """A non-regular file at ``path``: a character device like /dev/null (root only),
    a FIFO, a directory, or a symlink to a file (``victim_name``, next to it) that must not change."""
    if kind == 'device':
        os.mknod(str(path), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    elif kind == 'fifo':
        os.mkfifo(str(path))
    elif kind == 'directory':
        os.mkdir(str(path))
    else:
        victim = path.parent / (victim_name or 'victim-of-' + path.name)
        victim.write_bytes(b'must stay')
        os.symlink(str(victim), str(path))
    return os.lstat(str(path))


def unchanged(path, before):
    """Whether ``path`` is still the same kind of file, the same inode, as ``before`` (an lstat)."""
    after = os.lstat(str(path))
    return (stat.S_IFMT(after.st_mode), after.st_ino) == (stat.S_IFMT(before.st_mode), before.st_ino)

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small-file input and private output."""

from __future__ import annotations

import os
import tempfile

from .errors import UnsupportedUsage

# Key, VMSA and secret files are small; anything bigger is the wrong file.
MAX_SMALL_FILE = 1 << 20
VAULT_MAGIC = b'$ANSIBLE_VAULT'


def check_not_vault(path, what):
    """Measured files are public: refuse an Ansible Vault file rather than hash its ciphertext."""
    try:
        with open(path, 'rb') as stream:
            magic = stream.read(len(VAULT_MAGIC))
    except OSError as exc:
        raise UnsupportedUsage('%s: cannot read %s: %s' % (what, path, exc.strerror or exc))
    if magic == VAULT_MAGIC:
        raise UnsupportedUsage('%s: %s is Ansible Vault-encrypted; measured files must be given in '
                               'clear (they are not secret)' % (what, path))
    return path


def read_small_file(path, what, limit=MAX_SMALL_FILE):
    """The bytes of a small file; errors name the input, never its content."""
    try:
        with open(path, 'rb') as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise UnsupportedUsage('%s: cannot read %s: %s' % (what, path, exc.strerror or exc))
    if len(data) > limit:
        raise UnsupportedUsage('%s: %s is larger than %d bytes' % (what, path, limit))
    return data


def write_private_file(path, data):
    """Write ``data`` to ``path`` atomically, mode 0600 from creation."""
    write_file_atomically(path, data, 0o600)


def write_file_atomically(path, data, mode):
    """Write ``data`` to ``path`` through a temporary file in the same
    directory (mkstemp creates it 0600, then it gets ``mode``) renamed over the
    target: no reader ever sees a partial file, or a private one readable."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temp_path = tempfile.mkstemp(prefix='.sev-', dir=directory)
    try:
        if mode != 0o600:
            os.fchmod(handle, mode)
        with os.fdopen(handle, 'wb') as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.unlink(temp_path)
        raise

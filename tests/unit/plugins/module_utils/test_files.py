# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small-file input and private (0600, atomic) output."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.confidential.sev.plugins.module_utils.sev import files
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage

SECRET = b'hunter2-very-secret-\x00\xff'


@pytest.fixture
def umask():
    """Set a umask for the test, restoring the old one afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_read_small_file(tmp_path):
    path = tmp_path / 'tik.bin'
    path.write_bytes(SECRET)
    assert files.read_small_file(str(path), 'tik') == SECRET


def test_read_at_and_over_the_limit(tmp_path):
    path = tmp_path / 'vmsa.bin'
    path.write_bytes(SECRET * 10)
    limit = len(SECRET) * 10
    assert files.read_small_file(str(path), 'vmsa_cpu0', limit=limit) == SECRET * 10
    with pytest.raises(UnsupportedUsage) as info:
        files.read_small_file(str(path), 'vmsa_cpu0', limit=limit - 1)
    message = str(info.value)
    assert message == 'vmsa_cpu0: %s is larger than %d bytes' % (path, limit - 1)
    assert SECRET.hex() not in message and 'hunter2' not in message


def test_default_limit_is_one_mib(tmp_path):
    assert files.MAX_SMALL_FILE == 1 << 20
    path = tmp_path / 'secret'
    with open(path, 'wb') as stream:
        stream.truncate((1 << 20) + 1)
    with pytest.raises(UnsupportedUsage, match='larger than 1048576 bytes'):
        files.read_small_file(str(path), 'secrets[0]')


def test_read_missing_names_the_input(tmp_path):
    missing = str(tmp_path / 'tek.bin')
    with pytest.raises(UnsupportedUsage) as info:
        files.read_small_file(missing, 'tek')
    assert str(info.value) == 'tek: cannot read %s: No such file or directory' % missing
    assert info.value.rc == 2


def test_read_directory(tmp_path):
    with pytest.raises(UnsupportedUsage, match='^tk: .* is not a regular file \\(a directory\\)'):
        files.read_small_file(str(tmp_path), 'tk')


@pytest.mark.parametrize('mask', [0o000, 0o002, 0o022, 0o077])
def test_write_creates_0600_whatever_the_umask(tmp_path, umask, mask):
    umask(mask)
    path = tmp_path / 'header.b64'
    files.write_private_file(str(path), b'AAAA')
    assert mode(path) == 0o600
    assert path.read_bytes() == b'AAAA'
    assert os.listdir(tmp_path) == ['header.b64']       # no temporary file left


def test_write_replaces_a_world_readable_file(tmp_path, umask):
    umask(0)
    path = tmp_path / 'payload.b64'
    path.write_bytes(b'old contents, much longer than the new ones')
    os.chmod(path, 0o644)
    old_inode = os.stat(path).st_ino
    # A hard link keeps the old file reachable: if it were rewritten in place,
    # the new data would show through the link.
    os.link(path, tmp_path / 'link')
    files.write_private_file(str(path), b'new')
    assert mode(path) == 0o600
    assert path.read_bytes() == b'new'
    assert os.stat(path).st_ino != old_inode
    assert (tmp_path / 'link').read_bytes() == b'old contents, much longer than the new ones'


def test_write_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files.write_private_file('out.b64', b'xyz')
    assert (tmp_path / 'out.b64').read_bytes() == b'xyz'
    assert mode(tmp_path / 'out.b64') == 0o600


def test_failed_write_leaves_no_temporary_file_and_keeps_the_target(tmp_path):
    path = tmp_path / 'header.b64'
    path.write_bytes(b'keep me')
    with pytest.raises(TypeError):
        files.write_private_file(str(path), 'text, not bytes')
    assert path.read_bytes() == b'keep me'
    assert os.listdir(tmp_path) == ['header.b64']


def test_write_into_a_missing_directory_is_a_usage_error(tmp_path):
    with pytest.raises(UnsupportedUsage, match='^output: the directory .* does not exist'):
        files.write_private_file(str(tmp_path / 'nope' / 'header.b64'), b'x')

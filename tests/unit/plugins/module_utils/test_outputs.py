# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev/outputs.py: output paths checked before anything is written, outputs written
together (temporary files with their final mode, then all renamed), directories synced."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from ansible_collections.confidential.sev.plugins.module_utils.sev import outputs
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import InsecureUsage, UnsupportedUsage
from ansible_collections.confidential.sev.plugins.module_utils.sev.outputs import Output

SECRET = b'hunter2-very-secret-\x00\xff'


def mode(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def test_outputs_are_written_together_with_their_modes(tmp_path):
    outputs.write_outputs([Output('tik_file', str(tmp_path / 'tik'), SECRET),
                           Output('session_file', str(tmp_path / 'session'), b'public', outputs.PUBLIC_MODE)])
    assert (tmp_path / 'tik').read_bytes() == SECRET and mode(tmp_path / 'tik') == 0o600
    assert (tmp_path / 'session').read_bytes() == b'public' and mode(tmp_path / 'session') == 0o644
    assert sorted(os.listdir(tmp_path)) == ['session', 'tik']


def test_a_failed_rename_removes_the_outputs_already_renamed(tmp_path, monkeypatch):
    (tmp_path / 'payload').write_bytes(b'old payload')
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith('payload'):
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_replace(src, dst)
    monkeypatch.setattr(os, 'replace', replace)
    with pytest.raises(UnsupportedUsage) as info:
        outputs.write_outputs([Output('secret_header_file', str(tmp_path / 'header'), b'h'),
                               Output('secret_payload_file', str(tmp_path / 'payload'), b'p')])
    assert str(info.value).startswith('secret_payload_file: cannot write')
    assert 'removed again: secret_header_file' in str(info.value)
    # no header without its payload, no temporary file left
    assert sorted(os.listdir(tmp_path)) == ['payload']


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    real_fsync = os.fsync
    count = []

    def fsync(handle):
        count.append(handle)
        if len(count) == 2:
            raise OSError(errno.EIO, 'Input/output error')
        return real_fsync(handle)
    monkeypatch.setattr(os, 'fsync', fsync)
    with pytest.raises(UnsupportedUsage, match='^b: cannot write .*Input/output error .nothing written.'):
        outputs.write_outputs([Output('a', str(tmp_path / 'a'), b'1'), Output('b', str(tmp_path / 'b'), b'2')])
    assert os.listdir(tmp_path) == []


def test_directory_is_synced_after_the_renames(tmp_path, monkeypatch):
    order = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, 'fsync', lambda handle: order.append(
        'dir' if stat.S_ISDIR(os.fstat(handle).st_mode) else 'file') or real_fsync(handle))
    monkeypatch.setattr(os, 'replace', lambda src, dst: order.append('rename') or real_replace(src, dst))
    outputs.write_output(str(tmp_path / 'x'), b'x')
    assert order == ['file', 'rename', 'dir']


@pytest.mark.parametrize('bad, words', [
    ('', 'an output path is required'),
    ('a\0b', 'contains a NUL byte'),
])
def test_bad_paths(bad, words):
    with pytest.raises(UnsupportedUsage, match=words):
        outputs.check_output_path(bad, 'dest')


def test_group_writable_directory_is_refused_for_private_outputs_only(tmp_path):
    os.chmod(str(tmp_path), 0o770)
    with pytest.raises(InsecureUsage, match='writable by its group'):
        outputs.check_output_path(str(tmp_path / 'key'), 'tik_file', private=True)
    outputs.check_output_path(str(tmp_path / 'cert'), 'dh_cert_file', private=False)
    os.chmod(str(tmp_path), 0o777)
    with pytest.raises(InsecureUsage, match='writable by other users'):
        outputs.check_output_path(str(tmp_path / 'cert'), 'dh_cert_file', private=False)


def test_distinct_outputs_and_inputs(tmp_path):
    (tmp_path / 'a').write_bytes(b'a')
    os.link(str(tmp_path / 'a'), str(tmp_path / 'hard'))
    with pytest.raises(UnsupportedUsage, match='^x and y are the same file'):
        outputs.check_distinct([('x', str(tmp_path / 'a')), ('y', str(tmp_path / 'hard'))])
    with pytest.raises(UnsupportedUsage, match='^x is also the input tik'):
        outputs.check_distinct([('x', str(tmp_path / 'sub' / '..' / 'a'))], [('tik', str(tmp_path / 'a'))])
    # inputs may repeat each other; None and unreadable inputs are skipped
    outputs.check_distinct([('x', str(tmp_path / 'new'))],
                           [('tik', str(tmp_path / 'a')), ('tek', str(tmp_path / 'a')), ('tk', None), ('z', 'a\0')])


def test_output_repr_hides_the_data():
    assert SECRET.hex() not in repr(Output('tik_file', '/k', SECRET)) and 'hunter2' not in repr(Output('t', '/k', SECRET))

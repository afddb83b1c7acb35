# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 10, outputs of the controller-side action plugins: sev_measurement_validate's
secret header and payload, sev_reference_measurement's dest.  A device node, FIFO,
directory or symlink is refused naming the option (nothing replaced, no hang); one
path for two outputs or an output that is an input is refused before anything is
validated or written; a write that fails after a match leaves no header without its
payload and is a usage error, not rc 6."""

from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.confidential.sev.plugins.action import sev_reference_measurement
from ansible_collections.confidential.sev.tests.unit.plugins.action import action_harness
from ansible_collections.confidential.sev.tests.unit.plugins.action.test_sev_measurement_validate import (  # noqa: F401 pylint: disable=unused-import
    Harness, TIK, assert_clean_failure, basedir, with_secret,
)
from ansible_collections.confidential.sev.tests.unit.special_files import make_special, unchanged


@pytest.mark.parametrize('option', ['secret_header_file', 'secret_payload_file'])
@pytest.mark.parametrize('kind', ['device', 'fifo', 'directory', 'symlink'])
def test_secret_output_that_is_not_a_regular_file(basedir, no_hang, option, kind):
    target = basedir / 'out' / 'special'
    before = make_special(target, kind, 'victim')
    result = Harness(basedir).run(**dict(with_secret(basedir), **{option: str(target)}))
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'].startswith(option + ': ') and 'not a regular file' in result['msg'], result['msg']
    assert unchanged(target, before)
    assert sorted(os.listdir(basedir / 'out')) == sorted(['special'] + (['victim'] if kind == 'symlink' else []))


def test_header_and_payload_on_one_path(basedir):
    path = str(basedir / 'out' / 'packet.b64')
    result = Harness(basedir).run(**dict(with_secret(basedir), secret_header_file=path, secret_payload_file=path))
    assert_clean_failure(result, 'unsupported', 2)
    assert 'secret_header_file and secret_payload_file are the same file' in result['msg'], result['msg']
    assert os.listdir(basedir / 'out') == []


@pytest.mark.parametrize('option, input_path, input_option', [
    ('secret_header_file', 'tik.bin', 'tik'),
    ('secret_payload_file', 'secret.txt', 'secrets[0].path'),
    ('secret_header_file', 'files/OVMF.fd', 'firmware'),
])
def test_secret_output_that_is_an_input(basedir, option, input_path, input_option):
    before = (basedir / input_path).read_bytes()
    result = Harness(basedir).run(**dict(with_secret(basedir), **{option: str(basedir / input_path)}))
    assert_clean_failure(result, 'unsupported', 2)
    assert '%s is also the input %s' % (option, input_option) in result['msg'], result['msg']
    assert (basedir / input_path).read_bytes() == before
    assert (basedir / 'tik.bin').read_bytes() == TIK


def test_failed_payload_write_after_a_match_leaves_no_header(basedir, monkeypatch):
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith('payload.b64'):
            raise OSError(errno.EIO, 'Input/output error')
        return real_replace(src, dst, *args, **kwargs)
    monkeypatch.setattr(os, 'replace', replace)
    result = Harness(basedir).run(**with_secret(basedir))
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'].startswith('secret_payload_file: cannot write'), result['msg']
    assert os.listdir(basedir / 'out') == []


# ---- sev_reference_measurement --------------------------------------------------------------------

def reference(basedir, **args):
    return action_harness.Harness(sev_reference_measurement, 'confidential.sev.sev_reference_measurement',
                                  basedir).run(**args)


def test_reference_dest_that_is_the_firmware(basedir):
    firmware = basedir / 'files' / 'OVMF.fd'
    before = firmware.read_bytes()
    result = reference(basedir, firmware=['OVMF.fd'], dest=str(firmware), format='json')
    assert result['failed'] is True and (result['reason'], result['rc']) == ('unsupported', 2), result
    assert 'dest is also the input firmware' in result['msg'], result['msg']
    assert firmware.read_bytes() == before


@pytest.mark.parametrize('kind', ['device', 'fifo', 'symlink'])
def test_reference_dest_that_is_not_a_regular_file(basedir, no_hang, kind):
    dest = basedir / 'out' / 'special'
    before = make_special(dest, kind, 'victim')
    result = reference(basedir, firmware=['OVMF.fd'], dest=str(dest), format='json')
    assert result['failed'] is True and (result['reason'], result['rc']) == ('unsupported', 2), result
    assert result['msg'].startswith('dest: ') and 'not a regular file' in result['msg'], result['msg']
    assert unchanged(dest, before)


# ---- sev_session through its action plugin (inputs found on the search path) ------------------------

def test_session_output_that_is_an_input_found_on_the_search_path(tmp_path):
    """cek_file 'cek.cert' is found in files/; session_file 'files/cek.cert' (from the playbook
    directory) is that very file: refused, and the CEK is not replaced by a session."""
    from ansible_collections.confidential.sev.plugins.module_utils.sev import certs, chain  # pylint: disable=import-outside-toplevel
    from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw  # pylint: disable=import-outside-toplevel
    from ansible_collections.confidential.sev.tests.unit.plugins.action import test_sev_session as ts  # pylint: disable=import-outside-toplevel
    platform = fw.EmulatedPlatform(api=(1, 55), build_id=21)
    ark = certs.parse_amd_cert(platform.roots.ark_cert, 'ARK')[0]
    ask = certs.parse_amd_cert(platform.roots.ask_cert, 'ASK')[0]
    original = chain.pinned_roots
    chain.pinned_roots = lambda: [('genoa', ark, ask)]
    try:
        (tmp_path / 'files').mkdir()
        cek = platform.kds_cek()
        (tmp_path / 'files' / 'cek.cert').write_bytes(cek)
        (tmp_path / 'keys').mkdir()
        result = ts.Harness(tmp_path).run(**ts.args_for(platform, session_file='files/cek.cert'))
    finally:
        chain.pinned_roots = original
    assert result['failed'] is True and (result['reason'], result['rc']) == ('unsupported', 2), result
    assert 'session_file is also the input cek_file' in result['msg'], result['msg']
    assert (tmp_path / 'files' / 'cek.cert').read_bytes() == cek
    assert os.listdir(tmp_path / 'keys') == []

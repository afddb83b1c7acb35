# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scanner itself: each form of a leak is found, the capture sees deleted files, modes are checked.

A scanner that finds nothing proves nothing: these tests plant each form and
require a hit.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile

import pytest

import secret_scan  # tests/hygiene, put on sys.path by conftest.py

SECRET = bytes(range(0xf0, 0x100)) + b'\x00\x01\x7f\x80'  # 20 bytes, non-printable


@pytest.mark.parametrize('shift', [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize('encode', [base64.b64encode, base64.urlsafe_b64encode])
def test_base64_inside_a_longer_blob_is_found_at_every_alignment(shift, encode):
    blob = encode(os.urandom(shift) + SECRET + os.urandom(7))
    hits = secret_scan.scan_bytes(b'{"x": "%s"}' % blob, secret_scan.needles('tik', SECRET), 'out')
    assert hits, (shift, blob)


@pytest.mark.parametrize('form', ['raw', 'hex', 'HEX', 'repr', 'json-escaped-hex'])
def test_each_plain_form_is_found(form):
    text = {'raw': SECRET, 'hex': SECRET.hex().encode(), 'HEX': SECRET.hex().upper().encode(),
            'repr': repr(SECRET).encode(), 'json-escaped-hex': json.dumps({'k': SECRET.hex()}).encode()}[form]
    hits = secret_scan.scan_bytes(b'before ' + text + b' after', secret_scan.needles('tek', SECRET), 'out')
    assert any('tek/' in hit for hit in hits), form


def test_no_hit_on_unrelated_bytes_and_short_secrets_refused():
    other = os.urandom(4096)
    assert secret_scan.scan_bytes(other, secret_scan.needles('k', SECRET), 'x') == [] or SECRET in other
    with pytest.raises(ValueError):
        secret_scan.needles('pin', b'1234')


def test_scan_tree_honours_allowed_files_and_reports_others(tmp_path):
    (tmp_path / 'key').write_bytes(SECRET)
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'log').write_bytes(b'x' + base64.b64encode(b'zz' + SECRET))
    hits, files, _size = secret_scan.scan_tree(str(tmp_path), secret_scan.needles('s', SECRET),
                                               allowed=[str(tmp_path / 'key')])
    assert files == 1 and len(hits) == 1 and hits[0].startswith(str(tmp_path / 'sub' / 'log')), hits


def test_emulated_key_store_and_guest_memory_are_excluded_by_structure(tmp_path):
    state = tmp_path / 'emulator'
    for sub in ('platform', 'records', 'export', 'mem'):
        (state / sub).mkdir(parents=True)
    (state / 'platform' / 'pdh.key').write_bytes(SECRET)
    (state / 'mem' / 'launch-1.ram').write_bytes(SECRET)
    (state / 'records' / 'launch-1.json').write_bytes(SECRET.hex().encode())
    hits, files, _size = secret_scan.scan_tree(str(tmp_path), secret_scan.needles('s', SECRET))
    assert files == 1 and hits and 'records' in hits[0]
    # a hypervisor run directory's mem/ (pmemsave dumps of guest memory)
    rundir = tmp_path / 'sevh-x'
    for sub in ('run', 'qemu', 'lib', 'mem'):
        (rundir / sub).mkdir(parents=True)
    (rundir / 'mem' / 'secret.bin').write_bytes(SECRET)
    (rundir / 'lib' / 'dom.xml').write_bytes(SECRET)
    hits, files, _size = secret_scan.scan_tree(str(tmp_path), secret_scan.needles('s', SECRET))
    assert files == 2 and len(hits) == 2 and not any('secret.bin' in hit for hit in hits), hits
    # a directory merely called "platform" is not excluded
    (tmp_path / 'platform').mkdir()
    (tmp_path / 'platform' / 'x').write_bytes(SECRET)
    assert len(secret_scan.scan_tree(str(tmp_path), secret_scan.needles('s', SECRET))[0]) == 3


def test_capture_reads_a_temp_file_deleted_before_the_scan(tmp_path):
    with secret_scan.FileCapture([str(tmp_path)]) as capture:
        sub = tmp_path / 'ansible-local-1'
        sub.mkdir()
        fd, path = tempfile.mkstemp(dir=str(sub))
        os.write(fd, b'plaintext ' + SECRET)
        os.close(fd)
        os.unlink(path)
    hits, files = capture.scan(secret_scan.needles('vault', SECRET))
    assert files == 1 and hits and path in hits[0], (hits, capture.captured)
    assert not capture.overflowed and capture.events >= 1


def test_private_modes(tmp_path):
    state = tmp_path / 'state'
    state.mkdir(mode=0o700)
    (state / 'a').mkdir(mode=0o700)
    good = state / 'a' / 'tik'
    good.write_bytes(b'x')
    good.chmod(0o600)
    os.chmod(str(state), 0o700)
    assert secret_scan.check_private_modes(str(state)) == []
    (state / 'a' / 'pub').write_bytes(b'x')
    (state / 'a' / 'pub').chmod(0o644)
    (state / 'b').mkdir(mode=0o755)
    os.chmod(str(state / 'b'), 0o755)
    problems = secret_scan.check_private_modes(str(state))
    assert len(problems) == 2 and any('pub: mode 644' in p for p in problems), problems
    # a name declared public may be 0644, never writable by others
    assert len(secret_scan.check_private_modes(str(state), public_names=('pub',))) == 1
    (state / 'a' / 'pub').chmod(0o666)
    assert len(secret_scan.check_private_modes(str(state), public_names=('pub',))) == 2

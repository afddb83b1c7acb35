# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 10, outputs: every module that writes files on the controller refuses a
path that is a device node, FIFO, directory or symlink, a path used for two
outputs or also as an input, and a directory others can write; writes public
files without chmod'ing through a path; syncs the directory; and sev_session
reuses an existing session only when it was made for THIS platform's PDH.

Only interfaces that existed before issue 10 are used here, so that each test
can be run against the code before the fix (see the closing note).
"""

from __future__ import annotations

import base64
import os
import stat

import pytest

from ansible_collections.confidential.sev.plugins.module_utils import launch_record
from ansible_collections.confidential.sev.plugins.module_utils import reference_values as rv
from ansible_collections.confidential.sev.plugins.module_utils import session_options as so
from ansible_collections.confidential.sev.plugins.module_utils.sev import certs, chain
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import SevError
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import read_small_file
from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw
from ansible_collections.confidential.sev.tests.unit.special_files import KINDS, make_special, unchanged


# ---- sev_session ---------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def platform():
    return fw.EmulatedPlatform(api=(1, 55), build_id=21)


@pytest.fixture
def injected(platform, monkeypatch):
    ark = certs.parse_amd_cert(platform.roots.ark_cert, 'ARK')[0]
    ask = certs.parse_amd_cert(platform.roots.ask_cert, 'ASK')[0]
    monkeypatch.setattr(chain, 'pinned_roots', lambda: [('milan', ark, ask)])
    return platform


def node_sev(platform):
    info = platform.node_sev_info()
    return {'pdh': info['pdh'], 'cert_chain': info['cert-chain'], 'cpu0_id': info['cpu0-id'], 'cbitpos': 51,
            'reduced_phys_bits': 1, 'max_guests': 15, 'max_es_guests': info['max-es-guests']}


@pytest.fixture
def out(tmp_path, platform):
    (tmp_path / 'out').mkdir()
    (tmp_path / 'emu-cek.cert').write_bytes(platform.kds_cek())
    return tmp_path / 'out'


def session_args(platform, out, **kwargs):
    args = dict(node_sev=node_sev(platform), cek_file=str(out.parent / 'emu-cek.cert'), policy=0x1,
                tek_file=str(out / 'tek'), tik_file=str(out / 'tik'), dh_cert_file=str(out / 'godh.b64'),
                session_file=str(out / 'session.b64'), state='present', force=False)
    args.update(kwargs)
    return args


def run_session(**params):
    return so.run_session(params, read_small_file)


def refused(result, reason, *words):
    assert result.get('failed') is True and result['changed'] is False, result
    assert (result['reason'], result['rc']) == (reason, {'unsupported': 2, 'insecure': 3}[reason]), result
    for word in words:
        assert word in result['msg'], result['msg']


@pytest.mark.parametrize('option', ['tek_file', 'tik_file', 'dh_cert_file', 'session_file'])
@pytest.mark.parametrize('kind', KINDS)
def test_session_output_that_is_not_a_regular_file(platform, out, injected, no_hang, option, kind):
    target = out / ('special-' + option)
    before = make_special(target, kind)
    result = run_session(**session_args(platform, out, **{option: str(target)}))
    refused(result, 'unsupported', option, 'not a regular file')
    assert unchanged(target, before)
    assert sorted(os.listdir(out)) == sorted(name for name in os.listdir(out) if name.startswith(('special', 'victim')))
    if kind == 'symlink':
        assert (out / ('victim-of-special-' + option)).read_bytes() == b'must stay'


@pytest.mark.parametrize('first, second', [('tek_file', 'tik_file'), ('tik_file', 'session_file'),
                                           ('tk_file', 'tek_file'), ('dh_cert_file', 'session_file')])
def test_session_one_path_for_two_outputs(platform, out, injected, first, second):
    args = session_args(platform, out, tk_file=str(out / 'tk'))
    args[second] = args[first]
    refused(run_session(**args), 'unsupported', first, second, 'same file')
    assert os.listdir(out) == []


def test_session_output_through_a_hard_link_or_symlinked_directory(platform, out, injected):
    (out / 'tik').write_bytes(b'x' * 16)
    os.link(str(out / 'tik'), str(out / 'tek'))
    refused(run_session(**session_args(platform, out, force=True)), 'unsupported', 'same file')
    os.unlink(str(out / 'tek'))
    os.symlink(str(out), str(out.parent / 'alias'))
    refused(run_session(**session_args(platform, out, tek_file=str(out.parent / 'alias' / 'tik'), force=True)),
            'unsupported', 'same file')


def test_session_output_that_is_an_input(platform, out, injected):
    cek = str(out.parent / 'emu-cek.cert')
    before = open(cek, 'rb').read()
    refused(run_session(**session_args(platform, out, session_file=cek)), 'unsupported',
            'session_file is also the input cek_file')
    assert open(cek, 'rb').read() == before


def test_session_public_files_get_their_mode_before_the_rename(platform, out, injected, monkeypatch):
    """chmod after rename follows a symlink planted in between: never chmod a path."""
    def no_chmod(*args, **kwargs):
        raise AssertionError('os.chmod called on a path: %r' % (args,))
    monkeypatch.setattr(os, 'chmod', no_chmod)
    result = run_session(**session_args(platform, out))
    assert result.get('failed') is not True, result
    for name, mode in (('godh.b64', 0o644), ('session.b64', 0o644), ('tek', 0o600), ('tik', 0o600)):
        assert stat.S_IMODE(os.stat(str(out / name)).st_mode) == mode


def test_session_outputs_sync_their_directory(platform, out, injected, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(handle):
        synced.append(stat.S_ISDIR(os.fstat(handle).st_mode))
        return real_fsync(handle)
    monkeypatch.setattr(os, 'fsync', fsync)
    assert run_session(**session_args(platform, out)).get('failed') is not True
    assert True in synced and False in synced


@pytest.mark.parametrize('mode', [0o777, 0o770, 0o775])
def test_key_directory_writable_by_others_is_refused(platform, out, injected, mode):
    os.chmod(str(out), mode)
    refused(run_session(**session_args(platform, out)), 'insecure', 'tek_file', 'writable by')
    assert os.listdir(out) == []


def test_sticky_world_writable_directory_is_accepted(platform, out, injected):
    """Like /tmp: others cannot rename or remove what we wrote."""
    os.chmod(str(out), 0o1777)
    assert run_session(**session_args(platform, out)).get('failed') is not True


def test_session_reuse_for_another_pdh_is_refused(platform, out, injected):
    """A session made for one platform is not returned next to 'chain verified' for another."""
    made = run_session(**session_args(platform, out))
    assert made['changed'] is True
    other = fw.EmulatedPlatform(roots=platform.roots, api=(1, 55), build_id=21)
    (out.parent / 'other-cek.cert').write_bytes(other.kds_cek())
    args = session_args(other, out, cek_file=str(out.parent / 'other-cek.cert'))
    result = run_session(**args)
    refused(result, 'insecure', "not made for this platform's PDH", 'force: true')
    assert 'session' not in result
    # the same platform still reuses it; force makes one for the other platform, which it accepts
    assert run_session(**session_args(platform, out))['changed'] is False
    args['force'] = True
    forced = run_session(**args)
    assert forced['changed'] is True
    guest = other.guests[other.launch_start_b64(0x1, forced['dh_cert'], forced['session'])]
    assert guest.tik == (out / 'tik').read_bytes()


def test_session_reuse_with_a_session_file_from_elsewhere_is_refused(platform, out, injected):
    """Same policy MAC (same TIK), but the wrapped keys were changed: refused, not returned."""
    run_session(**session_args(platform, out))
    session = bytearray(base64.b64decode((out / 'session.b64').read_text()))
    session[20] ^= 1     # inside wrap_tk
    (out / 'session.b64').write_text(base64.b64encode(bytes(session)).decode())
    refused(run_session(**session_args(platform, out)), 'insecure', 'does not wrap the existing TEK and TIK')


def test_state_absent_removes_only_regular_files(platform, out, injected):
    before = make_special(out / 'tek', 'device')
    (out / 'tik').write_bytes(b'k' * 16)
    result = so.run_session(dict(state='absent', tek_file=str(out / 'tek'), tik_file=str(out / 'tik')),
                            read_small_file)
    refused(result, 'unsupported', 'tek_file', 'not a regular file')
    assert unchanged(out / 'tek', before) and (out / 'tik').exists()


# ---- sev_reference_measurement's dest --------------------------------------------------------------

@pytest.mark.parametrize('kind', KINDS)
def test_reference_dest_that_is_not_a_regular_file(tmp_path, no_hang, kind):
    dest = tmp_path / 'dest'
    before = make_special(dest, kind)
    with pytest.raises(SevError) as info:
        rv.publish(str(dest), b'{"allowed_digests": []}\n')
    assert info.value.reason == 'unsupported' and 'dest' in str(info.value)
    assert unchanged(dest, before)
    if kind == 'symlink':
        assert (tmp_path / 'victim-of-dest').read_bytes() == b'must stay'


def test_reference_dest_in_a_world_writable_directory(tmp_path):
    os.chmod(str(tmp_path), 0o777)
    with pytest.raises(SevError) as info:
        rv.publish(str(tmp_path / 'policy.json'), b'{}\n')
    assert info.value.reason == 'insecure' and str(info.value).startswith('dest: ')
    assert os.listdir(tmp_path) == []


def test_reference_dest_mode_set_before_the_rename(tmp_path, monkeypatch):
    def no_chmod(*args, **kwargs):
        raise AssertionError('os.chmod called on a path: %r' % (args,))
    monkeypatch.setattr(os, 'chmod', no_chmod)
    rv.publish(str(tmp_path / 'policy.json'), b'{}\n')
    assert stat.S_IMODE(os.stat(str(tmp_path / 'policy.json')).st_mode) == 0o644


# ---- launch records ---------------------------------------------------------------------------------

UUID = '4b1c4f1e-7d7b-4a49-9b0a-1f0c3c1d2e3f'


@pytest.mark.parametrize('kind', KINDS)
def test_launch_record_file_that_is_not_a_regular_file(tmp_path, no_hang, kind):
    state = tmp_path / 'state'
    os.mkdir(str(state), 0o700)
    launch_id, directory = launch_record.prepare_launch(str(state), 'hv1', UUID, create=True)
    target = os.path.join(directory, 'record.json')
    before = make_special(type(tmp_path)(target), kind)
    with pytest.raises(SevError) as info:
        launch_record.update_record(str(state), 'hv1', UUID, launch_id, 'started', {}, create=True)
    assert info.value.reason == 'unsupported' and 'not a regular file' in str(info.value)
    assert unchanged(target, before)

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Python library missing on the controller: a clear error naming it and
the controller, never a traceback and never a blame on the host; actions that
need no third-party library work without them.

Each case runs in a fresh interpreter whose import system refuses
``cryptography`` and/or ``lxml`` (as on a controller where they are not
installed), imports the collection there, and drives the action plugin's run()
with the in-process harness; the result comes back as JSON.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap

import pytest

DATA = pathlib.Path(__file__).resolve().parents[3] / 'data'
ROME = DATA / 'amd-certs' / 'sev-chains' / 'rome'
OVMF = DATA / 'ovmf' / 'ovmf_OvmfX64_suffix.bin'

RUNNER = textwrap.dedent('''
    import importlib.abc, json, sys

    BLOCKED = set(sys.argv[1].split(',')) - {''}

    class Refuse(importlib.abc.MetaPathFinder):
        """What Python does when a library is not installed."""
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in BLOCKED:
                raise ModuleNotFoundError("No module named %r" % name, name=name)
            return None

    sys.meta_path.insert(0, Refuse())
    import importlib
    case = json.loads(sys.argv[2])
    from ansible_collections.confidential.sev.tests.unit.plugins.action import action_harness
    plugin = importlib.import_module('ansible_collections.confidential.sev.plugins.action.' + case['action'])
    harness = action_harness.Harness(plugin, 'confidential.sev.' + case['action'], case['basedir'])
    result = harness.run(check_mode=case.get('check_mode', False), **case['args'])
    loaded = sorted(name for name in sys.modules if name.split('.')[0] in ('cryptography', 'lxml'))
    print(json.dumps({'result': result, 'loaded': loaded}, default=str))
''')


def run_without(blocked, action, basedir, check_mode=False, **args):
    """run() of ``action`` in an interpreter without the ``blocked`` libraries."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), ANSIBLE_NOCOLOR='1')
    case = json.dumps({'action': action, 'basedir': str(basedir), 'args': args, 'check_mode': check_mode})
    process = subprocess.run([sys.executable, '-c', RUNNER, ','.join(blocked), case], env=env, cwd=str(basedir),
                             capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stderr
    assert 'Traceback' not in process.stderr, process.stderr
    out = json.loads(process.stdout.strip().splitlines()[-1])
    for library in blocked:
        assert not any(name.split('.')[0] == library for name in out['loaded']), out['loaded']
    return out['result']


def b64(path):
    return base64.b64encode(path.read_bytes()).decode()


def session_args(tmp_path, **extra):
    (tmp_path / 'keys').mkdir(exist_ok=True)
    chain = b''.join((ROME / name).read_bytes() for name in ('pek.cert', 'oca.cert', 'cek.cert'))
    args = dict(node_sev={'pdh': b64(ROME / 'pdh.cert'), 'cert_chain': base64.b64encode(chain).decode(),
                          'cpu0_id': base64.b64encode(bytes(64)).decode(), 'cbitpos': 47, 'reduced_phys_bits': 1},
                cek_file=str(ROME / 'cek.cert'), policy=0x30010003, min_pdh_api_version='0.22',
                tek_file='keys/guest.tek', tik_file='keys/guest.tik',
                dh_cert_file='keys/guest.godh.b64', session_file='keys/guest.session.b64')
    args.update(extra)
    return args


def assert_names_the_controller(result, library):
    assert result['failed'] is True and result['changed'] is False
    assert result['rc'] == 2 and result['reason'] == 'unsupported'
    msg = result['msg']
    assert 'required Python library (%s)' % library in msg
    assert 'on the controller' in msg and 'pip install %s' % library in msg
    assert sys.executable in msg
    # never blames the host (the machine's own name aside)
    assert 'host' not in msg.replace('hypervisor host never runs this', '').replace(socket.gethostname(), '')
    assert 'Traceback' not in msg


def test_sev_session_without_cryptography(tmp_path):
    result = run_without(['cryptography'], 'sev_session', tmp_path, **session_args(tmp_path))
    assert_names_the_controller(result, 'cryptography')
    assert 'confidential.sev.sev_session' in result['msg']
    # nothing written: not the keys, not the session
    assert sorted(os.listdir(tmp_path / 'keys')) == []


def test_sev_session_check_mode_without_cryptography(tmp_path):
    result = run_without(['cryptography'], 'sev_session', tmp_path, check_mode=True, **session_args(tmp_path))
    assert_names_the_controller(result, 'cryptography')
    assert sorted(os.listdir(tmp_path / 'keys')) == []


def test_sev_session_with_cryptography_works(tmp_path):
    """The same call with the library present makes the session (the refusal above
    is the missing library, not the arguments)."""
    result = run_without([], 'sev_session', tmp_path, **session_args(tmp_path))
    assert result.get('failed') is not True, result
    assert result['changed'] is True
    assert (tmp_path / 'keys' / 'guest.tik').stat().st_mode & 0o777 == 0o600


def test_sev_session_absent_needs_no_cryptography(tmp_path):
    (tmp_path / 'keys').mkdir()
    for name in ('guest.tek', 'guest.tik'):
        (tmp_path / 'keys' / name).write_bytes(os.urandom(16))
        (tmp_path / 'keys' / name).chmod(0o600)
    result = run_without(['cryptography', 'lxml'], 'sev_session', tmp_path, state='absent',
                         tek_file='keys/guest.tek', tik_file='keys/guest.tik')
    assert result.get('failed') is not True, result
    assert result['changed'] is True
    assert sorted(os.listdir(tmp_path / 'keys')) == []


def test_sev_reference_measurement_needs_neither(tmp_path):
    result = run_without(['cryptography', 'lxml'], 'sev_reference_measurement', tmp_path,
                         firmware=[str(OVMF)], format='json', dest='ref.json')
    assert result.get('failed') is not True, result
    # a firmware-only plain SEV launch digest is the firmware's SHA-256
    digest = hashlib.sha256(OVMF.read_bytes()).hexdigest()
    assert [record['launch_digest'] for record in result['records']] == [digest]
    assert json.loads((tmp_path / 'ref.json').read_text())[0]['launch_digest'] == digest


def test_sev_launch_record_needs_neither(tmp_path):
    uuid = '8f1b2a3c-4d5e-4f60-8172-93a4b5c6d7e8'
    prepared = run_without(['cryptography', 'lxml'], 'sev_launch_record', tmp_path, state_dir='state',
                           host='hv1', domain_uuid=uuid, state='prepare')
    assert prepared.get('failed') is not True, prepared
    assert prepared['changed'] is True and prepared['launch_id']
    assert (tmp_path / 'state' / 'hosts' / 'hv1' / uuid).is_dir()


@pytest.mark.parametrize('blocked', [['cryptography'], ['lxml'], ['cryptography', 'lxml']])
def test_every_action_plugin_imports_without_the_libraries(tmp_path, blocked):
    """Loading any action plugin never fails on a missing library: the refusal
    comes from the call that needs it (a failed import would be Ansible's own
    "unable to load action" error, naming nothing)."""
    actions = sorted(p.stem for p in (pathlib.Path(__file__).resolve().parents[4] / 'plugins' / 'action')
                     .glob('*.py') if p.stem != '__init__')
    assert 'sev_session' in actions and 'sev_reference_measurement' in actions
    code = textwrap.dedent('''
        import importlib, sys
        sys.meta_path.insert(0, type('R', (importlib.abc.MetaPathFinder,), {'find_spec': staticmethod(
            lambda name, path=None, target=None: (_ for _ in ()).throw(ModuleNotFoundError(name))
            if name.split('.')[0] in %r else None)})())
        for action in %r:
            importlib.import_module('ansible_collections.confidential.sev.plugins.action.' + action)
        print('imported', len(%r))
    ''') % (blocked, actions, actions)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    process = subprocess.run([sys.executable, '-c', 'import importlib.abc\n' + code], env=env, cwd=str(tmp_path),
                             capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stderr
    assert process.stdout.split() == ['imported', str(len(actions))]


@pytest.mark.parametrize('library', ['cryptography', 'lxml'])
def test_sev_launch_batch_without_a_library_names_it_before_touching_a_host(tmp_path, library):
    """The fleet launch needs both on the controller: refused before any host call or record."""
    result = run_without([library], 'sev_launch_batch', tmp_path, guests=[{'domain': 'vm1'}],
                         state_dir=str(tmp_path / 'state'), firmware=str(OVMF), policy=0x1,
                         cek_file=str(ROME / 'cek.cert'))
    assert_names_the_controller(result, library)
    assert 'confidential.sev.sev_launch_batch' in result['msg']
    assert not (tmp_path / 'state').exists()

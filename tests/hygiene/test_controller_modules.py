# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret hygiene of the controller-side modules, through real ansible-playbook runs at -vvvv.

One playbook exercises sev_measurement_validate and sev_session on success,
in check mode and on each failure path (mismatch, refused input, key text
where a path belongs, one path for two outputs), with plain and
Vault-encrypted keys and secrets.  It runs once per result-printing callback
shipped with ansible-core (default, minimal, oneline, and tree writing a
directory), each with ANSIBLE_LOG_PATH.  Then every byte of stdout, stderr,
the log, the tree files, every file in the work directories (Ansible's home,
local temp, outputs) and every file written anywhere under the work
directories or /tmp during the runs (fanotify: deleted temporary files too)
is searched for the TIK, the TEK, each secret and the Vault password (raw,
hex, repr, base64 at three alignments): zero hits, except in the intended
0600 key and secret files.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import secret_scan  # tests/hygiene, put on sys.path by conftest.py
from ansible_collections.confidential.sev.tests.support import emulated_platform, firmware

BIN = os.path.dirname(sys.executable)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# the collection under test: this checkout's, or another one's (e.g. the commit before a fix)
COLLECTIONS = os.pathsep.join(os.path.abspath(path) for path in
                              (os.environ.get('ANSIBLE_COLLECTIONS_PATH') or os.path.join(REPO, 'build')).split(os.pathsep))
API = (1, 55, 21)
POLICY = 0x3  # NODBG, NOKS; plain SEV: the stand-in measures firmware only (no VMSA)
CALLBACKS = ('default', 'minimal', 'oneline', 'tree')


def _private(path, data):
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(data)
    return str(path)


def _vault(password_file, source, dest):
    subprocess.run([os.path.join(BIN, 'ansible-vault'), 'encrypt', '--vault-password-file', password_file,
                    '--output', dest, source], check=True, capture_output=True, env=_env(os.path.dirname(dest)))
    os.chmod(dest, 0o600)
    return dest


def _env(work):
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    config = os.path.join(work, 'ansible.cfg')
    if not os.path.exists(config):
        with open(config, 'w', encoding='utf-8') as f:
            f.write('[defaults]\n')
    env.update(ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_CONFIG=config, ANSIBLE_NOCOLOR='1',
               ANSIBLE_HOME=os.path.join(work, 'home'), ANSIBLE_LOCAL_TEMP=os.path.join(work, 'tmp'),
               ANSIBLE_REMOTE_TEMP=os.path.join(work, 'remote-tmp'), ANSIBLE_RETRY_FILES_ENABLED='0',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    return env


class Owner:
    """The guest owner's files: keys, secrets (plain and Vault-encrypted), firmware, a platform's export."""

    def __init__(self, root):
        self.dir = root / 'owner'
        self.dir.mkdir(mode=0o700)
        d = str(self.dir)
        self.tik, self.tek = os.urandom(16), os.urandom(16)
        self.luks = os.urandom(32)
        self.passphrase = b'correct horse battery staple ' + os.urandom(6).hex().encode()
        self.vault_password = b'vault-' + os.urandom(12).hex().encode()
        self.tik_file = _private(self.dir / 'guest.tik', self.tik)
        self.tek_file = _private(self.dir / 'guest.tek', self.tek)
        self.luks_file = _private(self.dir / 'luks.key', self.luks)
        self.pass_file = _private(self.dir / 'passphrase', self.passphrase)
        self.vault_password_file = _private(self.dir / 'vault-password', self.vault_password + b'\n')
        self.vault = {name: _vault(self.vault_password_file, path, os.path.join(d, name + '.vault'))
                      for name, path in (('tik', self.tik_file), ('tek', self.tek_file), ('luks', self.luks_file),
                                         ('passphrase', self.pass_file))}
        self.firmware = firmware.write_image(os.path.join(d, 'OVMF.amdsev.fd'))
        args = argparse.Namespace(tik=self.tik_file, firmware=self.firmware, kernel=None, initrd=None, cmdline=None,
                                  api_major=API[0], api_minor=API[1], build_id=API[2], policy=POLICY)
        self.measurement = emulated_platform.launch_measure(args)
        raw = bytearray(base64.b64decode(self.measurement))
        raw[3] ^= 0x10
        self.wrong_measurement = base64.b64encode(bytes(raw)).decode()
        # an EMULATED platform's public export (PDH, chain, lab root) for sev_session
        self.platform = str(root / 'platform')
        subprocess.run([sys.executable, '-m', 'ansible_collections.confidential.sev.tests.platform.qemu_emulator',
                        'init', self.platform], check=True, capture_output=True,
                       env=dict(os.environ, PYTHONPATH=COLLECTIONS.split(os.pathsep, maxsplit=1)[0]))
        self.export = os.path.join(self.platform, 'export')
        self.out = root / 'out'
        self.out.mkdir(mode=0o700)

    def secrets(self):
        return {'tik': self.tik, 'tek': self.tek, 'luks': self.luks, 'passphrase': self.passphrase,
                'vault_password': self.vault_password}


def _validate(name, owner, check_mode=False, **overrides):
    args = {'measurement': owner.measurement, 'api_major': API[0], 'api_minor': API[1], 'build_id': API[2],
            'policy': POLICY, 'firmware': owner.firmware, 'tik': owner.tik_file, 'tek': owner.tek_file,
            'require_policy': ['NODBG', 'NOKS'],
            'secrets': [{'guid': 'luks-key', 'path': owner.luks_file},
                        {'guid': 'E9F1A2B3-C4D5-4E6F-8A9B-0C1D2E3F4A5B', 'path': owner.pass_file}]}
    args.update(overrides)
    return {'name': name, 'confidential.sev.sev_measurement_validate': args, 'register': 'r_' + name,
            'ignore_errors': True, 'check_mode': check_mode}


def _session(name, owner, check_mode=False, **overrides):
    args = {'node_sev': "{{ lookup('ansible.builtin.file', '%s') | from_json }}"
                        % os.path.join(owner.export, 'node_sev.json'),
            'cek_file': os.path.join(owner.export, 'cek.cert'),
            'ark_file': os.path.join(owner.export, 'lab_ark.cert'),
            'ask_file': os.path.join(owner.export, 'lab_ask.cert'), 'lab_root': True, 'policy': POLICY}
    args.update(overrides)
    return {'name': name, 'confidential.sev.sev_session': args, 'register': 'r_' + name,
            'ignore_errors': True, 'check_mode': check_mode}


def _tasks(owner, out):
    v = owner.vault
    tik_hex, tik_b64 = owner.tik.hex(), base64.b64encode(owner.tik).decode()
    return [
        _validate('valid', owner, secret_header_file=out + '/valid.header', secret_payload_file=out + '/valid.payload'),
        _validate('valid_check', owner, check_mode=True, secret_header_file=out + '/check.header',
                  secret_payload_file=out + '/check.payload'),
        _validate('mismatch', owner, measurement=owner.wrong_measurement),
        _validate('vault', owner, tik=v['tik'], tek=v['tek'],
                  secrets=[{'guid': 'luks-key', 'path': v['luks']},
                           {'guid': 'E9F1A2B3-C4D5-4E6F-8A9B-0C1D2E3F4A5B', 'path': v['passphrase']}]),
        _validate('vault_mismatch', owner, measurement=owner.wrong_measurement, tik=v['tik'], tek=v['tek']),
        _validate('wrong_policy', owner, policy=0x1, require_policy=['NODBG', 'NOKS']),
        # key or secret text given where a path belongs: never echoed back
        _validate('tik_hex_as_path', owner, tik=tik_hex),
        _validate('tik_b64_as_path', owner, tik=tik_b64),
        _validate('passphrase_as_path', owner,
                  secrets=[{'guid': 'luks-key', 'path': owner.passphrase.decode()}]),
        _validate('tik_as_output', owner, secret_header_file=owner.tik_file, secret_payload_file=out + '/x.payload'),
        _session('session', owner, tik_file=out + '/s.tik', tek_file=out + '/s.tek',
                 dh_cert_file=out + '/s.godh.b64', session_file=out + '/s.session.b64'),
        _session('session_check', owner, check_mode=True, tik_file=out + '/c.tik', tek_file=out + '/c.tek'),
        _session('session_same_path', owner, tik_file=out + '/same.key', tek_file=out + '/same.key'),
        _session('session_tik_is_session', owner, tik_file=out + '/ts.key', tek_file=out + '/ts.tek',
                 dh_cert_file=out + '/ts.godh.b64', session_file=out + '/ts.key'),
        _session('session_wrong_root', owner, ark_file=os.path.join(owner.export, 'lab_ask.cert'),
                 tik_file=out + '/w.tik', tek_file=out + '/w.tek'),
    ]


def _run(root, owner, callback):
    work = str(root / callback)
    os.makedirs(work)
    out = str(owner.out / callback)
    os.makedirs(out, mode=0o700)
    tasks = _tasks(owner, out)
    registered = [t['register'] for t in tasks]
    tasks.append({'name': 'results', 'ansible.builtin.copy': {
        'content': '{{ {%s} | to_json }}' % ', '.join("'%s': %s" % (r[2:], r) for r in registered),
        'dest': work + '/results.json', 'mode': '0600'}})
    play = os.path.join(work, 'play.yml')
    with open(play, 'w', encoding='utf-8') as f:
        json.dump([{'hosts': 'localhost', 'gather_facts': False, 'connection': 'local', 'tasks': tasks}], f)
    env = _env(work)
    env['ANSIBLE_LOG_PATH'] = os.path.join(work, 'ansible.log')
    if callback == 'tree':
        env.update(ANSIBLE_CALLBACKS_ENABLED='ansible.builtin.tree',
                   ANSIBLE_CALLBACK_TREE_DIR=os.path.join(work, 'tree'))
    else:
        env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.' + callback
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-vvvv', '-i', 'localhost,', play,
                           '--vault-password-file', owner.vault_password_file],
                          cwd=work, env=env, capture_output=True, timeout=300, check=False)
    for stream, data in (('stdout', proc.stdout), ('stderr', proc.stderr)):
        with open(os.path.join(work, stream), 'wb') as f:
            f.write(data)
    assert proc.returncode == 0, proc.stdout[-6000:].decode(errors='replace')
    with open(os.path.join(work, 'results.json'), encoding='utf-8') as f:
        return work, out, json.load(f), proc


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('hygiene-modules')
    owner = Owner(root)
    with secret_scan.FileCapture([str(root), '/tmp']) as capture:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda cb: _run(root, owner, cb), CALLBACKS))
    return root, owner, dict(zip(CALLBACKS, results)), capture


def test_the_runs_took_every_path(runs):
    """The scan below is only worth something if the playbook reached success, check mode and each failure."""
    _root, _owner, by_callback, _capture = runs
    for callback, (_work, out, results, proc) in by_callback.items():
        assert results['valid']['valid'] is True and results['vault']['valid'] is True, callback
        assert os.path.exists(out + '/valid.header') and not os.path.exists(out + '/check.header')
        assert results['valid_check']['valid'] is True, results['valid_check']
        for name in ('mismatch', 'vault_mismatch'):
            assert (results[name]['failed'], results[name]['reason']) == (True, 'mismatch'), results[name]
        for name in ('wrong_policy', 'tik_hex_as_path', 'tik_b64_as_path', 'passphrase_as_path',
                     'tik_as_output', 'session_same_path', 'session_tik_is_session', 'session_wrong_root'):
            assert results[name]['failed'] is True, (name, results[name])
        assert results['session']['failed'] is False and os.path.exists(out + '/s.tik'), results['session']
        assert results['session_check']['failed'] is False and not os.path.exists(out + '/c.tik')
        # -vvvv really was verbose: module arguments are shown
        assert b'<localhost>' in proc.stdout or callback == 'tree' or b'ESTABLISH LOCAL' in proc.stdout
    tree = os.path.join(by_callback['tree'][0], 'tree')
    assert os.listdir(tree) == ['localhost'], os.listdir(tree)


def _intended(owner, out):
    """The intended 0600 key and secret files: the owner's inputs and sev_session's key outputs."""
    files = [owner.tik_file, owner.tek_file, owner.luks_file, owner.pass_file, owner.vault_password_file]
    for name in ('s.tik', 's.tek', 'same.key', 'ts.key', 'ts.tek', 'w.tik', 'w.tek', 'c.tik', 'c.tek'):
        if os.path.exists(os.path.join(out, name)):
            files.append(os.path.join(out, name))
    return files


def test_no_secret_in_any_output_log_tree_or_file(runs):
    root, owner, by_callback, capture = runs
    secrets = owner.secrets()
    allowed = []
    for callback, (work, out, _results, _proc) in by_callback.items():
        allowed += _intended(owner, out)
        # the keys sev_session made are secrets too
        for name in ('s.tik', 's.tek'):
            with open(os.path.join(out, name), 'rb') as f:
                secrets['%s/session %s' % (callback, name)] = f.read()
        # the playbook itself: the test's input, which passes key text where a path belongs on purpose
        allowed.append(os.path.join(work, 'play.yml'))
    needle_map = secret_scan.all_needles(secrets)
    hits, files, size = secret_scan.scan_tree(str(root), needle_map, allowed=allowed)
    captured_hits, captured = capture.scan(needle_map, allowed=allowed)
    assert files > 40 and size > 100000, (files, size)
    assert captured > 10 and not capture.overflowed, (captured, capture.overflowed)
    assert hits + captured_hits == [], '\n'.join(hits + captured_hits)


def test_key_outputs_are_0600(runs):
    _root, owner, by_callback, _capture = runs
    for _callback, (_work, out, _results, _proc) in by_callback.items():
        for path in _intended(owner, out)[5:]:
            assert os.stat(path).st_mode & 0o777 == 0o600, path
        for name in ('valid.header', 'valid.payload'):
            assert os.stat(os.path.join(out, name)).st_mode & 0o777 == 0o600, name

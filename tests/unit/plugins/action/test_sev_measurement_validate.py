# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin, driven two ways:

* run() directly, with a real DataLoader (vault secrets from a password file,
  files encrypted by the ansible-vault CLI) and a minimal Task mock, as
  community collections test their action plugins;
* one ansible-playbook run against localhost, end to end.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import pathlib
import stat
import struct
import subprocess
import sys

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import get_file_vault_secret
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ansible_collections.confidential.sev.tests.unit.plugins.action import action_harness
from ansible_collections.confidential.sev.plugins.action import sev_measurement_validate as plugin
from ansible_collections.confidential.sev.tests.support import firmware as fwb

TIK = bytes.fromhex('66320db73158a35a255d051758e95ed4')
TEK = bytes.fromhex('0f1e2d3c4b5a69788796a5b4c3d2e1f0')
MNONCE = bytes.fromhex('4fbe0bedbad6c86ae8f68971d103e554')
SECRET = b'vault-protected disk passphrase\n'
VAULT_PASSWORD = 'unit-test vault password'
FIRMWARE = fwb.build_image(body_size=4096)
BIN = pathlib.Path(sys.executable).parent


def reported(digest, tik=TIK, api=(0, 24), build_id=15, policy=0):
    message = bytes([4, api[0], api[1], build_id]) + struct.pack('<I', policy) + digest + MNONCE
    return base64.b64encode(hmac.new(tik, message, hashlib.sha256).digest() + MNONCE).decode()


# NODBG|NOKS: secrets are released only under such a policy (issue 10).
POLICY = 0x3
MEASUREMENT = reported(hashlib.sha256(FIRMWARE).digest(), policy=POLICY)


def ctr_decrypt(key, iv, data):
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    start = int.from_bytes(iv, 'big')
    stream = b''.join(ecb.update(((start + i) % (1 << 128)).to_bytes(16, 'big'))
                      for i in range((len(data) + 15) // 16))
    return bytes(a ^ b for a, b in zip(data, stream))


def assert_clean_failure(result, reason, rc):
    assert result['failed'] is True
    assert result['valid'] is False
    assert result['reason'] == reason and result['rc'] == rc
    assert 'exception' not in result
    assert 'Traceback' not in result['msg']
    text = json.dumps(result)
    for value in (TIK, TEK, SECRET):
        assert value.hex() not in text and base64.b64encode(value).decode() not in text
        assert value.decode('latin-1') not in text


# ---- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def vault_dir(tmp_path_factory):
    """Key and secret files encrypted by the ansible-vault CLI, plus clear ones."""
    root = tmp_path_factory.mktemp('vault')
    password_file = root / 'vault-pass.txt'
    password_file.write_text(VAULT_PASSWORD + '\n')
    for name, data in (('tik.vault', TIK), ('tek.vault', TEK), ('tk.vault', TEK + TIK),
                       ('secret.vault', SECRET), ('firmware.vault', FIRMWARE),
                       ('kernel.vault', b'kernel')):
        (root / name).write_bytes(data)
    subprocess.run(
        [str(BIN / 'ansible-vault'), 'encrypt', '--vault-password-file', str(password_file),
         'tik.vault', 'tek.vault', 'tk.vault', 'secret.vault', 'firmware.vault', 'kernel.vault'],
        cwd=str(root), check=True, capture_output=True, env=dict(os.environ, ANSIBLE_NOCOLOR='1'))
    for name in ('tik.vault', 'secret.vault', 'firmware.vault'):
        assert (root / name).read_bytes().startswith(b'$ANSIBLE_VAULT;1.1;AES256')
    return root


@pytest.fixture
def basedir(tmp_path):
    """A playbook directory: clear inputs, some under files/."""
    (tmp_path / 'files').mkdir()
    (tmp_path / 'files' / 'OVMF.fd').write_bytes(FIRMWARE)
    (tmp_path / 'tik.bin').write_bytes(TIK)
    (tmp_path / 'files' / 'tek.bin').write_bytes(TEK)
    (tmp_path / 'secret.txt').write_bytes(SECRET)
    (tmp_path / 'kernel').write_bytes(b'kernel image')
    (tmp_path / 'out').mkdir()
    return tmp_path


class Harness(action_harness.Harness):
    def __init__(self, basedir, vault_password_file=None):
        secrets = None
        if vault_password_file is not None:
            secret = get_file_vault_secret(filename=str(vault_password_file), vault_id='default',
                                           loader=DataLoader())
            secret.load()
            secrets = [('default', secret)]
        super().__init__(plugin, 'confidential.sev.sev_measurement_validate', basedir, secrets)


def base_args(basedir, **kwargs):
    args = dict(measurement=MEASUREMENT, api_major=0, api_minor=24, build_id=15, policy=POLICY,
                firmware=str(basedir / 'files' / 'OVMF.fd'), tik=str(basedir / 'tik.bin'),
                tek=str(basedir / 'files' / 'tek.bin'))
    args.update(kwargs)
    return args


def with_secret(basedir, **kwargs):
    return base_args(basedir, secrets=[{'guid': 'luks-key', 'path': str(basedir / 'secret.txt')}],
                     secret_header_file=str(basedir / 'out' / 'header.b64'),
                     secret_payload_file=str(basedir / 'out' / 'payload.b64'), **kwargs)


def check_packet(header_b64, payload_b64, secret=SECRET):
    header, payload = base64.b64decode(header_b64), base64.b64decode(payload_b64)
    assert len(header) == 52
    plaintext = ctr_decrypt(TEK, header[4:20], payload)
    assert secret in plaintext
    measure = base64.b64decode(MEASUREMENT)[:32]
    mac_input = (b'\x01' + header[:4] + header[4:20] + struct.pack('<II', len(payload), len(payload))
                 + payload + measure)
    assert header[20:] == hmac.new(TIK, mac_input, hashlib.sha256).digest()


# ---- results -------------------------------------------------------------------------

def test_valid_without_outputs(basedir):
    harness = Harness(basedir)
    result = harness.run(**base_args(basedir))
    assert result['valid'] is True and result['rc'] == 0 and result['reason'] == 'ok'
    assert result['changed'] is False
    assert not result.get('failed')
    assert result['launch_digest'] == hashlib.sha256(FIRMWARE).hexdigest()
    # The hypervisor host is never contacted.
    assert harness.connection.method_calls == []


def test_mismatch_fails_and_writes_nothing(basedir):
    result = Harness(basedir).run(**with_secret(basedir, measurement=reported(bytes(32))))
    assert_clean_failure(result, 'mismatch', 1)
    assert result['changed'] is False
    assert 'computed_measurement' not in result
    assert os.listdir(basedir / 'out') == []


def test_writes_0600_base64_files_without_newline(basedir):
    old_umask = os.umask(0)
    try:
        stale = basedir / 'out' / 'payload.b64'
        stale.write_bytes(b'stale world-readable payload')
        os.chmod(stale, 0o644)
        result = Harness(basedir).run(**with_secret(basedir))
    finally:
        os.umask(old_umask)
    assert result['valid'] is True and result['changed'] is True
    assert result['secret_files'] == {'header': str(basedir / 'out' / 'header.b64'),
                                      'payload': str(basedir / 'out' / 'payload.b64')}
    header_text = (basedir / 'out' / 'header.b64').read_bytes()
    payload_text = (basedir / 'out' / 'payload.b64').read_bytes()
    for path in ('header.b64', 'payload.b64'):
        assert stat.S_IMODE(os.stat(basedir / 'out' / path).st_mode) == 0o600
    assert not header_text.endswith(b'\n') and not payload_text.endswith(b'\n')
    assert header_text.decode('ascii') == result['secret_header']
    assert payload_text.decode('ascii') == result['secret_payload']
    assert base64.b64encode(base64.b64decode(header_text, validate=True)) == header_text
    check_packet(header_text, payload_text)
    assert sorted(os.listdir(basedir / 'out')) == ['header.b64', 'payload.b64']


def test_check_mode_writes_nothing_but_reports_changed(basedir):
    result = Harness(basedir).run(check_mode=True, **with_secret(basedir))
    assert result['valid'] is True
    assert result['changed'] is True
    assert result['secret_files']['header'] == str(basedir / 'out' / 'header.b64')
    assert os.listdir(basedir / 'out') == []
    check_packet(result['secret_header'], result['secret_payload'])


def test_secrets_without_output_files_are_returned_only(basedir):
    args = base_args(basedir, secrets=[{'guid': 'luks-key', 'path': str(basedir / 'secret.txt')}])
    result = Harness(basedir).run(**args)
    assert result['changed'] is False
    assert 'secret_files' not in result
    check_packet(result['secret_header'], result['secret_payload'])
    assert os.listdir(basedir / 'out') == []


def test_relative_paths_are_resolved(basedir):
    """Inputs through the search path (files/ then the playbook dir), outputs from the playbook dir."""
    result = Harness(basedir).run(
        measurement=MEASUREMENT, api_major=0, api_minor=24, build_id=15, policy=POLICY,
        firmware='OVMF.fd', tik='tik.bin', tek='tek.bin',
        secrets=[{'guid': 'luks-key', 'path': 'secret.txt'}],
        secret_header_file='out/header.b64', secret_payload_file='out/payload.b64')
    assert result['valid'] is True, result
    assert result['changed'] is True
    check_packet((basedir / 'out' / 'header.b64').read_bytes(),
                 (basedir / 'out' / 'payload.b64').read_bytes())


def test_relative_path_not_found_is_a_usage_error(basedir):
    result = Harness(basedir).run(**base_args(basedir, firmware='OVMF_CODE.missing.fd'))
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'].startswith('firmware: ')
    assert 'OVMF_CODE.missing.fd' in result['msg']


# ---- vault ---------------------------------------------------------------------------

def test_vault_encrypted_keys_and_secret_are_decrypted(basedir, vault_dir):
    harness = Harness(basedir, vault_dir / 'vault-pass.txt')
    result = harness.run(**base_args(
        basedir, tik=str(vault_dir / 'tik.vault'), tek=str(vault_dir / 'tek.vault'),
        secrets=[{'guid': 'luks-key', 'path': str(vault_dir / 'secret.vault')}],
        secret_header_file=str(basedir / 'out' / 'h'), secret_payload_file=str(basedir / 'out' / 'p')))
    assert result['valid'] is True, result
    check_packet((basedir / 'out' / 'h').read_bytes(), (basedir / 'out' / 'p').read_bytes())
    # The decrypted temporary copies are gone.
    assert harness.loader._tempfiles == set()


def test_vault_encrypted_tk(basedir, vault_dir):
    args = base_args(basedir, tk=str(vault_dir / 'tk.vault'))
    del args['tik'], args['tek']
    result = Harness(basedir, vault_dir / 'vault-pass.txt').run(**args)
    assert result['valid'] is True, result


def test_vault_file_without_password_is_a_usage_error(basedir, vault_dir):
    result = Harness(basedir).run(**base_args(basedir, tik=str(vault_dir / 'tik.vault')))
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'].startswith('tik: ')


def test_vault_file_with_wrong_password_is_a_usage_error(basedir, vault_dir, tmp_path):
    wrong = tmp_path / 'wrong-pass'
    wrong.write_text('not the password\n')
    result = Harness(basedir, wrong).run(**base_args(basedir, tek=str(vault_dir / 'tek.vault')))
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'].startswith('tek: ')


@pytest.mark.parametrize('option', ['firmware', 'kernel'])
def test_vault_encrypted_measured_file_is_refused(basedir, vault_dir, option):
    name = 'firmware.vault' if option == 'firmware' else 'kernel.vault'
    result = Harness(basedir, vault_dir / 'vault-pass.txt').run(
        **base_args(basedir, **{option: str(vault_dir / name)}))
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'] == ('%s: %s is Ansible Vault-encrypted; measured files must be given in '
                             'clear (they are not secret)' % (option, vault_dir / name))


# ---- usage and unexpected errors ---------------------------------------------------------

@pytest.mark.parametrize('change, match', [
    (dict(measurement=None), 'measurement required without domain or launch_info'),
    (dict(bogus='x'), 'bogus'),
    (dict(tk='/x'), 'mutually exclusive'),
    (dict(policy='four'), 'policy'),
    (dict(vmsa_variant='snp'), 'vmsa_variant'),
    (dict(measurement='bm90IDQ4IGJ5dGVz'), 'measurement must decode to 48 bytes'),
    (dict(policy=0x40), 'reserved bits'),
    (dict(api_major=256), 'api_major'),
    (dict(firmware='/nonexistent/OVMF.fd'), 'firmware: '),
    (dict(tik='/nonexistent/tik.bin'), 'tik: '),
    (dict(tik='@@tek@@'), 'tik: expected 16 bytes, got 32'),
    (dict(firmware='@@dir@@'), 'not a regular file'),
    (dict(kernel='@@kernel@@', firmware='@@plain@@'), 'no usable SEV hash table'),
    (dict(min_api_version='zero.24'), 'min_api_version'),
])
def test_usage_errors_are_unsupported_rc_2(basedir, change, match):
    (basedir / 'plain.fd').write_bytes(b'\x00' * 4096)
    substitutions = {'@@tek@@': str(basedir / 'double'), '@@dir@@': str(basedir / 'out'),
                     '@@kernel@@': str(basedir / 'kernel'), '@@plain@@': str(basedir / 'plain.fd')}
    (basedir / 'double').write_bytes(TEK + TIK)
    args = base_args(basedir)
    for key, value in change.items():
        if value is None:
            args.pop(key)
        else:
            args[key] = substitutions.get(value, value) if isinstance(value, str) else value
    result = Harness(basedir).run(**args)
    assert_clean_failure(result, 'unsupported', 2)
    assert match in result['msg'], result['msg']


def test_non_ascii_digits_in_min_api_version_are_a_usage_error(basedir):
    result = Harness(basedir).run(**base_args(basedir, min_api_version='0.\u00b2'))
    assert_clean_failure(result, 'unsupported', 2)


def test_secrets_without_cryptography_is_a_usage_error(basedir, monkeypatch):
    monkeypatch.setattr(plugin, 'HAS_CRYPTOGRAPHY', False)
    result = Harness(basedir).run(**with_secret(basedir))
    assert_clean_failure(result, 'unsupported', 2)
    assert 'cryptography' in result['msg']
    assert os.listdir(basedir / 'out') == []
    # Without secrets the library is not needed.
    assert Harness(basedir).run(**base_args(basedir))['valid'] is True


def test_secret_guid_with_trailing_newline_is_not_an_unexpected_error(basedir):
    """A GUID from a YAML block scalar ends in a newline: refuse it as usage
    (rc 2) or accept it, but never report it as an internal error (rc 6)."""
    args = base_args(basedir, secrets=[{'guid': '736869e5-84f0-4973-92ec-06879ce3da0b\n',
                                        'path': str(basedir / 'secret.txt')}])
    result = Harness(basedir).run(**args)
    if result.get('failed'):
        assert_clean_failure(result, 'unsupported', 2)
    else:
        assert result['secret_guids'] == ['736869e5-84f0-4973-92ec-06879ce3da0b']


def test_insecure_zero_tik_is_rc_3(basedir):
    (basedir / 'zero').write_bytes(bytes(16))
    result = Harness(basedir).run(**base_args(basedir, tik=str(basedir / 'zero')))
    assert_clean_failure(result, 'insecure', 3)


def test_unmet_requirement_after_match_is_rc_4_and_writes_nothing(basedir):
    result = Harness(basedir).run(**with_secret(basedir, require_policy=['ES']))
    assert_clean_failure(result, 'config', 4)
    assert os.listdir(basedir / 'out') == []


def test_unexpected_exception_is_error_rc_6_without_traceback(basedir, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError('simulated internal failure')
    monkeypatch.setattr(plugin, 'run_validation', boom)
    result = Harness(basedir).run(**base_args(basedir))
    assert_clean_failure(result, 'error', 6)
    assert result['msg'] == ('unexpected error during validation: RuntimeError: '
                             'simulated internal failure')


def test_unwritable_output_is_refused_before_anything_is_written(basedir):
    """Issue 10: a failed output write was rc 6 and could leave a header without its payload."""
    args = with_secret(basedir)
    args['secret_payload_file'] = str(basedir / 'no-such-dir' / 'p.b64')
    result = Harness(basedir).run(**args)
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'].startswith('secret_payload_file: the directory '), result['msg']
    assert os.listdir(basedir / 'out') == []


# ---- end to end: ansible-playbook ----------------------------------------------------------

def collections_root():
    for entry in sys.path:
        if entry and os.path.isdir(os.path.join(entry, 'ansible_collections', 'confidential', 'sev')):
            return os.path.abspath(entry)
    pytest.fail('confidential.sev is not importable from sys.path')


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    common: &common
      measurement: "%(measurement)s"
      api_major: 0
      api_minor: 24
      build_id: 15
      policy: 3
      firmware: OVMF.fd
  tasks:
    - name: Validate with vaulted keys and secret, relative paths
      confidential.sev.sev_measurement_validate:
        <<: *common
        tik: tik.vault
        tek: tek.vault
        secrets:
          - guid: luks-key
            path: secret.vault
        secret_header_file: out/header.b64
        secret_payload_file: out/payload.b64
      register: written

    - name: Same in check mode
      confidential.sev.sev_measurement_validate:
        <<: *common
        tik: tik.vault
        tek: tek.vault
        secrets:
          - guid: luks-key
            path: secret.vault
        secret_header_file: out/check-header.b64
        secret_payload_file: out/check-payload.b64
      check_mode: true
      register: checked

    - name: Usage error
      confidential.sev.sev_measurement_validate:
        <<: *common
        tik: tik.vault
        tek: tek.vault
        measurement: "not base64"
      register: usage
      ignore_errors: true

    - name: Vault-encrypted firmware
      confidential.sev.sev_measurement_validate:
        <<: *common
        firmware: firmware.vault
        tik: tik.vault
        tek: tek.vault
      register: vaulted_firmware
      ignore_errors: true

    - name: Save the results
      ansible.builtin.copy:
        content: "{{ {'written': written, 'checked': checked, 'usage': usage,
                      'vaulted_firmware': vaulted_firmware} | to_json }}"
        dest: "{{ playbook_dir }}/results.json"
        mode: "0600"
"""


@pytest.fixture(scope='module')
def playbook_run(tmp_path_factory, vault_dir):
    root = tmp_path_factory.mktemp('playbook')
    (root / 'files').mkdir()
    (root / 'files' / 'OVMF.fd').write_bytes(FIRMWARE)
    (root / 'out').mkdir()
    for name in ('tik.vault', 'tek.vault', 'secret.vault', 'firmware.vault'):
        (root / 'files' / name).write_bytes((vault_dir / name).read_bytes())
    (root / 'site.yml').write_text(PLAYBOOK % {'measurement': MEASUREMENT})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_root(), ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
               ANSIBLE_LOCAL_TEMP=str(root / 'tmp'), ANSIBLE_CONFIG=str(root / 'none.cfg'))
    process = subprocess.run(  # pylint: disable=subprocess-run-check
        [str(BIN / 'ansible-playbook'), '-i', 'localhost,', 'site.yml',
         '--vault-password-file', str(vault_dir / 'vault-pass.txt')],
        cwd=str(root), env=env, capture_output=True, text=True, timeout=300)
    return root, process


def test_playbook_end_to_end(playbook_run):
    root, process = playbook_run
    assert process.returncode == 0, process.stdout + process.stderr
    output = process.stdout + process.stderr
    assert 'Traceback' not in output
    for value in (TIK, TEK):
        assert value.hex() not in output
    assert SECRET.decode().strip() not in output
    raw_results = (root / 'results.json').read_text()
    for value in (TIK, TEK, SECRET):
        assert value.hex() not in raw_results
        assert base64.b64encode(value).decode() not in raw_results
    assert SECRET.decode().strip() not in raw_results
    results = json.loads(raw_results)

    written = results['written']
    assert written['valid'] is True and written['changed'] is True
    header = (root / 'out' / 'header.b64').read_bytes()
    payload = (root / 'out' / 'payload.b64').read_bytes()
    assert stat.S_IMODE(os.stat(root / 'out' / 'header.b64').st_mode) == 0o600
    assert stat.S_IMODE(os.stat(root / 'out' / 'payload.b64').st_mode) == 0o600
    assert not header.endswith(b'\n')
    check_packet(header, payload)

    checked = results['checked']
    assert checked['valid'] is True and checked['changed'] is True
    assert not (root / 'out' / 'check-header.b64').exists()
    assert not (root / 'out' / 'check-payload.b64').exists()

    for name, reason, rc in (('usage', 'unsupported', 2), ('vaulted_firmware', 'unsupported', 2)):
        failed = results[name]
        assert failed['failed'] is True, name
        assert failed['reason'] == reason and failed['rc'] == rc, failed
        # ansible-core 2.19 adds this placeholder to every failed result whose
        # plugin gave no traceback; anything else would be a traceback.
        assert failed.get('exception', '(traceback unavailable)') == '(traceback unavailable)'
    assert 'Vault-encrypted' in results['vaulted_firmware']['msg']

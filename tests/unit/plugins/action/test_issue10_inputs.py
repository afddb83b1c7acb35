# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 10, the inputs of sev_measurement_validate through its action plugin:
non-regular files, NUL bytes in paths, huge integers, key text where a path
belongs, Vault decrypted in memory only, a cmdline with a NUL.

Every case must end in a usage error naming the option within 10 s (a SIGALRM
turns a hang into a failure; hashing runs in this thread, cpu_count 1), never
a traceback, a hang or a pass.
"""

from __future__ import annotations

import base64
import os
import signal

import pytest

# vault_dir is a fixture, used by name.
from ansible_collections.confidential.sev.tests.unit.plugins.action.test_sev_measurement_validate import (  # pylint: disable=unused-import
    SECRET, TIK, Harness, assert_clean_failure, base_args, vault_dir,
)

CASE_SECONDS = 10


@pytest.fixture(autouse=True)
def no_hang(monkeypatch):
    """A case that blocks (a FIFO with no writer) or reads forever (/dev/zero) fails here."""
    monkeypatch.setattr(os, 'cpu_count', lambda: 1)

    def expire(signum, frame):
        raise TimeoutError('the case did not finish within %d s' % CASE_SECONDS)
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(CASE_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def basedir(tmp_path):
    from ansible_collections.confidential.sev.tests.unit.plugins.action import test_sev_measurement_validate as base
    (tmp_path / 'files').mkdir()
    (tmp_path / 'files' / 'OVMF.fd').write_bytes(base.FIRMWARE)
    (tmp_path / 'tik.bin').write_bytes(TIK)
    (tmp_path / 'files' / 'tek.bin').write_bytes(base.TEK)
    (tmp_path / 'secret.txt').write_bytes(SECRET)
    (tmp_path / 'kernel').write_bytes(b'kernel image')
    (tmp_path / 'out').mkdir()
    return tmp_path


def special_file(tmp_path, kind):
    if kind == 'dev_zero':
        return '/dev/zero'
    if kind == 'symlink_to_urandom':
        link = tmp_path / 'urandom-link'
        link.symlink_to('/dev/urandom')
        return str(link)
    if kind == 'fifo':
        fifo = tmp_path / 'fifo'
        os.mkfifo(str(fifo))
        return str(fifo)
    directory = tmp_path / 'a-directory'
    directory.mkdir()
    return str(directory)


OPTIONS = ['firmware', 'kernel', 'initrd', 'diagnose_firmware', 'vmsa_cpu0', 'vmsa_cpu1', 'tik', 'tek', 'tk',
           'secrets']
KINDS = ['dev_zero', 'symlink_to_urandom', 'fifo', 'directory']


def args_with(basedir, option, path):
    if option == 'initrd':
        return base_args(basedir, kernel=str(basedir / 'kernel'), initrd=path), 'initrd'
    if option == 'kernel':
        return base_args(basedir, kernel=path), 'kernel'
    if option == 'diagnose_firmware':
        return base_args(basedir, diagnose_firmware=[path]), 'diagnose_firmware[0]'
    if option in ('vmsa_cpu0', 'vmsa_cpu1'):
        (basedir / 'vmsa').write_bytes(bytes(4096))
        vmsas = dict(vmsa_cpu0=str(basedir / 'vmsa'), vmsa_cpu1=str(basedir / 'vmsa'))
        vmsas[option] = path
        return base_args(basedir, policy=0x7, num_cpus=2, **vmsas), option
    if option == 'tk':
        args = base_args(basedir, tk=path)
        del args['tik'], args['tek']
        return args, 'tk'
    if option == 'secrets':
        return base_args(basedir, secrets=[{'guid': 'luks-key', 'path': path}]), 'secrets[0]'
    return base_args(basedir, **{option: path}), option


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('option', OPTIONS)
def test_non_regular_file_is_a_usage_error_naming_the_option(basedir, option, kind):
    path = special_file(basedir, kind)
    args, label = args_with(basedir, option, path)
    result = Harness(basedir).run(**args)
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'].startswith(label + ': '), result['msg']
    assert 'not a regular file' in result['msg'], result['msg']
    if option in ('tik', 'tek', 'tk', 'secrets'):
        assert path not in result['msg']


@pytest.mark.parametrize('option', OPTIONS)
def test_nul_byte_in_a_path_is_a_usage_error_naming_the_option(basedir, option):
    args, label = args_with(basedir, option, str(basedir / 'tik.bin') + '\0trailing')
    result = Harness(basedir).run(**args)
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'].startswith(label.split('[')[0]), result['msg']
    assert 'NUL byte' in result['msg'], result['msg']
    assert 'trailing' not in result['msg']


INT_OPTIONS = ['api_major', 'api_minor', 'build_id', 'policy', 'num_cpus', 'cpu_family', 'cpu_model',
               'cpu_stepping', 'min_build_id', 'vmsa_sev_features', 'secret_address']


@pytest.mark.parametrize('sign', ['', '-'])
@pytest.mark.parametrize('option', INT_OPTIONS)
def test_five_thousand_digit_number_is_a_usage_error_naming_the_option(basedir, option, sign):
    args = base_args(basedir)
    if option.startswith('cpu_'):
        args.update(policy=0x7, num_cpus=1, cpu_family=25, cpu_model=1, cpu_stepping=1)
    args[option] = sign + '9' * 5000
    result = Harness(basedir).run(**args)
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'].startswith(option), result['msg']
    assert '9999999999' not in result['msg']


@pytest.mark.parametrize('option, value', [
    ('tik', TIK.hex()),
    ('tik', base64.b64encode(TIK).decode()),
    ('tek', 'MDEyMzQ1Njc4OWFiY2RlZg=='),
    ('tk', TIK.hex() * 2),
    ('secrets', 'correct horse battery staple'),
    ('secrets', SECRET.decode().strip()),
])
def test_key_or_secret_text_given_as_a_path_is_not_echoed(basedir, option, value):
    if option == 'secrets':
        args = base_args(basedir, secrets=[{'guid': 'luks-key', 'path': value}])
    elif option == 'tk':
        args = base_args(basedir, tk=value)
        del args['tik'], args['tek']
    else:
        args = base_args(basedir, **{option: value})
    result = Harness(basedir).run(**args)
    assert_clean_failure(result, 'unsupported', 2)
    label = 'secrets[0]' if option == 'secrets' else option
    assert result['msg'].startswith(label + ': could not find or access the file'), result['msg']
    text = repr(result)
    assert value not in text and value.lower() not in text and value.upper() not in text


def test_vault_is_decrypted_in_memory_only(basedir, vault_dir, monkeypatch):  # pylint: disable=redefined-outer-name
    """No temporary file: the loader's decrypt-to-disk path is never taken."""
    from ansible.parsing.dataloader import DataLoader

    def to_disk(*args, **kwargs):
        raise AssertionError('a Vault file was decrypted to a temporary file')
    monkeypatch.setattr(DataLoader, 'get_real_file', to_disk)
    monkeypatch.setattr(DataLoader, '_create_content_tempfile', to_disk, raising=False)
    args = base_args(basedir, tik=str(vault_dir / 'tik.vault'), tek=str(vault_dir / 'tek.vault'),
                     secrets=[{'guid': 'luks-key', 'path': str(vault_dir / 'secret.vault')}])
    result = Harness(basedir, vault_dir / 'vault-pass.txt').run(**args)
    assert result['valid'] is True, result
    assert result['secret_payload']


@pytest.mark.parametrize('option, value', [
    ('cmdline_b64', base64.b64encode(b'console=ttyS0\0 init=/bin/evil').decode()),
    ('cmdline_b64', base64.b64encode(b'\0').decode()),
    ('cmdline', 'quiet\0 init=/bin/evil'),
])
def test_cmdline_with_a_nul_is_a_usage_error(basedir, option, value):
    """QEMU measures a C string (strlen + 1): bytes after a NUL never reach the guest."""
    from ansible_collections.confidential.sev.tests.support import firmware as fwb
    (basedir / 'amdsev.fd').write_bytes(fwb.build_image(body_size=4096))
    result = Harness(basedir).run(**base_args(basedir, firmware=str(basedir / 'amdsev.fd'),
                                              kernel=str(basedir / 'kernel'), **{option: value}))
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'].startswith('%s contains a NUL byte' % option), result['msg']

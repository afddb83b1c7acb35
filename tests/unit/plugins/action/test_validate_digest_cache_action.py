# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_measurement_validate's digest_cache and pin options, its result shape
(msg/rc/reason, digest_cache stats) and its missing-library errors, through
the action plugin's run()."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time

import pytest

from ansible_collections.confidential.sev.plugins.action import sev_measurement_validate as plugin
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection
from ansible_collections.confidential.sev.plugins.module_utils.sev import digest_cache as dc
from ansible_collections.confidential.sev.tests.unit.plugins.action.test_sev_measurement_validate import (
    FIRMWARE, Harness, assert_clean_failure, base_args, with_secret,
)
# pytest finds the fixture by its name in this module
from ansible_collections.confidential.sev.tests.unit.plugins.action.test_sev_measurement_validate import (  # noqa: F401 pylint: disable=unused-import
    basedir,
)

KERNEL_SHA256 = hashlib.sha256(b'kernel image').hexdigest()


@pytest.fixture
def settled(basedir, monkeypatch):  # noqa: F811  (the imported fixture)
    """Inputs older than the cache's min_age, a private state directory."""
    monkeypatch.setattr(dc, 'MIN_AGE', 0.05)
    (basedir / 'state').mkdir(mode=0o700)
    time.sleep(0.1)
    return basedir


def test_success_has_msg_rc_reason_and_digest_cache_stats(basedir):  # noqa: F811
    result = Harness(basedir).run(**base_args(basedir))
    assert result['valid'] is True and result['rc'] == 0 and result['reason'] == 'ok'
    assert result['msg'].startswith('the measurement matches the trusted files and keys')
    assert result['digest_cache'] == {'hits': 0, 'misses': 1, 'hashed_bytes': len(FIRMWARE)}


def test_a_cache_file_is_written_0600_and_used_by_the_next_task(settled):
    args = base_args(settled, digest_cache='state/digests.json', firmware_sha256=hashlib.sha256(FIRMWARE).hexdigest())
    # kernel hashing needs a firmware with a hash table; the cache is exercised with the firmware
    # pin and the memory state here, and with kernel/initrd in the engine's tests
    first = Harness(settled).run(**args)
    assert first['valid'] is True and first['changed'] is False
    assert first['digest_cache'] == {'hits': 0, 'misses': 1, 'hashed_bytes': len(FIRMWARE)}
    # the firmware's state is memory only: nothing to write yet, and nothing else is written
    assert sorted(os.listdir(settled / 'state')) in ([], ['digests.json.lock'])


def test_kernel_digest_is_cached_on_disk_between_tasks(settled, monkeypatch):
    """A task that hashes the kernel (then fails: this firmware has no hash
    table) still caches its digest, and the next task reads it from the file."""
    args = base_args(settled, digest_cache='state/digests.json', kernel=str(settled / 'kernel'))
    from ansible_collections.confidential.sev.plugins.module_utils.sev import validation
    monkeypatch.setattr(validation, '_footer_checks', lambda *args: (None, None))
    for expected in ({'hits': 0, 'misses': 2}, {'hits': 1, 'misses': 1}):
        result = Harness(settled).run(**args)
        assert dict((key, result['digest_cache'][key]) for key in expected) == expected, result
    path = settled / 'state' / 'digests.json'
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert [entry['sha256'] for entry in json.loads(path.read_text())['entries'].values()] == [KERNEL_SHA256]


def test_check_mode_never_writes_the_cache(settled, monkeypatch):
    from ansible_collections.confidential.sev.plugins.module_utils.sev import validation
    monkeypatch.setattr(validation, '_footer_checks', lambda *args: (None, None))
    Harness(settled).run(check_mode=True, **base_args(settled, digest_cache='state/digests.json',
                                                      kernel=str(settled / 'kernel')))
    assert not os.path.exists(settled / 'state' / 'digests.json')


@pytest.mark.parametrize('option', ['tik', 'secret_header_file'])
def test_a_cache_path_that_is_an_input_or_output_is_refused_before_anything(settled, option):
    args = with_secret(settled)
    args['digest_cache'] = args[option]
    if option == 'tik':
        os.chmod(args['tik'], 0o600)
    before = open(args['tik'], 'rb').read()
    result = Harness(settled).run(**args)
    assert_clean_failure(result, 'unsupported', 2)
    assert 'digest_cache' in result['msg']
    assert open(args['tik'], 'rb').read() == before
    assert os.listdir(settled / 'out') == []


def test_a_foreign_cache_file_fails_closed(settled):
    path = settled / 'state' / 'digests.json'
    path.write_text(json.dumps({'format': dc.FORMAT, 'version': dc.VERSION, 'entries': {}}))
    path.chmod(0o664)
    result = Harness(settled).run(**base_args(settled, digest_cache=str(path)))
    assert_clean_failure(result, 'insecure', 3)
    assert result['msg'].startswith('digest_cache: %s is mode 0664, not 0600' % path)


def test_a_firmware_pin_that_does_not_hold_is_a_config_error_naming_it(basedir):  # noqa: F811
    pinned = hashlib.sha256(b'pinned firmware').hexdigest()
    result = Harness(basedir).run(**with_secret(basedir, firmware_sha256=pinned))
    assert_clean_failure(result, 'config', 4)
    assert result['msg'].startswith('firmware_sha256: the firmware %s has SHA-256 %s, not the pinned %s'
                                    % (basedir / 'files' / 'OVMF.fd', hashlib.sha256(FIRMWARE).hexdigest(), pinned))
    assert 'secret_header' not in result and os.listdir(basedir / 'out') == []


@pytest.mark.parametrize('option, value, match', [
    ('kernel_sha256', KERNEL_SHA256, 'missing parameter\\(s\\) required by \'kernel_sha256\': kernel'),
    ('firmware_sha256', 'abc', 'firmware_sha256 must be a SHA-256 digest in hex'),
])
def test_bad_pins_are_usage_errors(basedir, option, value, match):  # noqa: F811
    result = Harness(basedir).run(**base_args(basedir, **{option: value}))
    assert_clean_failure(result, 'unsupported', 2)
    assert __import__('re').search(match, result['msg']), result['msg']


@pytest.mark.parametrize('flag, library, extra', [
    ('HAS_LXML', 'lxml', {'launch_info': {'domain': 'guest'}}),
    ('HAS_CRYPTOGRAPHY', 'cryptography', None),
])
def test_a_missing_controller_library_is_named_and_placed_on_the_controller(basedir, monkeypatch, flag,  # noqa: F811
                                                                            library, extra):
    monkeypatch.setattr(plugin, flag, False)
    args = with_secret(basedir) if extra is None else base_args(basedir, **extra)
    result = Harness(basedir).run(**args)
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'].startswith('Failed to import the required Python library (%s) on the controller'
                                    % library)
    assert 'sev_measurement_validate runs on the controller and needs it' in result['msg']
    assert 'the hypervisor host never runs this' in result['msg']


def test_missing_libvirt_python_with_domain_is_named(basedir, monkeypatch):  # noqa: F811
    monkeypatch.setattr(connection, 'HAS_LIBVIRT', False)
    result = Harness(basedir).run(**base_args(basedir, domain='guest', uri='qemu+ssh://hv1/system'))
    assert_clean_failure(result, 'unsupported', 2)
    assert result['msg'].startswith('Failed to import the required Python library (libvirt-python) on the '
                                    'controller')

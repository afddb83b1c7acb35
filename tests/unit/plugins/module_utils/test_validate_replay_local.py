# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_measurement_validate: replay_dir (a measurement seen before is refused), allow_local
(relaxes the local rule and nothing else), local decided from URI and connection, the no-secrets warning."""

from __future__ import annotations

import os

import pytest

from ansible_collections.confidential.sev.plugins.action import sev_measurement_validate as plugin
from ansible_collections.confidential.sev.plugins.module_utils import validate_options as vo
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import read_small_file
from ansible_collections.confidential.sev.tests.unit.plugins.action import action_harness
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.test_validate_from_domain import (  # noqa: F401 pylint: disable=unused-import
    CONTROLLER, HOST, OTHER_MEASUREMENT, assert_refused, files, launch_info, options,
)

LOCAL = (True, 'uri qemu:///system is local to its client, which runs on the controller')
REMOTE = (False, 'uri qemu:///system is local to its client, which runs on the managed host')


def run(params, local=REMOTE, **kwargs):
    return vo.run_validation(params, read_small_file, controller_hostname=CONTROLLER, local=local, **kwargs)


# ---- replay ------------------------------------------------------------------------------------

def test_a_measurement_validated_before_is_refused(files, tmp_path):  # pylint: disable=redefined-outer-name
    seen = str(tmp_path / 'seen')
    secrets = [{'guid': 'luks-key', 'path': files['secret']}]
    first = run(options(files, replay_dir=seen, replay_context={'host': 'hv1'}, secrets=secrets))
    assert (first['valid'], first['reason']) == (True, 'ok'), first
    assert first['replay']['mnonce'] == '4fbe0bedbad6c86ae8f68971d103e554'
    assert os.path.exists(first['replay']['record'])
    again = run(options(files, replay_dir=seen, secrets=secrets))
    assert_refused(again, 'insecure', 3)
    assert again['replayed'] is True and 'secret_payload' not in again
    assert again['msg'].startswith('replay: this measurement (mnonce 4fbe0bed') and 'host hv1' in again['msg']


def test_without_replay_dir_nothing_is_remembered(files):  # pylint: disable=redefined-outer-name
    assert run(options(files))['valid'] is True
    assert run(options(files))['valid'] is True


def test_a_mismatch_is_not_remembered(files, tmp_path):  # pylint: disable=redefined-outer-name
    seen = tmp_path / 'seen'
    other = launch_info(measurement=OTHER_MEASUREMENT)
    assert run(options(files, info=other, replay_dir=str(seen)))['reason'] == 'mismatch'
    assert not seen.exists()


def test_check_mode_does_not_claim(files, tmp_path):  # pylint: disable=redefined-outer-name
    seen = tmp_path / 'seen'
    assert run(options(files, replay_dir=str(seen)), check_mode=True)['valid'] is True
    assert not seen.exists()
    assert run(options(files, replay_dir=str(seen)))['valid'] is True


def test_replay_context_needs_replay_dir(files):  # pylint: disable=redefined-outer-name
    with pytest.raises(AssertionError, match='replay_context'):
        options(files, replay_context={'host': 'x'})


# ---- no secrets -----------------------------------------------------------------------------------

def test_no_secrets_warns_that_nothing_is_bound(files):  # pylint: disable=redefined-outer-name
    result = run(options(files))
    assert vo.NO_SECRETS_WARNING in result['warnings']
    with_secret = run(options(files, secrets=[{'guid': 'luks-key', 'path': files['secret']}]))
    assert vo.NO_SECRETS_WARNING not in (with_secret.get('warnings') or [])


# ---- allow_local ------------------------------------------------------------------------------

def test_local_is_decided_by_the_caller_not_by_the_reported_hostname(files):  # pylint: disable=redefined-outer-name
    # the host reports the controller's name, but the connection is remote: remote
    result = run(options(files, info=launch_info(hostname=CONTROLLER)), local=REMOTE)
    assert result['valid'] is True, result
    # the host reports another name, but the connection is local: local, refused
    refused = run(options(files, info=launch_info(hostname=HOST)), local=LOCAL)
    assert_refused(refused, 'insecure', 3)
    assert refused['msg'].startswith('the hypervisor is this controller (uri qemu:///system is local')
    assert 'allow_local' in refused['msg']


def test_allow_local_accepts_the_controller_as_hypervisor(files):  # pylint: disable=redefined-outer-name
    result = run(options(files, allow_local=True), local=LOCAL)
    assert (result['valid'], result['reason']) == (True, 'ok'), result
    assert result['notes'] == ['the hypervisor is this controller, accepted by allow_local']


@pytest.mark.parametrize('given, info, reason, words', [
    # not paused: still refused (insecure would accept it)
    ({}, dict(state='running'), 'state', 'not paused'),
    # firmware from the domain XML: refused (never taken, since issue 10)
    ({'firmware': None}, dict(xml=lx.domain_xml(loader='/usr/share/OVMF/OVMF_CODE.fd')), 'unsupported',
     'firmware not given: give the trusted file on the controller'),
    # a zero TIK: still refused
    ({'tik': 'zero'}, {}, 'insecure', 'TIK'),
])
def test_allow_local_relaxes_nothing_else(files, tmp_path, given, info, reason, words):  # pylint: disable=redefined-outer-name
    if given.get('tik') == 'zero':
        (tmp_path / 'zero.tik').write_bytes(bytes(16))
        given = dict(tik=str(tmp_path / 'zero.tik'))
    result = run(options(files, info=launch_info(**info), allow_local=True, **given), local=LOCAL)
    assert (result['failed'], result['valid'], result['reason']) == (True, False, reason), result
    assert words in result['msg']


# ---- the action plugin decides local from its connection ------------------------------------------

class Harness(action_harness.Harness):
    def __init__(self, basedir, transport, address=None):
        super().__init__(plugin, 'confidential.sev.sev_measurement_validate', basedir)
        self.connection.transport = transport
        self.address = address

    def run(self, check_mode=False, **args):
        original = plugin.ActionModule.__init__
        address = self.address

        def init(action, *a, **k):
            original(action, *a, **k)
            action._play_context.remote_addr = address
        plugin.ActionModule.__init__ = init
        try:
            return super().run(check_mode=check_mode, **args)
        finally:
            plugin.ActionModule.__init__ = original


@pytest.mark.parametrize('transport, address, uri, local', [
    ('local', None, None, True),
    ('ansible.builtin.local', None, 'qemu+unix:///system?socket=/run/x', True),
    ('ssh', '127.0.0.1', None, True),
    ('ssh', '203.0.113.7', None, False),
    ('ssh', '203.0.113.7', 'qemu+ssh://root@127.0.0.1/system', False),   # the managed host's own loopback
    ('local', None, 'qemu+ssh://root@203.0.113.7/system', False),
])
def test_plugin_decides_local_from_uri_and_connection(files, tmp_path, transport, address, uri, local):  # pylint: disable=redefined-outer-name
    args = dict(launch_info=launch_info(hostname='anything.example'), firmware=files['firmware'],
                tik=files['tik'], tek=files['tek'])
    if uri:
        args['uri'] = uri
    result = Harness(tmp_path, transport, address).run(**args)
    if local:
        assert (result['failed'], result['reason'], result['rc']) == (True, 'insecure', 3), result
        assert 'the hypervisor is this controller' in result['msg']
        allowed = Harness(tmp_path, transport, address).run(allow_local=True, **args)
        assert allowed['valid'] is True, allowed
    else:
        assert result['valid'] is True, result

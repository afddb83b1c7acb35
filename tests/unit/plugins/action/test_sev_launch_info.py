# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_launch_info's action plugin: what the host module returned is checked on
the controller; a host returning garbage makes a failed task with a clear
message, never a traceback.  The module's result is injected in place of
running it on a host."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.confidential.sev.plugins.action import sev_launch_info
from ansible_collections.confidential.sev.tests.unit.plugins.action import action_harness
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx


@pytest.fixture
def host(monkeypatch):
    """What the module on the host returns (set .result), and the arguments it got."""
    class Host:
        result = None
        args = None

    def execute(self, module_name=None, module_args=None, task_vars=None, **kwargs):
        del self, task_vars, kwargs
        assert module_name == 'confidential.sev.sev_launch_info'
        Host.args = module_args
        return copy.deepcopy(Host.result)

    monkeypatch.setattr(sev_launch_info.ActionModule, '_execute_module', execute)
    return Host


def run(tmp_path, **args):
    return action_harness.Harness(sev_launch_info, 'confidential.sev.sev_launch_info', tmp_path).run(**args)


def test_domain_report_gives_identity_and_run_state(host, tmp_path):
    host.result = {'changed': False, 'report': lx.raw_report()}
    result = run(tmp_path, domain='sev-guest')
    assert result.get('failed') is not True, result
    assert (result['uuid'], result['name'], result['id'], result['state'], result['state_reason'],
            result['run_state'], result['prelaunch']) == (lx.UUID, 'sev-guest', 7, 'paused', 'user', 'prelaunch', True)
    assert 'report' not in result and result['changed'] is False


def test_node_only_report(host, tmp_path):
    host.result = {'changed': False, 'report': {'hostname': 'hv1', 'node_sev': dict(lx.NODE_SEV)}}
    result = run(tmp_path)
    assert result.get('failed') is not True, result
    assert set(result) >= {'hostname', 'node_sev'} and 'uuid' not in result and 'state' not in result
    assert result['node_sev']['cbitpos'] == 51 and result['node_sev']['pdh'] == lx.NODE_SEV['pdh']


@pytest.mark.parametrize('args, report, words', [
    # the task decides what is expected: a host answering a domain task with a node report fails
    ({'domain': 'sev-guest'}, {'hostname': 'hv1', 'node_sev': dict(lx.NODE_SEV)}, 'domain is missing'),
    ({}, lx.raw_report(), 'node_sev is missing'),
    ({'domain': 'sev-guest'}, None, 'host report is not a mapping'),
    ({'domain': 'sev-guest'}, 'garbage', 'host report is not a mapping'),
    ({'domain': 'sev-guest'}, dict(lx.raw_report(), domain={'name': 'x', 'uuid': 'not-a-uuid', 'id': 7}),
     'uuid'),
    ({'domain': 'sev-guest'}, dict(lx.raw_report(), domain={'name': 'x', 'uuid': lx.UUID, 'id': -7}),
     'id = -7 is outside -1..2147483647'),
    ({'domain': 'sev-guest'}, lx.raw_report(run_state='launched'), "run_state 'launched' is not one of QEMU's"),
    ({'domain': 'sev-guest'}, lx.raw_report(run_state=7), 'run_state has type int'),
])
def test_garbage_from_the_host_is_a_clear_failure(host, tmp_path, args, report, words):
    host.result = {'changed': False, 'report': report}
    result = run(tmp_path, **args)
    assert result['failed'] is True and result['changed'] is False
    assert result['msg'].startswith('the host returned data that does not check out: ')
    assert words in result['msg'], result['msg']
    assert (result['reason'], result['rc']) == ('unsupported', 2)


def test_a_module_failure_is_passed_on(host, tmp_path):
    host.result = {'failed': True, 'msg': "domain '1': virDomainLookupByName failed: Domain not found",
                   'error_kind': 'unknown_domain'}
    result = run(tmp_path, domain='1')
    assert (result['failed'], result['error_kind']) == (True, 'unknown_domain')
    assert host.args == {'domain': '1'}

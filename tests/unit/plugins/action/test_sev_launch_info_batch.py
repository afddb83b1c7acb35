# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_launch_info's action plugin with domains: (issue 11): every item the
host returned is checked on the controller on its own (a bad report fails
that item only, and so does a report of another domain than the one asked
for); and (issue 12) without lxml on the controller, the error names the
library and the controller, never the host's data."""

from __future__ import annotations

import copy
import importlib
import sys

import pytest

from ansible_collections.confidential.sev.plugins.action import sev_launch_info
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import domain_config, host_results
from ansible_collections.confidential.sev.tests.unit.plugins.action import action_harness
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx

OTHER_UUID = 'a8b4c2d1-3e5f-4a6b-9c7d-0e1f2a3b4c5d'


def report(name='sev-guest', uuid=lx.UUID, ident=7, **kwargs):
    raw = lx.raw_report(**kwargs)
    raw['domain'] = {'name': name, 'uuid': uuid, 'id': ident}
    return raw


@pytest.fixture
def host(monkeypatch):
    class Host:
        result = None
        args = None
        calls = 0

    def execute(self, module_name=None, module_args=None, task_vars=None, **kwargs):
        del self, task_vars, kwargs
        assert module_name == 'confidential.sev.sev_launch_info'
        Host.args = module_args
        Host.calls += 1
        return copy.deepcopy(Host.result)

    monkeypatch.setattr(sev_launch_info.ActionModule, '_execute_module', execute)
    return Host


def run(tmp_path, **args):
    return action_harness.Harness(sev_launch_info, 'confidential.sev.sev_launch_info', tmp_path).run(**args)


def test_each_item_is_checked_on_its_own(host, tmp_path):
    host.result = {'changed': False, 'node': {'hostname': 'hv1', 'node_sev': dict(lx.NODE_SEV)}, 'results': [
        {'requested': 'sev-guest', 'report': report()},
        {'requested': 'b', 'report': report(name='b', uuid=OTHER_UUID, run_state='launched')},
        {'requested': 'c', 'failed': True, 'msg': "domain 'c': virDomainLookupByName failed: Domain not found",
         'reason': 'error', 'rc': 6, 'error_kind': 'unknown_domain', 'libvirt_code': 42},
        {'requested': 'd', 'failed': True, 'reason': 'ok', 'msg': 'trust me'},
        'garbage',
    ]}
    result = run(tmp_path, domains=['sev-guest', 'b', 'c', 'd', 'e'], include_node=True)
    items = result['results']
    assert [item['requested'] for item in items] == ['sev-guest', 'b', 'c', 'd', 'e']
    assert [item['failed'] for item in items] == [False, True, True, True, True]
    good = items[0]
    assert (good['uuid'], good['run_state'], good['prelaunch'], good['rc'], good['reason']) == (
        lx.UUID, 'prelaunch', True, 0, 'ok')
    assert good['msg'] == "domain 'sev-guest': state paused, QEMU run state prelaunch, ID 7"
    assert good['domain'] == {'name': 'sev-guest', 'uuid': lx.UUID, 'id': 7} and good['changed'] is False
    assert items[1]['msg'].startswith('the host returned data that does not check out: ')
    assert "run_state 'launched'" in items[1]['msg'] and (items[1]['rc'], items[1]['reason']) == (2, 'unsupported')
    assert items[2]['msg'].startswith('sev_launch_info failed on the host: ')
    assert (items[2]['error_kind'], items[2]['libvirt_code'], items[2]['rc']) == ('unknown_domain', 42, 6)
    assert "claims reason 'ok'" in items[3]['msg'] and items[3]['rc'] == 2
    assert "the item for 'e' is not a mapping" in items[4]['msg']
    assert (result['failed'], result['rc'], result['reason'], result['changed']) == (True, 2, 'unsupported', False)
    assert result['msg'].startswith('4 of 5 domains failed: b: the host returned data')
    assert result['node']['hostname'] == 'hv1' and result['node']['node_sev']['cbitpos'] == 51
    assert host.args['domains'] == ['sev-guest', 'b', 'c', 'd', 'e']


def test_all_good_with_the_node(host, tmp_path):
    host.result = {'changed': False, 'node': {'hostname': 'hv1', 'node_sev': dict(lx.NODE_SEV)}, 'results': [
        {'requested': 'sev-guest', 'report': report()},
        {'requested': OTHER_UUID.upper(), 'report': report(name='two', uuid=OTHER_UUID, ident=8)}]}
    result = run(tmp_path, domains=['sev-guest', OTHER_UUID.upper()], include_node=True)
    assert (result.get('failed'), result['rc'], result['reason']) == (False, 0, 'ok'), result['msg']
    assert result['msg'] == 'all 2 domains succeeded (no change)'
    assert [item['id'] for item in result['results']] == [7, 8]


def test_without_include_node_there_is_no_node(host, tmp_path):
    host.result = {'changed': False, 'results': [{'requested': 'sev-guest', 'report': report()}]}
    result = run(tmp_path, domains=['sev-guest'])
    assert result.get('failed') is False and 'node' not in result


@pytest.mark.parametrize('items, words', [
    # the host answers about another domain than the one asked for
    ([report(name='other', uuid=OTHER_UUID)], "the report for 'sev-guest' is of domain 'other' (%s)" % OTHER_UUID),
    # the same domain reported twice (the second under a name it does not have)
    ([report(), report()], 'already reported'),
])
def test_a_report_of_another_domain_fails_that_item(host, tmp_path, items, words):
    requested = ['sev-guest', lx.UUID][:len(items)]
    host.result = {'changed': False, 'results': [{'report': raw} for raw in items]}
    result = run(tmp_path, domains=requested)
    assert result['failed'] is True
    assert words in result['results'][-1]['msg'], result['results'][-1]['msg']
    assert result['results'][-1]['reason'] == 'unsupported'


@pytest.mark.parametrize('module_result, words', [
    ({'changed': False, 'results': [{'report': report()}] * 2}, 'results is a list of 2 items, not a list of 1'),
    ({'changed': False, 'results': 'x'}, 'results is a str, not a list of 1 items'),
    ({'changed': False}, 'sev_launch_info failed on the host: the module returned no results'),
    ({'failed': True, 'msg': 'libvirt unreachable', 'reason': 'error', 'error_kind': 'unreachable', 'results': []},
     'sev_launch_info failed on the host: libvirt unreachable'),
    ({'failed': True, 'msg': 'x', 'reason': 'valid'}, 'does not check out: the module result is failed and claims'),
])
def test_a_bad_whole_answer_fails_the_task(host, tmp_path, module_result, words):
    host.result = module_result
    result = run(tmp_path, domains=['sev-guest'])
    assert result['failed'] is True and words in result['msg'], result['msg']
    assert result['results'] == []


@pytest.mark.parametrize('node, words', [
    ({'failed': True, 'msg': "virNodeGetSEVInfo failed: SEV not supported", 'reason': 'error',
      'error_kind': 'sev_unsupported'}, 'node: sev_launch_info failed on the host: virNodeGetSEVInfo failed'),
    ({'hostname': 'hv1'}, 'node: the host returned data that does not check out: host report: node_sev is missing'),
    (None, 'node: the host returned data that does not check out'),
])
def test_a_bad_node_fails_the_task_and_keeps_the_items(host, tmp_path, node, words):
    host.result = {'changed': False, 'node': node, 'results': [{'report': report()}]}
    result = run(tmp_path, domains=['sev-guest'], include_node=True)
    assert result['failed'] is True and result['msg'].startswith(words), result['msg']
    assert result['node'] is None and result['results'][0]['failed'] is False
    assert result['rc'] != 0


def test_one_domain_result_gains_msg_rc_reason(host, tmp_path):
    host.result = {'changed': False, 'report': lx.raw_report()}
    result = run(tmp_path, domain='sev-guest')
    assert (result['rc'], result['reason']) == (0, 'ok') and 'results' not in result
    host.result = {'changed': False, 'report': {'hostname': 'hv1', 'node_sev': dict(lx.NODE_SEV)}}
    result = run(tmp_path)
    assert (result['rc'], result['reason'], result['msg']) == (0, 'ok', 'node SEV information of host hv1')


# ---- issue 12: lxml missing on the controller ------------------------------------------------

@pytest.fixture
def without_lxml(monkeypatch):
    """domain_config imported as on a controller where 'import lxml' fails."""
    monkeypatch.setitem(sys.modules, 'lxml', None)
    monkeypatch.setitem(sys.modules, 'lxml.etree', None)
    importlib.reload(domain_config)
    assert domain_config.HAS_LXML is False
    yield
    monkeypatch.undo()
    importlib.reload(domain_config)
    assert domain_config.HAS_LXML is True


@pytest.mark.parametrize('args', [{'domain': 'sev-guest'}, {'domains': ['sev-guest', 'b']}])
def test_without_lxml_the_error_names_the_library_and_the_controller(host, tmp_path, without_lxml, args):
    del without_lxml
    host.result = {'changed': False, 'report': lx.raw_report(),
                   'results': [{'report': report()}, {'report': report(name='b', uuid=OTHER_UUID)}]}
    result = run(tmp_path, **args)
    assert (result['failed'], result['rc'], result['reason']) == (True, 2, 'unsupported')
    assert 'lxml' in result['msg'] and 'on the controller' in result['msg']
    assert 'not the hypervisor host' in result['msg']
    assert 'does not check out' not in result['msg'] and 'failed on the host' not in result['msg']
    assert result['missing_library'] == 'lxml'
    assert host.calls == 0  # the host is not even asked


def test_without_lxml_the_node_only_call_still_works(host, tmp_path, without_lxml):
    del without_lxml
    host.result = {'changed': False, 'report': {'hostname': 'hv1', 'node_sev': dict(lx.NODE_SEV)}}
    result = run(tmp_path)
    assert result.get('failed') is not True and result['node_sev']['cbitpos'] == 51


def test_check_launch_batch_without_lxml_for_other_actions(without_lxml):
    del without_lxml
    result = host_results.check_launch_batch({'changed': False, 'results': [{'report': report()}]}, ['sev-guest'])
    assert result['failed'] is True and result['msg'] == host_results.LXML_MISSING and result['results'] == []

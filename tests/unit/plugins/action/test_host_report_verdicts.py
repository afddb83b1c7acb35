# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 10, host reports: what the host returns never shapes the controller's
verdict fields (failed, changed, reason, rc), and every integer it reports is
range-checked, a 5,000-digit one included, with a clean "does not check out"
failure instead of a traceback."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.confidential.sev.plugins.action import sev_launch_info
from ansible_collections.confidential.sev.tests.unit.plugins.action import action_harness
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx


def short_id(value):
    """A test id that never prints a huge integer (Python refuses ints of over 4,300 digits)."""
    if isinstance(value, int) and value.bit_length() > 256:
        return 'int%dbits' % value.bit_length()
    return None


@pytest.fixture
def host(monkeypatch):
    class Host:
        result = None

    def execute(self, module_name=None, module_args=None, task_vars=None, **kwargs):
        del self, module_name, module_args, task_vars, kwargs
        return copy.deepcopy(Host.result)

    monkeypatch.setattr(sev_launch_info.ActionModule, '_execute_module', execute)
    return Host


def run(tmp_path, **args):
    return action_harness.Harness(sev_launch_info, 'confidential.sev.sev_launch_info', tmp_path).run(**args)


@pytest.mark.parametrize('claimed', [
    {'rc': 0, 'reason': 'ok'},
    {'rc': 1, 'reason': 'mismatch', 'valid': True},
    {'rc': 1, 'valid': True},
])
def test_a_failed_host_result_that_claims_success_does_not_check_out(host, tmp_path, claimed):
    # failed and ok at once is no honest host failure: host data that does not check out
    host.result = dict(claimed, failed=True, changed=True, msg='libvirt said no')
    result = run(tmp_path, domain='sev-guest')
    assert result['failed'] is True and result['changed'] is False, result
    assert (result['reason'], result['rc']) == ('unsupported', 2), result
    assert 'valid' not in result
    assert result['msg'].startswith('the host returned data that does not check out: the module result is failed '
                                    'and claims '), result


@pytest.mark.parametrize('claimed', [
    {'rc': 'zero', 'reason': ['ok']},
    {'reason': 'insecure'},
    {},
])
def test_a_failed_host_result_gets_the_controllers_verdict(host, tmp_path, claimed):
    host.result = dict(claimed, failed=True, changed=True, msg='libvirt said no')
    result = run(tmp_path, domain='sev-guest')
    assert result['failed'] is True and result['changed'] is False, result
    assert (result['reason'], result['rc']) == ('error', 6), result
    assert 'valid' not in result
    assert result['msg'] == 'sev_launch_info failed on the host: libvirt said no'


def test_a_host_failure_class_is_kept_only_when_it_is_one(host, tmp_path):
    host.result = {'failed': True, 'rc': 0, 'reason': 'state', 'msg': 'x', 'error_kind': 'wrong_state',
                   'libvirt_code': 55, 'libvirt_call': 'virDomainGetState'}
    result = run(tmp_path, domain='sev-guest')
    assert (result['failed'], result['reason'], result['rc'], result['error_kind']) == (True, 'state', 5, 'wrong_state')
    host.result = {'failed': True, 'msg': 'x', 'error_kind': 'all good', 'libvirt_code': 'x' * 500}
    result = run(tmp_path, domain='sev-guest')
    assert 'error_kind' not in result and 'libvirt_code' not in result and result['rc'] == 6


@pytest.mark.parametrize('returned', [
    {'skipped': True, 'rc': 0, 'reason': 'ok'},
    {'changed': False, 'rc': 0, 'reason': 'ok'},          # no report at all
])
def test_a_host_that_returns_no_report_fails(host, tmp_path, returned):
    host.result = returned
    result = run(tmp_path, domain='sev-guest')
    assert result['failed'] is True and (result['reason'], result['rc']) == ('error', 6), result
    assert result.get('skipped') is not True


def test_a_huge_host_message_is_bounded(host, tmp_path):
    host.result = {'failed': True, 'msg': 'x' * 100000}
    assert len(run(tmp_path, domain='sev-guest')['msg']) < 2200


def bad(host, tmp_path, report, words):
    host.result = {'changed': False, 'report': report}
    result = run(tmp_path, domain='sev-guest')
    assert result['failed'] is True and (result['reason'], result['rc']) == ('unsupported', 2), result
    assert result['msg'].startswith('the host returned data that does not check out: '), result['msg']
    assert words in result['msg'], result['msg']
    assert 'Traceback' not in result['msg'] and 'exception' not in result


@pytest.mark.parametrize('policy, words', [
    ('f' * 5000, 'launchSecurity policy is not an integer of at most 32 characters (5000 given)'),
    ('1' + '0' * 4999, 'launchSecurity policy is not an integer of at most 32 characters'),
    ('0x1' + '0' * 8, 'launchSecurity policy = 4294967296 is outside 0..4294967295'),
])
def test_huge_policy_in_the_domain_xml(host, tmp_path, policy, words):
    bad(host, tmp_path, lx.raw_report(xml=lx.domain_xml(policy=policy)), words)


@pytest.mark.parametrize('element, value, words', [
    ('cbitpos', '31', 'cbitpos = 31 is outside 32..63'),
    ('cbitpos', '64', 'cbitpos = 64 is outside 32..63'),
    ('cbitpos', '9' * 5000, 'cbitpos is not an integer of at most 32 characters'),
    ('reducedPhysBits', '0', 'reducedPhysBits = 0 is outside 1..63'),
    ('reducedPhysBits', '64', 'reducedPhysBits = 64 is outside 1..63'),
])
def test_out_of_range_launch_security_values(host, tmp_path, element, value, words):
    default = {'cbitpos': '47', 'reducedPhysBits': '1'}[element]
    xml = lx.domain_xml().replace('<%s>%s</%s>' % (element, default, element),
                                  '<%s>%s</%s>' % (element, value, element))
    bad(host, tmp_path, lx.raw_report(xml=xml), words)


@pytest.mark.parametrize('vcpus, current, words', [
    (0, None, 'vcpu count = 0 is outside 1..4096'),
    (70000, None, 'vcpu count = 70000 is outside 1..4096'),
    (4, 0, 'vcpu current = 0 is outside 1..4096'),
])
def test_out_of_range_vcpus_in_the_domain_xml(host, tmp_path, vcpus, current, words):
    bad(host, tmp_path, lx.raw_report(xml=lx.domain_xml(vcpus=vcpus, current=current)), words)


@pytest.mark.parametrize('path, value, words', [
    (('state', 'vcpus'), 0, 'state: vcpus = 0 is outside 1..4096'),
    (('state', 'vcpus'), 5000, 'state: vcpus = 5000 is outside 1..4096'),
    (('state', 'state'), 9, 'state: state = 9 is outside 0..7'),
    (('domain', 'id'), 10 ** 5000, 'id = an integer of 16610 bits is outside'),
    (('launch_security', 'sev-policy'), 10 ** 5000, 'sev-policy = an integer of 16610 bits is outside'),
], ids=short_id)
def test_out_of_range_reported_integers(host, tmp_path, path, value, words):
    report = lx.raw_report()
    report[path[0]][path[1]] = value
    bad(host, tmp_path, report, words)


@pytest.mark.parametrize('key, value, words', [
    ('cbitpos', 0, 'cbitpos = 0 is outside 32..63'),
    ('cbitpos', 10 ** 5000, 'cbitpos = an integer of 16610 bits is outside 32..63'),
    ('reduced-phys-bits', 200, 'reduced-phys-bits = 200 is outside 0..63'),
], ids=short_id)
def test_out_of_range_node_sev(host, tmp_path, key, value, words):
    node = dict(lx.NODE_SEV)
    node[key] = value
    host.result = {'changed': False, 'report': {'hostname': 'hv1', 'node_sev': node}}
    result = run(tmp_path)
    assert result['failed'] is True and (result['reason'], result['rc']) == ('unsupported', 2), result
    assert words in result['msg'], result['msg']

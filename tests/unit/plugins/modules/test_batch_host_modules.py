# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 11: the batch forms of the host modules (sev_domain domains:,
sev_secret_inject injections:, sev_launch_info domains:), run through main()
against stand-in libvirt objects that change state as libvirt does.

What must hold: the input is checked whole before libvirt is touched (a bad
item or a domain named twice refuses the task, nothing done); then one item's
failure never stops or touches another; results come back in input order
with the one-domain keys plus requested/failed/msg/rc/reason; the task fails
iff an item failed, with the first failed item's rc/reason."""

from __future__ import annotations

import base64
import json
import threading

import libvirt
import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import batch, connection
from ansible_collections.confidential.sev.plugins.modules import sev_domain, sev_launch_info, sev_secret_inject
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor.test_connection import (
    FakeConnection, FakeLibvirtQemu, libvirt_error)
from ansible_collections.confidential.sev.tests.unit.plugins.modules import test_vanishing_domain as vanishing
from ansible_collections.confidential.sev.tests.unit.plugins.modules.test_sev_domain import ActingDomain

HEADER = base64.b64encode(bytes(4) + bytes(range(16)) + bytes(range(100, 132))).decode()
PAYLOAD = base64.b64encode(bytes(range(48))).decode()
LAUNCH = {'dh_cert': base64.b64encode(b'G' * 2084).decode(), 'session': base64.b64encode(b'S' * 112).decode(),
          'policy': 5}
ITEM_KEYS = {'requested', 'failed', 'changed', 'msg', 'rc', 'reason'}


def uuid_of(index):
    return '5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d%02d' % index


class Guest(ActingDomain):
    """An ActingDomain that takes a secret and says what was done to it."""

    def __init__(self, index, **kwargs):
        kwargs.setdefault('state', (5, 1))
        kwargs.setdefault('active', 0)
        super(Guest, self).__init__('g%d' % index, uuid_of(index), -1 if not kwargs['active'] else 10 + index,
                                    persistent=lx.domain_xml(name='g%d' % index, dh_cert=False, session=False),
                                    **kwargs)
        self.secrets = []
        self.createWithFlags_id = 40 + index

    def createWithFlags(self, flags):  # pylint: disable=invalid-name
        result = super(Guest, self).createWithFlags(flags)
        self._id = self.createWithFlags_id
        return result

    def setLaunchSecurityState(self, params, flags=0):  # pylint: disable=invalid-name
        assert flags == 0
        self._maybe_fail('setLaunchSecurityState')
        self.secrets.append(dict(params))
        return 0

    def touched(self):
        """The calls that change something."""
        return [call for call in self.calls
                if call in ('createWithFlags', 'destroy', 'resume', 'setLaunchSecurityState', 'defineXML')]


class Host(FakeConnection):
    def __init__(self, domains):
        super(Host, self).__init__(domains)
        self.closed = False
        self.defined = []

    def defineXML(self, xml):  # pylint: disable=invalid-name
        for dom in self.domains:
            if "<name>%s</name>" % dom.name() in xml:
                dom.calls.append('defineXML')
                dom.persistent = xml
                self.defined.append(dom.name())
                return dom
        raise AssertionError('defineXML of an unknown domain')

    def close(self):
        self.closed = True
        return 0


@pytest.fixture
def host(monkeypatch):
    """Install a stand-in libvirt host; call it with the guests."""
    def install(*guests):
        conn = Host(guests)
        monkeypatch.setattr(libvirt, 'open', lambda uri: conn)
        monkeypatch.setattr(libvirt, 'openReadOnly', lambda uri: conn)
        monkeypatch.setattr(connection, 'libvirt_qemu', FakeLibvirtQemu)
        return conn
    return install


def run_module(module, args, monkeypatch, capsys, check_mode=False):
    args = dict(args, _ansible_check_mode=check_mode)
    monkeypatch.setattr(basic, '_ANSIBLE_ARGS', to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args})))
    monkeypatch.setattr(basic, '_ANSIBLE_PROFILE', 'legacy', raising=False)
    with pytest.raises(SystemExit):
        module.main()
    out = capsys.readouterr().out
    return json.loads(out), out


# ---- sev_domain domains: ---------------------------------------------------------------------

@pytest.mark.parametrize('max_parallel', [1, 3])
def test_paused_batch_one_unknown_domain_fails_alone(host, monkeypatch, capsys, max_parallel):
    guests = [Guest(0), Guest(1), Guest(2)]
    host(*guests)
    result, _out = run_module(sev_domain, {'state': 'paused', 'max_parallel': max_parallel, 'domains': [
        {'domain': 'g0', 'launch_security': LAUNCH}, {'domain': 'nope'}, {'domain': uuid_of(2)}]},
        monkeypatch, capsys)
    assert (result['failed'], result['changed'], result['rc'], result['reason']) == (True, True, 6, 'error')
    assert result['msg'].startswith("1 of 3 domains failed: nope: domain 'nope': virDomainLookupByName failed")
    items = result['results']
    assert [item['requested'] for item in items] == ['g0', 'nope', uuid_of(2)]
    assert [item['domain'] for item in items] == ['g0', 'nope', uuid_of(2)]
    assert [item['failed'] for item in items] == [False, True, False]
    for item in items:
        assert ITEM_KEYS <= set(item), item
    assert (items[0]['id'], items[0]['run_state'], items[0]['launch_security_updated']) == (40, 'prelaunch', True)
    assert (items[2]['id'], items[2]['run_state'], items[2]['launch_security_updated']) == (42, 'prelaunch', False)
    assert (items[0]['rc'], items[0]['reason']) == (0, 'ok')
    assert items[0]['msg'] == "domain 'g0': now paused (QEMU run state prelaunch, ID 40)"
    assert (items[1]['error_kind'], items[1]['libvirt_code'], items[1]['changed']) == ('unknown_domain', 42, False)
    assert 'uuid' not in items[1]
    assert guests[0].touched() == ['defineXML', 'createWithFlags'] and guests[2].touched() == ['createWithFlags']
    assert guests[1].touched() == []


def test_a_libvirt_failure_of_one_start_leaves_the_others_started(host, monkeypatch, capsys):
    guests = [Guest(0), Guest(1, fail={'createWithFlags': (1, 'internal error: qemu unexpectedly closed')}),
              Guest(2), Guest(3), Guest(4)]
    host(*guests)
    result, _out = run_module(sev_domain, {'state': 'paused', 'max_parallel': 4, 'domains': [
        {'domain': guest.name()} for guest in guests]}, monkeypatch, capsys)
    assert result['failed'] is True and result['msg'].startswith('1 of 5 domains failed: g1: ')
    assert [item['failed'] for item in result['results']] == [False, True, False, False, False]
    assert [guest.state()[0] for guest in guests] == [3, 5, 3, 3, 3]
    failed = result['results'][1]
    assert (failed['libvirt_call'], failed['state'], failed['id'], failed['changed']) == (
        'virDomainCreateWithFlags', 'shutoff', -1, False)


def test_resumed_batch_with_expect_id_refuses_only_the_other_launch(host, monkeypatch, capsys):
    guests = [Guest(0, state=(3, 1), active=1), Guest(1, state=(3, 1), active=1)]
    host(*guests)
    result, _out = run_module(sev_domain, {'state': 'resumed', 'domains': [
        {'domain': 'g0', 'expect_id': 10}, {'domain': 'g1', 'expect_id': 99}]}, monkeypatch, capsys)
    assert (result['failed'], result['rc'], result['reason']) == (True, 5, 'state')
    assert result['results'][1]['error_kind'] == 'wrong_state'
    assert 'has ID 11, not 99 (expect_id)' in result['results'][1]['msg']
    assert guests[0].touched() == ['resume'] and guests[1].touched() == []
    assert result['results'][0]['state'] == 'running'


def test_destroyed_batch_with_a_stale_expect_id_is_no_failure(host, monkeypatch, capsys):
    guests = [Guest(0, state=(3, 1), active=1), Guest(1, state=(3, 1), active=1), Guest(2)]
    host(*guests)
    result, _out = run_module(sev_domain, {'state': 'destroyed', 'domains': [
        {'domain': 'g0', 'expect_id': 10}, {'domain': 'g1', 'expect_id': 12}, {'domain': 'g2'}]},
        monkeypatch, capsys)
    assert result.get('failed') is False and (result['rc'], result['reason'], result['changed']) == (0, 'ok', True)
    assert result['msg'] == 'all 3 domains succeeded (changed)'
    assert [(item['destroyed'], item['skip_reason']) for item in result['results']] == [
        (True, None), (False, 'other_launch'), (False, 'not_active')]
    assert guests[0].touched() == ['destroy'] and guests[1].touched() == [] and guests[2].touched() == []


def test_check_mode_batch_touches_nothing(host, monkeypatch, capsys):
    guests = [Guest(0), Guest(1)]
    conn = host(*guests)
    result, _out = run_module(sev_domain, {'state': 'paused', 'domains': [
        {'domain': 'g0', 'launch_security': LAUNCH}, {'domain': 'g1'}]}, monkeypatch, capsys, check_mode=True)
    assert result['changed'] is True and result.get('failed') is False
    assert [item['state'] for item in result['results']] == ['paused', 'paused']
    assert [guest.touched() for guest in guests] == [[], []] and conn.defined == []


class Crashing(Guest):
    def info(self):
        raise RuntimeError('a bug in a stand-in')


def test_an_unexpected_error_fails_its_item_only(host, monkeypatch, capsys):
    guests = [Guest(0), Crashing(1), Guest(2)]
    host(*guests)
    result, out = run_module(sev_domain, {'state': 'paused', 'max_parallel': 2, 'domains': [
        {'domain': 'g0'}, {'domain': 'g1'}, {'domain': 'g2'}]}, monkeypatch, capsys)
    assert [item['failed'] for item in result['results']] == [False, True, False]
    assert result['results'][1]['msg'] == 'unexpected RuntimeError: a bug in a stand-in'
    assert (result['rc'], result['reason']) == (6, 'error') and 'Traceback' not in out
    assert guests[0].touched() == ['createWithFlags'] and guests[2].touched() == ['createWithFlags']


@pytest.mark.parametrize('domains, words', [
    ([{'domain': 'g0'}, {'domain': 'g0'}], "domains[0] and domains[1] both name domain 'g0'"),
    ([{'domain': 'g0'}, {'domain': uuid_of(0)}],
     "domains[0] ('g0') and domains[1] ('%s') are the same domain (UUID %s)" % (uuid_of(0), uuid_of(0))),
    ([{'domain': 'g0'}, {'domain': ' '}], 'domains[1]: domain must be a name or UUID, not empty'),
    ([], 'domains must list at least one domain'),
    ([{'domain': 'g0'}, {'domain': 'g1', 'expect_id': 3}],
     'domains[1] (g1): expect_id applies to state destroyed and resumed only, not paused'),
    ([{'domain': 'g0', 'launch_security': dict(LAUNCH, dh_cert='not base64!')}],
     'domains[0] (g0): launch_security.dh_cert is not valid base64'),
])
def test_bad_batch_input_refuses_the_task_and_touches_nothing(host, monkeypatch, capsys, domains, words):
    guests = [Guest(0), Guest(1)]
    host(*guests)
    result, _out = run_module(sev_domain, {'state': 'paused', 'domains': domains}, monkeypatch, capsys)
    assert (result['failed'], result['rc'], result['reason'], result['changed']) == (True, 2, 'unsupported', False)
    assert result['msg'].startswith(words), result['msg']
    assert result['results'] == []
    assert [guest.touched() for guest in guests] == [[], []]


@pytest.mark.parametrize('args, words', [
    ({'domain': 'g0', 'domains': [{'domain': 'g1'}]}, 'parameters are mutually exclusive: domain|domains'),
    ({'domains': [{'domain': 'g1'}], 'expect_id': 3}, 'parameters are mutually exclusive: domains|expect_id'),
    ({'domains': [{'domain': 'g1'}], 'launch_security': LAUNCH},
     'parameters are mutually exclusive: domains|launch_security'),
    ({}, 'one of the following is required: domain, domains'),
    ({'domains': [{'domain': 'g1'}], 'max_parallel': 0}, 'max_parallel must be between 1 and 16, not 0'),
    ({'domains': [{'domain': 'g1'}], 'max_parallel': 17}, 'max_parallel must be between 1 and 16, not 17'),
    ({'domains': [{'expect_id': 3}]}, 'missing required arguments: domain found in domains'),
])
def test_sev_domain_argument_checks(host, monkeypatch, capsys, args, words):
    guests = [Guest(0), Guest(1)]
    host(*guests)
    result, _out = run_module(sev_domain, dict({'state': 'paused'}, **args), monkeypatch, capsys)
    assert result['failed'] is True and words in result['msg'], result['msg']
    assert [guest.touched() for guest in guests] == [[], []]


def test_one_domain_form_gains_msg_rc_reason_only(host, monkeypatch, capsys):
    guests = [Guest(0)]
    host(*guests)
    result, _out = run_module(sev_domain, {'state': 'paused', 'domain': 'g0'}, monkeypatch, capsys)
    assert 'results' not in result and 'requested' not in result and 'failed' not in result
    assert (result['rc'], result['reason'], result['id'], result['changed']) == (0, 'ok', 40, True)
    assert result['msg'] == "domain 'g0': now paused (QEMU run state prelaunch, ID 40)"
    again, _out = run_module(sev_domain, {'state': 'paused', 'domain': 'g0'}, monkeypatch, capsys)
    assert again['changed'] is False
    assert again['msg'] == "domain 'g0': already paused, nothing done (QEMU run state prelaunch, ID 40)"
    gone, _out = run_module(sev_domain, {'state': 'destroyed', 'domain': 'g0'}, monkeypatch, capsys)
    assert gone['msg'] == "domain 'g0': now shutoff (not active)" and gone['destroyed'] is True
    check, _out = run_module(sev_domain, {'state': 'paused', 'domain': 'g0'}, monkeypatch, capsys, check_mode=True)
    assert check['msg'] == "domain 'g0': would be paused (check mode; now not active)"


def test_threads_overlap_and_results_keep_input_order(host, monkeypatch, capsys):
    """With max_parallel, items really run at once (each start waits until 3 are in
    flight), and results are still in input order."""
    barrier = threading.Barrier(3, timeout=10)

    class Slow(Guest):
        def createWithFlags(self, flags):  # pylint: disable=invalid-name
            barrier.wait()
            return super(Slow, self).createWithFlags(flags)
    guests = [Slow(index) for index in (5, 3, 4)]
    host(*guests)
    result, _out = run_module(sev_domain, {'state': 'paused', 'max_parallel': 3, 'domains': [
        {'domain': guest.name()} for guest in guests]}, monkeypatch, capsys)
    assert result.get('failed') is False, result['msg']
    assert [item['name'] for item in result['results']] == ['g5', 'g3', 'g4']
    assert [item['id'] for item in result['results']] == [45, 43, 44]


# ---- batch.summary ---------------------------------------------------------------------------

def test_summary():
    good = {'requested': 'a', 'failed': False, 'changed': False, 'rc': 0, 'reason': 'ok', 'msg': 'fine'}
    bad = {'requested': 'b', 'failed': True, 'changed': False, 'rc': 5, 'reason': 'state', 'msg': 'no'}
    worse = {'requested': 'c', 'failed': True, 'changed': True, 'rc': 6, 'reason': 'error', 'msg': 'broken'}
    assert batch.summary([good]) == {'failed': False, 'changed': False, 'rc': 0, 'reason': 'ok',
                                     'msg': 'all 1 domains succeeded (no change)'}
    assert batch.summary([good, bad, worse]) == {'failed': True, 'changed': True, 'rc': 5, 'reason': 'state',
                                                 'msg': '2 of 3 domains failed: b: no; c: broken'}


# ---- sev_secret_inject injections: -----------------------------------------------------------

def injection(domain, **extra):
    return dict({'domain': domain, 'header': HEADER, 'payload': PAYLOAD}, **extra)


def test_inject_batch_isolation_and_shape(host, monkeypatch, capsys):
    guests = [Guest(0, state=(3, 1), active=1), Guest(1, state=(3, 1), active=1),
              Guest(2, state=(3, 1), active=1, fail={'setLaunchSecurityState': (1, 'the platform says no')})]
    host(*guests)
    result, out = run_module(sev_secret_inject, {'resume': True, 'max_parallel': 2, 'injections': [
        injection('g0', expect_id=10, address=0x800000), injection('g1', expect_id=99), injection('g2')]},
        monkeypatch, capsys)
    assert (result['failed'], result['rc'], result['reason'], result['changed']) == (True, 5, 'state', True)
    assert result['msg'].startswith('2 of 3 domains failed: g1: ')
    items = result['results']
    assert [(item['failed'], item['injected']) for item in items] == [(False, True), (True, False), (True, False)]
    assert (items[0]['resumed'], items[0]['state'], items[0]['rc'], items[0]['reason']) == (True, 'running', 0, 'ok')
    assert items[0]['msg'] == "domain 'g0': secret injected, domain resumed"
    assert guests[0].secrets == [{'sev-secret-header': HEADER, 'sev-secret': PAYLOAD,
                                  'sev-secret-set-address': 0x800000}]
    assert guests[1].touched() == [] and guests[2].touched() == ['setLaunchSecurityState']
    assert items[1]['error_kind'] == 'wrong_state' and items[2]['libvirt_call'] == 'virDomainSetLaunchSecurityState'
    for item in items:
        assert ITEM_KEYS | {'domain', 'injected'} <= set(item), item
    # no_log: the packet never comes back
    assert HEADER not in out and PAYLOAD not in out


@pytest.mark.parametrize('injections, words', [
    ([injection('g0'), injection('g1', header='not base64!')], 'injections[1] (g1): header is not valid base64'),
    ([injection('g0'), injection('g1', address=0)], 'injections[1] (g1): address must be a 64-bit guest physical'),
    ([injection('g0'), injection(uuid_of(0))], "injections[0] ('g0') and injections[1] ('%s') are the same domain"
     % uuid_of(0)),
    ([injection('g0'), injection('g0')], "injections[0] and injections[1] both name domain 'g0'"),
])
def test_inject_batch_bad_input_injects_nothing(host, monkeypatch, capsys, injections, words):
    guests = [Guest(0, state=(3, 1), active=1), Guest(1, state=(3, 1), active=1)]
    host(*guests)
    result, out = run_module(sev_secret_inject, {'injections': injections}, monkeypatch, capsys)
    assert (result['failed'], result['rc'], result['reason']) == (True, 2, 'unsupported')
    assert result['msg'].startswith(words), result['msg']
    assert [guest.secrets for guest in guests] == [[], []]
    assert HEADER not in out and PAYLOAD not in out


@pytest.mark.parametrize('args, words', [
    ({'domain': 'g0', 'header': HEADER, 'payload': PAYLOAD, 'injections': [injection('g0')]},
     'mutually exclusive'),
    ({'domain': 'g0', 'header': HEADER}, "missing parameter(s) required by 'domain': payload"),
    ({'injections': [injection('g0')], 'expect_id': 3}, 'mutually exclusive: injections|expect_id'),
    ({'injections': [{'domain': 'g0', 'header': HEADER}]}, 'missing required arguments: payload'),
])
def test_inject_argument_checks(host, monkeypatch, capsys, args, words):
    guests = [Guest(0, state=(3, 1), active=1)]
    host(*guests)
    result, out = run_module(sev_secret_inject, args, monkeypatch, capsys)
    assert result['failed'] is True and words in result['msg'], result['msg']
    assert guests[0].secrets == [] and PAYLOAD not in out


def test_inject_check_mode_batch(host, monkeypatch, capsys):
    guests = [Guest(0, state=(3, 1), active=1), Guest(1)]
    host(*guests)
    result, _out = run_module(sev_secret_inject, {'injections': [injection('g0'), injection('g1')]},
                              monkeypatch, capsys, check_mode=True)
    assert [(item['failed'], item['injected']) for item in result['results']] == [(False, False), (True, False)]
    assert result['results'][0]['msg'] == "domain 'g0': would inject the secret"
    assert [guest.secrets for guest in guests] == [[], []]


def test_inject_one_domain_form_gains_msg_rc_reason(host, monkeypatch, capsys):
    guests = [Guest(0, state=(3, 1), active=1)]
    host(*guests)
    result, _out = run_module(sev_secret_inject, injection('g0'), monkeypatch, capsys)
    assert (result['injected'], result['resumed'], result['rc'], result['reason']) == (True, False, 0, 'ok')
    assert result['msg'] == "domain 'g0': secret injected" and 'results' not in result


# ---- sev_launch_info domains: (host side: raw data only) ------------------------------------

class Reported(Guest):
    """A paused SEV guest whose live XML and launch security the module reads."""

    def __init__(self, index, **kwargs):
        super(Reported, self).__init__(index, state=(3, 1), active=1, **kwargs)
        self._xml = lx.domain_xml(name='g%d' % index)

    def XMLDesc(self, flags=0):  # pylint: disable=invalid-name
        self._maybe_fail('XMLDesc')
        return self._xml


def test_launch_info_batch_raw_results(host, monkeypatch, capsys):
    guests = [Reported(0), Reported(1, fail={'launchSecurityInfo': (1, 'internal error')}), Reported(2)]
    conn = host(*guests)
    conn.node_sev = dict(lx.NODE_SEV)
    result, _out = run_module(sev_launch_info, {'domains': ['g0', 'g1', 'nope', uuid_of(2)], 'include_node': True,
                                                'max_parallel': 2}, monkeypatch, capsys)
    assert result.get('failed') is not True and result['changed'] is False and 'report' not in result
    items = result['results']
    assert [item['requested'] for item in items] == ['g0', 'g1', 'nope', uuid_of(2)]
    assert items[0]['report']['domain'] == {'uuid': uuid_of(0), 'name': 'g0', 'id': 10}
    assert items[0]['report']['node_sev'] is None
    assert (items[1]['failed'], items[1]['libvirt_call']) == (True, 'virDomainGetLaunchSecurityInfo')
    assert (items[2]['failed'], items[2]['error_kind']) == (True, 'unknown_domain')
    assert items[3]['report']['domain']['name'] == 'g2'
    assert result['node'] == {'hostname': 'hv1.example.net', 'node_sev': lx.NODE_SEV}
    assert [guest.touched() for guest in guests] == [[], [], []] and conn.closed


def test_launch_info_batch_node_failure_is_reported(host, monkeypatch, capsys):
    conn = host(Reported(0))
    conn.node_sev = None  # dict(None) raises TypeError: make getSEVInfo fail as libvirt does instead

    def no_sev(flags=0):
        raise libvirt_error(libvirt.VIR_ERR_OPERATION_UNSUPPORTED, 'SEV is not supported on this host')
    conn.getSEVInfo = no_sev
    result, _out = run_module(sev_launch_info, {'domains': ['g0'], 'include_node': True}, monkeypatch, capsys)
    assert result['node']['failed'] is True and result['node']['error_kind'] == 'sev_unsupported'
    assert 'report' in result['results'][0]


@pytest.mark.parametrize('args, words', [
    ({'domains': ['g0'], 'domain': 'g0'}, 'mutually exclusive: domain|domains'),
    ({'domains': ['g0'], 'node_sev_info': True}, 'mutually exclusive: domains|node_sev_info'),
    ({'domain': 'g0', 'include_node': True}, 'include_node applies with domains only'),
    ({'domains': ['g0', 'g0']}, "domains[0] and domains[1] both name domain 'g0'"),
    ({'domains': []}, 'domains must list at least one domain'),
])
def test_launch_info_argument_checks(host, monkeypatch, capsys, args, words):
    host(Reported(0))
    result, _out = run_module(sev_launch_info, args, monkeypatch, capsys)
    assert result['failed'] is True and words in result['msg'], result['msg']


# ---- issue 10 for the batch forms: a domain vanishing at any libvirt call -------------------

BATCH_CASES = [
    ('sev_launch_info domains', sev_launch_info, {'domains': ['guest1'], 'include_node': True}, True),
    ('sev_domain domains paused', sev_domain, {'domains': [{'domain': 'guest1'}], 'state': 'paused'}, False),
    ('sev_domain domains resumed', sev_domain, {'domains': [{'domain': 'guest1', 'expect_id': 7}],
                                                'state': 'resumed'}, True),
    ('sev_domain domains destroyed', sev_domain, {'domains': [{'domain': 'guest1', 'expect_id': 7}],
                                                  'state': 'destroyed'}, True),
    ('sev_secret_inject injections', sev_secret_inject, {'resume': True, 'injections': [
        {'domain': 'guest1', 'header': vanishing.HEADER, 'payload': vanishing.PAYLOAD, 'expect_id': 7}]}, True),
]


@pytest.mark.parametrize('name, module, args, active', BATCH_CASES, ids=[case[0] for case in BATCH_CASES])
def test_vanishing_at_every_libvirt_call_in_a_batch(name, module, args, active, monkeypatch, capsys):
    del name
    vanish = vanishing.install(monkeypatch, at=0, active=active)
    clean = vanishing.run_module(module, args, monkeypatch, capsys)
    assert clean.get('failed') is not True, clean
    total = vanish.count
    assert total >= 3, vanish.calls
    for at in range(1, total + 1):
        vanish = vanishing.install(monkeypatch, at=at, active=active)
        result = vanishing.run_module(module, args, monkeypatch, capsys)
        failing_call = vanish.calls[at - 1]
        text = json.dumps(result)
        assert 'Traceback' not in text and 'exception' not in result, (failing_call, result)
        if failing_call == 'close':
            assert result.get('failed') is not True, (failing_call, result)
            continue
        if module is sev_launch_info:
            # raw host data: the failure is in the item or the node (the controller fails the task)
            failures = [item for item in result.get('results', []) if item.get('failed')]
            failures += [result['node']] if isinstance(result.get('node'), dict) and result['node'].get('failed') \
                else []
            failures += [result] if result.get('failed') else []
        else:
            assert result.get('failed') is True, (failing_call, result)
            failures = [item for item in result['results'] if item['failed']] or [result]
        assert len(failures) == 1, (failing_call, result)
        failure = failures[0]
        assert failure['reason'] in ('error', 'state') and failure['rc'] in (5, 6), (failing_call, result)
        assert 'failed:' in failure['msg'] and failure.get('libvirt_call', '').startswith('vir'), (failing_call, result)

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_domain: plan() (the libvirt call that takes a domain from each state to
each wanted state, None when it is already there, WrongState when refused),
and apply() against stand-in libvirt objects that change state as libvirt does.

libvirt's states: running, blocked (running, waiting on a resource), paused,
shutdown (active, being shut down), shutoff (inactive), crashed (active: an
inactive crashed domain is reported as shutoff with reason crashed; the state
crashed means on_crash=preserve kept it), pmsuspended (active, suspended by the
guest), nostate.  QEMU's run state tells a paused start (prelaunch) from a
later pause (paused); libvirt says paused/user for both.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import libvirt
import pytest

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection
from ansible_collections.confidential.sev.plugins.modules import sev_domain
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import (
    IncorrectConfig, SevError, UnsupportedUsage)
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor.test_connection import (
    FakeConnection, FakeDomain, FakeLibvirtQemu, libvirt_error)

SUBJECT = "domain 'guest1'"
DESTROY = ('virDomainDestroy', 'shutoff')
START_PAUSED = ('virDomainCreateWithFlags', 'paused')
START = ('virDomainCreateWithFlags', 'running')
RESUME = ('virDomainResume', 'running')
WAKEUP = ('virDomainPMWakeup', 'running')
REFUSED = connection.WrongState
ACTIVE_STATES = ('running', 'blocked', 'paused', 'shutdown', 'crashed', 'pmsuspended')


def described(state, run_state=None, ident=7):
    """connection.describe()'s result for a domain in ``state``; run_state
    defaults to what QEMU says in it (prelaunch for paused: a paused start)."""
    active = state not in ('shutoff', 'nostate')
    if active and run_state is None:
        run_state = {'paused': 'prelaunch', 'pmsuspended': 'suspended', 'shutdown': 'running',
                     'crashed': 'guest-panicked'}.get(state, 'running')
    return {'uuid': lx.UUID, 'name': 'guest1', 'id': ident if active else -1, 'state': state,
            'state_reason': 'user', 'run_state': run_state if active else None, 'active': active}


# (wanted, state, run_state) -> step, None or REFUSED; run_state None: the default of described()
PLANS = {
    ('destroyed', 'shutoff', None): None,
    ('destroyed', 'nostate', None): None,
    ('paused', 'shutoff', None): START_PAUSED,
    ('paused', 'nostate', None): START_PAUSED,
    ('paused', 'paused', 'prelaunch'): None,
    ('paused', 'paused', 'paused'): REFUSED,        # paused after it ran: not a pre-launch domain
    ('resumed', 'paused', 'prelaunch'): RESUME,
    ('resumed', 'paused', 'paused'): REFUSED,       # issue 8: a user pause is not resumed
    ('resumed', 'paused', 'io-error'): REFUSED,
    ('resumed', 'shutoff', None): REFUSED,          # issue 8: resume never starts a domain
    ('resumed', 'nostate', None): REFUSED,
    ('running', 'running', None): None,
    ('running', 'blocked', None): None,
    ('running', 'paused', 'prelaunch'): RESUME,
    ('running', 'paused', 'paused'): RESUME,
    ('running', 'pmsuspended', None): WAKEUP,
    ('running', 'shutdown', None): None,
    ('running', 'crashed', None): None,
    ('running', 'shutoff', None): START,
    ('running', 'nostate', None): START,
}
for _state in ACTIVE_STATES:
    PLANS[('destroyed', _state, None)] = DESTROY
    if _state != 'paused':
        PLANS[('paused', _state, None)] = REFUSED
        PLANS[('resumed', _state, None)] = REFUSED


@pytest.mark.parametrize('wanted, state, run_state', sorted(PLANS, key=str))
def test_plan(wanted, state, run_state):
    expected = PLANS[(wanted, state, run_state)]
    before = described(state, run_state)
    if expected is REFUSED:
        with pytest.raises(connection.WrongState) as exc:
            sev_domain.plan(wanted, before, SUBJECT)
        assert str(exc.value).startswith(SUBJECT)
        assert connection.failure_result(exc.value)['error_kind'] == 'wrong_state'
    else:
        assert sev_domain.plan(wanted, before, SUBJECT) == expected


def test_every_state_is_covered():
    states = set(connection.STATE_NAMES.values())
    covered = set((wanted, state) for wanted, state, _run_state in PLANS)
    assert covered == set((wanted, state) for wanted in ('destroyed', 'paused', 'resumed', 'running')
                          for state in states)


@pytest.mark.parametrize('state', ACTIVE_STATES)
def test_paused_on_an_active_domain_says_destroy_and_start_again(state):
    run_state = 'paused' if state == 'paused' else None
    with pytest.raises(connection.WrongState) as exc:
        sev_domain.plan('paused', described(state, run_state), SUBJECT)
    assert 'it cannot return to its pre-launch state; destroy it and start it paused again' in str(exc.value)
    if state == 'paused':
        assert str(exc.value).startswith("%s is paused after it ran (QEMU run state 'paused')" % SUBJECT)
    else:
        assert str(exc.value).startswith('%s is %s:' % (SUBJECT, state))


def test_resume_never_starts_and_says_why():
    with pytest.raises(connection.WrongState, match='is shutoff: resume never starts a domain'):
        sev_domain.plan('resumed', described('shutoff'), SUBJECT)
    with pytest.raises(connection.WrongState, match=r"is paused after it ran \(QEMU run state 'paused'\)"):
        sev_domain.plan('resumed', described('paused', 'paused'), SUBJECT)
    with pytest.raises(connection.WrongState, match='is running: only a domain paused before its first run'):
        sev_domain.plan('resumed', described('running'), SUBJECT)


def test_resume_with_expect_id_acts_only_on_that_launch():
    assert sev_domain.plan('resumed', described('paused', ident=12), SUBJECT, expect_id=12) == RESUME
    with pytest.raises(connection.WrongState) as exc:
        sev_domain.plan('resumed', described('paused', ident=13), SUBJECT, expect_id=12)
    assert str(exc.value) == ("%s has ID 13, not 12 (expect_id): it is another launch than the one validated, "
                              "left untouched" % SUBJECT)
    with pytest.raises(connection.WrongState, match='resume never starts'):
        sev_domain.plan('resumed', described('shutoff'), SUBJECT, expect_id=12)


@pytest.mark.parametrize('before, expect_id, step, skip', [
    (described('paused', ident=12), 12, DESTROY, None),
    (described('running', ident=12), 12, DESTROY, None),
    (described('paused', ident=13), 12, None, 'other_launch'),
    (described('running', ident=1), 12, None, 'other_launch'),
    (described('shutoff'), 12, None, 'not_active'),
    (described('shutoff'), None, None, 'not_active'),
    (described('running', ident=13), None, DESTROY, None),
])
def test_destroy_with_expect_id(before, expect_id, step, skip):
    assert sev_domain.plan('destroyed', before, SUBJECT, expect_id) == step
    found = sev_domain.destroy_skip(before, SUBJECT, expect_id)
    assert (found[0] if found else None) == skip
    if skip == 'other_launch':
        assert found[1] == ('%s has ID %d, not 12 (expect_id): it is another launch than the one expected, '
                            'left untouched' % (SUBJECT, before['id']))


def test_plan_is_idempotent():
    assert sev_domain.plan('destroyed', described('shutoff'), SUBJECT) is None
    assert sev_domain.plan('paused', described('paused', 'prelaunch'), SUBJECT) is None
    assert sev_domain.plan('running', described('running'), SUBJECT) is None


# ---- apply(): against stand-in libvirt objects ---------------------------------------------

DH_CERT = base64.b64encode(b'G' * 2084).decode()
SESSION = base64.b64encode(b'S' * 112).decode()
LAUNCH = {'dh_cert': DH_CERT, 'session': SESSION, 'policy': 0x5}


class ActingDomain(FakeDomain):
    """A FakeDomain that changes state as libvirt does, with a persistent and a live XML."""

    def __init__(self, *args, persistent=None, **kwargs):
        super(ActingDomain, self).__init__(*args, **kwargs)
        self.persistent = persistent if persistent is not None else lx.domain_xml(dh_cert=False, session=False)
        self._run = 'prelaunch' if self._state[0] == 3 else 'running'
        self.monitor = None

    def qemu_monitor(self, command, flags):
        del command, flags
        self._maybe_fail('qemuMonitorCommand')
        if not self._active:
            raise libvirt_error(55, 'Requested operation is not valid: domain is not running')
        return '{"return": {"status": "%s", "running": false}}' % self._run

    def XMLDesc(self, flags=0):  # pylint: disable=invalid-name
        self._maybe_fail('XMLDesc')
        if flags & libvirt.VIR_DOMAIN_XML_INACTIVE:
            assert flags & libvirt.VIR_DOMAIN_XML_SECURE, 'without SECURE, secrets of other devices are lost'
            return self.persistent
        return self._xml

    def destroy(self):
        self._maybe_fail('destroy')
        self._state, self._active, self._id, self._run = (5, 2), 0, -1, None
        return 0

    def resume(self):
        self._maybe_fail('resume')
        self._state, self._run = (1, 5), 'running'
        return 0

    def createWithFlags(self, flags):  # pylint: disable=invalid-name
        self._maybe_fail('createWithFlags')
        paused = bool(flags & libvirt.VIR_DOMAIN_START_PAUSED)
        self._state = (3, 1) if paused else (1, 1)
        self._active, self._id, self._run = 1, 42, 'prelaunch' if paused else 'running'
        self._xml = self.persistent
        return 0


class DefiningConnection(FakeConnection):
    def __init__(self, domains, store=None):
        super(DefiningConnection, self).__init__(domains)
        self.defined = []
        self.store = store  # what libvirt stores of a defined XML (default: as given)

    def defineXML(self, xml):  # pylint: disable=invalid-name
        self.defined.append(xml)
        dom = self.domains[0]
        dom.persistent = self.store(xml) if self.store else xml
        return dom


@pytest.fixture(autouse=True)
def fake_monitor(monkeypatch):
    monkeypatch.setattr(connection, 'libvirt_qemu', FakeLibvirtQemu)


def params(state, expect_id=None, launch_security=None):
    return {'state': state, 'expect_id': expect_id, 'launch_security': launch_security, 'domain': 'guest1',
            'uri': 'qemu:///system'}


def off_domain(**kwargs):
    return ActingDomain('guest1', lx.UUID, -1, state=(5, 1), active=0, **kwargs)


def test_apply_paused_start_reports_the_new_launch():
    dom = off_domain()
    result = sev_domain.apply(DefiningConnection([dom]), dom, params('paused'), check_mode=False)
    assert result == {'uuid': lx.UUID, 'name': 'guest1', 'id': 42, 'state': 'paused', 'state_reason': 'user',
                      'run_state': 'prelaunch', 'changed': True, 'previous_state': 'shutoff', 'previous_id': -1,
                      'previous_run_state': None, 'launch_security_updated': False}


def sev_values(xml):
    sev = ET.fromstring(xml).find('launchSecurity')
    return sev.findtext('dhCert'), sev.findtext('session'), sev.findtext('policy')


def test_apply_paused_with_launch_security_sets_it_then_starts():
    dom = off_domain()
    conn = DefiningConnection([dom])
    result = sev_domain.apply(conn, dom, params('paused', launch_security=LAUNCH), check_mode=False)
    assert (result['changed'], result['launch_security_updated'], result['run_state']) == (True, True, 'prelaunch')
    assert len(conn.defined) == 1
    assert sev_values(dom.persistent) == (DH_CERT, SESSION, '0x0005')
    assert dom.calls.index('createWithFlags') > dom.calls.index('XMLDesc')
    # the same values again on the next launch: nothing to define
    dom.destroy()
    result = sev_domain.apply(conn, dom, params('paused', launch_security=LAUNCH), check_mode=False)
    assert (result['changed'], result['launch_security_updated']) == (True, False)
    assert len(conn.defined) == 1


def test_apply_check_mode_changes_nothing():
    dom = off_domain()
    conn = DefiningConnection([dom])
    pristine = dom.persistent
    result = sev_domain.apply(conn, dom, params('paused', launch_security=LAUNCH), check_mode=True)
    assert (result['changed'], result['launch_security_updated'], result['state']) == (True, True, 'paused')
    assert (result['id'], result['run_state']) == (-1, None)   # as it is now
    assert conn.defined == [] and dom.persistent == pristine
    assert 'createWithFlags' not in dom.calls and dom.state()[0] == 5


def test_apply_refuses_launch_security_on_a_domain_without_sev():
    dom = off_domain(persistent=lx.domain_xml(launch_security=''))
    conn = DefiningConnection([dom])
    with pytest.raises(sev_domain.Failed) as exc:
        sev_domain.apply(conn, dom, params('paused', launch_security=LAUNCH), check_mode=False)
    assert isinstance(exc.value.error, IncorrectConfig)
    assert "has no single <launchSecurity type='sev'> (found: none)" in str(exc.value.error)
    assert exc.value.known['state'] == 'shutoff' and exc.value.known['changed'] is False
    assert conn.defined == [] and 'createWithFlags' not in dom.calls


def test_apply_refuses_what_libvirt_stored_differently():
    dom = off_domain()
    conn = DefiningConnection([dom], store=lambda xml: xml.replace(SESSION, base64.b64encode(b'X' * 112).decode()))
    with pytest.raises(sev_domain.Failed) as exc:
        sev_domain.apply(conn, dom, params('paused', launch_security=LAUNCH), check_mode=False)
    assert 'libvirt stored other launchSecurity values' in str(exc.value.error)
    # the definition did change: the failure says so
    assert exc.value.known['changed'] is True
    assert 'createWithFlags' not in dom.calls


def test_apply_paused_on_a_prelaunch_domain_compares_the_running_launch():
    started_with = lx.domain_xml(policy='0x0005', dh_cert=True, session=True)
    same = {'dh_cert': lx.DH_CERT, 'session': lx.SESSION, 'policy': 5}
    dom = ActingDomain('guest1', lx.UUID, 9, state=(3, 1), xml=started_with)
    result = sev_domain.apply(DefiningConnection([dom]), dom, params('paused', launch_security=same), False)
    assert (result['changed'], result['launch_security_updated'], result['id']) == (False, False, 9)
    with pytest.raises(sev_domain.Failed) as exc:
        sev_domain.apply(DefiningConnection([dom]), dom, params('paused', launch_security=LAUNCH), False)
    assert 'was started with another dhCert, session or policy' in str(exc.value.error)
    assert dom.state()[0] == 3 and 'destroy' not in dom.calls


def test_apply_resumed_after_a_user_pause_touches_nothing():
    dom = ActingDomain('guest1', lx.UUID, 9, state=(3, 1))
    dom._run = 'paused'  # pylint: disable=protected-access
    with pytest.raises(sev_domain.Failed) as exc:
        sev_domain.apply(DefiningConnection([dom]), dom, params('resumed'), check_mode=False)
    assert connection.failure_result(exc.value.error)['error_kind'] == 'wrong_state'
    assert exc.value.known == {'uuid': lx.UUID, 'name': 'guest1', 'id': 9, 'state': 'paused', 'state_reason': 'user',
                               'run_state': 'paused', 'previous_state': 'paused', 'previous_id': 9,
                               'previous_run_state': 'paused', 'changed': False}
    assert 'resume' not in dom.calls


def test_apply_resumed_never_starts():
    dom = off_domain()
    with pytest.raises(sev_domain.Failed):
        sev_domain.apply(DefiningConnection([dom]), dom, params('resumed'), check_mode=False)
    assert 'createWithFlags' not in dom.calls and 'resume' not in dom.calls


def test_apply_resumed_with_expect_id():
    dom = ActingDomain('guest1', lx.UUID, 9, state=(3, 1))
    result = sev_domain.apply(DefiningConnection([dom]), dom, params('resumed', expect_id=9), check_mode=False)
    assert (result['changed'], result['state'], result['run_state'], result['id']) == (True, 'running', 'running', 9)


def test_apply_destroyed_with_a_stale_expect_id_touches_nothing_and_succeeds():
    dom = ActingDomain('guest1', lx.UUID, 9, state=(1, 1))
    result = sev_domain.apply(DefiningConnection([dom]), dom, params('destroyed', expect_id=8), check_mode=False)
    assert (result['changed'], result['destroyed'], result['skip_reason']) == (False, False, 'other_launch')
    assert result['msg'] == ("domain 'guest1' has ID 9, not 8 (expect_id): it is another launch than the one "
                             "expected, left untouched")
    assert (result['state'], result['id']) == ('running', 9)
    assert 'destroy' not in dom.calls
    result = sev_domain.apply(DefiningConnection([dom]), dom, params('destroyed', expect_id=9), check_mode=True)
    assert (result['changed'], result['destroyed'], result['state']) == (True, False, 'shutoff')
    assert 'destroy' not in dom.calls
    result = sev_domain.apply(DefiningConnection([dom]), dom, params('destroyed', expect_id=9), check_mode=False)
    assert (result['changed'], result['destroyed'], result['skip_reason']) == (True, True, None)
    assert (result['state'], result['id'], result['previous_id']) == ('shutoff', -1, 9)
    result = sev_domain.apply(DefiningConnection([dom]), dom, params('destroyed', expect_id=9), check_mode=False)
    assert (result['changed'], result['destroyed'], result['skip_reason']) == (False, False, 'not_active')


def test_apply_libvirt_failure_keeps_what_is_known():
    dom = ActingDomain('guest1', lx.UUID, 9, state=(3, 1), fail={'resume': (1, 'internal error: no')})
    with pytest.raises(sev_domain.Failed) as exc:
        sev_domain.apply(DefiningConnection([dom]), dom, params('resumed'), check_mode=False)
    assert exc.value.error.call == 'virDomainResume'
    assert exc.value.known['uuid'] == lx.UUID and exc.value.known['run_state'] == 'prelaunch'


@pytest.mark.parametrize('state, expect_id, launch_security, words', [
    ('paused', 3, None, 'expect_id applies to state destroyed and resumed only, not paused'),
    ('running', 3, None, 'expect_id applies to state destroyed and resumed only, not running'),
    ('resumed', None, LAUNCH, 'launch_security applies to state paused only, not resumed'),
    ('paused', None, dict(LAUNCH, dh_cert='not base64!'), 'launch_security.dh_cert is not valid base64'),
    ('paused', None, dict(LAUNCH, session=''), 'launch_security.session must be non-empty base64 text'),
    ('paused', None, dict(LAUNCH, policy=1 << 32), 'launch_security.policy must be an integer in 0..0xffffffff'),
    ('paused', None, dict(LAUNCH, policy=-1), 'launch_security.policy must be an integer'),
])
def test_check_params(state, expect_id, launch_security, words):
    with pytest.raises(UnsupportedUsage) as exc:
        sev_domain.check_params(params(state, expect_id, launch_security))
    assert str(exc.value) == words or str(exc.value).startswith(words)


def test_check_params_accepts_good_combinations():
    for args in (params('paused', launch_security=LAUNCH), params('resumed', expect_id=4),
                 params('destroyed', expect_id=4), params('running'), params('destroyed')):
        assert sev_domain.check_params(args) is None
    with pytest.raises(UnsupportedUsage, match='domain must be a name or UUID, not empty'):
        sev_domain.check_params(dict(params('paused'), domain=' '))


def test_failed_is_not_a_sev_error():
    # main() reports Failed with what is known of the domain; a bare SevError without
    assert not issubclass(sev_domain.Failed, SevError)

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""connection: libvirt errors as LibvirtFailures, domain lookup order, domain
state, and the raw report, with stand-in connection and domain objects (no
daemon).  libvirt.libvirtError is the real class, with its .err tuple set as
libvirt-python sets it: (code, domain, message, level, str1, str2, str3, int1, int2)."""

from __future__ import annotations

import json

import pytest

import libvirt

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection as cn
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor.launch_report import from_host_report
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import (
    InsecureUsage, InvalidState, SevError, UnsupportedUsage)
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx

VIR_FROM_QEMU = 10
VIR_ERR_ERROR = 2


def libvirt_error(code, message='libvirt says no'):
    exc = libvirt.libvirtError(message)
    exc.err = (code, VIR_FROM_QEMU, message, VIR_ERR_ERROR, None, None, None, 0, 0)
    return exc


def test_fake_error_behaves_like_libvirts():
    exc = libvirt_error(42, "Domain not found: no domain with matching name 'x'")
    assert exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN
    assert exc.get_error_message() == "Domain not found: no domain with matching name 'x'"


# ---- classification ---------------------------------------------------------------

@pytest.mark.parametrize('code, kind', [
    (42, 'unknown_domain'),    # VIR_ERR_NO_DOMAIN
    (55, 'wrong_state'),       # VIR_ERR_OPERATION_INVALID
    (38, 'unreachable'),       # VIR_ERR_SYSTEM_ERROR (connection refused, ssh failed)
    (5, 'unreachable'),        # VIR_ERR_NO_CONNECT
    (45, 'unreachable'),       # VIR_ERR_AUTH_FAILED
    (39, 'unreachable'),       # VIR_ERR_RPC
    (98, 'unreachable'),       # VIR_ERR_LIBSSH
    (84, 'sev_unsupported'),   # VIR_ERR_OPERATION_UNSUPPORTED
    (67, 'sev_unsupported'),   # VIR_ERR_CONFIG_UNSUPPORTED
    (3, 'sev_unsupported'),    # VIR_ERR_NO_SUPPORT
    (74, 'sev_unsupported'),   # VIR_ERR_ARGUMENT_UNSUPPORTED
    (1, 'libvirt'),            # VIR_ERR_INTERNAL_ERROR
    (None, 'libvirt'),
    (10 ** 6, 'libvirt'),
])
def test_classify(code, kind):
    assert cn._classify(code) == kind  # pylint: disable=protected-access


def test_libvirt_constants_are_the_documented_codes():
    assert (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_SYSTEM_ERROR,
            libvirt.VIR_ERR_OPERATION_UNSUPPORTED, libvirt.VIR_ERR_CONFIG_UNSUPPORTED, libvirt.VIR_ERR_NO_SUPPORT,
            libvirt.VIR_ERR_INTERNAL_ERROR) == (42, 55, 38, 84, 67, 3, 1)


def test_classify_without_libvirt(monkeypatch):
    monkeypatch.setattr(cn, 'HAS_LIBVIRT', False)
    assert cn._classify(42) == 'libvirt'  # pylint: disable=protected-access


@pytest.mark.parametrize('code, kind, reason, rc', [
    (42, 'unknown_domain', 'error', 6),
    (55, 'wrong_state', 'state', 5),
    (38, 'unreachable', 'error', 6),
    (84, 'sev_unsupported', 'error', 6),
    (67, 'sev_unsupported', 'error', 6),
    (3, 'sev_unsupported', 'error', 6),
    (1, 'libvirt', 'error', 6),
])
def test_failure_from(code, kind, reason, rc):
    exc = libvirt_error(code, 'the words libvirt used')
    failure = cn.failure_from(exc, 'virDomainGetLaunchSecurityInfo', "domain 'guest1'")
    assert isinstance(failure, cn.LibvirtFailure) and isinstance(failure, SevError)
    assert str(failure) == "domain 'guest1': virDomainGetLaunchSecurityInfo failed: the words libvirt used"
    assert (failure.kind, failure.code, failure.call) == (kind, code, 'virDomainGetLaunchSecurityInfo')
    assert (failure.reason, failure.rc) == (reason, rc)


def test_failure_from_an_error_without_details():
    exc = libvirt.libvirtError('virDomainResume() failed')
    exc.err = None
    failure = cn.failure_from(exc, 'virDomainResume', "domain 'guest1'")
    assert str(failure) == "domain 'guest1': virDomainResume failed: virDomainResume() failed"
    assert (failure.kind, failure.code) == ('libvirt', None)


def test_wrong_state_reason_is_per_instance():
    assert cn.LibvirtFailure('x', kind='wrong_state').rc == 5
    assert cn.LibvirtFailure.reason == 'error'
    assert cn.LibvirtFailure('y', kind='unknown_domain').rc == 6


# ---- failure_result -----------------------------------------------------------------

def test_failure_result_of_a_libvirt_failure():
    failure = cn.failure_from(libvirt_error(55, 'domain is not running'), 'virDomainResume', "domain 'g'")
    assert cn.failure_result(failure) == {
        'failed': True, 'changed': False, 'msg': "domain 'g': virDomainResume failed: domain is not running",
        'reason': 'state', 'rc': 5, 'error_kind': 'wrong_state', 'libvirt_code': 55,
        'libvirt_call': 'virDomainResume'}


@pytest.mark.parametrize('error, reason, rc', [
    (InsecureUsage('local'), 'insecure', 3), (InvalidState('not paused'), 'state', 5),
    (UnsupportedUsage('bad'), 'unsupported', 2), (SevError('odd'), 'error', 6),
])
def test_failure_result_of_other_errors(error, reason, rc):
    assert cn.failure_result(error) == {'failed': True, 'changed': False, 'msg': str(error), 'reason': reason,
                                        'rc': rc}


# ---- call and open_connection --------------------------------------------------------

def test_call_wraps_libvirt_errors_only():
    def refuse(*args):
        assert args == ('a', 1)
        raise libvirt_error(84, 'SEV launch security is not supported with this QEMU binary')

    with pytest.raises(cn.LibvirtFailure) as exc:
        cn.call("domain 'g'", 'virDomainGetLaunchSecurityInfo', refuse, 'a', 1)
    assert exc.value.kind == 'sev_unsupported'
    assert 'not supported with this QEMU binary' in str(exc.value)

    def crash():
        raise KeyError('not libvirt')

    with pytest.raises(KeyError):
        cn.call('x', 'y', crash)
    assert cn.call('x', 'y', max, 3, 9) == 9


def test_open_connection(monkeypatch):
    opened = []

    def fake_open(uri):
        opened.append(('rw', uri))
        return 'connection'

    def fake_open_read_only(uri):
        opened.append(('ro', uri))
        return 'read-only connection'

    monkeypatch.setattr(cn.libvirt, 'open', fake_open)
    monkeypatch.setattr(cn.libvirt, 'openReadOnly', fake_open_read_only)
    assert cn.open_connection() == 'connection'
    assert cn.open_connection('qemu+ssh://hv1/system', read_only=True) == 'read-only connection'
    assert opened == [('rw', 'qemu:///system'), ('ro', 'qemu+ssh://hv1/system')]


def test_open_connection_failures(monkeypatch):
    def refused(uri):
        raise libvirt_error(38, 'Failed to connect socket to %s: Connection refused' % uri)

    monkeypatch.setattr(cn.libvirt, 'open', refused)
    with pytest.raises(cn.LibvirtFailure) as exc:
        cn.open_connection('qemu+tcp://hv1/system')
    assert (exc.value.kind, exc.value.call) == ('unreachable', 'virConnectOpen')
    assert str(exc.value).startswith('libvirt URI qemu+tcp://hv1/system: virConnectOpen failed: Failed to connect')

    def old_bindings(uri):
        del uri

    monkeypatch.setattr(cn.libvirt, 'open', old_bindings)
    with pytest.raises(cn.LibvirtFailure) as exc:
        cn.open_connection('qemu:///system')
    assert (exc.value.kind, str(exc.value)) == ('unreachable', 'libvirt URI qemu:///system: virConnectOpen failed')


def test_require_libvirt(monkeypatch):
    cn.require_libvirt()
    monkeypatch.setattr(cn, 'HAS_LIBVIRT', False)
    with pytest.raises(UnsupportedUsage, match='libvirt-python'):
        cn.require_libvirt()
    with pytest.raises(UnsupportedUsage, match='libvirt-python'):
        cn.open_connection()


# ---- lookup_domain -----------------------------------------------------------------

class FakeDomain:
    """``monitor``: what QEMU answers to query-status (default: from ``state``,
    prelaunch when paused); run_state=False: libvirt refuses (not running)."""

    def __init__(self, name='guest1', uuid=lx.UUID, ident=7, state=(3, 1), active=1, vcpus=4,
                 xml=None, launch=None, fail=None, run_state=None, monitor=None):
        self._name, self._uuid, self._id = name, uuid, ident
        if run_state is None:
            run_state = {3: 'prelaunch', 1: 'running'}.get(state[0], 'running')
        self.monitor = monitor if monitor is not None else json.dumps(
            {'return': {'status': run_state, 'singlestep': False, 'running': run_state == 'running'},
             'id': 'libvirt-12'})
        self._state, self._active, self._vcpus = state, active, vcpus
        self._xml = lx.domain_xml() if xml is None else xml
        self._launch = dict(lx.LAUNCH_SECURITY) if launch is None else launch
        self.fail = fail or {}
        self.calls = []

    def _maybe_fail(self, name):
        self.calls.append(name)
        if name in self.fail:
            raise libvirt_error(*self.fail[name])

    def name(self):
        return self._name

    def UUIDString(self):  # pylint: disable=invalid-name
        return self._uuid

    def ID(self):  # pylint: disable=invalid-name
        return self._id

    def state(self, flags=0):
        del flags
        self._maybe_fail('state')
        return list(self._state)

    def info(self):
        self._maybe_fail('info')
        return [self._state[0], 4194304, 4194304, self._vcpus, 123456789]

    def isActive(self):  # pylint: disable=invalid-name
        self._maybe_fail('isActive')
        return self._active

    def XMLDesc(self, flags=0):  # pylint: disable=invalid-name
        assert flags == 0
        self._maybe_fail('XMLDesc')
        return self._xml

    def launchSecurityInfo(self, flags=0):  # pylint: disable=invalid-name
        assert flags == 0
        self._maybe_fail('launchSecurityInfo')
        return dict(self._launch)

    def qemu_monitor(self, command, flags):
        assert json.loads(command) == {'execute': 'query-status'} and flags == 0
        self._maybe_fail('qemuMonitorCommand')
        if not self._active:
            raise libvirt_error(55, 'Requested operation is not valid: domain is not running')
        return self.monitor


class FakeLibvirtQemu:
    """libvirt_qemu's one function used, as a stand-in module."""

    @staticmethod
    def qemuMonitorCommand(dom, command, flags):  # pylint: disable=invalid-name
        return dom.qemu_monitor(command, flags)


@pytest.fixture(autouse=True)
def fake_monitor(monkeypatch):
    monkeypatch.setattr(cn, 'libvirt_qemu', FakeLibvirtQemu)


class FakeConnection:
    """Lookups as libvirt-python does them: NO_DOMAIN when nothing matches, and
    the C binding's int conversion for IDs (OverflowError beyond a C int)."""

    def __init__(self, domains=(), hostname='hv1.example.net', fail=None, node_sev=None):
        self.domains = list(domains)
        self.hostname = hostname
        self.fail = fail or {}
        self.node_sev = node_sev
        self.calls = []

    def _find(self, call, predicate, what):
        if call in self.fail:
            raise libvirt_error(*self.fail[call])
        for dom in self.domains:
            if predicate(dom):
                return dom
        raise libvirt_error(42, 'Domain not found: no domain with matching %s' % what)

    def lookupByID(self, ident):  # pylint: disable=invalid-name
        self.calls.append(('id', ident))
        if not isinstance(ident, int):
            raise TypeError('an integer is required')
        if not -(1 << 31) <= ident < 1 << 31:
            raise OverflowError('signed integer is greater than maximum')
        return self._find('id', lambda dom: dom.ID() == ident, 'id %d' % ident)

    def lookupByUUIDString(self, uuid):  # pylint: disable=invalid-name
        self.calls.append(('uuid', uuid))
        return self._find('uuid', lambda dom: dom.UUIDString().replace('-', '') == uuid.replace('-', '').lower(),
                          "uuid '%s'" % uuid)

    def lookupByName(self, name):  # pylint: disable=invalid-name
        self.calls.append(('name', name))
        return self._find('name', lambda dom: dom.name() == name, "name '%s'" % name)

    def getHostname(self):  # pylint: disable=invalid-name
        return self.hostname

    def getCapabilities(self):  # pylint: disable=invalid-name
        return lx.capabilities_xml()

    def getSEVInfo(self, flags=0):  # pylint: disable=invalid-name
        assert flags == 0
        return dict(self.node_sev)


GUEST = FakeDomain('guest1', lx.UUID, 7)
NUMERIC = FakeDomain('123', '0e4a9f10-8c5e-4b2e-a6c1-7d3f2b9e1a55', 9)
OTHER = FakeDomain('guest2', 'a8b4c2d1-3e5f-4a6b-9c7d-0e1f2a3b4c5d', 123)
# issue 8: a shut-off domain named '1' and a running prod-db with ID 1
NAMED_ONE = FakeDomain('1', '11111111-2222-4333-8444-555555555555', -1, state=(5, 1), active=0)
PROD_DB = FakeDomain('prod-db', '99999999-8888-4777-8666-555555555555', 1, state=(1, 1))


@pytest.mark.parametrize('ident, domains, expected, calls', [
    ('guest1', [GUEST], GUEST, [('name', 'guest1')]),
    # a domain named '123' is found by name, never by ID ...
    ('123', [GUEST, NUMERIC], NUMERIC, [('name', '123')]),
    # ... even when another domain runs with ID 123
    ('123', [NUMERIC, OTHER], NUMERIC, [('name', '123')]),
    ('1', [PROD_DB, NAMED_ONE], NAMED_ONE, [('name', '1')]),
    (lx.UUID, [GUEST], GUEST, [('uuid', lx.UUID)]),
    (lx.UUID.replace('-', ''), [GUEST], GUEST, [('uuid', lx.UUID.replace('-', ''))]),
    (lx.UUID.upper(), [GUEST], GUEST, [('uuid', lx.UUID.upper())]),
])
def test_lookup_order(ident, domains, expected, calls):
    conn = FakeConnection(domains)
    assert cn.lookup_domain(conn, ident) is expected
    assert conn.calls == calls


@pytest.mark.parametrize('ident', ['7', 7, '1', '123'])
def test_lookup_never_takes_an_identifier_for_a_runtime_id(ident):
    """BUG (issue 8): digits were looked up by ID first: with a shut-off domain
    named '1' and prod-db running with ID 1, destroying '1' destroyed prod-db.
    Digits are a name; with no such name the lookup fails, whatever runs with that ID."""
    conn = FakeConnection([GUEST, PROD_DB, OTHER])
    with pytest.raises(cn.LibvirtFailure) as exc:
        cn.lookup_domain(conn, ident)
    assert exc.value.kind == 'unknown_domain'
    assert str(exc.value).startswith("domain '%s': virDomainLookupByName failed: Domain not found" % ident)
    assert all(kind != 'id' for kind, _value in conn.calls), conn.calls


def test_the_domain_named_1_is_never_prod_db():
    conn = FakeConnection([PROD_DB, NAMED_ONE])
    assert cn.lookup_domain(conn, '1') is NAMED_ONE
    assert cn.lookup_domain(conn, 'prod-db') is PROD_DB
    assert cn.lookup_domain(conn, PROD_DB.UUIDString()) is PROD_DB


def test_a_name_that_looks_like_a_uuid_is_found_by_name():
    named = FakeDomain(lx.UUID, 'ffffffff-ffff-4fff-bfff-ffffffffffff', 3)
    conn = FakeConnection([named])
    assert cn.lookup_domain(conn, lx.UUID) is named
    assert conn.calls == [('uuid', lx.UUID), ('name', lx.UUID)]


def test_an_all_digit_uuid_is_a_name_first():
    digits = '12345678123412341234123456789012'
    named = FakeDomain(digits, lx.UUID, 3)
    by_uuid = FakeDomain('guest9', '12345678-1234-1234-1234-123456789012', 4)
    conn = FakeConnection([by_uuid, named])
    assert cn.lookup_domain(conn, digits) is named
    assert conn.calls == [('name', digits)]
    conn = FakeConnection([by_uuid])
    assert cn.lookup_domain(conn, digits) is by_uuid
    assert conn.calls == [('name', digits), ('uuid', digits)]


def test_hex_names_are_not_uuids():
    # the reference tool takes any [-a-f0-9]+ for a UUID; a full UUID is required here
    named = FakeDomain('deadbeef', lx.UUID, 3)
    conn = FakeConnection([named])
    assert cn.lookup_domain(conn, 'deadbeef') is named
    assert conn.calls == [('name', 'deadbeef')]


def test_lookup_not_found_anywhere():
    conn = FakeConnection([GUEST])
    with pytest.raises(cn.LibvirtFailure) as exc:
        cn.lookup_domain(conn, '404')
    assert conn.calls == [('name', '404')]
    assert exc.value.kind == 'unknown_domain'
    assert str(exc.value).startswith("domain '404': virDomainLookupByName failed: Domain not found")
    assert cn.failure_result(exc.value)['error_kind'] == 'unknown_domain'
    with pytest.raises(cn.LibvirtFailure, match="^domain 'nope': virDomainLookupByName failed"):
        cn.lookup_domain(conn, 'nope')
    conn = FakeConnection([GUEST])
    with pytest.raises(cn.LibvirtFailure, match="^domain '%s': virDomainLookupByUUIDString failed" % OTHER.UUIDString()):
        cn.lookup_domain(conn, OTHER.UUIDString())
    assert conn.calls == [('uuid', OTHER.UUIDString()), ('name', OTHER.UUIDString())]


def test_lookup_stops_at_other_errors():
    conn = FakeConnection([NUMERIC], fail={'name': (38, 'End of file while reading data: Input/output error')})
    with pytest.raises(cn.LibvirtFailure) as exc:
        cn.lookup_domain(conn, '123')
    assert exc.value.kind == 'unreachable'
    assert conn.calls == [('name', '123')]


@pytest.mark.parametrize('ident', [
    '4294967296',                          # a numeric name beyond a C int
    '12345678123412341234123456789012',    # a UUID made of digits only, without dashes
    '\u00b2',                              # a name that str.isdigit() accepts but int() refuses
])
def test_lookup_of_odd_numeric_names_is_never_a_crash(ident):
    """Regression: ident.isdigit() once sent these to lookupByID: int() raises
    ValueError for '²', and libvirt-python raises OverflowError for IDs beyond
    a C int, neither a SevError.  A domain with this name or UUID must be
    found; a missing one must be a LibvirtFailure."""
    if len(ident) == 32:
        named = FakeDomain('guest9', ident[:8] + '-' + ident[8:12] + '-' + ident[12:16] + '-' + ident[16:20]
                           + '-' + ident[20:], 3)
    else:
        named = FakeDomain(ident, lx.UUID, 3)
    assert cn.lookup_domain(FakeConnection([named]), ident) is named
    with pytest.raises(cn.LibvirtFailure):
        cn.lookup_domain(FakeConnection([]), ident)


# ---- domain_state ---------------------------------------------------------------------

@pytest.mark.parametrize('state, active, name, reason_name', [
    ((3, 1), True, 'paused', 'user'),
    ((3, 11), True, 'paused', 'starting_up'),
    ((3, 14), True, 'paused', 'api_error'),
    ((3, 99), True, 'paused', '99'),
    ((1, 1), True, 'running', 'booted'),
    ((1, 5), True, 'running', 'unpaused'),
    ((5, 2), False, 'shutoff', 'destroyed'),
    ((5, 0), False, 'shutoff', 'unknown'),
    ((0, 0), False, 'nostate', '0'),
    ((2, 0), True, 'blocked', '0'),
    ((4, 1), True, 'shutdown', '1'),
    ((6, 1), True, 'crashed', '1'),
    ((7, 0), True, 'pmsuspended', '0'),
    ((42, 0), True, '42', '0'),
])
def test_domain_state(state, active, name, reason_name):
    dom = FakeDomain(state=state, active=int(active), vcpus=3)
    assert cn.domain_state(dom, "domain 'g'") == {
        'state': state[0], 'state_name': name, 'reason': state[1], 'reason_name': reason_name,
        'active': active, 'vcpus': 3}


def test_domain_state_of_a_qemu_that_dies_between_the_two_reads(monkeypatch):
    # paused when its state is read, no longer active when asked: read again, never "paused, not active"
    monkeypatch.setattr(cn.time, 'sleep', lambda seconds: None)
    dom = FakeDomain(state=(3, 1), active=1)
    asked = dom.isActive

    def dies():
        dom._state, dom._active = (5, 3), 0  # pylint: disable=protected-access
        return asked()

    dom.isActive = dies
    result = cn.domain_state(dom, "domain 'g'")
    assert (result['state_name'], result['reason_name'], result['active']) == ('shutoff', 'crashed', False)
    assert dom.calls.count('state') == 2 and dom.calls.count('isActive') == 2


def test_domain_state_that_never_agrees_is_the_last_read(monkeypatch):
    slept = []
    monkeypatch.setattr(cn.time, 'sleep', slept.append)
    dom = FakeDomain(state=(0, 0), active=0)
    assert cn.domain_state(dom, "domain 'g'")['state_name'] == 'nostate'
    assert dom.calls.count('state') == cn.STATE_READS and len(slept) == cn.STATE_READS - 1


def test_state_names_are_libvirts():
    assert cn.STATE_NAMES == {libvirt.VIR_DOMAIN_NOSTATE: 'nostate', libvirt.VIR_DOMAIN_RUNNING: 'running',
                              libvirt.VIR_DOMAIN_BLOCKED: 'blocked', libvirt.VIR_DOMAIN_PAUSED: 'paused',
                              libvirt.VIR_DOMAIN_SHUTDOWN: 'shutdown', libvirt.VIR_DOMAIN_SHUTOFF: 'shutoff',
                              libvirt.VIR_DOMAIN_CRASHED: 'crashed', libvirt.VIR_DOMAIN_PMSUSPENDED: 'pmsuspended'}
    assert (cn.PAUSED, cn.SHUTOFF) == (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_SHUTOFF)
    assert cn.PAUSED_REASONS[libvirt.VIR_DOMAIN_PAUSED_USER] == 'user'
    assert cn.PAUSED_REASONS[libvirt.VIR_DOMAIN_PAUSED_STARTING_UP] == 'starting_up'
    assert cn.PAUSED_REASONS[libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED] == 'postcopy_failed'
    assert cn.RUNNING_REASONS[libvirt.VIR_DOMAIN_RUNNING_UNPAUSED] == 'unpaused'
    assert cn.RUNNING_REASONS[libvirt.VIR_DOMAIN_RUNNING_POSTCOPY_FAILED] == 'postcopy_failed'
    assert cn.SHUTOFF_REASONS[libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED] == 'destroyed'
    assert cn.SHUTOFF_REASONS[libvirt.VIR_DOMAIN_SHUTOFF_DAEMON] == 'daemon'


def test_domain_state_failure_names_the_domain_and_call():
    dom = FakeDomain(fail={'info': (1, 'internal error: cannot read info')})
    with pytest.raises(cn.LibvirtFailure) as exc:
        cn.domain_state(dom, "domain 'guest1'")
    assert str(exc.value) == "domain 'guest1': virDomainGetInfo failed: internal error: cannot read info"
    assert exc.value.call == 'virDomainGetInfo'


# ---- gather_launch_report --------------------------------------------------------------

def test_gather_launch_report_round_trips_through_from_host_report():
    dom = FakeDomain('sev-guest', lx.UUID, 7)
    conn = FakeConnection([dom], node_sev=dict(lx.NODE_SEV))
    report = cn.gather_launch_report(conn, dom, node_sev=True)
    assert report == lx.raw_report(node_sev=dict(lx.NODE_SEV))
    info = from_host_report(report)
    assert (info['state'], info['node_sev']['cbitpos']) == ('paused', 51)
    assert info['measurement'] == lx.LAUNCH_SECURITY['sev-measurement']


def test_gather_launch_report_of_an_inactive_domain():
    dom = FakeDomain('sev-guest', lx.UUID, -1, state=(5, 1), active=0,
                     fail={'launchSecurityInfo': (55, 'domain is not running')})
    report = cn.gather_launch_report(FakeConnection([dom]), dom)
    assert report['launch_security'] is None and report['node_sev'] is None
    assert 'launchSecurityInfo' not in dom.calls
    assert from_host_report(report)['active'] is False


def test_gather_launch_report_failures():
    dom = FakeDomain('sev-guest', fail={'launchSecurityInfo': (84, 'SEV is not supported')})
    with pytest.raises(cn.LibvirtFailure) as exc:
        cn.gather_launch_report(FakeConnection([dom]), dom)
    assert (exc.value.kind, exc.value.call) == ('sev_unsupported', 'virDomainGetLaunchSecurityInfo')
    assert str(exc.value).startswith("domain 'sev-guest': ")


def test_gather_launch_report_carries_qemus_run_state():
    """libvirt says paused/user for a paused start and a later pause alike; the
    report carries QEMU's own word for it."""
    for run_state in ('prelaunch', 'paused'):
        dom = FakeDomain('sev-guest', lx.UUID, 7, run_state=run_state)
        report = cn.gather_launch_report(FakeConnection([dom]), dom)
        assert (report['state']['state_name'], report['state']['reason_name']) == ('paused', 'user')
        assert report['state']['run_state'] == run_state
        info = from_host_report(report)
        assert (info['run_state'], info['prelaunch']) == (run_state, run_state == 'prelaunch')


def test_gather_launch_report_of_a_domain_that_stops_meanwhile():
    dom = FakeDomain('sev-guest', lx.UUID, 7)
    dom.qemu_monitor = lambda command, flags: stop_now(dom)
    report = cn.gather_launch_report(FakeConnection([dom]), dom)
    assert report['state']['active'] is False and report['state']['run_state'] is None
    assert report['domain']['id'] == -1 and report['launch_security'] is None
    assert from_host_report(report)['state'] == 'shutoff'


def stop_now(dom):
    """The domain stops between the state read and the monitor command."""
    dom._state, dom._active, dom._id = (5, 1), 0, -1  # pylint: disable=protected-access
    raise libvirt_error(55, 'Requested operation is not valid: domain is not running')


# ---- run_state, describe, gather_node_report ------------------------------------------

@pytest.mark.parametrize('status', ['prelaunch', 'paused', 'running', 'inmigrate', 'not-a-qemu-state'])
def test_run_state_is_qemus_status_unchanged(status):
    # the host side passes QEMU's word on; the controller checks it (launch_report.run_state)
    assert cn.run_state(FakeDomain(run_state=status), "domain 'g'") == status


@pytest.mark.parametrize('reply', ['', 'not json', '[]', '{"return": {}}', '{"return": {"status": 3}}',
                                   '{"error": {"class": "GenericError", "desc": "no"}}', '{"return": []}'])
def test_run_state_of_an_unreadable_reply_is_a_failure(reply):
    with pytest.raises(cn.LibvirtFailure) as exc:
        cn.run_state(FakeDomain(monitor=reply), "domain 'g'")
    assert str(exc.value).startswith("domain 'g': QEMU answered query-status with no status")
    assert exc.value.call == 'virDomainQemuMonitorCommand'


def test_run_state_failures():
    dom = FakeDomain(fail={'qemuMonitorCommand': (1, 'internal error: cannot talk to the monitor')})
    with pytest.raises(cn.LibvirtFailure) as exc:
        cn.run_state(dom, "domain 'g'")
    assert (exc.value.call, exc.value.kind) == ('virDomainQemuMonitorCommand', 'libvirt')
    # refused while the domain is still active: a failure, not "inactive"
    dom = FakeDomain(fail={'qemuMonitorCommand': (55, 'Requested operation is not valid')})
    with pytest.raises(cn.LibvirtFailure):
        cn.run_state(dom, "domain 'g'")


def test_run_state_without_libvirt_qemu(monkeypatch):
    monkeypatch.setattr(cn, 'HAS_LIBVIRT_QEMU', False)
    with pytest.raises(UnsupportedUsage, match='libvirt_qemu'):
        cn.run_state(FakeDomain(), "domain 'g'")


@pytest.mark.parametrize('dom, expected', [
    (FakeDomain('g', lx.UUID, 7, state=(3, 1)),
     {'uuid': lx.UUID, 'name': 'g', 'id': 7, 'state': 'paused', 'state_reason': 'user', 'run_state': 'prelaunch',
      'active': True}),
    (FakeDomain('g', lx.UUID, 7, state=(3, 1), run_state='paused'),
     {'uuid': lx.UUID, 'name': 'g', 'id': 7, 'state': 'paused', 'state_reason': 'user', 'run_state': 'paused',
      'active': True}),
    (FakeDomain('g', lx.UUID, 8, state=(1, 5)),
     {'uuid': lx.UUID, 'name': 'g', 'id': 8, 'state': 'running', 'state_reason': 'unpaused', 'run_state': 'running',
      'active': True}),
    (FakeDomain('g', lx.UUID, -1, state=(5, 2), active=0),
     {'uuid': lx.UUID, 'name': 'g', 'id': -1, 'state': 'shutoff', 'state_reason': 'destroyed', 'run_state': None,
      'active': False}),
])
def test_describe(dom, expected):
    assert cn.describe(dom, "domain 'g'") == expected
    assert cn.identity(expected) == dict((key, expected[key]) for key in cn.IDENTITY_KEYS)
    assert cn.IDENTITY_KEYS == ('uuid', 'name', 'id', 'state', 'state_reason', 'run_state')
    if not expected['active']:
        assert 'qemuMonitorCommand' not in dom.calls


def test_describe_of_a_domain_that_stops_meanwhile():
    dom = FakeDomain('g', lx.UUID, 7)
    dom.qemu_monitor = lambda command, flags: stop_now(dom)
    expected = {'uuid': lx.UUID, 'name': 'g', 'id': -1, 'state': 'shutoff', 'state_reason': 'shutdown',
                'run_state': None, 'active': False}
    assert cn.describe(dom, "domain 'g'") == expected


def test_gather_node_report():
    conn = FakeConnection([], node_sev=dict(lx.NODE_SEV))
    assert cn.gather_node_report(conn) == {'hostname': 'hv1.example.net', 'node_sev': lx.NODE_SEV}


def test_run_states_are_qemus():
    assert cn.PRELAUNCH in cn.RUN_STATES and 'paused' in cn.RUN_STATES and 'running' in cn.RUN_STATES
    assert len(cn.RUN_STATES) == 16


def test_wrong_state_failure_result():
    assert cn.failure_result(cn.WrongState("domain 'g' is running")) == {
        'failed': True, 'changed': False, 'msg': "domain 'g' is running", 'reason': 'state', 'rc': 5,
        'error_kind': 'wrong_state'}

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host side: the libvirt calls, kept small.  Needs libvirt-python, nothing else.

Every libvirt error becomes a LibvirtFailure whose message names the domain,
the call and libvirt's own words, with a ``kind`` that tells the common
cases apart: unreachable, unknown_domain, wrong_state, sev_unsupported.

A domain is identified by name or UUID only, never by its runtime ID: IDs are
small numbers that a name like ``1`` would collide with, and they change at
every start.  The ID is reported so that a caller can pin one launch
(``expect_id``).
"""

from __future__ import annotations

import json
import re
import time

from ..sev.errors import InvalidState, SevError, UnsupportedUsage, failure_result as errors_failure_result

try:
    import libvirt
except ImportError:
    HAS_LIBVIRT = False
else:
    HAS_LIBVIRT = True

try:
    # Part of libvirt-python; a separate module because it is QEMU-specific.
    import libvirt_qemu
except ImportError:
    HAS_LIBVIRT_QEMU = False
else:
    HAS_LIBVIRT_QEMU = True

DEFAULT_URI = 'qemu:///system'
# The options of every module that talks to libvirt (documented in doc_fragments/libvirt.py).
LIBVIRT_OPTIONS = dict(
    domain=dict(type='str', required=True),
    uri=dict(type='str', default=DEFAULT_URI),
)

STATE_NAMES = {0: 'nostate', 1: 'running', 2: 'blocked', 3: 'paused', 4: 'shutdown',
               5: 'shutoff', 6: 'crashed', 7: 'pmsuspended'}
PAUSED = 3
SHUTOFF = 5
RUNNING_REASONS = {0: 'unknown', 1: 'booted', 2: 'migrated', 3: 'restored', 4: 'from_snapshot', 5: 'unpaused',
                   6: 'migration_canceled', 7: 'save_canceled', 8: 'wakeup', 9: 'crashed', 10: 'postcopy',
                   11: 'postcopy_failed'}
SHUTOFF_REASONS = {0: 'unknown', 1: 'shutdown', 2: 'destroyed', 3: 'crashed', 4: 'migrated', 5: 'saved',
                   6: 'failed', 7: 'from_snapshot', 8: 'daemon'}
# virDomainPausedReason
PAUSED_REASONS = {0: 'unknown', 1: 'user', 2: 'migration', 3: 'save', 4: 'dump', 5: 'ioerror',
                  6: 'watchdog', 7: 'from_snapshot', 8: 'shutting_down', 9: 'snapshot',
                  10: 'crashed', 11: 'starting_up', 12: 'postcopy', 13: 'postcopy_failed',
                  14: 'api_error'}

# QEMU's RunState (qapi/run-state.json, QEMU 7.2), as query-status names it.
# "prelaunch": started with -S (libvirt's paused start) and never continued.
RUN_STATES = frozenset((
    'debug', 'inmigrate', 'internal-error', 'io-error', 'paused', 'postmigrate', 'prelaunch', 'finish-migrate',
    'restore-vm', 'running', 'save-vm', 'shutdown', 'suspended', 'watchdog', 'guest-panicked', 'colo'))
PRELAUNCH = 'prelaunch'
# What every host-side module returns about the domain it acted on.
IDENTITY_KEYS = ('uuid', 'name', 'id', 'state', 'state_reason', 'run_state')

_UUID = re.compile(r'[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}')


class LibvirtFailure(SevError):
    """A libvirt call failed.  ``kind`` classifies it, ``code`` is libvirt's."""

    reason = 'error'

    def __init__(self, message, kind='libvirt', code=None, call=None):
        super(LibvirtFailure, self).__init__(message)
        self.kind = kind
        self.code = code
        self.call = call
        if kind == 'wrong_state':
            self.reason = InvalidState.reason


class WrongState(InvalidState):
    """The domain is not in the state an action needs; nothing was touched."""

    kind = 'wrong_state'


def _classify(code):
    if not HAS_LIBVIRT:
        return 'libvirt'
    if code in (libvirt.VIR_ERR_NO_DOMAIN,):
        return 'unknown_domain'
    if code in (libvirt.VIR_ERR_OPERATION_INVALID,):
        return 'wrong_state'
    if code in (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_AUTH_FAILED,
                libvirt.VIR_ERR_RPC, getattr(libvirt, 'VIR_ERR_LIBSSH', 98)):
        return 'unreachable'
    # "QEMU does not support SEV guest", "SEV launch security is not supported
    # with this QEMU binary", "only supported in SEV-enabled domains"
    if code in (libvirt.VIR_ERR_OPERATION_UNSUPPORTED, libvirt.VIR_ERR_NO_SUPPORT,
                libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED, libvirt.VIR_ERR_CONFIG_UNSUPPORTED):
        return 'sev_unsupported'
    return 'libvirt'


def failure_from(exc, call, subject):
    """A LibvirtFailure for a libvirt.libvirtError raised by ``call`` on ``subject``."""
    code = exc.get_error_code()
    kind = _classify(code)
    words = exc.get_error_message() or str(exc)
    return LibvirtFailure('%s: %s failed: %s' % (subject, call, words), kind=kind, code=code, call=call)


def failure_result(exc):
    """A failed-task result for a SevError (LibvirtFailure adds kind, code, call;
    WrongState adds its kind)."""
    extra = {}
    if isinstance(exc, LibvirtFailure):
        extra = {'error_kind': exc.kind, 'libvirt_code': exc.code, 'libvirt_call': exc.call}
    elif isinstance(exc, WrongState):
        extra = {'error_kind': exc.kind}
    return errors_failure_result(exc.reason, str(exc), **extra)


def require_libvirt():
    if not HAS_LIBVIRT:
        raise UnsupportedUsage('the libvirt Python bindings (libvirt-python) are not installed')


def call(subject, name, function, *args):
    """Run one libvirt call; its error names ``subject`` and the call.

    Every libvirt call goes through here (even those that read a field of the
    local object, like virDomainGetName): a domain that vanishes mid-task, or
    a connection that drops, is a LibvirtFailure naming the call, never a
    traceback.
    """
    try:
        return function(*args)
    except libvirt.libvirtError as exc:
        raise failure_from(exc, name, subject)


def domain_name(dom):
    """The domain's name (virDomainGetName), for messages."""
    return call('domain', 'virDomainGetName', dom.name)


def close_connection(conn):
    """virConnectClose; a failure to close is not the task's failure (the work is done
    or has failed already), so it is ignored rather than masking the result."""
    try:
        conn.close()
    except libvirt.libvirtError:
        pass


def _sequence(value, length, subject, call_name):
    """libvirt's list/tuple answer of at least ``length`` ints, else a LibvirtFailure."""
    if (not isinstance(value, (list, tuple)) or len(value) < length
            or not all(isinstance(item, int) and not isinstance(item, bool) for item in value[:length])):
        raise LibvirtFailure('%s: %s returned %.100r, not %d integers' % (subject, call_name, value, length),
                             call=call_name)
    return value


def open_connection(uri=None, read_only=False):
    require_libvirt()
    uri = uri or DEFAULT_URI
    opener = libvirt.openReadOnly if read_only else libvirt.open
    conn = call('libvirt URI %s' % uri, 'virConnectOpen', opener, uri)
    if conn is None:  # old bindings return None instead of raising
        raise LibvirtFailure('libvirt URI %s: virConnectOpen failed' % uri, kind='unreachable',
                             call='virConnectOpen')
    return conn


def lookup_domain(conn, ident):
    """A domain by name or UUID, never by runtime ID.

    An identifier shaped like a UUID is tried as a UUID, then as a name; an
    all-digit identifier is a name first (and a UUID only if it has 32 digits).
    """
    ident = str(ident)
    subject = "domain '%s'" % ident
    by_uuid = ('virDomainLookupByUUIDString', conn.lookupByUUIDString, ident)
    by_name = ('virDomainLookupByName', conn.lookupByName, ident)
    attempts = [by_name]
    if _UUID.fullmatch(ident):
        attempts = [by_name, by_uuid] if ident.isdigit() else [by_uuid, by_name]
    failure = None
    for name, function, argument in attempts:
        try:
            return call(subject, name, function, argument)
        except LibvirtFailure as exc:
            if exc.kind != 'unknown_domain':
                raise
            failure = failure or exc
    raise failure


STATE_READS = 5
STATE_REREAD_SECONDS = 0.05


def domain_state(dom, subject):
    """{state, state_name, reason, reason_name, active, vcpus} of a domain."""
    # The state and whether the domain is active are two calls: a QEMU that dies between them (seen right
    # after an injection) gave "paused" and not active, and "is paused: nothing to destroy". Read both
    # again until they agree (shut off exactly when not active); after that, as last read.
    for attempt in range(STATE_READS):
        state, reason = _sequence(call(subject, 'virDomainGetState', dom.state), 2, subject,
                                  'virDomainGetState')[:2]
        active = bool(call(subject, 'virDomainIsActive', dom.isActive))
        if active != (state == SHUTOFF) or attempt == STATE_READS - 1:
            break
        time.sleep(STATE_REREAD_SECONDS)
    info = _sequence(call(subject, 'virDomainGetInfo', dom.info), 4, subject, 'virDomainGetInfo')
    names = {PAUSED: PAUSED_REASONS, 1: RUNNING_REASONS, SHUTOFF: SHUTOFF_REASONS}.get(state, {})
    reason_name = names.get(reason, str(reason))
    return {'state': state, 'state_name': STATE_NAMES.get(state, str(state)), 'reason': reason,
            'reason_name': reason_name, 'active': active, 'vcpus': info[3]}


QUERY_STATUS = json.dumps({'execute': 'query-status'})


def run_state(dom, subject):
    """QEMU's own run state (query-status), or None when the domain is not running.

    libvirt reports a paused start and a later pause alike (PAUSED/user); only
    QEMU knows whether the guest ever ran ("prelaunch" until the first cont).
    libvirt marks the domain tainted (custom-monitor) in its log for this.
    """
    if not HAS_LIBVIRT_QEMU:
        raise UnsupportedUsage('the libvirt_qemu module of libvirt-python is not installed')
    try:
        text = call(subject, 'virDomainQemuMonitorCommand', libvirt_qemu.qemuMonitorCommand, dom, QUERY_STATUS, 0)
    except LibvirtFailure as exc:
        # stopped between the state read and this call
        if exc.kind == 'wrong_state' and not call(subject, 'virDomainIsActive', dom.isActive):
            return None
        raise
    try:
        status = json.loads(text)['return']['status']
    except (ValueError, TypeError, KeyError):
        status = None
    if not isinstance(status, str):
        raise LibvirtFailure('%s: QEMU answered query-status with no status: %.200r' % (subject, text),
                             call='virDomainQemuMonitorCommand')
    return status


def describe(dom, subject):
    """The domain's identity and state: IDENTITY_KEYS, plus ``active``."""
    state = domain_state(dom, subject)
    current = run_state(dom, subject) if state['active'] else None
    if state['active'] and current is None:  # it stopped meanwhile
        state = domain_state(dom, subject)
    return dict(identify(dom, subject), state=state['state_name'], state_reason=state['reason_name'],
                run_state=current, active=state['active'])


def identify(dom, subject):
    """{'uuid', 'name', 'id'} of a domain, each read through call()."""
    return {'uuid': call(subject, 'virDomainGetUUIDString', dom.UUIDString),
            'name': call(subject, 'virDomainGetName', dom.name),
            'id': call(subject, 'virDomainGetID', dom.ID)}


def identity(described):
    """The IDENTITY_KEYS of describe()'s result, for a module result."""
    return dict((key, described[key]) for key in IDENTITY_KEYS)


def gather_node_report(conn):
    """The node's SEV info only (no domain needed), as raw data."""
    hostname = call('libvirt connection', 'virConnectGetHostname', conn.getHostname)
    return {'hostname': hostname,
            'node_sev': call('libvirt host %s' % hostname, 'virNodeGetSEVInfo', conn.getSEVInfo, 0)}


def gather_launch_report(conn, dom, node_sev=False):
    """Everything the controller needs, as raw data (strings and numbers).

    Nothing is interpreted here: the host is not trusted, so the controller
    type-checks and parses all of it.
    """
    subject = "domain '%s'" % domain_name(dom)
    state = domain_state(dom, subject)
    report = {
        'hostname': call('libvirt connection', 'virConnectGetHostname', conn.getHostname),
        'domain': identify(dom, subject),
        'state': state,
        'domain_xml': call(subject, 'virDomainGetXMLDesc', dom.XMLDesc, 0),
        'capabilities_xml': call('libvirt connection', 'virConnectGetCapabilities', conn.getCapabilities),
        'launch_security': None,
        'node_sev': None,
    }
    state['run_state'] = run_state(dom, subject) if state['active'] else None
    if state['active'] and state['run_state'] is None:  # it stopped meanwhile
        report['state'] = state = domain_state(dom, subject)
        report['domain']['id'] = call(subject, 'virDomainGetID', dom.ID)
        state['run_state'] = None
    if report['state']['active']:
        report['launch_security'] = call(subject, 'virDomainGetLaunchSecurityInfo',
                                         dom.launchSecurityInfo, 0)
    if node_sev:
        report['node_sev'] = call('libvirt host %s' % report['hostname'], 'virNodeGetSEVInfo', conn.getSEVInfo, 0)
    return report

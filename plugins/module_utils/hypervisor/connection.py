# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host side: the libvirt calls, kept small.  Needs libvirt-python, nothing else.

Every libvirt error becomes a LibvirtFailure whose message names the domain,
the call and libvirt's own words, with a ``kind`` that tells the common
cases apart: unreachable, unknown_domain, wrong_state, sev_unsupported.
"""

from __future__ import annotations

import re

from ..sev.errors import InvalidState, SevError, UnsupportedUsage, failure_result as errors_failure_result

try:
    import libvirt
except ImportError:
    HAS_LIBVIRT = False
else:
    HAS_LIBVIRT = True

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
    """A failed-task result for a SevError (LibvirtFailure adds kind, code, call)."""
    extra = {}
    if isinstance(exc, LibvirtFailure):
        extra = {'error_kind': exc.kind, 'libvirt_code': exc.code, 'libvirt_call': exc.call}
    return errors_failure_result(exc.reason, str(exc), **extra)


def require_libvirt():
    if not HAS_LIBVIRT:
        raise UnsupportedUsage('the libvirt Python bindings (libvirt-python) are not installed')


def call(subject, name, function, *args):
    """Run one libvirt call; its error names ``subject`` and the call."""
    try:
        return function(*args)
    except libvirt.libvirtError as exc:
        raise failure_from(exc, name, subject)


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
    """A domain by ID (digits), UUID, or name, in the reference tool's order;
    a name that looks like an ID or UUID is still found by name."""
    ident = str(ident)
    subject = "domain '%s'" % ident
    attempts = []
    # IDs are positive C ints; anything else that looks numeric is a name.
    if ident.isascii() and ident.isdigit() and 0 < int(ident) < 1 << 31:
        attempts.append(('virDomainLookupByID', conn.lookupByID, int(ident)))
    if _UUID.fullmatch(ident):
        attempts.append(('virDomainLookupByUUIDString', conn.lookupByUUIDString, ident))
    attempts.append(('virDomainLookupByName', conn.lookupByName, ident))
    failure = None
    for name, function, argument in attempts:
        try:
            return call(subject, name, function, argument)
        except LibvirtFailure as exc:
            if exc.kind != 'unknown_domain':
                raise
            failure = failure or exc
    raise failure


def domain_state(dom, subject):
    """{state, state_name, reason, reason_name, active, vcpus} of a domain."""
    state, reason = call(subject, 'virDomainGetState', dom.state)
    info = call(subject, 'virDomainGetInfo', dom.info)
    names = {PAUSED: PAUSED_REASONS, 1: RUNNING_REASONS, SHUTOFF: SHUTOFF_REASONS}.get(state, {})
    reason_name = names.get(reason, str(reason))
    return {'state': state, 'state_name': STATE_NAMES.get(state, str(state)), 'reason': reason,
            'reason_name': reason_name, 'active': bool(call(subject, 'virDomainIsActive', dom.isActive)),
            'vcpus': info[3]}


def gather_launch_report(conn, dom, node_sev=False):
    """Everything the controller needs, as raw data (strings and numbers).

    Nothing is interpreted here: the host is not trusted, so the controller
    type-checks and parses all of it.
    """
    subject = "domain '%s'" % dom.name()
    report = {
        'hostname': call('libvirt connection', 'virConnectGetHostname', conn.getHostname),
        'domain': {'name': dom.name(), 'uuid': dom.UUIDString(), 'id': dom.ID()},
        'state': domain_state(dom, subject),
        'domain_xml': call(subject, 'virDomainGetXMLDesc', dom.XMLDesc, 0),
        'capabilities_xml': call('libvirt connection', 'virConnectGetCapabilities', conn.getCapabilities),
        'launch_security': None,
        'node_sev': None,
    }
    if report['state']['active']:
        report['launch_security'] = call(subject, 'virDomainGetLaunchSecurityInfo',
                                         dom.launchSecurityInfo, 0)
    if node_sev:
        report['node_sev'] = call('libvirt host %s' % report['hostname'], 'virNodeGetSEVInfo', conn.getSEVInfo, 0)
    return report

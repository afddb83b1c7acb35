# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side: turn what the host returned into checked, typed data.

The host is not trusted: every value it sent is type- and range-checked
before use, and anything unexpected is an error naming the field, never a
crash and never silently accepted.
"""

from __future__ import annotations

import uuid

from ..sev.errors import UnsupportedUsage
from . import domain_config
from .connection import PRELAUNCH, RUN_STATES, STATE_NAMES
from .domain_config import CBITPOS_RANGE, MAX_VCPUS

# virDomainState: 0 (nostate) to 7 (pmsuspended).
MAX_STATE = max(STATE_NAMES)
# base64 of a PDH (2084 bytes) and a chain (6252 bytes) with room for line breaks.
MAX_NODE_TEXT = 16384

# libvirt domain IDs are C ints; -1 means inactive.
MAX_DOMAIN_ID = (1 << 31) - 1

_MISSING = object()


def _field(data, key, types, where, required=True):
    value = data.get(key, _MISSING) if isinstance(data, dict) else _MISSING
    if value is _MISSING or value is None:
        if required:
            raise UnsupportedUsage('%s: %s is missing' % (where, key))
        return None
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        raise UnsupportedUsage('%s: %s has type %s, expected %s'
                               % (where, key, type(value).__name__, '/'.join(t.__name__ for t in types)))
    return value


def _ranged(data, key, where, limit, required=True, low=0):
    value = _field(data, key, (int,), where, required)
    if value is not None and not low <= value <= limit:
        # never print a huge value (Python refuses ints of over 4,300 digits)
        shown = str(value) if value.bit_length() <= 256 else 'an integer of %d bits' % value.bit_length()
        raise UnsupportedUsage('%s: %s = %s is outside %d..%d' % (where, key, shown, low, limit))
    return value


def launch_security(raw, where='launch security info'):
    """The SEV launch state from virDomainGetLaunchSecurityInfo, or None when
    the host reported none (not an SEV domain, or not running)."""
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        raise UnsupportedUsage('%s is not a mapping' % where)
    if 'sev-api-major' not in raw:
        raise UnsupportedUsage("%s: 'sev-api-major' not reported (libvirt too old, or not an SEV guest)" % where)
    return {
        'measurement': _field(raw, 'sev-measurement', (str,), where),
        'api_major': _ranged(raw, 'sev-api-major', where, 0xff),
        'api_minor': _ranged(raw, 'sev-api-minor', where, 0xff),
        'build_id': _ranged(raw, 'sev-build-id', where, 0xff),
        'policy': _ranged(raw, 'sev-policy', where, 0xffffffff),
    }


def node_sev(raw, where='node SEV info'):
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise UnsupportedUsage('%s is not a mapping' % where)
    text = dict((key, _field(raw, key, (str,), where, required=False)) for key in ('pdh', 'cert-chain', 'cpu0-id'))
    for key in ('pdh', 'cert-chain', 'cpu0-id'):
        if text[key] is not None and len(text[key]) > MAX_NODE_TEXT:
            raise UnsupportedUsage('%s: %s is %d characters, more than the %d accepted'
                                   % (where, key, len(text[key]), MAX_NODE_TEXT))
    numbers = {
        'cbitpos': _ranged(raw, 'cbitpos', where, CBITPOS_RANGE[1], required=False, low=CBITPOS_RANGE[0]),
        # the host CPU's 6-bit CPUID field (0 allowed here: a guest needs at least 1, checked in its XML)
        'reduced_phys_bits': _ranged(raw, 'reduced-phys-bits', where, 63, required=False),
        'max_guests': _ranged(raw, 'max-guests', where, 0xffffffff, required=False),
        'max_es_guests': _ranged(raw, 'max-es-guests', where, 0xffffffff, required=False),
    }
    numbers.update(pdh=text['pdh'], cert_chain=text['cert-chain'], cpu0_id=text['cpu0-id'])
    return numbers


def canonical_uuid(value, where):
    """``value`` if it is a UUID in canonical form (lower-case 8-4-4-4-12), as libvirt formats it."""
    if not isinstance(value, str):
        raise UnsupportedUsage('%s: uuid has type %s, expected str' % (where, type(value).__name__))
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        canonical = None
    if canonical != value:
        raise UnsupportedUsage('%s: uuid %.60r is not a UUID in canonical form' % (where, value))
    return value


def domain_id(value, active, where):
    """A libvirt domain ID: an int, -1 exactly when the domain is inactive."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnsupportedUsage('%s: id has type %s, expected int' % (where, type(value).__name__))
    if not -1 <= value <= MAX_DOMAIN_ID:
        shown = str(value) if value.bit_length() <= 256 else 'an integer of %d bits' % value.bit_length()
        raise UnsupportedUsage('%s: id = %s is outside -1..%d' % (where, shown, MAX_DOMAIN_ID))
    if (value == -1) == active:
        raise UnsupportedUsage('%s: id = %d for an %s domain' % (where, value, 'active' if active else 'inactive'))
    return value


def run_state(state, active, where):
    """QEMU's run state from the host: a RunState name for an active domain, null for an inactive one."""
    if not isinstance(state, dict) or 'run_state' not in state:
        raise UnsupportedUsage('%s: run_state is missing' % where)
    value = state['run_state']
    if value is None:
        if active:
            raise UnsupportedUsage('%s: run_state is null for an active domain' % where)
        return None
    if not isinstance(value, str):
        raise UnsupportedUsage('%s: run_state has type %s, expected str or null' % (where, type(value).__name__))
    if value not in RUN_STATES:
        raise UnsupportedUsage('%s: run_state %.40r is not one of QEMU\'s run states' % (where, value))
    if not active:
        raise UnsupportedUsage('%s: run_state %r for an inactive domain' % (where, value))
    return value


def from_node_report(raw):
    """sev_launch_info's result without a domain: the node's SEV info only."""
    where = 'host report'
    if not isinstance(raw, dict):
        raise UnsupportedUsage('%s is not a mapping' % where)
    if raw.get('node_sev') is None:
        raise UnsupportedUsage('%s: node_sev is missing' % where)
    return {'hostname': _field(raw, 'hostname', (str,), where), 'node_sev': node_sev(raw['node_sev'])}


def from_host_report(raw):
    """sev_launch_info's result, built on the controller from the module's raw report."""
    where = 'host report'
    if not isinstance(raw, dict):
        raise UnsupportedUsage('%s is not a mapping' % where)
    domain = _field(raw, 'domain', (dict,), where)
    state = _field(raw, 'state', (dict,), where)
    domain_xml = _field(raw, 'domain_xml', (str,), where)
    capabilities_xml = _field(raw, 'capabilities_xml', (str,), where)
    config = domain_config.launch_config(domain_xml)
    launch = launch_security(raw.get('launch_security'))
    active = _field(state, 'active', (bool,), 'state')
    _field(domain, 'uuid', (str,), 'domain')
    _field(domain, 'id', (int,), 'domain')
    name = _field(domain, 'name', (str,), 'domain')
    if not name:
        raise UnsupportedUsage('domain: name is empty')
    info = {
        'hostname': _field(raw, 'hostname', (str,), where),
        'domain': {'name': name,
                   'uuid': canonical_uuid(domain['uuid'], 'domain'),
                   'id': domain_id(domain['id'], active, 'domain')},
        'state': _field(state, 'state_name', (str,), 'state'),
        'state_code': _ranged(state, 'state', 'state', MAX_STATE),
        'state_reason': _field(state, 'reason_name', (str,), 'state'),
        'state_reason_code': _ranged(state, 'reason', 'state', 0xffff),
        'active': active,
        'run_state': run_state(state, active, 'state'),
        'vcpus': _ranged(state, 'vcpus', 'state', MAX_VCPUS, low=1),
        'launch_security': launch,
        'config': config,
        'host_cpu_signature': None,
        'node_sev': node_sev(raw.get('node_sev')),
        'domain_xml': domain_xml,
    }
    signature = domain_config.host_cpu_signature(capabilities_xml)
    if signature is not None:
        info['host_cpu_signature'] = dict(zip(('family', 'model', 'stepping'), signature))
    info['paused'] = info['state'] == 'paused'
    info['prelaunch'] = info['paused'] and info['run_state'] == PRELAUNCH
    info.update(info['domain'])
    if launch is not None:
        info.update(launch)
    info['config_problems'] = domain_config.config_problems(config)
    return info


def check_launch_info(info):
    """Re-check a registered sev_launch_info result before validation uses it
    (it travelled through variables and may have been edited)."""
    where = 'launch_info'
    if not isinstance(info, dict):
        raise UnsupportedUsage('%s must be the registered result of sev_launch_info' % where)
    checked = {
        'hostname': _field(info, 'hostname', (str,), where),
        'active': _field(info, 'active', (bool,), where),
        'state': _field(info, 'state', (str,), where),
        'vcpus': _ranged(info, 'vcpus', where, MAX_VCPUS, low=1),
        'domain_xml': _field(info, 'domain_xml', (str,), where),
        'launch_security': None,
        'host_cpu_signature': None,
    }
    checked['config'] = domain_config.launch_config(checked['domain_xml'])
    launch = info.get('launch_security')
    if launch is not None:
        checked['launch_security'] = {
            'measurement': _field(launch, 'measurement', (str,), where + '.launch_security'),
            'api_major': _ranged(launch, 'api_major', where + '.launch_security', 0xff),
            'api_minor': _ranged(launch, 'api_minor', where + '.launch_security', 0xff),
            'build_id': _ranged(launch, 'build_id', where + '.launch_security', 0xff),
            'policy': _ranged(launch, 'policy', where + '.launch_security', 0xffffffff),
        }
    signature = info.get('host_cpu_signature')
    if signature is not None:
        checked['host_cpu_signature'] = dict(
            (key, _ranged(signature, key, where + '.host_cpu_signature', 0xfff))
            for key in ('family', 'model', 'stepping'))
    return checked

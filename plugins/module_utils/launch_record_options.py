# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_launch_record's options, and the step from options to a result (Ansible-free)."""

from __future__ import annotations

from . import launch_record as store
from .sev.errors import SevError, UnsupportedUsage, failure_result
from .sev.policy import shown

ARGUMENT_SPEC = dict(
    state_dir=dict(type='path', required=True),
    host=dict(type='str', required=True),
    domain_uuid=dict(type='str', required=True),
    state=dict(type='str', required=True,
               choices=['query', 'prepare', 'started', 'validated', 'injected', 'resumed', 'failed']),
    reported=dict(type='dict'),
    if_active=dict(type='str', default='fail', choices=['fail', 'relaunch']),
    resume=dict(type='bool', default=True),
    launch_id=dict(type='str'),
    domain_name=dict(type='str'),
    domain_id=dict(type='int'),
    uri=dict(type='str'),
    session=dict(type='str', choices=['fresh', 'premade']),
    secret_count=dict(type='int'),
    measurement=dict(type='str'),
    replay=dict(type='dict'),
    reason=dict(type='str'),
    destroyed=dict(type='bool'),
)
REQUIRED_IF = [
    ('state', 'query', ('reported',)),
    ('state', 'started', ('launch_id', 'domain_id')),
    ('state', 'validated', ('launch_id', 'measurement')),
    ('state', 'injected', ('launch_id',)),
    ('state', 'resumed', ('launch_id',)),
    ('state', 'failed', ('launch_id', 'reason')),
]
VALIDATION_RULES = dict(required_if=REQUIRED_IF)

RECORD_FIELDS = ('domain_name', 'domain_id', 'uri', 'session', 'secret_count')


def _query(params, exists):
    record = store.current_record(params['state_dir'], params['host'], params['domain_uuid']) if exists else None
    reported = params['reported']
    uuid = reported.get('uuid', (reported.get('domain') or {}).get('uuid'))
    if uuid is None or store.canonical_uuid(uuid, 'reported uuid') != store.canonical_uuid(params['domain_uuid']):
        raise UnsupportedUsage('reported is about domain %s, not %s' % (uuid, params['domain_uuid']))
    plan, why = store.plan_launch(reported, record, params['if_active'], params['resume'])
    return {'changed': False, 'plan': plan, 'why': why, 'record': record, 'msg': '%s: %s' % (plan, why)}


def _fields(params):
    fields = dict((key, params.get(key)) for key in RECORD_FIELDS)
    if params['state'] == 'validated':
        raw = store.measurement_bytes(params['measurement'])
        fields['measurement'] = params['measurement']
        fields['mnonce'] = raw[32:].hex()
        replay = params.get('replay') or {}
        fields['tik_sha256'] = replay.get('tik_sha256')
    return fields


def _check_counts(params):
    """An active domain's libvirt ID is >= 1 (-1 means inactive, 0 is the host
    itself under Xen, never a QEMU guest); a count of secrets is >= 0."""
    domain_id = params.get('domain_id')
    if domain_id is not None and (isinstance(domain_id, bool) or not isinstance(domain_id, int) or domain_id < 1):
        raise UnsupportedUsage('domain_id must be the running domain\'s ID, an integer of at least 1, got %s'
                               % shown(domain_id))
    count = params.get('secret_count')
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise UnsupportedUsage('secret_count must be an integer of at least 0, got %s' % shown(count))


def run_record(params, check_mode=False):
    """Options -> result dict; never raises a SevError."""
    try:
        _check_counts(params)
        params = dict(params, domain_uuid=store.canonical_uuid(params['domain_uuid']))
        exists = store.check_state_dir(params['state_dir'], create=not check_mode and params['state'] != 'query')
        state = params['state']
        result = {'reason': 'ok', 'rc': 0, 'state_dir': params['state_dir']}
        if state == 'query':
            result.update(_query(params, exists))
            return result
        if state == 'prepare':
            launch_id, directory = store.prepare_launch(params['state_dir'], params['host'], params['domain_uuid'],
                                                        create=not check_mode)
            result.update(changed=True, launch_id=launch_id, launch_dir=directory,
                          files=store.session_paths(directory), msg='launch %s prepared' % launch_id)
            return result
        if state == 'failed':
            fields = {'reason': params['reason'], 'destroyed': params.get('destroyed')}
        else:
            fields = _fields(params)
        record = store.update_record(params['state_dir'], params['host'], params['domain_uuid'], params['launch_id'],
                                     state, fields, create=not check_mode)
        result.update(changed=True, record=record, launch_id=params['launch_id'],
                      msg='launch %s: %s recorded' % (params['launch_id'], state))
        return result
    except SevError as exc:
        return failure_result(exc.reason, str(exc))

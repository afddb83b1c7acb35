# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side: what sev_launch_info's module returned from the host,
turned into the task's result (the host is not trusted).

Used by the sev_launch_info action plugin and by any controller-side action
that runs the module itself (sev_launch_batch): check_launch_batch() gives
the same result for a batch call as the sev_launch_info task would.
"""

from __future__ import annotations

from ..sev.errors import REASON_CODES, SevError, UnsupportedUsage, failure_result as errors_failure_result
from . import batch, domain_config
from .connection import failure_result
from .launch_report import from_host_report, from_node_report

# Failure classes a host-side failure may fall into; what the host claims beyond
# this (rc, ok, mismatch, valid...) never reaches the controller's result.
HOST_FAILURE_REASONS = ('unsupported', 'state', 'error')
HOST_ERROR_KINDS = ('unreachable', 'unknown_domain', 'wrong_state', 'sev_unsupported', 'libvirt')
MAX_HOST_MESSAGE = 2000
DOES_NOT_CHECK_OUT = 'the host returned data that does not check out: %s'

# What a failed result may not claim at the same time: success or a verdict.
# Its rc alone is no claim (the controller sets rc from the class; a module
# that crashed exits 1), and a reason that is no string is ignored, as ever.
HOST_VERDICT_REASONS = ('ok', 'mismatch', 'valid')

LXML_MISSING = ('sev_launch_info needs the Python library lxml on the controller (the machine that runs Ansible, '
                'not the hypervisor host) to parse the XML the host returns: install it there (pip install lxml, '
                'or the distribution package python3-lxml)')


def controller_library_failure():
    """A failed result naming the missing controller library, or None.

    Checked before the host is asked: without it, a report could not be
    parsed, and that must never read as the host's fault."""
    if domain_config.HAS_LXML:
        return None
    return errors_failure_result('unsupported', LXML_MISSING, missing_library='lxml')


def self_contradiction(module_result):
    """Why a failed host result contradicts itself (it claims a success or
    verdict reason, or valid: true), or None."""
    if not isinstance(module_result, dict) or not module_result.get('failed'):
        return None
    claims = []
    reason = module_result.get('reason')
    if isinstance(reason, str) and reason in HOST_VERDICT_REASONS:
        claims.append('reason %r' % reason)
    if module_result.get('valid') is True:
        claims.append('valid: true')
    if not claims:
        return None
    return 'the module result is failed and claims %s' % ', '.join(claims)


def does_not_check_out(why):
    """The failed result for host data that does not check out (unsupported, rc 2)."""
    result = failure_result(UnsupportedUsage(why))
    result['msg'] = DOES_NOT_CHECK_OUT % why
    return result


def host_failure(module_result, expected='report'):
    """The controller's own failed result for a host-side failure (or a host that
    returned something else than a report): failed, changed false, and reason and
    rc set here, from the host's claimed reason only when it is one of the failure
    classes a host-side module can have (else 'error'); the host's message kept,
    bounded, as what the host said."""
    claimed = module_result.get('reason') if isinstance(module_result, dict) else None
    reason = claimed if isinstance(claimed, str) and claimed in HOST_FAILURE_REASONS else 'error'
    message = module_result.get('msg') if isinstance(module_result, dict) else None
    if isinstance(module_result, dict) and module_result.get('skipped') and not module_result.get('failed'):
        message = 'the module was skipped on the host (%s)' % (module_result.get('skip_reason') or 'no reason given')
    elif not isinstance(module_result, dict) or (not module_result.get('failed') and expected not in module_result):
        message = 'the module returned no %s' % expected
    if not isinstance(message, str):
        message = 'no message'
    if len(message) > MAX_HOST_MESSAGE:
        message = message[:MAX_HOST_MESSAGE] + '... (%d characters cut)' % (len(message) - MAX_HOST_MESSAGE)
    result = errors_failure_result(reason, 'sev_launch_info failed on the host: %s' % message)
    kind = module_result.get('error_kind') if isinstance(module_result, dict) else None
    if isinstance(kind, str) and kind in HOST_ERROR_KINDS:
        result['error_kind'] = kind
    for key, types in (('libvirt_code', int), ('libvirt_call', str)):
        value = module_result.get(key) if isinstance(module_result, dict) else None
        if isinstance(value, types) and not isinstance(value, bool) and len(str(value)) <= 100:
            result[key] = value
    return result


def checked(parse, raw):
    """(info, None) from parse(raw), or (None, failed result) when the host's data does not check out."""
    try:
        return parse(raw), None
    except SevError as exc:
        return None, does_not_check_out(str(exc))
    except (ValueError, TypeError, OverflowError) as exc:
        # a check that missed a case: still the host's data, and never a traceback
        return None, does_not_check_out(type(exc).__name__)


def success_keys(info, node_only=False):
    """msg, rc and reason of a good report (issue 12: on success too)."""
    if node_only:
        msg = 'node SEV information of host %s' % info['hostname']
    else:
        msg = "domain '%s': state %s, QEMU run state %s, ID %d" % (
            info['name'], info['state'], info['run_state'], info['id'])
    return {'msg': msg, 'rc': 0, 'reason': 'ok'}


def names_requested(ident, info):
    """Whether a report is of the domain asked for (by name, or by UUID in any accepted spelling)."""
    return ident == info['name'] or ident.replace('-', '').lower() == info['uuid'].replace('-', '')


def check_item(ident, item, seen_uuids):
    """One batch item's result: the checked one-domain result, or its failure."""
    if not isinstance(item, dict):
        result = does_not_check_out('the item for %r is not a mapping' % ident)
    elif item.get('failed'):
        contradiction = self_contradiction(item)
        result = does_not_check_out(contradiction) if contradiction else host_failure(item)
    elif 'report' not in item:
        result = host_failure(item)
    else:
        info, result = checked(from_host_report, item['report'])
        if info is not None:
            if not names_requested(ident, info):
                result = does_not_check_out("the report for %r is of domain '%s' (%s)"
                                            % (ident, info['name'], info['uuid']))
            elif info['uuid'] in seen_uuids:
                result = does_not_check_out("the report for %r is of domain '%s' (%s), already reported for %r"
                                            % (ident, info['name'], info['uuid'], seen_uuids[info['uuid']]))
            else:
                seen_uuids[info['uuid']] = ident
                result = dict(info, changed=False, failed=False, **success_keys(info))
    result['requested'] = ident
    return result


def check_launch_batch(module_result, requested, include_node=False):
    """The task result of a sev_launch_info batch call (O(domains)) from the
    module's raw result: every item checked on its own (a bad report fails
    that item only), ``results`` in the order of ``requested``, ``node`` when
    ``include_node``.  ``requested`` is the task's own list: the host does not
    decide which domains were asked for."""
    requested = [str(ident) for ident in requested]
    missing = controller_library_failure()
    if missing:
        return dict(missing, results=[])
    contradiction = self_contradiction(module_result)
    if contradiction:
        return dict(does_not_check_out(contradiction), results=[])
    if (not isinstance(module_result, dict) or module_result.get('failed') or module_result.get('skipped')
            or 'results' not in module_result):
        return dict(host_failure(module_result, expected='results'), results=[])
    raw = module_result['results']
    if not isinstance(raw, list) or len(raw) != len(requested):
        return dict(does_not_check_out('results is %s, not a list of %d items' % (
            'a list of %d items' % len(raw) if isinstance(raw, list) else 'a %s' % type(raw).__name__,
            len(requested))), results=[])
    seen_uuids = {}
    results = [check_item(ident, item, seen_uuids) for ident, item in zip(requested, raw)]
    task = batch.summary(results)
    if include_node:
        raw_node = module_result.get('node')
        if isinstance(raw_node, dict) and raw_node.get('failed'):
            contradiction = self_contradiction(raw_node)
            node, failure = None, does_not_check_out(contradiction) if contradiction else host_failure(raw_node)
        else:
            node, failure = checked(from_node_report, raw_node)
        task['node'] = node
        if failure is not None:
            # the node's data is part of what was asked: the task fails, the items keep their results
            prefix = task['msg'] + '; ' if task['failed'] else ''
            task.update(failed=True, msg='%snode: %s' % (prefix, failure['msg']))
            if task['reason'] == 'ok':
                task.update(reason=failure['reason'], rc=REASON_CODES[failure['reason']])
    task['results'] = results
    return task

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of confidential.sev.sev_launch_info: the module collects raw
data on the host; the controller parses and type-checks it (the host is not trusted)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor.connection import failure_result
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor.launch_report import (
    from_host_report, from_node_report)
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import (
    SevError, UnsupportedUsage, failure_result as errors_failure_result,
)


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        module_result = self._execute_module(module_name='confidential.sev.sev_launch_info',
                                             module_args=self._task.args, task_vars=task_vars)
        contradiction = self_contradiction(module_result)
        if contradiction:
            # a result that is failed and not failed at once is no honest host failure:
            # the host's data does not check out (as for a report that does not)
            result.update(failure_result(UnsupportedUsage(contradiction)))
            result['msg'] = 'the host returned data that does not check out: %s' % contradiction
            return result
        if (not isinstance(module_result, dict) or module_result.get('failed') or module_result.get('skipped')
                or 'report' not in module_result):
            result.update(host_failure(module_result))
            return result
        # the task's own arguments, not the host, decide which report to expect
        node_only = self._task.args.get('domain') is None
        try:
            info = (from_node_report if node_only else from_host_report)(module_result.get('report'))
        except SevError as exc:
            result.update(failure_result(exc))
            result['msg'] = 'the host returned data that does not check out: %s' % exc
            return result
        except (ValueError, TypeError, OverflowError) as exc:
            # a check that missed a case: still the host's data, and never a traceback
            result.update(failure_result(UnsupportedUsage(type(exc).__name__)))
            result['msg'] = 'the host returned data that does not check out: %s' % type(exc).__name__
            return result
        result.update(info)
        result['changed'] = False
        return result


# Failure classes a host-side failure may fall into; what the host claims beyond
# this (rc, ok, mismatch, valid...) never reaches the controller's result.
HOST_FAILURE_REASONS = ('unsupported', 'state', 'error')
HOST_ERROR_KINDS = ('unreachable', 'unknown_domain', 'wrong_state', 'sev_unsupported', 'libvirt')
MAX_HOST_MESSAGE = 2000


# What a failed result may not claim at the same time: success or a verdict.
# Its rc alone is no claim (the controller sets rc from the class; a module
# that crashed exits 1), and a reason that is no string is ignored, as ever.
HOST_VERDICT_REASONS = ('ok', 'mismatch', 'valid')


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


def host_failure(module_result):
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
    elif not isinstance(module_result, dict) or (not module_result.get('failed') and 'report' not in module_result):
        message = 'the module returned no report'
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

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of confidential.sev.sev_launch_info: the module collects raw
data on the host; the controller parses and type-checks it (the host is not trusted)."""

from __future__ import annotations

from ansible.module_utils.common.validation import check_type_list
from ansible.plugins.action import ActionBase

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor.host_results import (
    check_launch_batch, checked, controller_library_failure, does_not_check_out, host_failure, self_contradiction,
    success_keys,
)
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor.launch_report import (
    from_host_report, from_node_report)
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import failure_result


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self._task.args
        node_only = args.get('domain') is None and args.get('domains') is None
        if not node_only:
            # a domain report is XML, parsed here: without lxml, say so before asking the host
            missing = controller_library_failure()
            if missing:
                result.update(missing)
                return result
        if args.get('domains') is not None:
            try:
                requested = check_type_list(args['domains'])
            except TypeError as exc:
                result.update(failure_result('unsupported', 'domains must be a list of names or UUIDs: %s' % exc))
                return result
            module_result = self._execute_module(module_name='confidential.sev.sev_launch_info',
                                                 module_args=args, task_vars=task_vars)
            result.update(check_launch_batch(module_result, requested, bool(args.get('include_node'))))
            return result
        module_result = self._execute_module(module_name='confidential.sev.sev_launch_info',
                                             module_args=args, task_vars=task_vars)
        contradiction = self_contradiction(module_result)
        if contradiction:
            # a result that is failed and not failed at once is no honest host failure:
            # the host's data does not check out (as for a report that does not)
            result.update(does_not_check_out(contradiction))
            return result
        if (not isinstance(module_result, dict) or module_result.get('failed') or module_result.get('skipped')
                or 'report' not in module_result):
            result.update(host_failure(module_result))
            return result
        # the task's own arguments, not the host, decide which report to expect
        info, failure = checked(from_node_report if node_only else from_host_report, module_result.get('report'))
        if failure is not None:
            result.update(failure)
            return result
        result.update(info)
        result.update(success_keys(info, node_only))
        result['changed'] = False
        return result

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
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import SevError


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        module_result = self._execute_module(module_name='confidential.sev.sev_launch_info',
                                             module_args=self._task.args, task_vars=task_vars)
        if module_result.get('failed') or module_result.get('skipped'):
            result.update(module_result)
            return result
        # the task's own arguments, not the host, decide which report to expect
        node_only = self._task.args.get('domain') is None
        try:
            info = (from_node_report if node_only else from_host_report)(module_result.get('report'))
        except SevError as exc:
            result.update(failure_result(exc))
            result['msg'] = 'the host returned data that does not check out: %s' % exc
            return result
        result.update(info)
        result['changed'] = False
        return result

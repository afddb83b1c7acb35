# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of confidential.sev.sev_launch_record: the controller's own
record of the launches it started, kept in a state directory on the controller
(the host only ever reports data to check against it)."""

from __future__ import annotations

from ansible_collections.confidential.sev.plugins.module_utils.launch_record_options import (
    ARGUMENT_SPEC, VALIDATION_RULES, run_record,
)
from ansible_collections.confidential.sev.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC
    VALIDATION_RULES = VALIDATION_RULES
    WHAT = 'the launch record'

    def _required_libraries(self, params):
        # JSON records in the state directory, written with the standard library
        # only: neither cryptography nor lxml is needed on the controller
        # (tests/unit/plugins/action/test_controller_libraries.py runs it without them)
        del params
        return []

    def _run(self, params):
        params['state_dir'] = self._output_path(params['state_dir'])
        return run_record(params, check_mode=bool(self._task.check_mode))

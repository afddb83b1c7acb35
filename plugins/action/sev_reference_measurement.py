# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of confidential.sev.sev_reference_measurement.

The files are read and the output written on the controller; the targeted
host is not contacted.  The work itself is plugins/module_utils/reference_values.py.
"""

from __future__ import annotations

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.confidential.sev.plugins.module_utils import reference_values
from ansible_collections.confidential.sev.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = reference_values.ARGUMENT_SPEC
    VALIDATION_RULES = reference_values.VALIDATION_RULES
    WHAT = 'computing reference values'

    def _required_libraries(self, params):
        # Files read and hashed with the standard library only (hashlib): neither
        # cryptography nor lxml is needed on the controller
        # (tests/unit/plugins/action/test_controller_libraries.py runs it without them)
        del params
        return []

    def _run(self, params):
        return self._publish(params)

    def _publish(self, params):
        inputs = []

        def resolve(path, what):
            found = self._streamed_path(path, what)
            inputs.append((what, found))
            return found
        plan = reference_values.check_params(params, resolve_path=resolve)
        dest = self._output_path(params['dest'])
        # before hours of hashing, and before the existing file is read (a FIFO would hang)
        reference_values.check_dest(dest, inputs)
        records = reference_values.compute_records(plan)
        content = reference_values.render(plan, records)
        changed, previous = reference_values.publish(dest, content, check_mode=self._task.check_mode, inputs=inputs)
        outcome = {'changed': changed, 'dest': dest, 'format': plan.output_format, 'records': records,
                   'reason': 'ok', 'rc': 0,
                   'msg': '%d launch digest(s) %s %s' % (len(records), (
                       ('would be written to' if self._task.check_mode else 'written to') if changed
                       else 'already in'), dest)}
        if plan.output_format == 'simple-kbs':
            outcome['allowed_digests'] = reference_values.distinct_digests(records)
        if plan.warnings:
            outcome['warnings'] = list(plan.warnings)
        if changed and self._task.diff:
            outcome['diff'] = {
                'before_header': dest if previous is not None else '%s (absent)' % dest,
                'after_header': dest,
                'before': to_text(previous or b'', errors='surrogate_or_replace'),
                'after': to_text(content),
            }
        return outcome

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of confidential.sev.sev_reference_measurement.

The files are read and the output written on the controller; the targeted
host is not contacted.  The work itself is plugins/module_utils/reference_values.py.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.plugins.action import ActionBase

from ansible_collections.confidential.sev.plugins.module_utils import reference_values
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import SevError, UnsupportedUsage


def failure(reason, message):
    return {'failed': True, 'reason': reason, 'msg': message}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def _streamed_path(self, path, what):
        """A controller path, searched like other file options (role files/, playbook dir)."""
        try:
            real = self._find_needle('files', path)
        except AnsibleError as exc:
            raise UnsupportedUsage('%s: %s' % (what, to_native(exc.message)))
        return reference_values.check_not_vault(real, what)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        try:
            dummy, params = self.validate_argument_spec(argument_spec=reference_values.ARGUMENT_SPEC,
                                                        **reference_values.VALIDATION_RULES)
        except AnsibleActionFail as exc:
            result.update(failure('unsupported', to_native(exc.message)))
            return result
        try:
            result.update(self._publish(params))
        except SevError as exc:
            result.update(failure(exc.reason, str(exc)))
        except Exception as exc:  # pylint: disable=broad-except
            result.update(failure('error', 'unexpected error while computing reference values: %s: %s'
                                  % (type(exc).__name__, to_native(exc))))
        return result

    def _publish(self, params):
        plan, records, content = reference_values.build(params, resolve_path=self._streamed_path)
        dest = self._loader.path_dwim(params['dest'])
        changed, previous = reference_values.publish(dest, content, check_mode=self._task.check_mode)
        outcome = {'changed': changed, 'dest': dest, 'format': plan.output_format, 'records': records}
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

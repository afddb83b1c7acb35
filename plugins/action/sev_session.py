# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of confidential.sev.sev_session.

The guest owner's side of LAUNCH_START runs here, on the controller, whatever
host the task targets: the platform's certificates are only data to check, the
new TEK and TIK are written to controller files and never leave it.
"""

from __future__ import annotations

from ansible_collections.confidential.sev.plugins.module_utils.sev.certs import HAS_CRYPTOGRAPHY
from ansible_collections.confidential.sev.plugins.module_utils.session_options import (
    ARGUMENT_SPEC, OUTPUTS, VALIDATION_RULES, run_session,
)
from ansible_collections.confidential.sev.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC
    VALIDATION_RULES = VALIDATION_RULES
    WHAT = 'making the session'

    def _required_libraries(self, params):
        # state=absent only removes files: it works without cryptography
        if params['state'] == 'present':
            return [('cryptography', HAS_CRYPTOGRAPHY,
                     'to verify the platform\'s certificate chain and make the session keys')]
        return []

    def _run(self, params):
        for option in OUTPUTS:
            if params.get(option) is not None:
                params[option] = self._output_path(params[option])
        return run_session(params, self._read_file, read_output=self._read_real,
                           check_mode=bool(self._task.check_mode), resolve_input=self._find)

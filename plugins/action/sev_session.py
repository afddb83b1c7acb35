# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of confidential.sev.sev_session.

The guest owner's side of LAUNCH_START runs here, on the controller, whatever
host the task targets: the platform's certificates are only data to check, the
new TEK and TIK are written to controller files and never leave it.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.confidential.sev.plugins.module_utils.sev.certs import HAS_CRYPTOGRAPHY
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import read_small_file
from ansible_collections.confidential.sev.plugins.module_utils.session_options import (
    ARGUMENT_SPEC, OUTPUTS, VALIDATION_RULES, failure, run_session,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def _read_real(self, path, what):
        """A small file's bytes, decrypting Ansible Vault; the plaintext never touches a log."""
        real = None
        try:
            real = self._loader.get_real_file(path, decrypt=True)
            return read_small_file(real, what)
        except AnsibleError as exc:
            raise UnsupportedUsage('%s: %s' % (what, to_native(exc.message)))
        finally:
            if real is not None:
                self._loader.cleanup_tmp_file(real)

    def _read_input(self, path, what):
        """An input file, searched like other file options (a role's files/, the playbook dir)."""
        try:
            found = self._find_needle('files', path)
        except AnsibleError as exc:
            raise UnsupportedUsage('%s: %s' % (what, to_native(exc.message)))
        return self._read_real(found, what)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        try:
            dummy, params = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC, **VALIDATION_RULES)
        except AnsibleActionFail as exc:
            result.update(failure('unsupported', to_native(exc.message)))
            return result
        if params['state'] == 'present' and not HAS_CRYPTOGRAPHY:
            result.update(failure('unsupported', missing_required_lib('cryptography') + ' (on the controller)'))
            return result
        for option in OUTPUTS:
            if params.get(option) is not None:
                params[option] = self._loader.path_dwim(params[option])
        try:
            result.update(run_session(params, self._read_input, read_output=self._read_real,
                                      check_mode=bool(self._task.check_mode)))
        except Exception as exc:  # pylint: disable=broad-except
            # Fail closed, without a traceback (it could carry local values into logs).
            result.update(failure('error', 'unexpected error while making the session: %s: %s'
                                  % (type(exc).__name__, to_native(exc))))
        return result

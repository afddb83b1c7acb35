# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The common ground of the collection's controller-side action plugins.

They run on the controller whatever host a task targets, never contact it,
read their files on the controller (searched like other file options: a
role's files/, then the playbook directory; key and secret files through
Ansible Vault), and fail closed with the reference tool's reason and exit
code, never with a traceback (it could carry local values into logs).
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import (
    SevError, UnsupportedUsage, failure_result,
)
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import check_not_vault, read_small_file


class ControllerAction(ActionBase):
    """Subclasses set ARGUMENT_SPEC, VALIDATION_RULES and WHAT, and implement _run(params)."""

    TRANSFERS_FILES = False
    _requires_connection = False
    ARGUMENT_SPEC = {}
    VALIDATION_RULES = {}
    WHAT = 'the task'            # for the unexpected-error message
    FAILURE_EXTRA = {}           # fields every failure carries (e.g. valid: false)

    def _find(self, path, what):
        try:
            return self._find_needle('files', path)
        except AnsibleError as exc:
            raise UnsupportedUsage('%s: %s' % (what, to_native(exc.message)))

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

    def _read_file(self, path, what):
        """A small input file (key, secret, VMSA, certificate), searched, Vault-decrypted."""
        return self._read_real(self._find(path, what), what)

    def _streamed_path(self, path, what):
        """A large measured file (firmware, kernel, initrd): searched, never Vault-encrypted."""
        return check_not_vault(self._find(path, what), what)

    def _output_path(self, path):
        return self._loader.path_dwim(path)

    def _failure(self, reason, message):
        return failure_result(reason, message, **self.FAILURE_EXTRA)

    def run(self, tmp=None, task_vars=None):
        result = super(ControllerAction, self).run(tmp, task_vars)
        del tmp
        try:
            dummy, params = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC, **self.VALIDATION_RULES)
        except AnsibleActionFail as exc:
            result.update(self._failure('unsupported', to_native(exc.message)))
            return result
        try:
            result.update(self._run(params))
        except SevError as exc:
            result.update(self._failure(exc.reason, str(exc)))
        except Exception as exc:  # pylint: disable=broad-except
            result.update(self._failure('error', 'unexpected error during %s: %s: %s'
                                        % (self.WHAT, type(exc).__name__, to_native(exc))))
        return result

    def _run(self, params):
        raise NotImplementedError

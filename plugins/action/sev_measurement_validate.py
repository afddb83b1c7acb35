# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of confidential.sev.sev_measurement_validate.

Everything trusted happens here, on the controller, whatever host the task
targets: the hypervisor host never sees the TIK, TEK, plaintext secrets or the
trusted files, and is not even contacted.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage
from ansible_collections.confidential.sev.plugins.module_utils.sev.secrets import HAS_CRYPTOGRAPHY
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import (
    read_small_file, write_private_file,
)
from ansible_collections.confidential.sev.plugins.module_utils.validate_options import (
    ARGUMENT_SPEC, VALIDATION_RULES, failure, run_validation,
)

STREAMED_FILES = ('firmware', 'kernel', 'initrd')
VAULT_MAGIC = b'$ANSIBLE_VAULT'


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def _find(self, path, what):
        """A controller path, searched like other file options (role files/, playbook dir)."""
        try:
            return self._find_needle('files', path)
        except AnsibleError as exc:
            raise UnsupportedUsage('%s: %s' % (what, to_native(exc.message)))

    def _read_file(self, path, what):
        """A small file's bytes, decrypting Ansible Vault; the plaintext never touches a log."""
        real = None
        try:
            real = self._loader.get_real_file(self._find(path, what), decrypt=True)
            return read_small_file(real, what)
        except AnsibleError as exc:
            raise UnsupportedUsage('%s: %s' % (what, to_native(exc.message)))
        finally:
            if real is not None:
                self._loader.cleanup_tmp_file(real)

    def _streamed_path(self, path, what):
        real = self._find(path, what)
        with open(real, 'rb') as stream:
            if stream.read(len(VAULT_MAGIC)) == VAULT_MAGIC:
                raise UnsupportedUsage('%s: %s is Ansible Vault-encrypted; measured files must be '
                                       'given in clear (they are not secret)' % (what, path))
        return real

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        try:
            dummy, params = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC, **VALIDATION_RULES)
        except AnsibleActionFail as exc:
            result.update(failure('unsupported', to_native(exc.message)))
            return result
        try:
            result.update(self._validate(params))
        except Exception as exc:  # pylint: disable=broad-except
            # Fail closed with the reference tool's code 6, and no traceback:
            # a traceback could carry local variables' values into logs.
            result.update(failure('error', 'unexpected error during validation: %s: %s'
                                  % (type(exc).__name__, to_native(exc))))
        return result

    def _validate(self, params):
        if params.get('secrets') and not HAS_CRYPTOGRAPHY:
            return failure('unsupported', missing_required_lib('cryptography') + ' (on the controller)')
        try:
            for name in STREAMED_FILES:
                if params.get(name) is not None:
                    params[name] = self._streamed_path(params[name], name)
        except UnsupportedUsage as exc:
            return failure(exc.reason, str(exc))
        except OSError as exc:
            return failure('unsupported', 'cannot read %s: %s' % (exc.filename, exc.strerror))

        outcome = run_validation(params, self._read_file)
        outcome['changed'] = False
        header_file, payload_file = params.get('secret_header_file'), params.get('secret_payload_file')
        if not outcome.get('valid') or not outcome.get('secret_header') or header_file is None:
            return outcome
        outcome['changed'] = True
        outcome['secret_files'] = {'header': header_file, 'payload': payload_file}
        if not self._task.check_mode:
            # base64 text without a newline, as virt-qemu-sev-validate writes.
            write_private_file(self._loader.path_dwim(header_file), outcome['secret_header'].encode('ascii'))
            write_private_file(self._loader.path_dwim(payload_file), outcome['secret_payload'].encode('ascii'))
        return outcome

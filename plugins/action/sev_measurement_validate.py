# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of confidential.sev.sev_measurement_validate.

Everything trusted happens here, on the controller, whatever host the task
targets: the hypervisor host never sees the TIK, TEK, plaintext secrets or the
trusted files, and is not even contacted.
"""

from __future__ import annotations

import socket

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage
from ansible_collections.confidential.sev.plugins.module_utils.sev.secrets import HAS_CRYPTOGRAPHY
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import (
    read_small_file, write_private_file,
)
from ansible_collections.confidential.sev.plugins.module_utils.validate_options import (
    ARGUMENT_SPEC, VALIDATION_RULES, failure, run_validation,
)

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
        try:
            with open(real, 'rb') as stream:
                magic = stream.read(len(VAULT_MAGIC))
        except OSError as exc:
            raise UnsupportedUsage('%s: cannot read %s: %s' % (what, path, exc.strerror))
        if magic == VAULT_MAGIC:
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

    @staticmethod
    def _fetch_report(uri, domain):
        """The host's report, fetched from the controller over ``uri``."""
        conn = connection.open_connection(uri)
        try:
            return connection.gather_launch_report(conn, connection.lookup_domain(conn, domain))
        finally:
            conn.close()

    def _validate(self, params):
        if params.get('secrets') and not HAS_CRYPTOGRAPHY:
            return failure('unsupported', missing_required_lib('cryptography') + ' (on the controller)')
        if params.get('domain') is not None and not connection.HAS_LIBVIRT:
            return failure('unsupported', missing_required_lib('libvirt-python') + ' (on the controller)')
        outcome = run_validation(params, self._read_file, resolve_path=self._streamed_path,
                                 fetch_report=self._fetch_report, controller_hostname=socket.gethostname())
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

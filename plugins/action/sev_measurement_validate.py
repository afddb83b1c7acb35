# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of confidential.sev.sev_measurement_validate.

Everything trusted happens here, on the controller, whatever host the task
targets: the hypervisor host never sees the TIK, TEK, plaintext secrets or the
trusted files.  From a domain, the host's report is fetched over a libvirt URI
(or taken from a registered sev_launch_info result) and is only data to check.
"""

from __future__ import annotations

import socket

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import write_private_file
from ansible_collections.confidential.sev.plugins.module_utils.sev.secrets import HAS_CRYPTOGRAPHY
from ansible_collections.confidential.sev.plugins.module_utils.validate_options import (
    ARGUMENT_SPEC, VALIDATION_RULES, run_validation,
)
from ansible_collections.confidential.sev.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC
    VALIDATION_RULES = VALIDATION_RULES
    WHAT = 'validation'
    FAILURE_EXTRA = {'valid': False}

    @staticmethod
    def _fetch_report(uri, domain):
        """The host's report, fetched from the controller over ``uri``."""
        conn = connection.open_connection(uri)
        try:
            return connection.gather_launch_report(conn, connection.lookup_domain(conn, domain))
        finally:
            conn.close()

    def _run(self, params):
        if params.get('secrets') and not HAS_CRYPTOGRAPHY:
            return self._failure('unsupported', missing_required_lib('cryptography') + ' (on the controller)')
        if params.get('domain') is not None and not connection.HAS_LIBVIRT:
            return self._failure('unsupported', missing_required_lib('libvirt-python') + ' (on the controller)')
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
            write_private_file(self._output_path(header_file), outcome['secret_header'].encode('ascii'))
            write_private_file(self._output_path(payload_file), outcome['secret_payload'].encode('ascii'))
        return outcome

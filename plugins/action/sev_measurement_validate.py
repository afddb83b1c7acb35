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

from ansible_collections.confidential.sev.plugins.module_utils import locality
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import SevError
from ansible_collections.confidential.sev.plugins.module_utils.sev.outputs import Output, check_outputs, write_outputs
from ansible_collections.confidential.sev.plugins.module_utils.sev.secrets import HAS_CRYPTOGRAPHY
from ansible_collections.confidential.sev.plugins.module_utils.validate_options import (
    ARGUMENT_SPEC, VALIDATION_RULES, run_validation,
)
from ansible_collections.confidential.sev.plugins.plugin_utils.controller_action import ControllerAction


# Input files an output must never be.
INPUT_OPTIONS = ('tik', 'tek', 'tk', 'firmware', 'kernel', 'initrd', 'vmsa_cpu0', 'vmsa_cpu1')


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
            connection.close_connection(conn)

    def _client_on_controller(self, params):
        """Where the libvirt client that produced the report ran: here when this
        plugin fetches it (domain), else on the host this task targets, through
        its connection (launch_info, as a sev_launch_info task on that host)."""
        if params.get('domain') is not None:
            return True
        transport = getattr(self._connection, 'transport', None) or getattr(self._connection, '_load_name', None)
        address = getattr(self._play_context, 'remote_addr', None)
        return locality.connection_reaches_controller(transport, address)

    def _locality(self, params):
        if params.get('domain') is None and params.get('launch_info') is None:
            return None
        return locality.hypervisor_is_local(params.get('uri'), self._client_on_controller(params))

    def _inputs(self, params):
        """(option, path as found) of every input file, to refuse an output that is one of them."""
        given = [(option, params.get(option)) for option in INPUT_OPTIONS]
        given += [('secrets[%d].path' % index, item.get('path'))
                  for index, item in enumerate(params.get('secrets') or []) if isinstance(item, dict)]
        given += [('diagnose_firmware[%d]' % index, path)
                  for index, path in enumerate(params.get('diagnose_firmware') or [])]
        found = []
        for option, path in given:
            if path is None:
                continue
            try:
                found.append((option, self._find(path, option)))
            except SevError:
                continue    # reading it reports that
        return found

    def _secret_outputs(self, params, outcome=None):
        """The secret header and payload outputs (with their data once validated)."""
        return [Output(option, self._output_path(params[option]), None if outcome is None else
                       outcome[key].encode('ascii'))
                for option, key in (('secret_header_file', 'secret_header'), ('secret_payload_file', 'secret_payload'))]

    def _run(self, params):
        if params.get('secrets') and not HAS_CRYPTOGRAPHY:
            return self._failure('unsupported', missing_required_lib('cryptography') + ' (on the controller)')
        if params.get('domain') is not None and not connection.HAS_LIBVIRT:
            return self._failure('unsupported', missing_required_lib('libvirt-python') + ' (on the controller)')
        if params.get('replay_dir') is not None:
            params['replay_dir'] = self._output_path(params['replay_dir'])
        inputs = None
        if params.get('secret_header_file') is not None:
            # before anything is validated, claimed or written (see sev/outputs.py)
            inputs = self._inputs(params)
            check_outputs(self._secret_outputs(params), inputs)
        outcome = run_validation(params, self._read_file, resolve_path=self._streamed_path,
                                 fetch_report=self._fetch_report, controller_hostname=socket.gethostname(),
                                 local=self._locality(params), check_mode=bool(self._task.check_mode))
        # A measurement claimed in replay_dir is a change on the controller.
        outcome['changed'] = bool(outcome.get('replay'))
        header_file, payload_file = params.get('secret_header_file'), params.get('secret_payload_file')
        if not outcome.get('valid') or not outcome.get('secret_header') or header_file is None:
            return outcome
        outcome['changed'] = True
        outcome['secret_files'] = {'header': header_file, 'payload': payload_file}
        if not self._task.check_mode:
            # base64 text without a newline, as virt-qemu-sev-validate writes; both or neither
            write_outputs(self._secret_outputs(params, outcome), inputs)
        return outcome

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
import sys

from ansible_collections.confidential.sev.plugins.module_utils import locality
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor.domain_config import HAS_LXML
from ansible_collections.confidential.sev.plugins.module_utils.sev.digest_cache import DigestCache
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import SevError
from ansible_collections.confidential.sev.plugins.module_utils.sev.outputs import (
    Output, check_distinct, check_outputs, write_outputs,
)
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

    def _required_libraries(self, params):
        """(library, available, purpose): what this call needs on the controller."""
        needed = []
        if params.get('secrets'):
            needed.append(('cryptography', HAS_CRYPTOGRAPHY, 'to build the secret packet'))
        if params.get('domain') is not None:
            needed.append(('libvirt-python', connection.HAS_LIBVIRT, 'to read the domain\'s launch state over uri'))
        if params.get('domain') is not None or params.get('launch_info') is not None:
            needed.append(('lxml', HAS_LXML, 'to check the domain XML the host reports'))
        return needed

    def _library_failure(self, params):
        """A missing controller library, named, and said to be needed on the
        controller, not on the hypervisor host (Ansible's missing_required_lib
        points at the managed host's interpreter, which does not apply here)."""
        for library, available, purpose in self._required_libraries(params):
            if not available:
                message = ('Failed to import the required Python library (%s) on the controller (%s\'s Python %s): '
                           'confidential.sev.sev_measurement_validate runs on the controller and needs it %s. '
                           'Install it in the Python that runs Ansible (pip install %s). ansible_python_interpreter '
                           'does not apply: the hypervisor host never runs this.')
                return self._failure('unsupported', message % (library, socket.gethostname(), sys.executable,
                                                               purpose, library))
        return None

    def _run(self, params):
        missing = self._library_failure(params)
        if missing is not None:
            return missing
        if params.get('replay_dir') is not None:
            params['replay_dir'] = self._output_path(params['replay_dir'])
        inputs = None
        if params.get('secret_header_file') is not None or params.get('digest_cache') is not None:
            inputs = self._inputs(params)
        if params.get('secret_header_file') is not None:
            # before anything is validated, claimed or written (see sev/outputs.py)
            check_outputs(self._secret_outputs(params), inputs)
        cache_path = None
        if params.get('digest_cache') is not None:
            cache_path = self._output_path(params['digest_cache'])
            # the cache is rewritten: it must be none of the inputs and outputs
            outputs = [('digest_cache', cache_path)]
            if params.get('secret_header_file') is not None:
                outputs += [(output.option, output.path) for output in self._secret_outputs(params)]
            check_distinct(outputs, inputs)
        # One cache per task, in memory at least: each file is read through
        # one descriptor whose identity is checked after hashing.
        cache = DigestCache(cache_path, read_only=bool(self._task.check_mode))
        outcome = run_validation(params, self._read_file, resolve_path=self._streamed_path,
                                 fetch_report=self._fetch_report, controller_hostname=socket.gethostname(),
                                 local=self._locality(params), check_mode=bool(self._task.check_mode),
                                 digest_cache=cache)
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

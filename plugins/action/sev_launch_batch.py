# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of confidential.sev.sev_launch_batch: all guests of one
hypervisor host launched together.

The host-side steps run as one call each of the host-side modules' list forms
on the targeted host (this task's connection); everything trusted runs here, on
the controller (plugins/module_utils/launch_batch.py).  The host only ever
receives domain identifiers, the public launch session and the encrypted
secret packet.
"""

from __future__ import annotations

import os
import socket

from ansible_collections.confidential.sev.plugins.module_utils import launch_record, locality
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor.domain_config import HAS_LXML
from ansible_collections.confidential.sev.plugins.module_utils.launch_batch import LaunchBatch, summary
from ansible_collections.confidential.sev.plugins.module_utils.launch_batch_options import (
    ARGUMENT_SPEC, GUEST_SPEC, VALIDATION_RULES,
)
from ansible_collections.confidential.sev.plugins.module_utils.sev.digest_cache import DigestCache
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage
from ansible_collections.confidential.sev.plugins.module_utils.sev.secrets import HAS_CRYPTOGRAPHY
from ansible_collections.confidential.sev.plugins.plugin_utils.controller_action import (
    ControllerAction, check_option_bounds, check_raw_integers,
)


def check_entry(entry):
    """One entry of guests, before Ansible's conversions (see controller_action.py)."""
    check_raw_integers(GUEST_SPEC, entry)
    check_option_bounds(GUEST_SPEC, entry)


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC
    VALIDATION_RULES = VALIDATION_RULES
    WHAT = 'the fleet launch'
    # The host-side modules run over this task's connection.
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        self._task_vars = task_vars or {}
        try:
            return super(ActionModule, self).run(tmp, task_vars)
        finally:
            tmpdir = getattr(getattr(self._connection, '_shell', None), 'tmpdir', None)
            if tmpdir:
                self._remove_tmp_path(tmpdir)

    def _call_host(self, module_name, module_args):
        """One run of a host-side module on the targeted host; its raw result."""
        return self._execute_module(module_name=module_name, module_args=module_args, task_vars=self._task_vars)

    def _local_for(self, uri):
        """Whether the hypervisor is the controller: the libvirt client ran on the targeted host
        (the host-side modules), reached through this task's connection."""
        transport = getattr(self._connection, 'transport', None) or getattr(self._connection, '_load_name', None)
        address = getattr(self._play_context, 'remote_addr', None)
        return locality.hypervisor_is_local(uri, locality.connection_reaches_controller(transport, address))

    def _required_libraries(self, params):
        del params
        return (('cryptography', HAS_CRYPTOGRAPHY, 'to verify the platform chains, make the sessions and build '
                 'the secret packets'),
                ('lxml', HAS_LXML, "to parse and check what the hypervisors report"))

    def _run(self, params):
        host = params.get('host') or self._task_vars.get('inventory_hostname')
        if not isinstance(host, str) or not host:
            raise UnsupportedUsage('host: no inventory host name to keep the records under; give host')
        check_mode = bool(self._task.check_mode)
        params['state_dir'] = self._output_path(params['state_dir'])
        path = self._output_path(params['digest_cache']) if params.get('digest_cache') else None
        if not check_mode and path is not None and os.path.dirname(path) == params['state_dir']:
            # the role keeps it in the state directory, which the first run creates (0700)
            launch_record.check_state_dir(params['state_dir'], create=True)
        if check_mode and path is not None and not os.path.isdir(os.path.dirname(path)):
            path = None     # nothing to read, and nothing may be created
        # one cache for every validation of this task: each distinct file hashed once
        cache = DigestCache(path=path, read_only=check_mode)
        batch = LaunchBatch(params, host, self._call_host, self._read_file, self._read_real, self._find,
                            self._streamed_path, self._local_for, controller_hostname=socket.gethostname(),
                            check_mode=check_mode, digest_cache=cache,
                            check_entry=check_entry)
        outcomes = batch.run()
        result = summary(outcomes)
        warnings = list(cache.take_warnings())
        result['digest_cache'] = cache.stats()
        result['timings'] = batch.timings
        for outcome in outcomes:
            warnings.extend('%s: %s' % (outcome['domain'], warning) for warning in outcome['warnings'])
        if warnings:
            result['warnings'] = list(dict.fromkeys(warnings))
        return result

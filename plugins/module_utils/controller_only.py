# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module side of the controller-only modules.

Their action plugins do all the work on the controller.  Reaching the module
code means it was run without its action plugin, on a managed host, which must
not see keys or trusted files: refuse, after the usual argument checks.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def refuse_on_managed_host(name, argument_spec, rules):
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **rules)
    module.fail_json(msg='confidential.sev.%s runs on the controller through its action plugin; it cannot be '
                         'executed on a managed host' % name, reason='unsupported', rc=2)

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sev_domain
short_description: Start a libvirt domain paused, resume it, or destroy it
version_added: 0.1.0
description:
  - The domain control an SEV launch needs, which C(community.libvirt.virt) lacks. Start a defined domain
    paused (C(VIR_DOMAIN_START_PAUSED)) so its measurement can be validated before it runs, resume it once its
    secret is injected, or destroy it when validation fails.
  - Idempotent, with check mode.
author:
  - confidential.sev developers (@confidential-sev)
extends_documentation_fragment:
  - action_common_attributes
  - confidential.sev.libvirt
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  state:
    description:
      - V(paused) starts a shut-off domain paused; a paused domain is left alone. A running domain is refused,
        since it can never return to its pre-launch state (libvirt cannot tell a domain paused at start from
        one paused later; only the state is checked).
      - V(running) resumes a paused domain, wakes a suspended one, or starts a shut-off one.
      - V(destroyed) stops a running or paused domain at once (power off), keeping its definition.
    type: str
    required: true
    choices: [destroyed, paused, running]
seealso:
  - module: confidential.sev.sev_launch_info
  - module: confidential.sev.sev_secret_inject
"""

EXAMPLES = r"""
- name: Start the guest paused, for attestation
  confidential.sev.sev_domain:
    domain: guest1
    state: paused

- name: Destroy the guest, its launch did not validate
  confidential.sev.sev_domain:
    domain: guest1
    state: destroyed
"""

RETURN = r"""
state:
  description: The domain state afterwards (in check mode, the state it would have).
  type: str
  returned: success
previous_state:
  description: The domain state before.
  type: str
  returned: success
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import InvalidState, SevError

RUNNING = 'running'
PAUSED = 'paused'
SHUTOFF = 'shutoff'


def plan(wanted, current, active, subject):
    """(libvirt call name, target state) to go from ``current`` (a state name;
    ``active`` as libvirt says) to ``wanted``, or None when already there."""
    if wanted == 'destroyed':
        return ('virDomainDestroy', SHUTOFF) if active else None
    if wanted == PAUSED:
        if current == PAUSED:
            return None
        if active:
            raise InvalidState('%s is %s: it cannot return to its pre-launch state; destroy it and start it '
                               'paused again' % (subject, current))
        return ('virDomainCreateWithFlags', PAUSED)
    if current == PAUSED:
        return ('virDomainResume', RUNNING)
    if current == 'pmsuspended':
        return ('virDomainPMWakeup', RUNNING)
    if active:
        return None
    return ('virDomainCreateWithFlags', RUNNING)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connection.LIBVIRT_OPTIONS,
            state=dict(type='str', required=True, choices=['destroyed', 'paused', 'running']),
        ),
        supports_check_mode=True,
    )
    if not connection.HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib('libvirt-python'), reason='unsupported', rc=2)
    import libvirt  # pylint: disable=import-outside-toplevel  # present: checked above

    try:
        conn = connection.open_connection(module.params['uri'])
        try:
            dom = connection.lookup_domain(conn, module.params['domain'])
            subject = "domain '%s'" % dom.name()
            before = connection.domain_state(dom, subject)
            previous = before['state_name']
            step = plan(module.params['state'], previous, before['active'], subject)
            if step is None or module.check_mode:
                module.exit_json(changed=step is not None, previous_state=previous,
                                 state=previous if step is None else step[1])
            name, target = step
            if name == 'virDomainDestroy':
                connection.call(subject, name, dom.destroy)
            elif name == 'virDomainResume':
                connection.call(subject, name, dom.resume)
            elif name == 'virDomainPMWakeup':
                connection.call(subject, name, dom.pMWakeup, 0)
            else:
                flags = libvirt.VIR_DOMAIN_START_PAUSED if target == PAUSED else 0
                connection.call(subject, name, dom.createWithFlags, flags)
            state = connection.domain_state(dom, subject)['state_name']
        finally:
            conn.close()
    except SevError as exc:
        module.fail_json(**connection.failure_result(exc))
    module.exit_json(changed=True, previous_state=previous, state=state)


if __name__ == '__main__':
    main()

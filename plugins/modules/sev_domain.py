#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sev_domain
short_description: Start a libvirt domain paused, resume exactly that launch, or destroy it
version_added: 0.1.0
description:
  - The domain control an SEV launch needs, which C(community.libvirt.virt) lacks. Start a defined domain
    paused (C(VIR_DOMAIN_START_PAUSED)) so its measurement can be validated before it runs, optionally after
    setting the guest owner's fresh launch session in its definition; resume it once its secret is injected,
    only while it has never run; or destroy it when validation fails, only while it is the launch this run
    started.
  - libvirt reports a domain started paused and one paused later alike (paused, reason user). This module
    tells them apart by QEMU's own run state (C(query-status) through C(virDomainQemuMonitorCommand)),
    V(prelaunch) until the first C(cont), then V(running), V(paused) and so on. libvirt logs the domain as
    tainted (custom-monitor) for that query; nothing else changes.
  - Idempotent, with check mode.
author:
  - confidential.sev developers (@confidential-sev)
extends_documentation_fragment:
  - action_common_attributes
  - confidential.sev.libvirt
attributes:
  check_mode:
    support: full
    details: Reports what would happen (C(changed), RV(state), RV(launch_security_updated)) and changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  state:
    description:
      - V(paused) starts a shut-off domain paused, after setting O(launch_security) if given. A domain that is
        already paused before its first run (run state V(prelaunch)) is left alone (C(ok)); with
        O(launch_security), only if it was started with those values. Any other active domain is refused
        (RV(error_kind=wrong_state)), since it can never return to its pre-launch state.
      - V(resumed) resumes a domain that is paused before its first run (run state V(prelaunch)), and with
        O(expect_id) only while its ID is that one. It never starts a domain. Anything else (shut off, running,
        paused after it ran, another launch) fails with RV(error_kind=wrong_state) and touches nothing.
      - V(destroyed) stops an active domain at once (power off), keeping its definition. With O(expect_id), only
        while the domain's ID is that one; otherwise it touches nothing and succeeds with RV(destroyed=false)
        and RV(skip_reason) (see O(expect_id)).
      - V(running) resumes a paused domain (whatever its run state), wakes a suspended one, or starts a shut-off
        one. Not for SEV launches, since it can start a launch nobody validated; use V(resumed).
    type: str
    required: true
    choices: [destroyed, paused, resumed, running]
  expect_id:
    description:
      - The libvirt domain ID of the launch to act on, as RV(id) returned when it was started paused. libvirt
        gives a domain a new ID at every start, so the ID tells this launch from a later one of the same domain.
      - With O(state=resumed), a domain with another ID (or shut off) is refused (RV(error_kind=wrong_state)).
      - With O(state=destroyed), a domain with another ID, or shut off, is left untouched and the task B(succeeds)
        with C(changed=false), RV(destroyed=false), RV(skip_reason) and a message. It is not a failure so that a
        rescue can run it and still fail with the original reason; check RV(destroyed).
      - Only for O(state=resumed) and O(state=destroyed).
    type: int
  launch_security:
    description:
      - With O(state=paused), the guest owner's launch session (from M(confidential.sev.sev_session)) to set in
        the domain's persistent C(<launchSecurity type='sev'>) before the paused start of a shut-off domain,
        that is C(<dhCert>), C(<session>) and C(<policy>). Every other element of the definition is kept. A domain
        without SEV launch security is refused (C(reason=config)).
      - The domain is redefined only when a value differs (RV(launch_security_updated)).
    type: dict
    suboptions:
      dh_cert:
        description: The guest owner's Diffie-Hellman certificate (GODH), base64.
        type: str
        required: true
      session:
        description: The launch session blob, base64.
        type: str
        required: true
      policy:
        description: The guest policy, an integer (written to the XML in hex).
        type: int
        required: true
seealso:
  - module: confidential.sev.sev_launch_info
  - module: confidential.sev.sev_secret_inject
  - module: confidential.sev.sev_session
"""

EXAMPLES = r"""
- name: Start the guest paused with a fresh launch session, for attestation
  confidential.sev.sev_domain:
    domain: guest1
    state: paused
    launch_security:
      dh_cert: "{{ session.dh_cert }}"
      session: "{{ session.session }}"
      policy: "{{ session.policy }}"
  register: started

- name: Let the validated guest run (this launch only, never a new one)
  confidential.sev.sev_domain:
    domain: "{{ started.uuid }}"
    state: resumed
    expect_id: "{{ started.id }}"

- name: Destroy the guest, its launch did not validate (only the launch started above)
  confidential.sev.sev_domain:
    domain: "{{ started.uuid }}"
    state: destroyed
    expect_id: "{{ started.id }}"
  register: destroyed
"""

RETURN = r"""
uuid:
  description: The domain's UUID. Use it to name the domain in later tasks.
  type: str
  returned: when the domain was found
  sample: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01
name:
  description: The domain's name.
  type: str
  returned: when the domain was found
id:
  description:
    - The libvirt domain ID afterwards, -1 when inactive. After a paused start, the ID of this launch (for
      O(expect_id)). In check mode, the ID now.
  type: int
  returned: when the domain was found
state:
  description: The domain state afterwards (in check mode, the state it would have), as libvirt names it.
  type: str
  returned: when the domain was found
  sample: paused
state_reason:
  description: libvirt's reason for the state (in check mode, for the state now).
  type: str
  returned: when the domain was found
  sample: user
run_state:
  description:
    - QEMU's run state afterwards (in check mode, now), from C(query-status); V(prelaunch) before the first
      C(cont); null when the domain is not active.
  type: str
  returned: when the domain was found
  sample: prelaunch
previous_state:
  description: The domain state before.
  type: str
  returned: when the domain was found
previous_id:
  description: The domain ID before (-1 when it was inactive).
  type: int
  returned: when the domain was found
previous_run_state:
  description: QEMU's run state before, null when it was inactive.
  type: str
  returned: when the domain was found
launch_security_updated:
  description:
    - Whether O(launch_security) changed the persistent definition (in check mode, would change it).
  type: bool
  returned: with O(state=paused)
destroyed:
  description: Whether the domain was destroyed (false in check mode).
  type: bool
  returned: with O(state=destroyed)
skip_reason:
  description:
    - Why O(state=destroyed) touched nothing, or null. V(not_active) the domain is shut off; V(other_launch) its ID
      is not O(expect_id).
  type: str
  returned: with O(state=destroyed)
error_kind:
  description: V(wrong_state) when the domain is not in a state the action allows (nothing was touched).
  type: str
  returned: failure
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection, domain_definition
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import SevError, UnsupportedUsage

RUNNING = 'running'
PAUSED = 'paused'
SHUTOFF = 'shutoff'
DESTROY = ('virDomainDestroy', SHUTOFF)
START_PAUSED = ('virDomainCreateWithFlags', PAUSED)
START = ('virDomainCreateWithFlags', RUNNING)
RESUME = ('virDomainResume', RUNNING)
WAKEUP = ('virDomainPMWakeup', RUNNING)
NOT_ACTIVE = 'not_active'
OTHER_LAUNCH = 'other_launch'
EXPECT_ID_STATES = ('destroyed', 'resumed')


def _ran(subject, before):
    """The words for an active domain that is not before its first run."""
    if before['state'] == PAUSED:
        return ('%s is paused after it ran (QEMU run state %r), not before its first run'
                % (subject, before['run_state']))
    return '%s is %s' % (subject, before['state'])


def destroy_skip(before, subject, expect_id):
    """(skip_reason, message) when O(state=destroyed) must touch nothing, else None."""
    if not before['active']:
        return NOT_ACTIVE, '%s is %s: nothing to destroy' % (subject, before['state'])
    if expect_id is not None and before['id'] != expect_id:
        return OTHER_LAUNCH, ('%s has ID %d, not %d (expect_id): it is another launch than the one expected, '
                              'left untouched' % (subject, before['id'], expect_id))
    return None


def plan(wanted, before, subject, expect_id=None):
    """(libvirt call name, target state) to take a domain described by
    connection.describe() (``before``) to ``wanted``, or None when it is
    already there.  Raises WrongState when the action is not allowed."""
    prelaunch = (before['active'] and before['state'] == PAUSED
                 and before['run_state'] == connection.PRELAUNCH)
    if wanted == 'destroyed':
        return None if destroy_skip(before, subject, expect_id) else DESTROY
    if wanted == PAUSED:
        if prelaunch:
            return None
        if before['active']:
            raise connection.WrongState('%s: it cannot return to its pre-launch state; destroy it and start it '
                                        'paused again' % _ran(subject, before))
        return START_PAUSED
    if wanted == 'resumed':
        if not before['active']:
            raise connection.WrongState('%s is %s: resume never starts a domain (a new launch must be started '
                                        'paused and validated)' % (subject, before['state']))
        if expect_id is not None and before['id'] != expect_id:
            raise connection.WrongState('%s has ID %d, not %d (expect_id): it is another launch than the one '
                                        'validated, left untouched' % (subject, before['id'], expect_id))
        if not prelaunch:
            raise connection.WrongState('%s: only a domain paused before its first run is resumed'
                                        % _ran(subject, before))
        return RESUME
    # running: the plain libvirt meaning
    if before['state'] == PAUSED:
        return RESUME
    if before['state'] == 'pmsuspended':
        return WAKEUP
    if before['active']:
        return None
    return START


def _previous(before):
    return {'previous_state': before['state'], 'previous_id': before['id'],
            'previous_run_state': before['run_state']}


class Failed(Exception):
    """A failure after the domain was found: its result carries what is known of the domain."""

    def __init__(self, error, known):
        super(Failed, self).__init__(str(error))
        self.error = error
        self.known = known


def prepare_launch_security(conn, dom, before, wanted, subject, check_mode, progress):
    """Set ``wanted`` in the persistent definition of a shut-off domain (or
    check that an active pre-launch one was started with it).  Returns
    (dom, updated); ``progress['launch_security_updated']`` is set as soon as
    the definition changed, so that a later failure still reports the change."""
    if before['active']:
        # the running launch's values are in its live XML
        live = connection.call(subject, 'virDomainGetXMLDesc', dom.XMLDesc, 0)
        if not domain_definition.launch_security_matches(live, wanted, subject):
            raise connection.WrongState('%s was started with another dhCert, session or policy than '
                                        'launch_security: destroy it and start it paused again' % subject)
        return dom, False
    import libvirt  # pylint: disable=import-outside-toplevel  # present: checked in main()
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    current = connection.call(subject, 'virDomainGetXMLDesc', dom.XMLDesc, flags)
    new_xml, updated = domain_definition.set_launch_security(current, wanted, subject)
    if not updated or check_mode:
        return dom, updated
    dom = connection.call(subject, 'virDomainDefineXML', conn.defineXML, new_xml)
    progress['launch_security_updated'] = True
    # libvirt may normalise what it stores: what the start will use must be what was asked
    stored = connection.call(subject, 'virDomainGetXMLDesc', dom.XMLDesc, flags)
    if not domain_definition.launch_security_matches(stored, wanted, subject):
        raise SevError('%s: libvirt stored other launchSecurity values than those defined' % subject)
    return dom, True


def apply(conn, dom, params, check_mode):
    """Run the wanted change; the module result (without 'changed' for failures)."""
    wanted, expect_id = params['state'], params['expect_id']
    subject = "domain '%s'" % connection.domain_name(dom)
    before = connection.describe(dom, subject)
    known = dict(connection.identity(before), **_previous(before))
    extra = {}
    try:
        step = plan(wanted, before, subject, expect_id)
        if wanted == PAUSED:
            extra['launch_security_updated'] = False
            if params['launch_security'] is not None:
                checked = domain_definition.check_launch_security(params['launch_security'])
                dom, extra['launch_security_updated'] = prepare_launch_security(
                    conn, dom, before, checked, subject, check_mode, extra)
        if wanted == 'destroyed':
            skip = destroy_skip(before, subject, expect_id)
            extra.update(destroyed=False, skip_reason=skip[0] if skip else None)
            if skip:
                extra['msg'] = skip[1]
        if step is None or check_mode:
            result = dict(known, changed=step is not None or extra.get('launch_security_updated', False), **extra)
            if step is not None:
                result['state'] = step[1]
            return result
        name, target = step
        if name == 'virDomainDestroy':
            connection.call(subject, name, dom.destroy)
            extra['destroyed'] = True
        elif name == 'virDomainResume':
            connection.call(subject, name, dom.resume)
        elif name == 'virDomainPMWakeup':
            connection.call(subject, name, dom.pMWakeup, 0)
        else:
            import libvirt  # pylint: disable=import-outside-toplevel  # present: checked in main()
            flags = libvirt.VIR_DOMAIN_START_PAUSED if target == PAUSED else 0
            connection.call(subject, name, dom.createWithFlags, flags)
        after = connection.describe(dom, subject)
    except SevError as exc:
        # a definition already updated is a change, even if the start then failed
        raise Failed(exc, dict(known, changed=bool(extra.get('launch_security_updated')) and not check_mode))
    return dict(connection.identity(after), changed=True, **dict(_previous(before), **extra))


def check_params(params):
    """Option combinations the argument spec cannot express (before libvirt is touched)."""
    if params['expect_id'] is not None and params['state'] not in EXPECT_ID_STATES:
        raise UnsupportedUsage('expect_id applies to state %s only, not %s'
                               % (' and '.join(EXPECT_ID_STATES), params['state']))
    if params['launch_security'] is not None:
        if params['state'] != PAUSED:
            raise UnsupportedUsage('launch_security applies to state paused only, not %s' % params['state'])
        domain_definition.check_launch_security(params['launch_security'])
    if not str(params['domain']).strip():
        raise UnsupportedUsage('domain must be a name or UUID, not empty')


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connection.LIBVIRT_OPTIONS,
            state=dict(type='str', required=True, choices=['destroyed', 'paused', 'resumed', 'running']),
            expect_id=dict(type='int'),
            launch_security=dict(type='dict', options=dict(
                dh_cert=dict(type='str', required=True),
                session=dict(type='str', required=True),
                policy=dict(type='int', required=True),
            )),
        ),
        supports_check_mode=True,
    )
    if not connection.HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib('libvirt-python'), reason='unsupported', rc=2)
    try:
        check_params(module.params)
        conn = connection.open_connection(module.params['uri'])
        try:
            dom = connection.lookup_domain(conn, module.params['domain'])
            result = apply(conn, dom, module.params, module.check_mode)
        finally:
            connection.close_connection(conn)
    except Failed as exc:
        result = connection.failure_result(exc.error)
        result.update(exc.known)
        module.fail_json(**result)
    except SevError as exc:
        module.fail_json(**connection.failure_result(exc))
    module.exit_json(**result)


if __name__ == '__main__':
    main()

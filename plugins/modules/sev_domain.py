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
  domain:
    description:
      - The domain's name or UUID, never its runtime ID (a number like C(1) would otherwise select whichever
        domain runs with that ID). An identifier made of digits only is a name; it is looked up as a UUID only
        when it has 32 digits and no domain has that name. A UUID-shaped identifier is looked up as a UUID,
        then as a name.
      - Pass the RV(uuid) a first task returned to every later task, so that they all act on the same domain.
      - Exactly one of O(domain) and O(domains) is required.
    type: str
    required: false
  domains:
    description:
      - Act on several domains in one call (one libvirt connection), each as O(domain) would with O(state);
        mutually exclusive with O(domain), O(expect_id) and O(launch_security), which are given per item here.
      - The whole list is checked before libvirt is touched; a domain listed twice (the same identifier, or two
        identifiers of one UUID) refuses the whole task (C(reason=unsupported), nothing done).
      - Then every item runs on its own; one item's failure never stops or touches another. The task fails if any
        item failed (its RV(msg) lists them, RV(rc) and RV(reason) are the first failed item's); RV(results) holds
        every item's result, in input order.
    type: list
    elements: dict
    suboptions:
      domain:
        description: The domain's name or UUID, as for O(domain).
        type: str
        required: true
      expect_id:
        description: As O(expect_id), for this domain.
        type: int
      launch_security:
        description: As O(launch_security), for this domain (only with O(state=paused)).
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
  max_parallel:
    description:
      - With O(domains), how many items run at once (threads over the one libvirt connection), 1 to 16.
      - The default is measured (C(tests/integration/test_batch_modules.py)) - 10 SEV guests started paused on a
        2-core host took 8.8 s with 1 thread, 6.8 s with 2, 5.8 s with 4 and 4.5 s with 10 (medians of 3 runs
        on a loaded machine; 2.9 s with both 4 and 10 in the least loaded run). V(4) gets about all of that gain
        and stays within libvirtd's default C(max_client_requests) (5 calls of one client at once).
    type: int
    default: 4
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

- name: Start three guests paused in one call, each with its own launch session
  confidential.sev.sev_domain:
    state: paused
    domains:
      - domain: guest1
        launch_security: "{{ sessions.guest1 }}"
      - domain: guest2
        launch_security: "{{ sessions.guest2 }}"
      - domain: guest3
        launch_security: "{{ sessions.guest3 }}"
  register: batch

- name: Resume exactly the launches started above (each pinned by its ID)
  confidential.sev.sev_domain:
    state: resumed
    domains:
      - domain: "{{ batch.results[0].uuid }}"
        expect_id: "{{ batch.results[0].id }}"
      - domain: "{{ batch.results[1].uuid }}"
        expect_id: "{{ batch.results[1].id }}"
      - domain: "{{ batch.results[2].uuid }}"
        expect_id: "{{ batch.results[2].id }}"
"""

RETURN = r"""
msg:
  description:
    - What was done, or why it failed. With O(domains), C(N of M domains failed) followed by each failed item's
      O(domains[].domain) and message, or C(all M domains succeeded).
  type: str
  returned: always
  sample: "domain 'guest1': now paused (QEMU run state prelaunch, ID 42)"
rc:
  description:
    - The exit code of RV(reason) - 0 on success, 2 unsupported usage, 5 wrong state, 6 libvirt or other error (the
      codes of C(virt-qemu-sev-validate)). With O(domains), the first failed item's, 0 when none failed.
  type: int
  returned: always
  sample: 0
reason:
  description: The class of the result - V(ok) on success, else V(unsupported), V(config), V(state) or V(error).
  type: str
  returned: always
  sample: ok
uuid:
  description: The domain's UUID. Use it to name the domain in later tasks.
  type: str
  returned: when the domain was found (with O(domain))
  sample: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01
name:
  description: The domain's name.
  type: str
  returned: when the domain was found (with O(domain))
  sample: guest1
id:
  description:
    - The libvirt domain ID afterwards, -1 when inactive. After a paused start, the ID of this launch (for
      O(expect_id)). In check mode, the ID now.
  type: int
  returned: when the domain was found (with O(domain))
  sample: 42
state:
  description: The domain state afterwards (in check mode, the state it would have), as libvirt names it.
  type: str
  returned: when the domain was found (with O(domain))
  sample: paused
state_reason:
  description: libvirt's reason for the state (in check mode, for the state now).
  type: str
  returned: when the domain was found (with O(domain))
  sample: user
run_state:
  description:
    - QEMU's run state afterwards (in check mode, now), from C(query-status); V(prelaunch) before the first
      C(cont); null when the domain is not active.
  type: str
  returned: when the domain was found (with O(domain))
  sample: prelaunch
previous_state:
  description: The domain state before.
  type: str
  returned: when the domain was found (with O(domain))
  sample: shutoff
previous_id:
  description: The domain ID before (-1 when it was inactive).
  type: int
  returned: when the domain was found (with O(domain))
  sample: -1
previous_run_state:
  description: QEMU's run state before, null when it was inactive.
  type: str
  returned: when the domain was found (with O(domain))
  sample: null
launch_security_updated:
  description:
    - Whether O(launch_security) changed the persistent definition (in check mode, would change it).
  type: bool
  returned: with O(state=paused) (with O(domain))
  sample: true
destroyed:
  description: Whether the domain was destroyed (false in check mode).
  type: bool
  returned: with O(state=destroyed) (with O(domain))
  sample: true
skip_reason:
  description:
    - Why O(state=destroyed) touched nothing, or null. V(not_active) the domain is shut off; V(other_launch) its ID
      is not O(expect_id).
  type: str
  returned: with O(state=destroyed) (with O(domain))
  sample: other_launch
error_kind:
  description:
    - On failure, what kind - V(wrong_state) the domain is not in a state the action allows (nothing was touched),
      V(unknown_domain), V(unreachable) (no libvirt connection), V(sev_unsupported), V(libvirt) (another libvirt
      error).
  type: str
  returned: on failure, when known
  sample: wrong_state
libvirt_code:
  description: On a libvirt failure, libvirt's error code (C(virErrorNumber)), null when libvirt gave none.
  type: int
  returned: on a libvirt failure
  sample: 42
libvirt_call:
  description: On a libvirt failure, the libvirt API call that failed.
  type: str
  returned: on a libvirt failure
  sample: virDomainLookupByName
results:
  description:
    - With O(domains), one result per item, in input order, each with the keys of the one-domain result (those
      that apply) and C(domain), C(requested), C(failed). Empty when the whole task was refused before any item ran
      (bad input, no connection, a domain listed twice).
  type: list
  elements: dict
  returned: with O(domains)
  sample:
    - {domain: guest1, requested: guest1, failed: false, changed: true, msg: "domain 'guest1': now paused (QEMU run
       state prelaunch, ID 42)", rc: 0, reason: ok, uuid: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01,
       name: guest1, id: 42, state: paused, state_reason: user, run_state: prelaunch, previous_state: shutoff,
       previous_id: -1, previous_run_state: null, launch_security_updated: true}
    - {domain: guest9, requested: guest9, failed: true, changed: false, rc: 6, reason: error,
       msg: "domain 'guest9': virDomainLookupByName failed: Domain not found", error_kind: unknown_domain,
       libvirt_code: 42, libvirt_call: virDomainLookupByName}
  contains:
    domain:
      description: The item's O(domains[].domain), as given.
      type: str
      returned: always
      sample: guest1
    requested:
      description: The same as C(domain) (the key every batch module's items have).
      type: str
      returned: always
      sample: guest1
    failed:
      description: Whether this item failed.
      type: bool
      returned: always
      sample: false
    changed:
      description: Whether this item changed anything.
      type: bool
      returned: always
      sample: true
    msg:
      description: As RV(msg), for this item.
      type: str
      returned: always
      sample: "domain 'guest1': now paused (QEMU run state prelaunch, ID 42)"
    rc:
      description: As RV(rc), for this item.
      type: int
      returned: always
      sample: 0
    reason:
      description: As RV(reason), for this item.
      type: str
      returned: always
      sample: ok
    uuid:
      description: As RV(uuid).
      type: str
      returned: when the domain was found
      sample: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01
    name:
      description: As RV(name).
      type: str
      returned: when the domain was found
      sample: guest1
    id:
      description: As RV(id); after a paused start, this launch's ID (give it as C(expect_id) later).
      type: int
      returned: when the domain was found
      sample: 42
    state:
      description: As RV(state).
      type: str
      returned: when the domain was found
      sample: paused
    state_reason:
      description: As RV(state_reason).
      type: str
      returned: when the domain was found
      sample: user
    run_state:
      description: As RV(run_state).
      type: str
      returned: when the domain was found
      sample: prelaunch
    previous_state:
      description: As RV(previous_state).
      type: str
      returned: when the domain was found
      sample: shutoff
    previous_id:
      description: As RV(previous_id).
      type: int
      returned: when the domain was found
      sample: -1
    previous_run_state:
      description: As RV(previous_run_state).
      type: str
      returned: when the domain was found
      sample: null
    launch_security_updated:
      description: As RV(launch_security_updated).
      type: bool
      returned: with O(state=paused), when the domain was found
      sample: true
    destroyed:
      description: As RV(destroyed).
      type: bool
      returned: with O(state=destroyed), when the domain was found
      sample: false
    skip_reason:
      description: As RV(skip_reason).
      type: str
      returned: with O(state=destroyed), when the domain was found
      sample: null
    error_kind:
      description: As RV(error_kind).
      type: str
      returned: on failure, when known
      sample: unknown_domain
    libvirt_code:
      description: As RV(libvirt_code).
      type: int
      returned: on a libvirt failure
      sample: 42
    libvirt_call:
      description: As RV(libvirt_call).
      type: str
      returned: on a libvirt failure
      sample: virDomainLookupByName
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import batch, connection, domain_definition
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
LAUNCH_SECURITY_OPTIONS = dict(
    dh_cert=dict(type='str', required=True),
    session=dict(type='str', required=True),
    policy=dict(type='int', required=True),
)


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


def success_message(result, check_mode):
    """The msg of a successful result that has none (issue 12: msg on success too)."""
    subject = "domain '%s'" % result['name']
    where = ('QEMU run state %s, ID %d' % (result['run_state'], result['id']) if result['run_state'] is not None
             else 'not active')
    if not result['changed']:
        return '%s: already %s, nothing done (%s)' % (subject, result['state'], where)
    if check_mode:
        return '%s: would be %s (check mode; now %s)' % (subject, result['state'], where)
    return '%s: now %s (%s)' % (subject, result['state'], where)


def run_one(conn, dom, params, check_mode):
    """One domain's result, failed (``failed: true``) or not; never raises SevError."""
    try:
        result = apply(conn, dom, params, check_mode)
    except Failed as exc:
        result = connection.failure_result(exc.error)
        result.update(exc.known)
        return result
    except SevError as exc:
        return connection.failure_result(exc)
    if 'msg' not in result:
        result['msg'] = success_message(result, check_mode)
    result.update(rc=0, reason='ok')
    return result


def check_batch_params(params):
    """The items of O(domains), checked whole before libvirt is touched: a bad
    item refuses the task (naming the item), nothing is done."""
    idents = batch.requested_identifiers(params['domains'], 'domains', 'domain')
    batch.check_max_parallel(params['max_parallel'])
    items = []
    for index, (ident, entry) in enumerate(zip(idents, params['domains'])):
        item = {'domain': ident, 'state': params['state'], 'expect_id': entry['expect_id'],
                'launch_security': entry['launch_security'], 'uri': params['uri']}
        try:
            check_params(item)
        except UnsupportedUsage as exc:
            raise UnsupportedUsage('domains[%d] (%s): %s' % (index, ident, exc))
        items.append(item)
    return items


def run_batch(params, check_mode):
    """The batch form: (task result, results).  Raises SevError only for what
    fails the whole task (bad input, no connection, a domain named twice)."""
    items = check_batch_params(params)
    conn = connection.open_connection(params['uri'])
    try:
        found = batch.resolve(conn, [item['domain'] for item in items], 'domains')
        entries = [dict(item, requested=item['domain'], dom=dom, lookup_failure=failure)
                   for item, (dom, failure) in zip(items, found)]

        def work(entry):
            if entry['lookup_failure'] is not None:
                result = entry['lookup_failure']
            else:
                result = run_one(conn, entry['dom'], entry, check_mode)
            result.update(domain=entry['requested'], requested=entry['requested'], failed=bool(result.get('failed')))
            return result
        results = batch.run_items(work, entries, params['max_parallel'])
    finally:
        connection.close_connection(conn)
    return batch.summary(results), results


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connection.LIBVIRT_OPTIONS,
            domain=dict(type='str'),
            max_parallel=batch.BATCH_OPTIONS['max_parallel'],
            domains=dict(type='list', elements='dict', options=dict(
                domain=dict(type='str', required=True),
                expect_id=dict(type='int'),
                launch_security=dict(type='dict', options=LAUNCH_SECURITY_OPTIONS),
            )),
            state=dict(type='str', required=True, choices=['destroyed', 'paused', 'resumed', 'running']),
            expect_id=dict(type='int'),
            launch_security=dict(type='dict', options=LAUNCH_SECURITY_OPTIONS),
        ),
        required_one_of=[('domain', 'domains')],
        mutually_exclusive=[('domain', 'domains'), ('domains', 'expect_id'), ('domains', 'launch_security')],
        supports_check_mode=True,
    )
    if not connection.HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib('libvirt-python'), reason='unsupported', rc=2)
    if module.params['domains'] is not None:
        try:
            task, results = run_batch(module.params, module.check_mode)
        except SevError as exc:
            module.fail_json(results=[], **connection.failure_result(exc))
        if task['failed']:
            module.fail_json(results=results, **task)
        module.exit_json(results=results, **task)
    try:
        check_params(module.params)
        conn = connection.open_connection(module.params['uri'])
        try:
            dom = connection.lookup_domain(conn, module.params['domain'])
            result = run_one(conn, dom, module.params, module.check_mode)
        finally:
            connection.close_connection(conn)
    except SevError as exc:
        module.fail_json(**connection.failure_result(exc))
    if result.get('failed'):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

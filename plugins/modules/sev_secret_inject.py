#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sev_secret_inject
short_description: Inject a validated LAUNCH_SECRET packet into a paused SEV guest
version_added: 0.1.0
description:
  - Passes the header and payload that M(confidential.sev.sev_measurement_validate) built to
    C(virDomainSetLaunchSecurityState), which has the platform check the packet's MAC and decrypt the secret
    into guest memory. Optionally resumes the domain afterwards.
  - It takes only the encrypted packet, never TIK, TEK or plaintext. The packet is bound to one launch's
    measurement; firmware refuses it for any other launch.
  - Refuses (RV(error_kind=wrong_state), nothing touched) a domain that is not paused before its first run, that is
    unless QEMU's own run state (C(query-status)) is V(prelaunch), since libvirt reports a paused start and a later
    pause alike. With O(expect_id), also a domain whose ID is not that launch's.
  - Always reports C(changed) when it injects. Injection cannot be observed from outside the guest, and repeating
    it with the same packet is accepted by firmware, so there is no state to compare with.
author:
  - confidential.sev developers (@confidential-sev)
extends_documentation_fragment:
  - action_common_attributes
  - confidential.sev.libvirt
attributes:
  check_mode:
    support: full
    details: Checks the packet's form and the domain's state, injects nothing.
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
      - Exactly one of O(domain) and O(injections) is required; with O(domain), O(header) and O(payload) are required.
    type: str
    required: false
  header:
    description:
      - The packet header, base64 of 52 bytes (RV(confidential.sev.sev_measurement_validate#module:secret_header)).
      - Required with O(domain).
    type: str
  payload:
    description:
      - The encrypted secret table, base64 (RV(confidential.sev.sev_measurement_validate#module:secret_payload)).
      - Required with O(domain).
    type: str
  injections:
    description:
      - Inject into several domains in one call (one libvirt connection), each item as O(domain), O(header),
        O(payload), O(address) and O(expect_id) would; O(resume) applies to every item. Mutually exclusive with
        those five options.
      - The whole list is checked before libvirt is touched (every packet's form, every address); a bad item, or a
        domain listed twice (the same identifier, or two identifiers of one UUID), refuses the whole task
        (C(reason=unsupported), nothing injected). Messages name the item, never a secret byte.
      - Then every item runs on its own; one item's failure never stops or touches another. The task fails if any
        item failed (RV(msg) lists them, RV(rc) and RV(reason) are the first failed item's); RV(results) holds
        every item's result, in input order.
    type: list
    elements: dict
    suboptions:
      domain:
        description: The domain's name or UUID, as for O(domain).
        type: str
        required: true
      header:
        description: As O(header), for this domain.
        type: str
        required: true
      payload:
        description: As O(payload), for this domain.
        type: str
        required: true
      address:
        description: As O(address), for this domain.
        type: int
      expect_id:
        description: As O(expect_id), for this domain.
        type: int
  max_parallel:
    description:
      - With O(injections), how many items run at once (threads over the one libvirt connection), 1 to 16.
      - The default is measured (C(tests/integration/test_batch_modules.py)) - 10 SEV guests started paused on a
        2-core host took 8.8 s with 1 thread, 6.8 s with 2, 5.8 s with 4 and 4.5 s with 10 (medians of 3 runs
        on a loaded machine; 2.9 s with both 4 and 10 in the least loaded run). V(4) gets about all of that gain
        and stays within libvirtd's default C(max_client_requests) (5 calls of one client at once).
    type: int
    default: 4
  address:
    description:
      - Guest physical address to inject at, never C(0). Needed when the firmware has no SEV secret area
        (RV(confidential.sev.sev_measurement_validate#module:firmware.secret_area) is null); by default QEMU uses
        the secret area from the firmware's footer table.
    type: int
  resume:
    description: Resume the domain after a successful injection.
    type: bool
    default: false
  expect_id:
    description:
      - The libvirt domain ID of the launch the packet was made for (RV(confidential.sev.sev_domain#module:id) of
        its paused start). A domain with another ID is refused, since it is another launch.
    type: int
seealso:
  - module: confidential.sev.sev_measurement_validate
  - module: confidential.sev.sev_domain
"""

EXAMPLES = r"""
- name: Inject the LUKS key and let the guest run
  confidential.sev.sev_secret_inject:
    domain: guest1
    header: "{{ attestation.secret_header }}"
    payload: "{{ attestation.secret_payload }}"
    resume: true

- name: Inject into exactly the launch that was validated
  confidential.sev.sev_secret_inject:
    domain: "{{ started.uuid }}"
    expect_id: "{{ started.id }}"
    header: "{{ attestation.secret_header }}"
    payload: "{{ attestation.secret_payload }}"

- name: Inject into two validated launches in one call, then resume them
  confidential.sev.sev_secret_inject:
    injections:
      - domain: "{{ started.results[0].uuid }}"
        expect_id: "{{ started.results[0].id }}"
        header: "{{ attestations[0].secret_header }}"
        payload: "{{ attestations[0].secret_payload }}"
      - domain: "{{ started.results[1].uuid }}"
        expect_id: "{{ started.results[1].id }}"
        header: "{{ attestations[1].secret_header }}"
        payload: "{{ attestations[1].secret_payload }}"
    resume: true
"""

RETURN = r"""
msg:
  description:
    - What was done, or why it failed. With O(injections), C(N of M domains failed) followed by each failed item's
      domain and message, or C(all M domains succeeded). Never contains secret bytes.
  type: str
  returned: always
  sample: "domain 'guest1': secret injected, domain resumed"
rc:
  description:
    - The exit code of RV(reason) - 0 on success, 2 unsupported usage (bad packet or address), 5 wrong state, 6
      libvirt or other error (the codes of C(virt-qemu-sev-validate)). With O(injections), the first failed item's.
  type: int
  returned: always
  sample: 0
reason:
  description: The class of the result - V(ok) on success, else V(unsupported), V(state) or V(error).
  type: str
  returned: always
  sample: ok
injected:
  description: Whether the packet was injected (false in check mode).
  type: bool
  returned: success, and on a failure after the injection (with O(domain))
  sample: true
resumed:
  description: Whether the domain was resumed.
  type: bool
  returned: success (with O(domain))
  sample: true
state:
  description: The domain state afterwards, as libvirt names it.
  type: str
  returned: when the domain was found (with O(domain))
  sample: running
uuid:
  description: The domain's UUID.
  type: str
  returned: when the domain was found (with O(domain))
  sample: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01
name:
  description: The domain's name.
  type: str
  returned: when the domain was found (with O(domain))
  sample: guest1
id:
  description: The libvirt domain ID, -1 when inactive.
  type: int
  returned: when the domain was found (with O(domain))
  sample: 42
state_reason:
  description: libvirt's reason for the state.
  type: str
  returned: when the domain was found (with O(domain))
  sample: unpaused
run_state:
  description: QEMU's run state afterwards (V(prelaunch) before the first C(cont)), null when inactive.
  type: str
  returned: when the domain was found (with O(domain))
  sample: running
error_kind:
  description:
    - On failure, what kind - V(wrong_state) the domain is not a paused launch before its first run, or not the
      launch of O(expect_id) (nothing was touched), V(unknown_domain), V(unreachable) (no libvirt connection),
      V(sev_unsupported), V(libvirt) (another libvirt error, for example the platform refusing the packet).
  type: str
  returned: on failure, when known
  sample: wrong_state
libvirt_code:
  description: On a libvirt failure, libvirt's error code (C(virErrorNumber)), null when libvirt gave none.
  type: int
  returned: on a libvirt failure
  sample: 1
libvirt_call:
  description: On a libvirt failure, the libvirt API call that failed.
  type: str
  returned: on a libvirt failure
  sample: virDomainSetLaunchSecurityState
results:
  description:
    - With O(injections), one result per item, in input order, each with the keys of the one-domain result (those
      that apply) and C(domain), C(requested), C(failed). Empty when the whole task was refused before any item ran
      (bad input, no connection, a domain listed twice).
  type: list
  elements: dict
  returned: with O(injections)
  sample:
    - {domain: guest1, requested: guest1, failed: false, changed: true, injected: true, resumed: true, rc: 0,
       reason: ok, msg: "domain 'guest1': secret injected, domain resumed", uuid: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01,
       name: guest1, id: 42, state: running, state_reason: unpaused, run_state: running}
    - {domain: guest2, requested: guest2, failed: true, changed: false, injected: false, rc: 5, reason: state,
       msg: "domain 'guest2' has ID 44, not 43 (expect_id): it is another launch than the one the packet was made
       for", error_kind: wrong_state, uuid: 0e4a9f10-8c5e-4b2e-a6c1-7d3f2b9e1a55, name: guest2, id: 44,
       state: paused, state_reason: user, run_state: prelaunch}
  contains:
    domain:
      description: The item's O(injections[].domain), as given.
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
      description: Whether this item changed anything (an injection is a change, also when a later step failed).
      type: bool
      returned: always
      sample: true
    msg:
      description: As RV(msg), for this item.
      type: str
      returned: always
      sample: "domain 'guest1': secret injected, domain resumed"
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
    injected:
      description: As RV(injected), for this item.
      type: bool
      returned: always
      sample: true
    resumed:
      description: As RV(resumed), for this item.
      type: bool
      returned: success
      sample: true
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
      description: As RV(id).
      type: int
      returned: when the domain was found
      sample: 42
    state:
      description: As RV(state).
      type: str
      returned: when the domain was found
      sample: running
    state_reason:
      description: As RV(state_reason).
      type: str
      returned: when the domain was found
      sample: unpaused
    run_state:
      description: As RV(run_state).
      type: str
      returned: when the domain was found
      sample: running
    error_kind:
      description: As RV(error_kind).
      type: str
      returned: on failure, when known
      sample: wrong_state
    libvirt_code:
      description: As RV(libvirt_code).
      type: int
      returned: on a libvirt failure
      sample: 1
    libvirt_call:
      description: As RV(libvirt_call).
      type: str
      returned: on a libvirt failure
      sample: virDomainSetLaunchSecurityState
"""

import base64
import binascii

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import batch, connection
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import SevError, UnsupportedUsage

HEADER_SIZE = 52


def decode(name, text):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise UnsupportedUsage('%s is not valid base64' % name)


def check_packet(header, payload):
    """The packet's form; its MAC can only be checked by the platform."""
    raw_header = decode('header', header)
    if len(raw_header) != HEADER_SIZE:
        raise UnsupportedUsage('header must decode to %d bytes, got %d' % (HEADER_SIZE, len(raw_header)))
    if raw_header[:4] != b'\0\0\0\0':
        raise UnsupportedUsage('header flags must be 0')
    raw_payload = decode('payload', payload)
    if not raw_payload or len(raw_payload) % 16:
        raise UnsupportedUsage('payload must be a non-empty multiple of 16 bytes, got %d' % len(raw_payload))


def check_target(described, subject, expect_id=None):
    """Refuse (WrongState) unless the domain is paused before its first run, and the expected launch."""
    if described['state'] != 'paused':
        raise connection.WrongState('%s is %s, not paused: a secret can only be injected before the guest '
                                    'first runs' % (subject, described['state']))
    if described['run_state'] != connection.PRELAUNCH:
        raise connection.WrongState('%s is paused after it ran (QEMU run state %r), not before its first run: '
                                    'a secret can only be injected before the guest first runs'
                                    % (subject, described['run_state']))
    if expect_id is not None and described['id'] != expect_id:
        raise connection.WrongState('%s has ID %d, not %d (expect_id): it is another launch than the one the '
                                    'packet was made for' % (subject, described['id'], expect_id))


def check_address(address):
    """An explicit injection address: 64-bit, never 0 (where a firmware without a secret area
    would get the secret and never read it)."""
    if address is not None and not 0 < address < 1 << 64:
        raise UnsupportedUsage('address must be a 64-bit guest physical address other than 0 (0 is where QEMU '
                               'puts a secret for a firmware without a secret area, which never reads it)')
    return address


def inject_one(conn, dom, params, check_mode):
    """One injection's result, failed (``failed: true``) or not; never raises SevError.
    ``params``: header, payload, address, expect_id, resume."""
    known = {}
    try:
        subject = "domain '%s'" % connection.domain_name(dom)
        before = connection.describe(dom, subject)
        known = connection.identity(before)
        check_target(before, subject, params['expect_id'])
        if check_mode:
            return dict(changed=True, injected=False, resumed=False, rc=0, reason='ok',
                        msg='%s: would inject the secret%s' % (subject, ' and resume' if params['resume'] else ''),
                        **known)
        launch_params = {'sev-secret-header': params['header'], 'sev-secret': params['payload']}
        if params['address'] is not None:
            launch_params['sev-secret-set-address'] = params['address']
        connection.call(subject, 'virDomainSetLaunchSecurityState', dom.setLaunchSecurityState,
                        launch_params, 0)
        # injected: from here on a failure is a change
        known.update(changed=True, injected=True)
        if params['resume']:
            connection.call(subject, 'virDomainResume', dom.resume)
        after = connection.identity(connection.describe(dom, subject))
    except SevError as exc:
        result = connection.failure_result(exc)
        result.update(known)
        return result
    return dict(changed=True, injected=True, resumed=params['resume'], rc=0, reason='ok',
                msg='%s: secret injected%s' % (subject, ', domain resumed' if params['resume'] else ''), **after)


def check_injections(params):
    """The items of O(injections), checked whole before libvirt is touched
    (a bad item refuses the task, naming the item; never a secret byte)."""
    idents = batch.requested_identifiers(params['injections'], 'injections', 'domain')
    batch.check_max_parallel(params['max_parallel'])
    items = []
    for index, (ident, entry) in enumerate(zip(idents, params['injections'])):
        try:
            check_packet(entry['header'], entry['payload'])
            check_address(entry['address'])
        except UnsupportedUsage as exc:
            raise UnsupportedUsage('injections[%d] (%s): %s' % (index, ident, exc))
        items.append(dict(entry, domain=ident, requested=ident, resume=params['resume']))
    return items


def run_batch(params, check_mode):
    """The batch form: (task result, results).  Raises SevError only for what
    fails the whole task (bad input, no connection, a domain named twice)."""
    items = check_injections(params)
    conn = connection.open_connection(params['uri'])
    try:
        found = batch.resolve(conn, [item['domain'] for item in items], 'injections')

        def work(entry):
            item, (dom, failure) = entry
            result = failure if failure is not None else inject_one(conn, dom, item, check_mode)
            result.update(domain=item['requested'], requested=item['requested'], failed=bool(result.get('failed')))
            result.setdefault('injected', False)
            return result
        results = batch.run_items(work, list(zip(items, found)), params['max_parallel'])
    finally:
        connection.close_connection(conn)
    return batch.summary(results), results


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connection.LIBVIRT_OPTIONS,
            domain=dict(type='str'),
            header=dict(type='str', no_log=True),
            payload=dict(type='str', no_log=True),
            address=dict(type='int'),
            resume=dict(type='bool', default=False),
            expect_id=dict(type='int'),
            injections=dict(type='list', elements='dict', options=dict(
                domain=dict(type='str', required=True),
                header=dict(type='str', required=True, no_log=True),
                payload=dict(type='str', required=True, no_log=True),
                address=dict(type='int'),
                expect_id=dict(type='int'),
            )),
            max_parallel=batch.BATCH_OPTIONS['max_parallel'],
        ),
        required_one_of=[('domain', 'injections')],
        required_by={'domain': ('header', 'payload')},
        mutually_exclusive=[('domain', 'injections'), ('injections', 'header'), ('injections', 'payload'),
                            ('injections', 'address'), ('injections', 'expect_id')],
        supports_check_mode=True,
    )
    params = module.params
    if not connection.HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib('libvirt-python'), reason='unsupported', rc=2)
    if params['injections'] is not None:
        try:
            task, results = run_batch(params, module.check_mode)
        except SevError as exc:
            module.fail_json(results=[], **connection.failure_result(exc))
        if task['failed']:
            module.fail_json(results=results, **task)
        module.exit_json(results=results, **task)
    try:
        check_packet(params['header'], params['payload'])
        check_address(params['address'])
        conn = connection.open_connection(params['uri'])
        try:
            dom = connection.lookup_domain(conn, params['domain'])
            result = inject_one(conn, dom, params, module.check_mode)
        finally:
            connection.close_connection(conn)
    except SevError as exc:
        module.fail_json(**connection.failure_result(exc))
    if result.get('failed'):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

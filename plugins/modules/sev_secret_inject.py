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
  header:
    description: The packet header, base64 of 52 bytes (RV(confidential.sev.sev_measurement_validate#module:secret_header)).
    type: str
    required: true
  payload:
    description: The encrypted secret table, base64 (RV(confidential.sev.sev_measurement_validate#module:secret_payload)).
    type: str
    required: true
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
"""

RETURN = r"""
injected:
  description: Whether the packet was injected (false in check mode).
  type: bool
  returned: success
resumed:
  description: Whether the domain was resumed.
  type: bool
  returned: success
state:
  description: The domain state afterwards, as libvirt names it.
  type: str
  returned: when the domain was found
uuid:
  description: The domain's UUID.
  type: str
  returned: when the domain was found
name:
  description: The domain's name.
  type: str
  returned: when the domain was found
id:
  description: The libvirt domain ID, -1 when inactive.
  type: int
  returned: when the domain was found
state_reason:
  description: libvirt's reason for the state.
  type: str
  returned: when the domain was found
run_state:
  description: QEMU's run state afterwards (V(prelaunch) before the first C(cont)), null when inactive.
  type: str
  returned: when the domain was found
error_kind:
  description: V(wrong_state) when the domain is not a paused launch before its first run (nothing was touched).
  type: str
  returned: failure
"""

import base64
import binascii

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connection.LIBVIRT_OPTIONS,
            header=dict(type='str', required=True, no_log=True),
            payload=dict(type='str', required=True, no_log=True),
            address=dict(type='int'),
            resume=dict(type='bool', default=False),
            expect_id=dict(type='int'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not connection.HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib('libvirt-python'), reason='unsupported', rc=2)
    known = {}
    try:
        check_packet(params['header'], params['payload'])
        check_address(params['address'])
        conn = connection.open_connection(params['uri'])
        try:
            dom = connection.lookup_domain(conn, params['domain'])
            subject = "domain '%s'" % connection.domain_name(dom)
            before = connection.describe(dom, subject)
            known = connection.identity(before)
            check_target(before, subject, params['expect_id'])
            if module.check_mode:
                module.exit_json(changed=True, injected=False, resumed=False, **known)
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
        finally:
            connection.close_connection(conn)
    except SevError as exc:
        result = connection.failure_result(exc)
        result.update(known)
        module.fail_json(**result)
    module.exit_json(changed=True, injected=True, resumed=params['resume'], **after)


if __name__ == '__main__':
    main()

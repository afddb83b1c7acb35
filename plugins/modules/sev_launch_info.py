#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sev_launch_info
short_description: Read an SEV guest's launch state and configuration from libvirt
version_added: 0.1.0
description:
  - Reads what the hypervisor host reports about an AMD SEV / SEV-ES domain, read-only, C(changed) is always false.
    The launch measurement, firmware API version, build id and policy come from C(virDomainGetLaunchSecurityInfo);
    the domain state and reason; the launch configuration from the domain XML; the host's hostname and CPU signature
    from its capabilities; on request the node's SEV capabilities (C(virNodeGetSEVInfo)).
  - The host is not trusted. The module on the host only collects raw data; its action plugin parses the XML on the
    controller (lxml, no entity expansion, no network, size-bounded) and type-checks every value before returning it.
  - RV(config_problems) lists each of C(virt-qemu-sev-validate)'s configuration checks that fails, with a sentence
    to act on.
  - Register the result and pass it to M(confidential.sev.sev_measurement_validate) as O(confidential.sev.sev_measurement_validate#module:launch_info).
  - Without O(domain), returns only the node's SEV information (RV(node_sev)) and RV(hostname), for
    M(confidential.sev.sev_session) before any domain exists.
  - RV(run_state) is QEMU's own run state (C(query-status)), which tells a domain paused before its first run
    (V(prelaunch)) from one paused later (V(paused)); libvirt reports both as paused, reason user. libvirt logs the
    domain as tainted (custom-monitor) for that query.
author:
  - confidential.sev developers (@confidential-sev)
extends_documentation_fragment:
  - action_common_attributes
  - confidential.sev.libvirt
  - action_common_attributes.flow
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    platforms: posix
requirements:
  - lxml (on the controller)
options:
  domain:
    description:
      - The domain's name or UUID, never its runtime ID; an identifier made of digits only is looked up as a name
        (and as a UUID only when it is 32 digits long and no domain has that name).
      - Omitted, only the node's SEV information is returned (as with O(node_sev_info=true)), no domain is read.
    type: str
    required: false
  node_sev_info:
    description:
      - Also return the node's SEV capabilities (PDH, certificate chain, C(cpu0-id), C(cbitpos),
        C(reduced-phys-bits), maximum guests) in RV(node_sev). Fails on a host without SEV.
      - Implied when O(domain) is omitted.
    type: bool
    default: false
notes:
  - libvirt cannot tell a domain started paused and never resumed from one paused later; RV(paused) is the state only.
  - The host is not trusted, so the controller sets the failure class of a failed result. An honest host failure
    (libvirt unreachable, unknown domain, wrong state, no SEV) keeps its class (V(unsupported), V(state) or
    V(error)) and the host's bounded message, prefixed C(sev_launch_info failed on the host). A result that
    contradicts itself (failed, yet claiming reason V(ok), V(mismatch) or V(valid), or C(valid=true)) is host
    data that does not check out, like a malformed report - reason V(unsupported), rc 2, message
    C(the host returned data that does not check out).
  - A report with a field that does not check out (a number in other than ASCII digits, an empty C(<policy>),
    two C(<launchSecurity>) elements, out-of-range values) is refused the same way, naming the field.
seealso:
  - module: confidential.sev.sev_measurement_validate
  - module: confidential.sev.sev_domain
"""

EXAMPLES = r"""
- name: Read the launch state of a guest started paused
  confidential.sev.sev_launch_info:
    domain: guest1
  register: launch

- name: Also read the platform's SEV certificates (for sev_session)
  confidential.sev.sev_launch_info:
    domain: guest1
    node_sev_info: true
  register: launch

- name: Read only the platform's SEV certificates, before any domain exists
  confidential.sev.sev_launch_info:
  register: platform
"""

RETURN = r"""
reason:
  description:
    - On failure, the class the controller gives it (never the host's claim alone) - V(unsupported) (also for host
      data that does not check out, a self-contradicting failed result included), V(state) or V(error).
  type: str
  returned: on failure
rc:
  description: On failure, the exit code of RV(reason) - 2 (unsupported), 5 (state) or 6 (error).
  type: int
  returned: on failure
measurement:
  description: The launch measurement, base64 of 48 bytes.
  type: str
  returned: when the domain is running with SEV
api_major:
  description: Platform firmware API major version.
  type: int
  returned: when the domain is running with SEV
api_minor:
  description: Platform firmware API minor version.
  type: int
  returned: when the domain is running with SEV
build_id:
  description: Platform firmware build id.
  type: int
  returned: when the domain is running with SEV
policy:
  description: The guest policy as the host reports it.
  type: int
  returned: when the domain is running with SEV
launch_security:
  description: The five values above, or null when the host reported none.
  type: dict
  returned: with O(domain)
uuid:
  description: The domain's UUID (canonical form, checked). Use it to name the domain in later tasks.
  type: str
  returned: with O(domain)
name:
  description: The domain's name.
  type: str
  returned: with O(domain)
id:
  description: The libvirt domain ID, a new one at every start; -1 when inactive.
  type: int
  returned: with O(domain)
state:
  description: Domain state, for example V(paused), V(running), V(shutoff).
  type: str
  returned: with O(domain)
state_reason:
  description: Why it is in that state, for example V(user) for a domain started paused.
  type: str
  returned: with O(domain)
run_state:
  description:
    - QEMU's run state from C(query-status), one of QEMU's RunState names (checked), for example V(prelaunch)
      (started paused, never run), V(running), V(paused) (paused after it ran); null when the domain is inactive.
  type: str
  returned: with O(domain)
prelaunch:
  description: Whether the domain is paused before its first run (RV(run_state) is V(prelaunch)).
  type: bool
  returned: with O(domain)
paused:
  description: Whether the domain is paused.
  type: bool
  returned: with O(domain)
active:
  description: Whether the domain is running (paused or not).
  type: bool
  returned: with O(domain)
vcpus:
  description: Number of vCPUs the domain runs with.
  type: int
  returned: with O(domain)
hostname:
  description: The host's hostname as libvirt reports it (used to tell local from remote).
  type: str
  returned: always
domain:
  description: The domain's C(name), C(uuid) and C(id).
  type: dict
  returned: with O(domain)
config:
  description:
    - The launch configuration from the domain XML, C(launch_security_type), C(policy), C(kernel_hashes),
      C(has_dh_cert), C(has_session), C(loader), C(loader_type), C(loader_readonly), C(nvram), C(kernel),
      C(initrd), C(cmdline), C(vcpus_max), C(vcpus_current), C(cpu_mode), C(cpu_model), and counts.
  type: dict
  returned: with O(domain)
host_cpu_signature:
  description: The host CPU's C(family), C(model) and C(stepping) from its capabilities, or null.
  type: dict
  returned: with O(domain)
node_sev:
  description: The node's SEV capabilities, C(pdh), C(cert_chain), C(cpu0_id), C(cbitpos), C(reduced_phys_bits),
    C(max_guests), C(max_es_guests), each null when the host did not report it.
  type: dict
  returned: when O(node_sev_info=true) or without O(domain)
config_problems:
  description: Each failed configuration check, as C(check), C(reason) and C(message).
  type: list
  elements: dict
  returned: with O(domain)
domain_xml:
  description: The domain XML the host returned, for diagnosis.
  type: str
  returned: with O(domain)
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import batch, connection
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import SevError, UnsupportedUsage


def run_batch(params):
    """The batch form's raw result: every domain's report (or its failure), in
    input order, and the node's with include_node.  Raises SevError only for
    what fails the whole task (bad input, no connection, a domain named twice)."""
    idents = batch.requested_identifiers(params['domains'], 'domains')
    batch.check_max_parallel(params['max_parallel'])
    conn = connection.open_connection(params['uri'])
    try:
        found = batch.resolve(conn, idents, 'domains')

        def work(entry):
            if entry['failure'] is not None:
                return entry['failure']
            try:
                return {'requested': entry['requested'], 'report': connection.gather_launch_report(conn, entry['dom'])}
            except SevError as exc:
                return batch.item_failure(exc, entry['requested'])
        entries = [{'requested': ident, 'dom': dom, 'failure': failure} for ident, (dom, failure) in zip(idents, found)]
        result = {'changed': False, 'results': batch.run_items(work, entries, params['max_parallel'])}
        if params['include_node']:
            try:
                result['node'] = connection.gather_node_report(conn)
            except SevError as exc:
                result['node'] = connection.failure_result(exc)
    finally:
        connection.close_connection(conn)
    # Raw data only, no verdict: the action plugin checks every item on the controller.
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            connection.LIBVIRT_OPTIONS,
            domain=dict(type='str'),
            node_sev_info=dict(type='bool', default=False),
            domains=dict(type='list', elements='str'),
            include_node=dict(type='bool', default=False),
            max_parallel=batch.BATCH_OPTIONS['max_parallel'],
        ),
        mutually_exclusive=[('domain', 'domains'), ('domains', 'node_sev_info')],
        supports_check_mode=True,
    )
    if not connection.HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib('libvirt-python'), reason='unsupported', rc=2)
    domain = module.params['domain']
    try:
        if module.params['domains'] is not None:
            module.exit_json(**run_batch(module.params))
        if module.params['include_node']:
            raise UnsupportedUsage('include_node applies with domains only (with domain, use node_sev_info)')
        if domain is not None and not domain.strip():
            raise UnsupportedUsage('domain must be a name or UUID, not empty (omit it for the node only)')
        conn = connection.open_connection(module.params['uri'])
        try:
            if domain is None:
                report = connection.gather_node_report(conn)
            else:
                dom = connection.lookup_domain(conn, domain)
                report = connection.gather_launch_report(conn, dom, node_sev=module.params['node_sev_info'])
        finally:
            connection.close_connection(conn)
    except SevError as exc:
        module.fail_json(**connection.failure_result(exc))
    # Raw data only: the action plugin parses and checks it on the controller.
    module.exit_json(changed=False, report=report)


if __name__ == '__main__':
    main()

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
  domains:
    description:
      - Read several domains in one call (one libvirt connection), each as O(domain) would; mutually exclusive with
        O(domain) and O(node_sev_info) (see O(include_node)).
      - A domain listed twice (the same identifier, or two identifiers of one UUID) refuses the whole task
        (C(reason=unsupported)). Every other failure is that item's.
      - Every report is checked on the controller on its own (a report that does not check out fails that item
        only), including that it is of the domain asked for. The task fails if any item failed (RV(msg) lists them,
        RV(rc) and RV(reason) are the first failed item's); RV(results) holds every item's result in input order.
    type: list
    elements: str
  include_node:
    description:
      - With O(domains), also return the node's SEV information in RV(node), read once in the same call.
    type: bool
    default: false
  max_parallel:
    description:
      - With O(domains), how many items are read at once (threads over the one libvirt connection), 1 to 16.
      - The default is measured (C(tests/integration/test_batch_modules.py)) - 10 SEV guests started paused on a
        2-core host took 8.8 s with 1 thread, 6.8 s with 2, 5.8 s with 4 and 4.5 s with 10 (medians of 3 runs
        on a loaded machine; 2.9 s with both 4 and 10 in the least loaded run). V(4) gets about all of that gain
        and stays within libvirtd's default C(max_client_requests) (5 calls of one client at once).
    type: int
    default: 4
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

- name: Read three guests' launch state and the node's SEV data in one call
  confidential.sev.sev_launch_info:
    domains: [guest1, guest2, guest3]
    include_node: true
  register: launches
"""

RETURN = r"""
msg:
  description:
    - What was read, or why it failed. With O(domains), C(N of M domains failed) followed by each failed item's
      domain and message (and C(node) when the node's data failed), or C(all M domains succeeded).
  type: str
  returned: always
  sample: "domain 'guest1': state paused, QEMU run state prelaunch, ID 42"
reason:
  description:
    - V(ok) on success. On failure, the class the controller gives it (never the host's claim alone) -
      V(unsupported) (also for host data that does not check out, a self-contradicting failed result included, and
      for a library missing on the controller), V(state) or V(error).
  type: str
  returned: always
  sample: ok
rc:
  description: The exit code of RV(reason) - 0 (ok), 2 (unsupported), 5 (state) or 6 (error).
  type: int
  returned: always
  sample: 0
error_kind:
  description:
    - On a host-side failure, what kind - V(unreachable) (no libvirt connection), V(unknown_domain), V(wrong_state),
      V(sev_unsupported), V(libvirt) (another libvirt error).
  type: str
  returned: on a host-side failure, when known
  sample: unknown_domain
libvirt_code:
  description: On a libvirt failure on the host, libvirt's error code (C(virErrorNumber)).
  type: int
  returned: on a libvirt failure, when the host gave one
  sample: 42
libvirt_call:
  description: On a libvirt failure on the host, the libvirt API call that failed.
  type: str
  returned: on a libvirt failure, when the host gave one
  sample: virDomainLookupByName
missing_library:
  description: The Python library missing on the controller (V(lxml)), when that is why the task failed.
  type: str
  returned: when a controller library is missing
  sample: lxml
measurement:
  description: The launch measurement, base64 of 48 bytes.
  type: str
  returned: when the domain is running with SEV (with O(domain))
  sample: k5cZqLdQ7sVbL6vJ0t0TnX8yA2uK1fQd0xV8cW4kq3pG7hE2mN5bR9sT1uY6iO0a
api_major:
  description: Platform firmware API major version.
  type: int
  returned: when the domain is running with SEV (with O(domain))
  sample: 1
api_minor:
  description: Platform firmware API minor version.
  type: int
  returned: when the domain is running with SEV (with O(domain))
  sample: 55
build_id:
  description: Platform firmware build id.
  type: int
  returned: when the domain is running with SEV (with O(domain))
  sample: 21
policy:
  description: The guest policy as the host reports it.
  type: int
  returned: when the domain is running with SEV (with O(domain))
  sample: 7
launch_security:
  description: The five values above, or null when the host reported none.
  type: dict
  returned: with O(domain)
  sample: {measurement: k5cZqLdQ7sVbL6vJ0t0TnX8yA2uK1fQd0xV8cW4kq3pG7hE2mN5bR9sT1uY6iO0a, api_major: 1, api_minor: 55,
           build_id: 21, policy: 7}
  contains:
    measurement:
      description: As RV(measurement).
      type: str
      sample: k5cZqLdQ7sVbL6vJ0t0TnX8yA2uK1fQd0xV8cW4kq3pG7hE2mN5bR9sT1uY6iO0a
    api_major:
      description: As RV(api_major).
      type: int
      sample: 1
    api_minor:
      description: As RV(api_minor).
      type: int
      sample: 55
    build_id:
      description: As RV(build_id).
      type: int
      sample: 21
    policy:
      description: As RV(policy).
      type: int
      sample: 7
uuid:
  description: The domain's UUID (canonical form, checked). Use it to name the domain in later tasks.
  type: str
  returned: with O(domain)
  sample: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01
name:
  description: The domain's name.
  type: str
  returned: with O(domain)
  sample: guest1
id:
  description: The libvirt domain ID, a new one at every start; -1 when inactive.
  type: int
  returned: with O(domain)
  sample: 42
state:
  description: Domain state, for example V(paused), V(running), V(shutoff).
  type: str
  returned: with O(domain)
  sample: paused
state_code:
  description: The domain state as libvirt's number (C(virDomainState)).
  type: int
  returned: with O(domain)
  sample: 3
state_reason:
  description: Why it is in that state, for example V(user) for a domain started paused.
  type: str
  returned: with O(domain)
  sample: user
state_reason_code:
  description: The state's reason as libvirt's number.
  type: int
  returned: with O(domain)
  sample: 1
run_state:
  description:
    - QEMU's run state from C(query-status), one of QEMU's RunState names (checked), for example V(prelaunch)
      (started paused, never run), V(running), V(paused) (paused after it ran); null when the domain is inactive.
  type: str
  returned: with O(domain)
  sample: prelaunch
prelaunch:
  description: Whether the domain is paused before its first run (RV(run_state) is V(prelaunch)).
  type: bool
  returned: with O(domain)
  sample: true
paused:
  description: Whether the domain is paused.
  type: bool
  returned: with O(domain)
  sample: true
active:
  description: Whether the domain is running (paused or not).
  type: bool
  returned: with O(domain)
  sample: true
vcpus:
  description: Number of vCPUs the domain runs with.
  type: int
  returned: with O(domain)
  sample: 2
hostname:
  description: The host's hostname as libvirt reports it (used to tell local from remote).
  type: str
  returned: with O(domain), or without O(domains)
  sample: hv1.example.net
domain:
  description: The domain's C(name), C(uuid) and C(id).
  type: dict
  returned: with O(domain)
  sample: {name: guest1, uuid: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01, id: 42}
  contains:
    name:
      description: As RV(name).
      type: str
      sample: guest1
    uuid:
      description: As RV(uuid).
      type: str
      sample: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01
    id:
      description: As RV(id).
      type: int
      sample: 42
config:
  description: The launch configuration from the domain XML (host data, for diagnosis).
  type: dict
  returned: with O(domain)
  sample: {launch_security_type: sev, policy: 7, kernel_hashes: true, loader: /usr/share/OVMF/OVMF.amdsev.fd,
           loader_type: rom, loader_readonly: true, nvram: null, kernel: /var/lib/guests/vmlinuz,
           initrd: /var/lib/guests/initrd.img, cmdline: console=ttyS0, vcpus_max: 2, vcpus_current: 2,
           cpu_mode: host-passthrough, cpu_model: null}
  contains:
    name:
      description: C(<name>).
      type: str
      sample: guest1
    uuid:
      description: C(<uuid>).
      type: str
      sample: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01
    domain_type:
      description: The C(<domain type>) (C(kvm), C(qemu)).
      type: str
      sample: kvm
    launch_security_type:
      description: C(<launchSecurity type>), null without one.
      type: str
      sample: sev
    launch_security_count:
      description: How many C(<launchSecurity>) elements.
      type: int
      sample: 1
    sev_count:
      description: How many C(<launchSecurity type='sev'>) elements.
      type: int
      sample: 1
    policy:
      description: C(<policy>) of the SEV launch security, null without one.
      type: int
      sample: 7
    kernel_hashes:
      description: Whether C(kernelHashes='yes').
      type: bool
      sample: true
    kernel_hashes_attribute:
      description: The C(kernelHashes) attribute as written, or null.
      type: str
      sample: "yes"
    cbitpos:
      description: C(<cbitpos>), or null.
      type: int
      sample: 51
    reduced_phys_bits:
      description: C(<reducedPhysBits>), or null.
      type: int
      sample: 1
    dh_cert_count:
      description: How many C(<dhCert>) elements.
      type: int
      sample: 1
    session_count:
      description: How many C(<session>) elements.
      type: int
      sample: 1
    loader_count:
      description: How many C(<loader>) elements.
      type: int
      sample: 1
    loader:
      description: The C(<loader>) path, or null.
      type: str
      sample: /usr/share/OVMF/OVMF.amdsev.fd
    loader_type:
      description: The C(<loader type>), or null.
      type: str
      sample: rom
    loader_readonly:
      description: Whether the loader is C(readonly='yes'), null without a loader.
      type: bool
      sample: true
    nvram_count:
      description: How many C(<nvram>) elements.
      type: int
      sample: 0
    nvram:
      description: The C(<nvram>) path, or null.
      type: str
      sample: null
    kernel:
      description: The C(<kernel>) path (direct boot), or null.
      type: str
      sample: /var/lib/guests/vmlinuz
    initrd:
      description: The C(<initrd>) path, or null.
      type: str
      sample: /var/lib/guests/initrd.img
    cmdline:
      description: The C(<cmdline>), or null.
      type: str
      sample: console=ttyS0
    direct_boot_count:
      description: How many of C(<kernel>), C(<initrd>), C(<cmdline>) there are.
      type: int
      sample: 3
    vcpus_max:
      description: C(<vcpu>).
      type: int
      sample: 2
    vcpus_current:
      description: C(<vcpu current>), or null.
      type: int
      sample: 2
    cpu_mode:
      description: C(<cpu mode>), or null.
      type: str
      sample: host-passthrough
    cpu_model:
      description: C(<cpu><model>), or null.
      type: str
      sample: null
    emulator:
      description: C(<emulator>), or null.
      type: str
      sample: /usr/bin/qemu-system-x86_64
host_cpu_signature:
  description: The host CPU's C(family), C(model) and C(stepping) from its capabilities, or null.
  type: dict
  returned: with O(domain)
  sample: {family: 25, model: 1, stepping: 1}
  contains:
    family:
      description: CPU family.
      type: int
      sample: 25
    model:
      description: CPU model.
      type: int
      sample: 1
    stepping:
      description: CPU stepping.
      type: int
      sample: 1
node_sev:
  description: The node's SEV capabilities, each value null when the host did not report it.
  type: dict
  returned: when O(node_sev_info=true) or without O(domain) and O(domains) (null with O(domain) otherwise)
  sample: {pdh: AQAAAA..., cert_chain: AQAAAA..., cpu0_id: 4oB9..., cbitpos: 51, reduced_phys_bits: 1,
           max_guests: 15, max_es_guests: 494}
  contains:
    pdh:
      description: The platform Diffie-Hellman key (PDH) certificate, base64.
      type: str
      sample: AQAAAA...
    cert_chain:
      description: The platform certificate chain (PEK, OCA, CEK), base64.
      type: str
      sample: AQAAAA...
    cpu0_id:
      description: The unique ID of CPU 0, base64 (to fetch the chip's CEK).
      type: str
      sample: 4oB9...
    cbitpos:
      description: The C-bit position.
      type: int
      sample: 51
    reduced_phys_bits:
      description: Physical address bits lost with encryption.
      type: int
      sample: 1
    max_guests:
      description: How many SEV guests the platform can run.
      type: int
      sample: 15
    max_es_guests:
      description: How many SEV-ES guests the platform can run.
      type: int
      sample: 494
config_problems:
  description: Each failed configuration check.
  type: list
  elements: dict
  returned: with O(domain)
  sample: [{check: nvram, reason: insecure, message: "the domain has an NVRAM file: its content is not measured"}]
  contains:
    check:
      description: Which check failed.
      type: str
      sample: nvram
    reason:
      description: Its failure class (V(config), V(insecure) or V(unsupported)).
      type: str
      sample: insecure
    message:
      description: A sentence to act on.
      type: str
      sample: "the domain has an NVRAM file: its content is not measured"
domain_xml:
  description: The domain XML the host returned, for diagnosis.
  type: str
  returned: with O(domain)
  sample: "<domain type='kvm'>...</domain>"
results:
  description:
    - With O(domains), one result per item, in input order. A good item has every key of the one-domain result
      (RV(uuid), RV(state), RV(run_state), RV(launch_security), RV(config), RV(domain) and so on, as documented
      above) plus C(requested), C(failed), C(changed), C(msg), C(rc), C(reason). A failed item has C(requested),
      C(failed), C(changed), C(msg), C(rc), C(reason), and on a host-side failure RV(error_kind), RV(libvirt_code),
      RV(libvirt_call) when known. Empty when the whole task failed before any item was read.
  type: list
  elements: dict
  returned: with O(domains)
  sample:
    - {requested: guest1, failed: false, changed: false, rc: 0, reason: ok,
       msg: "domain 'guest1': state paused, QEMU run state prelaunch, ID 42", name: guest1,
       uuid: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01, id: 42, state: paused, run_state: prelaunch, prelaunch: true}
    - {requested: guest9, failed: true, changed: false, rc: 6, reason: error, error_kind: unknown_domain,
       msg: "sev_launch_info failed on the host: domain 'guest9': virDomainLookupByName failed: Domain not found"}
  contains:
    requested:
      description: The item's entry of O(domains), as given.
      type: str
      returned: always
      sample: guest1
    failed:
      description: Whether this item failed.
      type: bool
      returned: always
      sample: false
    changed:
      description: Always false.
      type: bool
      returned: always
      sample: false
    msg:
      description: As RV(msg), for this item.
      type: str
      returned: always
      sample: "domain 'guest1': state paused, QEMU run state prelaunch, ID 42"
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
      returned: success
      sample: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01
    name:
      description: As RV(name).
      type: str
      returned: success
      sample: guest1
    id:
      description: As RV(id).
      type: int
      returned: success
      sample: 42
    state:
      description: As RV(state).
      type: str
      returned: success
      sample: paused
    run_state:
      description: As RV(run_state).
      type: str
      returned: success
      sample: prelaunch
    prelaunch:
      description: As RV(prelaunch).
      type: bool
      returned: success
      sample: true
    launch_security:
      description: As RV(launch_security).
      type: dict
      returned: success
      sample: {measurement: k5cZqLdQ7sVbL6vJ0t0TnX8yA2uK1fQd0xV8cW4kq3pG7hE2mN5bR9sT1uY6iO0a, api_major: 1,
               api_minor: 55, build_id: 21, policy: 7}
      contains:
        measurement:
          description: As RV(launch_security.measurement).
          type: str
          sample: k5cZqLdQ7sVbL6vJ0t0TnX8yA2uK1fQd0xV8cW4kq3pG7hE2mN5bR9sT1uY6iO0a
        api_major:
          description: As RV(launch_security.api_major).
          type: int
          sample: 1
        api_minor:
          description: As RV(launch_security.api_minor).
          type: int
          sample: 55
        build_id:
          description: As RV(launch_security.build_id).
          type: int
          sample: 21
        policy:
          description: As RV(launch_security.policy).
          type: int
          sample: 7
    error_kind:
      description: As RV(error_kind).
      type: str
      returned: on a host-side failure, when known
      sample: unknown_domain
node:
  description:
    - With O(domains) and O(include_node=true), the node's SEV information read in the same call, RV(hostname) and
      RV(node_sev) as without O(domain); null when it failed (the task then fails, naming C(node)).
  type: dict
  returned: with O(domains) and O(include_node=true)
  sample: {hostname: hv1.example.net, node_sev: {pdh: AQAAAA..., cert_chain: AQAAAA..., cpu0_id: 4oB9...,
           cbitpos: 51, reduced_phys_bits: 1, max_guests: 15, max_es_guests: 494}}
  contains:
    hostname:
      description: As RV(hostname).
      type: str
      sample: hv1.example.net
    node_sev:
      description: As RV(node_sev).
      type: dict
      sample: {cbitpos: 51, reduced_phys_bits: 1, max_guests: 15, max_es_guests: 494}
      contains:
        pdh:
          description: As RV(node_sev.pdh).
          type: str
          sample: AQAAAA...
        cert_chain:
          description: As RV(node_sev.cert_chain).
          type: str
          sample: AQAAAA...
        cpu0_id:
          description: As RV(node_sev.cpu0_id).
          type: str
          sample: 4oB9...
        cbitpos:
          description: As RV(node_sev.cbitpos).
          type: int
          sample: 51
        reduced_phys_bits:
          description: As RV(node_sev.reduced_phys_bits).
          type: int
          sample: 1
        max_guests:
          description: As RV(node_sev.max_guests).
          type: int
          sample: 15
        max_es_guests:
          description: As RV(node_sev.max_es_guests).
          type: int
          sample: 494
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

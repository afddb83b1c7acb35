#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sev_launch_batch
short_description: Launch all the SEV guests of one hypervisor host together, each only if its measurement validates
version_added: 0.1.0
description:
  - What the role P(confidential.sev.sev_launch#role) does for each guest, for all the guests of the targeted hypervisor
    host at once. Every host-side step is one call of the host-side modules' list forms for all guests (pin with
    M(confidential.sev.sev_launch_info), start paused, read the launch reports, inject, resume, destroy); every
    controller-side step runs in this task, on the controller (records, fresh sessions, validation with one digest
    cache shared by all guests, so that each distinct firmware, kernel and initrd is hashed once).
  - Per guest, the domain is pinned (its name or UUID resolved once, its UUID used from then on) and the controller's
    record decides (as M(confidential.sev.sev_launch_record) with O(confidential.sev.sev_launch_record#module:state=query)),
    V(launch) a shut-off domain, V(ok) a launch this controller validated (untouched, not a re-attestation),
    V(resume) a validated launch still before its first run, V(relaunch) (O(if_active=relaunch)) or V(fail) (left
    untouched).
  - "A launch: a new launch directory in O(state_dir); with a fresh session (the default, without O(tik)/O(tek) or
    O(tk)) the node's PDH and chain, verified up to AMD's root with O(cek_file), a new GODH, session, TEK and TIK;
    the domain started paused with that session in its launchSecurity; its report checked (the ID this run started,
    QEMU run state V(prelaunch)); its measurement validated on the controller and claimed against replays; the
    secret packet injected (that launch only, by its ID); the domain resumed (O(resume)). Each stage is recorded."
  - B(Fail closed per guest.) A guest whose step fails leaves the batch; the launch this run started for it, and only
    that one (by UUID and domain ID), is destroyed; its record says why. No guest's failure changes another guest's
    outcome. The task fails if any guest failed, listing them, and always returns RV(outcomes).
  - The hypervisor host only receives domain identifiers, the public session (dhCert, session, policy) and the
    encrypted secret packet, never a TIK, TEK, plaintext secret or trusted file.
  - B(Runs on the controller) through its action plugin; the host-side modules run on the targeted host over the
    task's connection.
author:
  - confidential.sev developers (@confidential-sev)
extends_documentation_fragment:
  - action_common_attributes
attributes:
  check_mode:
    support: full
    details: Pins every domain and reports each guest's plan (RV(outcomes[].msg) C(would launch), ...); starts,
      writes, sends and destroys nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  allow_local:
    default: false
    description:
    - Accept a hypervisor that is the controller itself. Relaxes that one rule of the validation, nothing else (not C(insecure)).
      Local is decided from the URI and the connection.
    type: bool
  ark_file:
    description: ARK certificate (controller path) for M(confidential.sev.sev_session), with O(ask_file).
    type: path
  ask_file:
    description: ASK certificate (controller path) for M(confidential.sev.sev_session).
    type: path
  cek_file:
    description:
    - The chip's CEK (controller path), signed by AMD, from AMD's key server, for a fresh session; per host (host_vars).
      The P(confidential.sev.kds_cek_url#filter) filter and C(ansible.builtin.get_url) fetch it (see the role P(confidential.sev.sev_launch#role)'s
      README).
    type: path
  cmdline:
    description: Kernel command line of a measured direct boot, exactly as the domain XML has it.
    type: str
  cmdline_b64:
    description: The command line as base64 of its exact bytes, instead of O(cmdline).
    type: str
  cpu0_id:
    description: The chip id the guest owner expects (M(confidential.sev.sev_session)).
    type: str
  cpu_family:
    description: Host CPU family, to build the VMSAs (SEV-ES).
    type: int
  cpu_model:
    description: Host CPU model (SEV-ES).
    type: int
  cpu_stepping:
    description: Host CPU stepping (SEV-ES).
    type: int
  diagnose_firmware:
    default: []
    description: Other firmware builds (controller paths) the mismatch diagnosis should try.
    elements: path
    type: list
  digest_cache:
    description:
    - A file on the controller (JSON, 0600) where the digests of the firmware, kernel and initrd files are kept by file
      identity across tasks and runs (see M(confidential.sev.sev_measurement_validate)).
    - Without it, the digests are shared within this task only (each distinct file hashed once for all its guests).
    type: path
  firmware:
    description: The firmware image (controller path) the guest boots. Required (per guest or for all).
    type: path
  firmware_sha256:
    description:
      - The SHA-256 (64 hex digits, optionally prefixed C(sha256:)) the O(firmware) file must have; another digest
        fails that guest with reason V(config) (4) before any verdict (see
        M(confidential.sev.sev_measurement_validate)). Part of the digest cache's key.
    type: str
  kernel_sha256:
    description: The SHA-256 the O(kernel) file must have, as O(firmware_sha256).
    type: str
  initrd_sha256:
    description: The SHA-256 the O(initrd) file must have, as O(firmware_sha256).
    type: str
  generation:
    description: Accept only AMD's roots of this processor generation (M(confidential.sev.sev_session)).
    type: str
  guests:
    description:
    - The guests of this hypervisor host, each a mapping with C(domain) (its name or UUID, never its runtime ID) and any
      of this module's options for that guest only, by the same name (for example C(firmware), C(tik), C(secrets), C(num_cpus),
      C(if_active), C(resume)); an entry's value replaces the task's.
    - An entry that is not a mapping, has an unknown key, names a domain listed before, or whose options are not valid
      fails that guest only (RV(outcomes[].failed_task) C(Check this guest's entry)).
    - 'Two identifiers of the same domain (its name and its UUID) make the host refuse the whole pin call: list each domain
      once, by one identifier.'
    elements: raw
    required: true
    type: list
  host:
    description: The inventory host name the records are kept under in O(state_dir). Default the task's C(inventory_hostname).
    type: str
  if_active:
    choices:
    - fail
    - relaunch
    default: fail
    description:
    - What to do with an active domain whose current launch this controller did not validate, V(fail) (touch nothing)
      or V(relaunch) (destroy it, then launch it).
    type: str
  initrd:
    description: Initrd of a measured direct boot (controller path).
    type: path
  kernel:
    description: Kernel of a measured direct boot (controller path).
    type: path
  lab_root:
    default: false
    description:
    - Trust O(ark_file) and O(ask_file) as a lab or emulated platform's root, although AMD did not sign them. The session's
      result and a warning say so. Never for production.
    type: bool
  max_parallel:
    default: 1
    description: Threads each host-side call may use for its items (passed to the host-side modules' list forms, 1 to
      16).
    type: int
  min_api_version:
    description: Minimum platform firmware API version, C(MAJOR.MINOR).
    type: str
  min_build_id:
    description: Minimum platform firmware build id.
    type: int
  min_pdh_api_version:
    description: Minimum firmware API version recorded in the PDH, C(MAJOR.MINOR).
    type: str
  num_cpus:
    description: Number of vCPUs (SEV-ES).
    type: int
  policy:
    description: The guest policy (an integer) a fresh session is made for; it goes into the domain's C(<policy>).
    type: int
  require_policy:
    choices:
    - DOMAIN
    - ES
    - NODBG
    - NOKS
    - NOSEND
    - SEV
    default:
    - NODBG
    - NOKS
    description: Policy flags the guest must have been launched with.
    elements: str
    type: list
  resume:
    default: true
    description:
    - Resume the guest after a successful validation (and injection). V(false) leaves it paused before its first run;
      a later run with V(true) resumes it while QEMU's run state is still V(prelaunch).
    type: bool
  secret_address:
    description: Guest physical address to inject the secrets at, when the firmware has no SEV secret area.
    type: int
  secrets:
    default: []
    description:
    - Secrets to inject, each C(guid) (or V(luks-key)) and C(path) on the controller (may be vaulted).
    - Without secrets, a warning says that the validation binds nothing to the guest that runs.
    elements: dict
    suboptions:
      guid:
        description: The secret's GUID, or V(luks-key) for the LUKS key GUID.
        required: true
        type: str
      path:
        description: The secret file on the controller (may be vault-encrypted).
        required: true
        type: path
    type: list
  state_dir:
    description:
    - The controller's state directory (0700), per-launch records, fresh session keys and the validated measurements seen,
      per inventory host, domain UUID and launch (layout in the README of the role that uses it, confidential.sev.sev_launch).
    - 'It B(must persist between runs) (with AWX, a persistent path): without its record a re-run treats a launched guest
      as unknown (O(if_active)), and replays can no longer be recognised.'
    required: true
    type: path
  tek:
    description: A pre-made session's TEK file (controller path, may be vault-encrypted).
    type: path
  tik:
    description:
    - A pre-made session's TIK file (controller path, may be vault-encrypted). With it (or O(tk)) no fresh session is
      made; the same keys then serve every launch (see the role's README for what that lacks).
    type: path
  tk:
    description: A pre-made session's file holding TEK then TIK, instead of O(tik) and O(tek).
    type: path
  uri:
    default: qemu:///system
    description: The libvirt URI on the hypervisor host.
    type: str
  vmsa_cpu0:
    description: VMSA file of vCPU 0 (controller path), instead of the CPU SKU (SEV-ES).
    type: path
  vmsa_cpu1:
    description: VMSA file of the other vCPUs (controller path), with O(vmsa_cpu0).
    type: path
  vmsa_sev_features:
    default: 0
    description: The VMSA's SEV_FEATURES (for example DebugSwap, 0x20), for hosts that set them.
    type: int
  vmsa_variant:
    choices:
    - init2
    - legacy
    default: legacy
    description: How the host builds VMSAs, V(legacy) or V(init2).
    type: str
seealso:
  - module: confidential.sev.sev_launch_info
  - module: confidential.sev.sev_domain
  - module: confidential.sev.sev_secret_inject
  - module: confidential.sev.sev_measurement_validate
  - module: confidential.sev.sev_launch_record
  - module: confidential.sev.sev_session
notes:
  - The role P(confidential.sev.sev_launch#role) uses this module when C(sev_launch_together=true).
  - The records, the seen measurements and the fresh sessions are the same files the role's per-guest path keeps, so
    the two can be used in turn on the same guests.
"""

EXAMPLES = r"""
- name: Launch the hypervisor's guests together (fresh session per launch, LUKS key injected)
  confidential.sev.sev_launch_batch:
    state_dir: /var/lib/sev-owner/state
    digest_cache: /var/lib/sev-owner/state/digests.json
    policy: 0x33
    cek_file: "cek/{{ inventory_hostname }}.cert"
    firmware: files/OVMF.amdsev.fd
    secrets:
      - guid: luks-key
        path: secrets/db-luks.key
    guests:
      - domain: db1
      - domain: db2
      - domain: web1
        resume: false
        secrets: []
  register: fleet

- name: Say what happened to each guest
  ansible.builtin.debug:
    msg: "{{ item.domain }}: {{ item.msg }}"
  loop: "{{ fleet.outcomes }}"
"""

RETURN = r"""
outcomes:
  description:
    - One entry per guest of O(guests), in order, the same entries as the role's fact C(sev_launch_outcomes).
  type: list
  elements: dict
  returned: always, except when the task's own options are refused
  sample:
    - {domain: db1, uuid: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01, plan: launch, check_mode: false, changed: true,
       failed: false, reason: ok, rc: 0, launch_id: 20261130T120102Z-1a2b3c4d, domain_id: 7, destroyed: false,
       warnings: [], msg: "launched: launch 20261130T120102Z-1a2b3c4d (domain ID 7) validated, 1 secret(s) injected, resumed"}
  contains:
    domain:
      description: The domain as listed (C(guests[N]) for an entry without one).
      type: str
      sample: db1
    uuid:
      description: The pinned UUID, null when the domain was not pinned.
      type: str
      sample: 5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01
    plan:
      description: V(launch), V(relaunch), V(resume), V(ok) or V(fail); null when the guest failed before deciding.
      type: str
      sample: launch
    check_mode:
      description: Whether this was a check-mode run.
      type: bool
      sample: false
    changed:
      description: Whether this guest changed (in check mode, would change).
      type: bool
      sample: true
    failed:
      description: Whether this guest failed.
      type: bool
      sample: false
    reason:
      description: V(ok), or the failure's reason (V(mismatch), V(unsupported), V(insecure), V(config), V(state), V(error)).
      type: str
      sample: ok
    rc:
      description: The exit code for RV(outcomes[].reason) (0 to 6).
      type: int
      sample: 0
    msg:
      description: One sentence, what happened, or the failure and whether the launch was destroyed.
      type: str
      sample: "launched: launch 20261130T120102Z-1a2b3c4d (domain ID 7) validated, 1 secret(s) injected, resumed"
    launch_id:
      description: This run's launch (or the validated one the record names), null when there is none.
      type: str
      sample: 20261130T120102Z-1a2b3c4d
    domain_id:
      description: The libvirt domain ID of this run's launch, or the ID pinned.
      type: int
      sample: 7
    destroyed:
      description: Whether this run destroyed a launch of this guest (a failed one, or the active one before a relaunch).
      type: bool
      sample: false
    warnings:
      description: This guest's warnings (lab root, no secrets, ...), also in the task's warnings.
      type: list
      elements: str
      sample: []
    failed_task:
      description: On failure, the step that failed, named like the role's task.
      type: str
      returned: on failure of this guest
      sample: Validate the measurement on the controller, from the files the guest owner trusts
    destroy_msg:
      description: On failure, the destroy's message (its failure, if it failed), or null.
      type: str
      returned: on failure of this guest
      sample: null
    error_kind:
      description: On a host-side failure, its kind (for example V(unknown_domain), V(wrong_state), V(libvirt)).
      type: str
      returned: on a host-side failure that has one
      sample: wrong_state
    replayed:
      description: True when the measurement was refused as a replay.
      type: bool
      returned: on a replay
      sample: true
timings:
  description:
    - Seconds each step took for all guests, by step (C(check_entries), C(pin), C(decide), C(predestroy),
      C(prepare), C(sessions), C(start), C(read_reports), C(validate), C(inject), C(resume), C(destroy_failed)).
      C(pin), C(predestroy), C(start), C(read_reports), C(inject), C(resume) and C(destroy_failed) are host calls
      (with their module round trip); the others run on the controller.
  type: dict
  returned: always, except when the task's own options are refused
  sample: {check_entries: 0.004, pin: 0.91, decide: 0.02, predestroy: 0.0, prepare: 0.01, sessions: 0.41, start: 6.2,
           read_reports: 1.1, validate: 0.52, inject: 0.8, resume: 0.0, destroy_failed: 0.0}
  contains:
    check_entries:
      description: Seconds spent checking the guest entries (controller).
      type: float
      sample: 0.004
    pin:
      description: Seconds spent pinning every domain and reading the node PDH (host call).
      type: float
      sample: 0.91
    decide:
      description: Seconds spent planning each guest from its record (controller).
      type: float
      sample: 0.02
    predestroy:
      description: Seconds spent destroying the launches to relaunch (host call).
      type: float
      sample: 0.0
    prepare:
      description: Seconds spent preparing the launch records (controller).
      type: float
      sample: 0.01
    sessions:
      description: Seconds spent verifying the chain and making the fresh sessions (controller).
      type: float
      sample: 0.41
    start:
      description: Seconds spent starting the domains paused (host call).
      type: float
      sample: 6.2
    read_reports:
      description: Seconds spent reading the launch reports (host call).
      type: float
      sample: 1.1
    validate:
      description: Seconds spent validating the measurements (controller).
      type: float
      sample: 0.52
    inject:
      description: Seconds spent injecting the secrets (host call).
      type: float
      sample: 0.8
    resume:
      description: Seconds spent resuming the validated launches (host call).
      type: float
      sample: 0.0
    destroy_failed:
      description: Seconds spent destroying the failed launches this run started (host call).
      type: float
      sample: 0.0
failed_count:
  description: How many guests failed.
  type: int
  returned: always, except when the task's own options are refused
  sample: 0
digest_cache:
  description:
    - The digest cache's counters for this task, C(hits), C(misses) and C(hashed_bytes).
  type: dict
  returned: always, except when the task's own options are refused
  sample: {hits: 49, misses: 1, hashed_bytes: 4194304}
  contains:
    hits:
      description: Digests taken from the cache.
      type: int
      sample: 49
    misses:
      description: Files hashed.
      type: int
      sample: 1
    hashed_bytes:
      description: Bytes hashed.
      type: int
      sample: 4194304
msg:
  description: V(N of M guests failed) with each failed guest's message, or each guest's plan.
  type: str
  returned: always
  sample: "3 guest(s): db1 launch, db2 launch, web1 ok"
reason:
  description: V(ok), or the first failed guest's reason.
  type: str
  returned: always
  sample: ok
rc:
  description: 0, or the first failed guest's exit code.
  type: int
  returned: always
  sample: 0
"""

from ansible_collections.confidential.sev.plugins.module_utils.controller_only import refuse_on_managed_host
from ansible_collections.confidential.sev.plugins.module_utils.launch_batch_options import (
    ARGUMENT_SPEC, VALIDATION_RULES,
)


def main():
    refuse_on_managed_host('sev_launch_batch', ARGUMENT_SPEC, VALIDATION_RULES)


if __name__ == '__main__':
    main()

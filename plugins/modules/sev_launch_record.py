#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sev_launch_record
short_description: The controller's record of the SEV launches it started, and what to do with an active domain
version_added: 0.1.0
description:
  - The memory of the role C(confidential.sev.sev_launch) between runs, kept on the controller in O(state_dir).
    One record per launch, per inventory host and domain UUID, with the libvirt domain ID, the validated
    measurement (and its mnonce) and the stage reached, V(started), V(validated), V(injected), V(resumed), or a
    failure.
  - O(state=query) compares the domain the host reports now (O(reported), a registered
    M(confidential.sev.sev_launch_info) result) with the latest record and returns RV(plan), what a run does
    with it, V(launch) (shut off), V(ok) (this controller validated the launch the host reports now, same domain
    ID and measurement; left untouched), V(resume) (validated, not resumed, and its C(run_state) is still
    V(prelaunch)), V(relaunch) (another active launch and O(if_active=relaunch)) or V(fail) (left untouched).
  - V(ok) is B(not a re-attestation), it believes the host's report of domain ID and measurement.
  - O(state=prepare) makes a new launch directory (0700) for a fresh session's files; the other states write
    that stage of the launch's record (0600, atomically).
  - B(Runs on the controller), whatever host the task targets, through its action plugin. The hypervisor host
    is not contacted.
  - "Layout: C(STATE_DIR/hosts/<host>/<domain uuid>/current.json) (the latest launch's record),
    C(.../launches/<launch id>/record.json) and its session files C(tek), C(tik), C(godh.b64), C(session.b64);
    M(confidential.sev.sev_measurement_validate) keeps C(STATE_DIR/seen/<tik sha256>/<mnonce>.json)."
author:
  - confidential.sev developers (@confidential-sev)
extends_documentation_fragment:
  - action_common_attributes
  - action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: O(state=query) reads; the other states report what they would write and write nothing.
  diff_mode:
    support: none
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    platforms: all
options:
  state_dir:
    description:
      - The state directory on the controller, absolute, created 0700; refused when group or others can access it.
        It must persist between runs (with AWX, a persistent path), or a re-run finds no record.
    type: path
    required: true
  host:
    description: The inventory host the domain runs on (a path component; unusual characters are escaped).
    type: str
    required: true
  domain_uuid:
    description: The domain's UUID, as the host reported it when the run pinned the domain.
    type: str
    required: true
  state:
    description: V(query) the plan, V(prepare) a new launch directory, or write a stage (or V(failed)) of O(launch_id).
    type: str
    required: true
    choices: [query, prepare, started, validated, injected, resumed, failed]
  reported:
    description: With O(state=query), the registered result of M(confidential.sev.sev_launch_info) for the domain.
    type: dict
  if_active:
    description: With O(state=query), the plan for an active domain this controller did not validate.
    type: str
    default: fail
    choices: [fail, relaunch]
  resume:
    description: With O(state=query), whether a validated launch should run (V(false) leaves it paused, then V(ok)).
    type: bool
    default: true
  launch_id:
    description: The launch, as O(state=prepare) returned it.
    type: str
  domain_name:
    description: The domain's name, recorded.
    type: str
  domain_id:
    description: The libvirt domain ID of the launch, recorded with V(started).
    type: int
  uri:
    description: The libvirt URI on the host, recorded.
    type: str
  session:
    description: Whether the launch got a V(fresh) session or a V(premade) one, recorded.
    type: str
    choices: [fresh, premade]
  secret_count:
    description: How many secrets the launch is to receive, recorded (a launch validated but not injected is not resumed).
    type: int
  measurement:
    description: With V(validated), the measurement that validated (base64, 48 bytes).
    type: str
  replay:
    description: With V(validated), the RV(confidential.sev.sev_measurement_validate#module:replay) result, recorded.
    type: dict
  reason:
    description: With V(failed), why.
    type: str
  destroyed:
    description: With V(failed), whether the launch was destroyed.
    type: bool
seealso:
  - module: confidential.sev.sev_launch_info
  - module: confidential.sev.sev_measurement_validate
"""

EXAMPLES = r"""
- name: What to do with the domain the host reports now
  confidential.sev.sev_launch_record:
    state_dir: /var/lib/sev-owner/state
    host: "{{ inventory_hostname }}"
    domain_uuid: "{{ reported.uuid }}"
    state: query
    reported: "{{ reported }}"
  register: plan

- name: Record that the launch started
  confidential.sev.sev_launch_record:
    state_dir: /var/lib/sev-owner/state
    host: "{{ inventory_hostname }}"
    domain_uuid: "{{ reported.uuid }}"
    state: started
    launch_id: "{{ prepared.launch_id }}"
    domain_id: "{{ started.id }}"
"""

RETURN = r"""
plan:
  description: With O(state=query), V(launch), V(ok), V(resume), V(relaunch) or V(fail).
  type: str
  returned: with O(state=query)
  sample: launch
why:
  description: With O(state=query), why that plan, in a sentence.
  type: str
  returned: with O(state=query)
  sample: "the domain is shut off: launch it"
record:
  description:
    - The launch record. With O(state=query), the latest one, or null when this controller has none.
  type: dict
  returned: except with O(state=prepare)
  sample:
    version: 1
    host: hv1.example.net
    domain_uuid: 7c5e1c86-6a1a-4f4e-9a51-2c1f0f3c0a11
    domain_name: db1
    domain_id: 12
    uri: qemu:///system
    launch_id: 20261130T120102Z-1a2b3c4d
    session: fresh
    secret_count: 1
    stage: validated
    stage_times: {started: "2026-11-30T12:01:04Z", validated: "2026-11-30T12:01:05Z"}
    measurement: 3q2+7w... (64 characters)
    mnonce: 0f1e2d3c4b5a69788796a5b4c3d2e1f0
    tik_sha256: 5b0f... (64 hexadecimal digits)
    failed: null
  contains:
    version:
      description: The record format version.
      type: int
      sample: 1
    host:
      description: The O(host) the launch belongs to.
      type: str
      sample: hv1.example.net
    domain_uuid:
      description: The domain's UUID, canonical form.
      type: str
      sample: 7c5e1c86-6a1a-4f4e-9a51-2c1f0f3c0a11
    domain_name:
      description: The domain's name, as recorded with V(started).
      type: str
      sample: db1
    domain_id:
      description: The libvirt domain ID of the launch.
      type: int
      sample: 12
    uri:
      description: The libvirt URI on the host, as recorded.
      type: str
      sample: qemu:///system
    launch_id:
      description: The launch id from O(state=prepare).
      type: str
      sample: 20261130T120102Z-1a2b3c4d
    session:
      description: V(fresh) or V(premade).
      type: str
      sample: fresh
    secret_count:
      description: How many secrets the launch is to receive.
      type: int
      sample: 1
    stage:
      description: The last stage reached, V(started), V(validated), V(injected) or V(resumed), or null.
      type: str
      sample: validated
    stage_times:
      description: When each stage was recorded (UTC, ISO 8601), by stage.
      type: dict
      sample: {started: "2026-11-30T12:01:04Z", validated: "2026-11-30T12:01:05Z"}
      contains:
        started:
          description: When V(started) was recorded.
          type: str
          returned: once the launch reached it
          sample: "2026-11-30T12:01:04Z"
        validated:
          description: When V(validated) was recorded.
          type: str
          returned: once the launch reached it
          sample: "2026-11-30T12:01:05Z"
        injected:
          description: When V(injected) was recorded.
          type: str
          returned: once the launch reached it
          sample: "2026-11-30T12:01:06Z"
        resumed:
          description: When V(resumed) was recorded.
          type: str
          returned: once the launch reached it
          sample: "2026-11-30T12:01:07Z"
    measurement:
      description: The validated launch measurement (base64), from V(validated) on.
      type: str
      sample: 3q2+7w... (64 characters)
    mnonce:
      description: The measurement's nonce, in hex, from V(validated) on.
      type: str
      sample: 0f1e2d3c4b5a69788796a5b4c3d2e1f0
    tik_sha256:
      description: The keyed digest of the launch's TIK that the replay record uses (never the TIK), or null.
      type: str
      sample: 5b0f... (64 hexadecimal digits)
    failed:
      description: Null, or how the launch failed, C(reason), C(destroyed) (true, false or null) and C(at) (UTC).
      type: dict
      sample: {reason: "mismatch", destroyed: true, at: "2026-11-30T12:01:06Z"}
      contains:
        reason:
          description: The failure's reason, as the failed step reported it.
          type: str
          sample: mismatch
        destroyed:
          description: Whether the launch was destroyed (null when no destroy was tried).
          type: bool
          sample: true
        at:
          description: When the failure was recorded (UTC).
          type: str
          sample: "2026-11-30T12:01:06Z"
launch_id:
  description: The launch id (a UTC time stamp and 8 random hex digits).
  type: str
  returned: except with O(state=query)
  sample: 20261130T120102Z-1a2b3c4d
launch_dir:
  description: With O(state=prepare), the new launch directory (0700; not created in check mode).
  type: str
  returned: with O(state=prepare)
  sample: /var/lib/sev-owner/state/hv1.example.net/7c5e1c86-6a1a-4f4e-9a51-2c1f0f3c0a11/launches/20261130T120102Z-1a2b3c4d
files:
  description: With O(state=prepare), where a fresh session's files go, for M(confidential.sev.sev_session).
  type: dict
  returned: with O(state=prepare)
  sample: {tek: .../launches/20261130T120102Z-1a2b3c4d/tek, tik: .../tik, dh_cert: .../godh.b64, session: .../session.b64}
  contains:
    tek:
      description: The path for O(confidential.sev.sev_session#module:tek_file).
      type: str
      sample: /var/lib/sev-owner/state/hv1.example.net/7c5e1c86-6a1a-4f4e-9a51-2c1f0f3c0a11/launches/20261130T120102Z-1a2b3c4d/tek
    tik:
      description: The path for O(confidential.sev.sev_session#module:tik_file).
      type: str
      sample: /var/lib/sev-owner/state/hv1.example.net/7c5e1c86-6a1a-4f4e-9a51-2c1f0f3c0a11/launches/20261130T120102Z-1a2b3c4d/tik
    dh_cert:
      description: The path for O(confidential.sev.sev_session#module:dh_cert_file).
      type: str
      sample: /var/lib/sev-owner/state/hv1.example.net/7c5e1c86-6a1a-4f4e-9a51-2c1f0f3c0a11/launches/20261130T120102Z-1a2b3c4d/godh.b64
    session:
      description: The path for O(confidential.sev.sev_session#module:session_file).
      type: str
      sample: /var/lib/sev-owner/state/hv1.example.net/7c5e1c86-6a1a-4f4e-9a51-2c1f0f3c0a11/launches/20261130T120102Z-1a2b3c4d/session.b64
state_dir:
  description: O(state_dir), as used.
  type: str
  returned: on success
  sample: /var/lib/sev-owner/state
msg:
  description:
    - What was done (for O(state=query), the plan and why; else the launch and the stage recorded), or why the task
      failed, naming the option or record at fault.
  type: str
  returned: always
  sample: "domain_id must be the running domain's ID, an integer of at least 1, got 0"
reason:
  description: V(ok), or why the task failed (V(unsupported) for bad input, V(insecure), V(error)).
  type: str
  returned: always
  sample: ok
rc:
  description: The exit code for RV(reason) (0, 2, 3, 6).
  type: int
  returned: always
  sample: 0
"""

from ansible_collections.confidential.sev.plugins.module_utils.controller_only import refuse_on_managed_host
from ansible_collections.confidential.sev.plugins.module_utils.launch_record_options import (
    ARGUMENT_SPEC, VALIDATION_RULES,
)


def main():
    refuse_on_managed_host('sev_launch_record', ARGUMENT_SPEC, VALIDATION_RULES)


if __name__ == '__main__':
    main()

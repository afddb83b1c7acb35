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
  - The memory of the role M(confidential.sev.sev_launch) between runs, kept on the controller in O(state_dir).
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
record:
  description:
    - The launch record, C(version), C(host), C(domain_uuid), C(domain_name), C(domain_id), C(uri), C(launch_id),
      C(session), C(secret_count), C(stage), C(stage_times), C(measurement), C(mnonce), C(tik_sha256), C(failed)
      (null, or C(reason), C(destroyed), C(at)). With O(state=query), the latest one, or null.
  type: dict
  returned: except with O(state=prepare)
launch_id:
  description: The launch id.
  type: str
  returned: except with O(state=query)
launch_dir:
  description: With O(state=prepare), the new launch directory.
  type: str
  returned: with O(state=prepare)
files:
  description: With O(state=prepare), where a fresh session's C(tek), C(tik), C(dh_cert) and C(session) go.
  type: dict
  returned: with O(state=prepare)
reason:
  description: V(ok), or why the task failed.
  type: str
  returned: always
rc:
  description: The exit code for RV(reason) (0, 2, 3, 6).
  type: int
  returned: always
"""

from ansible_collections.confidential.sev.plugins.module_utils.controller_only import refuse_on_managed_host
from ansible_collections.confidential.sev.plugins.module_utils.launch_record_options import (
    ARGUMENT_SPEC, VALIDATION_RULES,
)


def main():
    refuse_on_managed_host('sev_launch_record', ARGUMENT_SPEC, VALIDATION_RULES)


if __name__ == '__main__':
    main()

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_launch_batch's options (Ansible-free).

The options are the role confidential.sev.sev_launch's settings, named like its
variables without the ``sev_launch_`` prefix, plus ``guests`` (each entry a
mapping with ``domain`` and any of those settings for that guest only) and
``digest_cache``.  An entry is checked on its own against GUEST_SPEC, so that a
bad entry fails that guest only.
"""

from __future__ import annotations

from .sev import policy as policy_mod
from .sev.vmsa import DEFAULT_VARIANT, VARIANTS

DEFAULT_URI = 'qemu:///system'

# One guest's settings (every key an entry of ``guests`` may override).
SETTINGS_SPEC = dict(
    uri=dict(type='str', default=DEFAULT_URI),
    state_dir=dict(type='path', required=True),
    if_active=dict(type='str', default='fail', choices=['fail', 'relaunch']),
    resume=dict(type='bool', default=True),
    allow_local=dict(type='bool', default=False),
    policy=dict(type='int'),
    cek_file=dict(type='path'),
    ark_file=dict(type='path'),
    ask_file=dict(type='path'),
    lab_root=dict(type='bool', default=False),
    generation=dict(type='str'),
    cpu0_id=dict(type='str'),
    min_pdh_api_version=dict(type='str'),
    tek=dict(type='path', no_log=True),
    tik=dict(type='path', no_log=True),
    tk=dict(type='path', no_log=True),
    firmware=dict(type='path'),
    kernel=dict(type='path'),
    initrd=dict(type='path'),
    firmware_sha256=dict(type='str'),
    kernel_sha256=dict(type='str'),
    initrd_sha256=dict(type='str'),
    cmdline=dict(type='str'),
    cmdline_b64=dict(type='str'),
    num_cpus=dict(type='int'),
    vmsa_cpu0=dict(type='path'),
    vmsa_cpu1=dict(type='path'),
    cpu_family=dict(type='int'),
    cpu_model=dict(type='int'),
    cpu_stepping=dict(type='int'),
    vmsa_variant=dict(type='str', default=DEFAULT_VARIANT, choices=sorted(VARIANTS)),
    vmsa_sev_features=dict(type='int', default=0),
    require_policy=dict(type='list', elements='str', default=['NODBG', 'NOKS'],
                        choices=sorted(policy_mod.FLAG_BITS)),
    min_api_version=dict(type='str'),
    min_build_id=dict(type='int'),
    diagnose_firmware=dict(type='list', elements='path', default=[]),
    secrets=dict(type='list', elements='dict', default=[], no_log=True, options=dict(
        guid=dict(type='str', required=True),
        path=dict(type='path', required=True),
    )),
    secret_address=dict(type='int', no_log=False),
)

# Rules that hold per guest (checked on each guest's merged settings).
GUEST_RULES = dict(
    mutually_exclusive=[('tk', 'tik'), ('tk', 'tek'), ('cmdline', 'cmdline_b64'),
                        ('vmsa_cpu0', 'cpu_family'), ('vmsa_cpu0', 'cpu_model'), ('vmsa_cpu0', 'cpu_stepping')],
    required_together=[('tik', 'tek'), ('ark_file', 'ask_file'), ('cpu_family', 'cpu_model', 'cpu_stepping')],
)

# An entry of ``guests``: domain plus any setting (no defaults: a key that is
# absent takes the task's value).
GUEST_SPEC = dict(domain=dict(type='str', required=True))
GUEST_SPEC.update((name, dict((key, value) for key, value in entry.items() if key not in ('default', 'required')))
                  for name, entry in SETTINGS_SPEC.items())

ARGUMENT_SPEC = dict(SETTINGS_SPEC)
ARGUMENT_SPEC.update(
    guests=dict(type='list', elements='raw', required=True),
    host=dict(type='str'),
    digest_cache=dict(type='path'),
    max_parallel=dict(type='int', default=1),
)
# Task-level rules are checked per guest, after its overrides (one guest may
# give tk while the task gives tik and tek for the others).
VALIDATION_RULES = {}

# Settings whose value is a path to key or secret material: never shown.
SECRET_SETTINGS = ('tik', 'tek', 'tk', 'secrets')

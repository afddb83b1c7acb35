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

import copy

from . import session_options, validate_options
from .sev import policy as policy_mod

DEFAULT_URI = 'qemu:///system'

# The settings the validation and the session take exactly as sev_measurement_validate
# and sev_session do: one definition each, in their modules' option specs.
VALIDATION_SETTINGS = (
    'allow_local', 'policy', 'tek', 'tik', 'tk', 'firmware', 'kernel', 'initrd', 'firmware_sha256',
    'kernel_sha256', 'initrd_sha256', 'cmdline', 'cmdline_b64', 'num_cpus', 'vmsa_cpu0', 'vmsa_cpu1',
    'cpu_family', 'cpu_model', 'cpu_stepping', 'vmsa_variant', 'vmsa_sev_features', 'min_api_version',
    'min_build_id', 'diagnose_firmware', 'secrets', 'secret_address',
)
SESSION_SETTINGS = ('cek_file', 'ark_file', 'ask_file', 'lab_root', 'cpu0_id', 'min_pdh_api_version')

# One guest's settings (every key an entry of ``guests`` may override): the role's
# own, those whose default is the role's, and the shared ones above.
SETTINGS_SPEC = dict(
    uri=dict(type='str', default=DEFAULT_URI),
    state_dir=dict(type='path', required=True),
    if_active=dict(type='str', default='fail', choices=['fail', 'relaunch']),
    resume=dict(type='bool', default=True),
    generation=dict(type='str'),
    require_policy=dict(type='list', elements='str', default=['NODBG', 'NOKS'],
                        choices=sorted(policy_mod.FLAG_BITS)),
)
SETTINGS_SPEC.update((name, copy.deepcopy(validate_options.ARGUMENT_SPEC[name])) for name in VALIDATION_SETTINGS)
SETTINGS_SPEC.update((name, copy.deepcopy(session_options.ARGUMENT_SPEC[name])) for name in SESSION_SETTINGS)

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

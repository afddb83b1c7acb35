# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The options of every module that talks to libvirt on the hypervisor host.
    DOCUMENTATION = r"""
requirements:
  - libvirt-python (on the host that runs the module)
options:
  domain:
    description: The domain's name, UUID or ID.
    type: str
    required: true
  uri:
    description: The libvirt connection URI, as seen from the host that runs the module.
    type: str
    default: qemu:///system
"""

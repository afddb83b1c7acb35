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
    description:
      - The domain's name or UUID, never its runtime ID (a number like C(1) would otherwise select whichever
        domain runs with that ID). An identifier made of digits only is a name; it is looked up as a UUID only
        when it has 32 digits and no domain has that name. A UUID-shaped identifier is looked up as a UUID,
        then as a name.
      - Pass the RV(uuid) a first task returned to every later task, so that they all act on the same domain.
    type: str
    required: true
  uri:
    description: The libvirt connection URI, as seen from the host that runs the module.
    type: str
    default: qemu:///system
"""

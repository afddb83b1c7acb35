# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the hypervisor host reports, and how the controller reads it.

  connection     host side: libvirt calls, domain lookup, libvirt errors as SevErrors
  domain_config  controller side: hardened parse of domain and capabilities XML,
                 and the reference tool's configuration checks
  launch_report  controller side: type-checks everything the host returned
  domain_rules   controller side: the reference tool's rules for validating
                 straight from a domain (local/remote, state, host-supplied inputs)
"""

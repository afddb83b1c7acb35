# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: kds_cek_url
short_description: The URL of a chip's CEK on AMD's key server
version_added: 0.1.0
description:
  - Turns an AMD SEV chip id (C(cpu0-id), 64 bytes) into the URL C(https://kdsintf.amd.com/cek/id/<hex of the id>)
    where AMD's key server (KDS) serves the chip's CEK signed by AMD, the file
    M(confidential.sev.sev_session) needs as O(confidential.sev.sev_session#module:cek_file).
  - The id is checked to be exactly 64 bytes, so a value reported by an untrusted host cannot put anything else
    into the URL.
author:
  - confidential.sev developers (@confidential-sev)
options:
  _input:
    description:
      - The chip id as base64 (as libvirt reports C(cpu0-id)) or 128 hex digits, or the RV(confidential.sev.sev_launch_info#module:node_sev)
        dict of a registered M(confidential.sev.sev_launch_info) result, or that whole result.
    type: raw
    required: true
seealso:
  - module: confidential.sev.sev_session
"""

EXAMPLES = r"""
- name: Fetch the chip's CEK from AMD's key server, on the controller
  ansible.builtin.get_url:
    url: "{{ hv.node_sev.cpu0_id | confidential.sev.kds_cek_url }}"
    dest: "files/{{ inventory_hostname }}-cek.cert"
    mode: "0644"
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description: The URL, with the chip id in lower-case hex.
  type: str
  sample: https://kdsintf.amd.com/cek/id/0123...cdef
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.confidential.sev.plugins.module_utils.session_options import chip_id, kds_cek_url
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import SevError


def cek_url(value):
    if isinstance(value, dict):
        node = value.get('node_sev', value)
        if not isinstance(node, dict):
            raise AnsibleFilterError('kds_cek_url: the sev_launch_info result has no node_sev '
                                     '(run it with node_sev_info: true)')
        value = node.get('cpu0_id', node.get('cpu0-id'))
        if value is None:
            raise AnsibleFilterError('kds_cek_url: the host reported no cpu0_id (libvirt 8.4 or later reports it)')
    try:
        return kds_cek_url(chip_id(value, 'kds_cek_url input'))
    except SevError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    def filters(self):
        return {'kds_cek_url': cek_url}

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SEV / SEV-ES guests for the emulated hypervisors: firmware and domain XML.

``sev_guest_xml()`` writes the smallest domain libvirt 9.0 launches with
``<launchSecurity type='sev'>`` that boots OVMF under TCG: q35, OVMF as a
read-only, stateless pflash (no NVRAM: libvirt's ``virt-qemu-sev-validate``
refuses NVRAM, and a varstore would not be measured), an explicit EPYC CPU
(the vCPU model enters SEV-ES VMSAs, so it is pinned, never host-derived), no
USB controller, no balloon, no devices the guest does not need.
"""

from __future__ import annotations

import os
import sys

from lxml import etree

OVMF_CODE = '/usr/share/OVMF/OVMF_CODE.fd'
# Policy bits (SEV API, "Guest policy"): NODBG, NOKS, ES.
POLICY_NODBG = 0x1
POLICY_NOKS = 0x2
POLICY_ES = 0x4
CBITPOS = 47
REDUCED_PHYS_BITS = 1

_REPO = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..'))


def patched_ovmf(dest_path, source=OVMF_CODE):
    """Debian's OVMF_CODE.fd with AmdSev's hash-table and secret-area footer entries.

    Uses tests/support/emulated_platform.py's patch-ovmf (the demo's).
    Returns dest_path.
    """
    build = os.path.join(_REPO, 'build')
    if build not in sys.path:
        sys.path.insert(0, build)
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.confidential.sev.tests.support.emulated_platform import patch_ovmf
    patch_ovmf(source, dest_path)
    os.chmod(dest_path, 0o644)
    return dest_path


def default_policy(es=False):
    """NODBG | NOKS, plus ES for an SEV-ES guest."""
    return POLICY_NODBG | POLICY_NOKS | (POLICY_ES if es else 0)


def _sub(parent, tag, text=None, **attrs):
    elem = etree.SubElement(parent, tag, {k.rstrip('_'): v for k, v in attrs.items()})
    if text is not None:
        elem.text = text
    return elem


def sev_guest_xml(name, firmware, vcpus=1, es=False, policy=None, dh_cert=None, session=None,
                  kernel=None, initrd=None, cmdline=None, memory_mib=256, cpu_model='EPYC'):
    """Domain XML (str) of an SEV (es=False) or SEV-ES guest, <domain type='qemu'> (TCG).

    policy: int, default default_policy(es); a policy with the ES bit and
    es=False (or the reverse) is written as given, for negative tests.
    dh_cert / session: the guest owner's base64 GODH and session blob.
    kernel (optional initrd, cmdline): direct boot, with kernelHashes='yes'.
    """
    if policy is None:
        policy = default_policy(es)
    if not isinstance(vcpus, int) or vcpus < 1:
        raise ValueError('vcpus must be a positive int: %r' % (vcpus,))
    if (initrd or cmdline is not None) and not kernel:
        raise ValueError('initrd/cmdline need a kernel')
    domain = etree.Element('domain', type='qemu')
    _sub(domain, 'name', name)
    _sub(domain, 'memory', str(memory_mib), unit='MiB')
    _sub(domain, 'vcpu', str(vcpus), placement='static')
    os_elem = _sub(domain, 'os')
    _sub(os_elem, 'type', 'hvm', arch='x86_64', machine='q35')
    _sub(os_elem, 'loader', firmware, readonly='yes', type_='pflash', stateless='yes')
    if kernel:
        _sub(os_elem, 'kernel', kernel)
        if initrd:
            _sub(os_elem, 'initrd', initrd)
        if cmdline is not None:
            _sub(os_elem, 'cmdline', cmdline)
    features = _sub(domain, 'features')
    _sub(features, 'acpi')
    cpu = _sub(domain, 'cpu', mode='custom', match='exact', check='none')
    _sub(cpu, 'model', cpu_model, fallback='forbid')
    _sub(domain, 'on_poweroff', 'destroy')
    _sub(domain, 'on_reboot', 'destroy')
    _sub(domain, 'on_crash', 'destroy')
    devices = _sub(domain, 'devices')
    _sub(devices, 'controller', type_='usb', model='none')
    _sub(devices, 'memballoon', model='none')
    attrs = {'type': 'sev'}
    if kernel:
        attrs['kernelHashes'] = 'yes'
    sec = etree.SubElement(domain, 'launchSecurity', attrs)
    _sub(sec, 'cbitpos', str(CBITPOS))
    _sub(sec, 'reducedPhysBits', str(REDUCED_PHYS_BITS))
    _sub(sec, 'policy', '0x%04x' % policy)
    if dh_cert is not None:
        _sub(sec, 'dhCert', dh_cert)
    if session is not None:
        _sub(sec, 'session', session)
    return etree.tostring(domain, pretty_print=True, encoding='unicode')

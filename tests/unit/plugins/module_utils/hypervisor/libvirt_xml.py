# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain and capabilities XML as libvirt 9.0 writes it (virsh dumpxml of a
running guest, virsh capabilities on an EPYC Milan host), and the raw host
report that connection.gather_launch_report returns, written by hand.

domain_xml() assembles a domain from the parts a test varies; the defaults
give a plain SEV guest that passes every configuration check: dhCert and
session present, stateless AmdSev firmware, no NVRAM, no direct boot.
"""

from __future__ import annotations

import base64
import copy

UUID = '5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01'
AMDSEV_LOADER = '/usr/share/OVMF/OVMF.amdsev.fd'
OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd'
NVRAM = '/var/lib/libvirt/qemu/nvram/sev-guest_VARS.fd'
KERNEL = '/var/lib/libvirt/boot/vmlinuz-6.1.0-13-amd64'
INITRD = '/var/lib/libvirt/boot/initrd.img-6.1.0-13-amd64'
CMDLINE = 'console=ttyS0 root=/dev/vda1 ro'
# Base64 the size of a real GODH certificate and launch blob; content is filler.
DH_CERT = base64.b64encode(bytes(range(256)) * 8 + bytes(40)).decode()
SESSION = base64.b64encode(bytes(reversed(range(256)))[:176]).decode()

HOST_PASSTHROUGH = "<cpu mode='host-passthrough' check='none' migratable='on'/>"
EPYC_MILAN = ("<cpu mode='custom' match='exact' check='full'>\n"
              "    <model fallback='forbid'>EPYC-Milan</model>\n"
              "    <vendor>AMD</vendor>\n"
              "    <feature policy='require' name='x2apic'/>\n"
              "    <feature policy='disable' name='svm'/>\n"
              "  </cpu>")

_DOMAIN = """<domain type='kvm' id='7'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='KiB'>4194304</memory>
  <currentMemory unit='KiB'>4194304</currentMemory>
  <memoryBacking>
    <locked/>
  </memoryBacking>
  {vcpu}
  <resource>
    <partition>/machine</partition>
  </resource>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
{os}    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  {cpu}
  <clock offset='utc'>
    <timer name='rtc' tickpolicy='catchup'/>
  </clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' iommu='on'/>
      <source file='/var/lib/libvirt/images/sev-guest.qcow2' index='1'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:6b:3c:58'/>
      <source network='default' portid='0b4d3ad6-7aa5-4b77-8e4e-3b1bdbd1fb1f' bridge='virbr0'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
      <driver iommu='on'/>
      <alias name='net0'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
    <serial type='pty'>
      <source path='/dev/pts/3'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
      <alias name='serial0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
{launch_security}  <seclabel type='dynamic' model='dac' relabel='yes'>
    <label>+64055:+994</label>
    <imagelabel>+64055:+994</imagelabel>
  </seclabel>
</domain>
"""


def sev_element(policy='0x0033', kernel_hashes=None, dh_cert=True, session=True, kind='sev'):
    """<launchSecurity> as libvirt 9.0 formats it (attributes, then cbitpos,
    reducedPhysBits, policy, dhCert, session)."""
    attributes = " type='%s'" % kind
    if kernel_hashes is not None:
        attributes += " kernelHashes='%s'" % kernel_hashes
    lines = ['  <launchSecurity%s>' % attributes,
             '    <cbitpos>47</cbitpos>',
             '    <reducedPhysBits>1</reducedPhysBits>',
             '    <policy>%s</policy>' % policy]
    if dh_cert:
        lines.append('    <dhCert>%s</dhCert>' % DH_CERT)
    if session:
        lines.append('    <session>%s</session>' % SESSION)
    lines.append('  </launchSecurity>')
    return '\n'.join(lines) + '\n'


def domain_xml(name='sev-guest', launch_security=None, loader=AMDSEV_LOADER, nvram=None,
               direct_boot=False, vcpus=4, current=None, cpu=HOST_PASSTHROUGH, **sev):
    """A running SEV domain's XML.  ``launch_security``: None for sev_element(**sev),
    '' for none at all, or the literal element.  ``direct_boot``: True for
    kernel, initrd and cmdline, or a subset as a tuple of names."""
    os_lines = []
    if loader is not None:
        os_lines.append("    <loader readonly='yes' type='pflash'>%s</loader>" % loader)
    if nvram is not None:
        os_lines.append("    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>%s</nvram>" % nvram)
    parts = ('kernel', 'initrd', 'cmdline') if direct_boot is True else (direct_boot or ())
    for part, value in (('kernel', KERNEL), ('initrd', INITRD), ('cmdline', CMDLINE)):
        if part in parts:
            os_lines.append('    <%s>%s</%s>' % (part, value, part))
    vcpu = ("<vcpu placement='static'>%d</vcpu>" % vcpus if current is None
            else "<vcpu placement='static' current='%d'>%d</vcpu>" % (current, vcpus))
    if launch_security is None:
        launch_security = sev_element(**sev)
    return _DOMAIN.format(name=name, uuid=UUID, vcpu=vcpu, cpu=cpu, launch_security=launch_security,
                          os=''.join(line + '\n' for line in os_lines))


SIGNATURE = "<signature family='25' model='1' stepping='1'/>"

_CAPABILITIES = """<capabilities>

  <host>
    <uuid>3a1b7c52-0c4f-11ee-9d4a-3cecef4a8b10</uuid>
    <cpu>
      <arch>x86_64</arch>
      <model>EPYC-Milan</model>
      <vendor>AMD</vendor>
      <microcode version='167776601'/>
      {signature}
      <counter name='tsc' frequency='2994375000' scaling='yes'/>
      <topology sockets='1' dies='1' cores='64' threads='2'/>
      <maxphysaddr mode='emulate' bits='48'/>
      <feature name='x2apic'/>
      <feature name='tsc-deadline'/>
      <feature name='svm'/>
      <pages unit='KiB' size='4'/>
      <pages unit='KiB' size='2048'/>
      <pages unit='KiB' size='1048576'/>
    </cpu>
    <power_management>
      <suspend_mem/>
    </power_management>
    <iommu support='yes'/>
    <migration_features>
      <live/>
      <uri_transports>
        <uri_transport>tcp</uri_transport>
        <uri_transport>rdma</uri_transport>
      </uri_transports>
    </migration_features>
    <secmodel>
      <model>dac</model>
      <doi>0</doi>
      <baselabel type='kvm'>+64055:+994</baselabel>
      <baselabel type='qemu'>+64055:+994</baselabel>
    </secmodel>
  </host>

  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <wordsize>64</wordsize>
      <emulator>/usr/bin/qemu-system-x86_64</emulator>
      <machine maxCpus='288'>pc-q35-7.2</machine>
      <domain type='qemu'/>
      <domain type='kvm'/>
    </arch>
    <features>
      <acpi default='on' toggle='yes'/>
      <apic default='on' toggle='no'/>
    </features>
  </guest>

</capabilities>
"""


def capabilities_xml(signature=SIGNATURE):
    return _CAPABILITIES.format(signature=signature or '')


LAUNCH_SECURITY = {
    # what virDomainGetLaunchSecurityInfo returns for a paused SEV guest
    'sev-measurement': base64.b64encode(bytes(range(48))).decode(),
    'sev-api-major': 0,
    'sev-api-minor': 24,
    'sev-build-id': 15,
    'sev-policy': 0x33,
}

NODE_SEV = {
    # virNodeGetSEVInfo
    'pdh': base64.b64encode(b'P' * 2084).decode(),
    'cert-chain': base64.b64encode(b'C' * 3600).decode(),
    'cpu0-id': base64.b64encode(b'I' * 64).decode(),
    'cbitpos': 51,
    'reduced-phys-bits': 1,
    'max-guests': 509,
    'max-es-guests': 100,
}


def raw_report(hostname='hv1.example.net', launch_security=None, node_sev=None, state='paused',
               xml=None, capabilities=None, vcpus=4, run_state=None):
    """connection.gather_launch_report's return value for a paused SEV guest
    (paused before its first run unless ``run_state`` says otherwise)."""
    codes = {'paused': (3, 1, 'user', True, 'prelaunch'), 'running': (1, 1, '1', True, 'running'),
             'shutoff': (5, 1, '1', False, None)}
    code, reason, reason_name, active, default_run_state = codes[state]
    return {
        'hostname': hostname,
        'domain': {'name': 'sev-guest', 'uuid': UUID, 'id': 7 if active else -1},
        'state': {'state': code, 'state_name': state, 'reason': reason, 'reason_name': reason_name,
                  'active': active, 'vcpus': vcpus,
                  'run_state': default_run_state if run_state is None else run_state},
        'domain_xml': domain_xml() if xml is None else xml,
        'capabilities_xml': capabilities_xml() if capabilities is None else capabilities,
        'launch_security': (copy.deepcopy(LAUNCH_SECURITY) if launch_security is None and active
                            else launch_security),
        'node_sev': node_sev,
    }

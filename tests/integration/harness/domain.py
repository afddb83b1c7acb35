# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal TCG domain (no disk, no network, 64 MiB, 1 vCPU) for lifecycle tests."""

from __future__ import annotations

from xml.sax.saxutils import escape

import libvirt

# What libvirt 9.0 rejects at define time on a host without SEV (see README).
SEV_LAUNCH_SECURITY_XML = """
  <launchSecurity type='sev'>
    <cbitpos>47</cbitpos>
    <reducedPhysBits>1</reducedPhysBits>
    <policy>0x0003</policy>
  </launchSecurity>"""


def minimal_domain_xml(name, memory_mib=64, extra_xml=''):
    """<domain type='qemu'> (TCG): SeaBIOS finds nothing to boot and idles."""
    return """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <memballoon model='none'/>
  </devices>%s
</domain>
""" % (escape(name), memory_mib, extra_xml)


def _constants(prefix):
    """{name: value} of libvirt's integer constants starting with prefix."""
    return {n: getattr(libvirt, n) for n in dir(libvirt)
            if n.startswith(prefix) and isinstance(getattr(libvirt, n), int)}


_STATES = ('NOSTATE', 'RUNNING', 'BLOCKED', 'PAUSED', 'SHUTDOWN', 'SHUTOFF', 'CRASHED', 'PMSUSPENDED')


def state_name(state_reason):
    """(3, 1) -> 'VIR_DOMAIN_PAUSED/VIR_DOMAIN_PAUSED_USER', for messages."""
    state, reason = state_reason
    sname = next((s for s in _STATES if getattr(libvirt, 'VIR_DOMAIN_' + s) == state), None)
    if sname is None:
        return '%s/%s' % (state, reason)
    reasons = {v: k for k, v in _constants('VIR_DOMAIN_%s_' % sname).items() if not k.endswith('_LAST')}
    return 'VIR_DOMAIN_%s/%s' % (sname, reasons.get(reason, reason))


def error_name(code):
    """libvirt error code -> 'VIR_ERR_...'."""
    levels = ('VIR_ERR_NONE', 'VIR_ERR_WARNING', 'VIR_ERR_ERROR')  # virErrorLevel, not codes
    return {v: k for k, v in _constants('VIR_ERR_').items() if k not in levels}.get(code, str(code))


def error_domain_name(code):
    """libvirt error domain -> 'VIR_FROM_...'."""
    return {v: k for k, v in _constants('VIR_FROM_').items()}.get(code, str(code))


class MiniDomain:
    """Define / start (paused) / resume / suspend / destroy / undefine one domain."""

    def __init__(self, conn, name, memory_mib=64, extra_xml=''):
        self.conn = conn
        self.name = name
        self.xml = minimal_domain_xml(name, memory_mib, extra_xml)
        self.dom = None

    def define(self):
        self.dom = self.conn.defineXML(self.xml)
        return self

    def start(self, paused=False):
        self.dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED if paused else 0)
        return self

    def resume(self):
        self.dom.resume()
        return self

    def suspend(self):
        self.dom.suspend()
        return self

    def destroy(self):
        self.dom.destroy()
        return self

    def undefine(self):
        self.dom.undefine()
        return self

    def state(self):
        """(state, reason) as libvirt reports it now."""
        return tuple(self.dom.state())

    def cleanup(self):
        """Best effort: destroy if active, undefine if defined (after a failed test)."""
        try:
            dom = self.conn.lookupByName(self.name)
        except libvirt.libvirtError:
            return
        try:
            if dom.isActive():
                dom.destroy()
        except libvirt.libvirtError:
            pass
        try:
            dom.undefine()
        except libvirt.libvirtError:
            pass

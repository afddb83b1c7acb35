# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SEV-ES initial CPU state (VMSA pages), as the host measures them.

Each vCPU's 4096-byte VMSA is measured with LAUNCH_UPDATE_VMSA.  What the host
puts in it depends on how KVM created the VM, so the layout is chosen by a
*variant* named after that mechanism:

  legacy  KVM_SEV_ES_INIT (QEMU <= 9.0, or QEMU 9.1+ with legacy-vm-type):
          FPU state left zero.  Byte for byte what libvirt 9.0's
          virt-qemu-sev-validate builds.
  init2   KVM_SEV_INIT2 (Linux 6.10+ with QEMU 9.1+ and legacy-vm-type=off;
          QEMU's default is still the legacy interface): KVM syncs the FPU
          state, so MXCSR = 0x1f80 and x87 FCW = 0x037f.  What sev-snp-measure
          builds for QEMU.

``sev_features`` (offset 0x3b0) is separate: 0 unless the host sets features
such as DebugSwap (0x20).
"""

from __future__ import annotations

import struct

from .errors import UnsupportedUsage
from .policy import shown

VMSA_SIZE = 4096

VARIANTS = {
    # name: (MXCSR, x87 FCW)
    'legacy': (0, 0),
    'init2': (0x1f80, 0x037f),
}
DEFAULT_VARIANT = 'legacy'

# Segment registers, in VMSA order: (selector, attrib) at 0x00 + 16*i.
# limit is 0xffff for all; cs gets its base and selector from the caller.
_SEGMENTS = (
    ('es', 0x0093), ('cs', 0x009b), ('ss', 0x0093), ('ds', 0x0093),
    ('fs', 0x0093), ('gs', 0x0093), ('gdtr', 0), ('ldtr', 0x0082),
    ('idtr', 0), ('tr', 0x008b),
)

_OFF_EFER = 0x0d0
_OFF_CR4 = 0x148
_OFF_CR0 = 0x158
_OFF_DR7 = 0x160
_OFF_DR6 = 0x168
_OFF_RFLAGS = 0x170
_OFF_RIP = 0x178
_OFF_G_PAT = 0x268
_OFF_RDX = 0x310
_OFF_SEV_FEATURES = 0x3b0
_OFF_XCR0 = 0x3e8
_OFF_MXCSR = 0x408
_OFF_X87_FCW = 0x410

# The SEV-ES CPU generations by name: (family, model, stepping), which are
# also the signatures of QEMU's named models (EPYC, EPYC-Rome, ...): a guest
# started with such a -cpu model reports that signature whatever the host is.
NAMED_CPUS = {
    'Naples': (23, 1, 2),        # QEMU EPYC
    'Rome': (23, 49, 0),         # QEMU EPYC-Rome
    'Milan': (25, 1, 1),         # QEMU EPYC-Milan
    'Genoa': (25, 17, 0),        # QEMU EPYC-Genoa
    'Turin': (26, 0, 0),         # QEMU EPYC-Turin
}
QEMU_CPU_MODELS = {'EPYC': 'Naples', 'EPYC-Rome': 'Rome', 'EPYC-Milan': 'Milan', 'EPYC-Genoa': 'Genoa',
                   'EPYC-Turin': 'Turin'}

BSP_CS_BASE = 0xffff0000
BSP_RIP = 0xfff0


def cpu_signature(family, model, stepping):
    """CPUID(1).EAX for a family/model/stepping, as the VMSA's RDX holds it.

    Family above 0xf goes into the extended family field.  Values outside
    what CPUID can encode are refused rather than masked.
    """
    for name, value, limit in (('cpu_family', family, 0xf + 0xff),
                               ('cpu_model', model, 0xff),
                               ('cpu_stepping', stepping, 0xf)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise UnsupportedUsage('%s must be an integer from 0 to %d, got %s' % (name, limit, shown(value)))
    if family <= 0xf:
        sig = family << 8
    else:
        sig = (0xf << 8) | ((family - 0xf) << 20)
    return sig | ((model & 0xf) << 4) | ((model >> 4) << 16) | stepping


def build_vmsa(cs_base, rip, signature, variant=DEFAULT_VARIANT, sev_features=0):
    """One 4096-byte VMSA page."""
    if variant not in VARIANTS:
        raise UnsupportedUsage('vmsa_variant must be one of %s, got %r'
                               % (', '.join(sorted(VARIANTS)), variant))
    if not isinstance(sev_features, int) or isinstance(sev_features, bool) or not 0 <= sev_features < 1 << 64:
        raise UnsupportedUsage('sev_features must fit in 64 bits')
    mxcsr, fcw = VARIANTS[variant]
    page = bytearray(VMSA_SIZE)
    for index, (name, attrib) in enumerate(_SEGMENTS):
        selector, base = (0xf000, cs_base) if name == 'cs' else (0, 0)
        struct.pack_into('<HHIQ', page, 16 * index, selector, attrib, 0xffff, base)
    for offset, value in ((_OFF_EFER, 0x1000), (_OFF_CR4, 0x40), (_OFF_CR0, 0x10),
                          (_OFF_DR7, 0x400), (_OFF_DR6, 0xffff0ff0), (_OFF_RFLAGS, 0x2),
                          (_OFF_RIP, rip), (_OFF_G_PAT, 0x0007040600070406),
                          (_OFF_RDX, signature), (_OFF_SEV_FEATURES, sev_features),
                          (_OFF_XCR0, 0x1)):
        struct.pack_into('<Q', page, offset, value)
    struct.pack_into('<I', page, _OFF_MXCSR, mxcsr)
    struct.pack_into('<H', page, _OFF_X87_FCW, fcw)
    return bytes(page)


def build_vmsas(reset_address, family, model, stepping, variant=DEFAULT_VARIANT, sev_features=0):
    """(cpu0, cpu1) VMSAs: the BSP starts at the reset vector, every AP at the
    firmware's SEV-ES reset address (all APs share one VMSA)."""
    signature = cpu_signature(family, model, stepping)
    bsp = build_vmsa(BSP_CS_BASE, BSP_RIP, signature, variant, sev_features)
    ap = build_vmsa(reset_address & 0xffff0000, reset_address & 0xffff, signature, variant, sev_features)
    return bsp, ap

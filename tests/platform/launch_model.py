# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an EMULATED SEV / SEV-ES launch measures: what QEMU 7.2 loads before LAUNCH_MEASURE.

EMULATED: no SEV hardware.  This is the host side of the launch digest, written from
docs/sev-measurement.md (sections 1, 3 and 4) and the SEV API, independently of plugins/:

  * the firmware image, all of it (pflash0 CODE or the -bios ROM), with QEMU's own
    reading of its OVMF footer table (SEV-ES reset block, hashes-table area, secret area);
  * with ``kernel-hashes=on`` and ``-kernel``: the 176-byte padded kernel hashes table,
    refused as QEMU 7.2 refuses it when the footer has no usable hashes-table area;
  * for SEV-ES (policy bit 2): one 4096-byte VMSA per vCPU, RDX = CPUID(1).EAX of the CPU
    model QEMU runs (family/model/stepping as QEMU 7.2 sets them), APs starting at the
    footer's reset address.
"""

from __future__ import annotations

import hashlib
import struct
import uuid

# ---- GUIDs (EFI mixed-endian byte form) -------------------------------------------------------


def _guid(text):
    return uuid.UUID(text).bytes_le


FOOTER_TABLE = _guid('96b582de-1fb2-45f7-baea-a366c55a082d')
SEV_ES_RESET_BLOCK = _guid('00f771de-1a7e-4fcb-890e-68c77e2fb44e')
HASH_TABLE_AREA = _guid('7255371f-3a3b-4b04-927b-1da6efa8d454')
SECRET_AREA = _guid('4c2eb361-7d9b-4cc3-8081-127c90d3d294')

HASHES_TABLE = _guid('9438d606-4f22-4cc9-b479-a793d411fd21')
HASHES_CMDLINE = _guid('97d02dd8-bd20-4c94-aa78-e7714d36ab2a')
HASHES_INITRD = _guid('44baf731-3a2f-4bd7-9af1-41e29169781d')
HASHES_KERNEL = _guid('4de79437-abd2-427f-b835-d5b172d2045b')
HASH_TABLE_PADDED_SIZE = 176

POLICY_ES = 1 << 2
VMSA_SIZE = 4096


class QemuRefusal(Exception):
    """QEMU 7.2 would stop here: ``lines`` are what it prints (without the program prefix)."""

    def __init__(self, *lines):
        self.lines = lines
        super().__init__('; '.join(lines))


# ---- the OVMF footer table -------------------------------------------------------------------

def footer_entries(image):
    """{GUID bytes: data bytes} of the footer table, {} when the image has none.

    Layout (doc section 3): reset vector in the last 32 bytes, before it the footer GUID and
    a u16 total length; entries end with ``u16 length || GUID`` and are walked backwards.
    A table that does not add up is treated as absent, as QEMU ignores a broken table.
    """
    if len(image) < 50 or image[-48:-32] != FOOTER_TABLE:
        return {}
    (total,) = struct.unpack('<H', image[-50:-48])
    start = len(image) - 32 - total
    if total < 18 or start < 0:
        return {}
    entries, cursor = {}, len(image) - 50
    while cursor > start:
        if cursor - 18 < start:
            return {}
        (size,) = struct.unpack('<H', image[cursor - 18:cursor - 16])
        if size < 18 or cursor - size < start:
            return {}
        entries[bytes(image[cursor - 16:cursor])] = bytes(image[cursor - size:cursor - 18])
        cursor -= size
    return entries


def _area(entries, guid):
    data = entries.get(guid)
    if data is None or len(data) < 8:
        return None
    return struct.unpack('<II', data[:8])


class Firmware:
    """A firmware image as QEMU reads it (sha256, footer areas, reset address)."""

    def __init__(self, path):
        self.path = path
        with open(path, 'rb') as stream:
            self.image = stream.read()
        self.sha256 = hashlib.sha256(self.image).hexdigest()
        self.entries = footer_entries(self.image)

    @property
    def hash_table_area(self):
        return _area(self.entries, HASH_TABLE_AREA)

    @property
    def secret_area(self):
        return _area(self.entries, SECRET_AREA)

    def reset_address(self):
        """The SEV-ES AP reset address, or QemuRefusal as QEMU 7.2 words it."""
        data = self.entries.get(SEV_ES_RESET_BLOCK)
        if data is None or len(data) < 4:
            raise QemuRefusal('SEV information block/Firmware GUID Table block not found in pflash rom',
                              'failed to locate and/or save reset vector')
        (address,) = struct.unpack('<I', data[:4])
        if not address:
            raise QemuRefusal('SEV-ES reset address is zero', 'failed to locate and/or save reset vector')
        return address


def patch_footer_areas(source, target, hash_table=(0x810c00, 0x400), secret_area=(0x810000, 0xc00)):
    """Copy ``source`` to ``target`` with real bases and sizes in its hashes-table and secret-area
    footer entries (the AmdSev build's addresses by default): generic OVMF builds carry both
    entries with base 0, size 0.  A test helper; the measured bytes are the patched file."""
    with open(source, 'rb') as stream:
        image = bytearray(stream.read())
    found = footer_entries(image)
    cursor = len(image) - 50
    start = len(image) - 32 - struct.unpack('<H', image[-50:-48])[0]
    wanted = {HASH_TABLE_AREA: hash_table, SECRET_AREA: secret_area}
    if not all(guid in found for guid in wanted):
        raise ValueError('%s: no hashes-table and secret-area entries in its OVMF footer' % source)
    while cursor > start:
        (size,) = struct.unpack('<H', image[cursor - 18:cursor - 16])
        guid = bytes(image[cursor - 16:cursor])
        if guid in wanted and wanted[guid] is not None:
            struct.pack_into('<II', image, cursor - size, *wanted[guid])
        cursor -= size
    with open(target, 'wb') as stream:
        stream.write(image)
    return target


# ---- the kernel hashes table ---------------------------------------------------------------

def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b''):
            digest.update(chunk)
    return digest.digest()


def hashes_table(kernel_sha256, initrd_sha256=None, cmdline=None):
    """QEMU's padded SevHashTable: header, then cmdline, initrd and kernel entries (50 bytes each),
    zero-padded to 176 bytes.  No initrd hashes b''; no cmdline hashes b'\\0'."""
    cmdline_sha = hashlib.sha256((cmdline or '').encode('utf-8') + b'\0').digest()
    initrd_sha = initrd_sha256 if initrd_sha256 is not None else hashlib.sha256(b'').digest()
    body = b''.join(guid + struct.pack('<H', 50) + digest for guid, digest in (
        (HASHES_CMDLINE, cmdline_sha), (HASHES_INITRD, initrd_sha), (HASHES_KERNEL, kernel_sha256)))
    table = HASHES_TABLE + struct.pack('<H', 18 + len(body)) + body
    return table + bytes(HASH_TABLE_PADDED_SIZE - len(table))


# ---- CPU models and the VMSA -----------------------------------------------------------------

# (family, model, stepping) of QEMU 7.2's x86 CPU models, read from the Debian 12 binary
# (qom-get family/model/stepping under TCG; test_launch_model re-reads a few from the real QEMU).
CPU_MODELS = {
    'EPYC': (23, 1, 2), 'EPYC-v1': (23, 1, 2), 'EPYC-v2': (23, 1, 2), 'EPYC-v3': (23, 1, 2),
    'EPYC-IBPB': (23, 1, 2),
    'EPYC-Rome': (23, 49, 0), 'EPYC-Rome-v1': (23, 49, 0), 'EPYC-Rome-v2': (23, 49, 0),
    'EPYC-Milan': (25, 1, 1), 'EPYC-Milan-v1': (25, 1, 1),
    'Opteron_G1': (15, 6, 1), 'Opteron_G1-v1': (15, 6, 1), 'Opteron_G2': (15, 6, 1), 'Opteron_G2-v1': (15, 6, 1),
    'Opteron_G3': (16, 2, 3), 'Opteron_G3-v1': (16, 2, 3), 'Opteron_G4': (21, 1, 2), 'Opteron_G4-v1': (21, 1, 2),
    'Opteron_G5': (21, 2, 0), 'Opteron_G5-v1': (21, 2, 0),
    'Dhyana': (24, 0, 1), 'Dhyana-v1': (24, 0, 1), 'Dhyana-v2': (24, 0, 1),
    'qemu64': (15, 107, 1), 'qemu64-v1': (15, 107, 1), 'kvm64': (15, 6, 1), 'kvm64-v1': (15, 6, 1),
    'phenom': (16, 2, 3), 'phenom-v1': (16, 2, 3), 'athlon': (6, 2, 3), 'athlon-v1': (6, 2, 3),
    # 'max' under TCG is qemu64's signature; 'host' exists only with KVM and is not modelled.
    'max': (15, 107, 1),
}
DEFAULT_CPU_MODEL = 'qemu64'


def cpu_signature(family, model, stepping):
    """CPUID(1).EAX: extended family above 0xf, extended model in bits 16-19."""
    if family > 0xf:
        value = 0xf << 8 | ((family - 0xf) & 0xff) << 20
    else:
        value = family << 8
    return value | (model & 0xf) << 4 | ((model >> 4) & 0xf) << 16 | (stepping & 0xf)


def resolve_cpu(cpu_option):
    """(model name, (family, model, stepping)) for a ``-cpu`` value (None: QEMU's default),
    with ``family=``/``model=``/``stepping=`` properties applied; (name, None) when unknown."""
    if not cpu_option:
        return DEFAULT_CPU_MODEL, CPU_MODELS[DEFAULT_CPU_MODEL]
    parts = cpu_option.split(',')
    name = parts[0]
    known = CPU_MODELS.get(name)
    if known is None:
        return name, None
    values = dict(zip(('family', 'model', 'stepping'), known))
    for part in parts[1:]:
        key, dummy, value = part.partition('=')
        if key in values and value:
            values[key] = int(value, 0)
    return name, (values['family'], values['model'], values['stepping'])


# Segment registers in VMSA order: selector, attributes, limit, base (doc section 4).
_SEGMENTS = ('es', 'cs', 'ss', 'ds', 'fs', 'gs', 'gdtr', 'ldtr', 'idtr', 'tr')
_ATTRIBUTES = {'es': 0x93, 'cs': 0x9b, 'ss': 0x93, 'ds': 0x93, 'fs': 0x93, 'gs': 0x93,
               'gdtr': 0, 'ldtr': 0x82, 'idtr': 0, 'tr': 0x8b}


def vmsa_page(rdx, cs_base, rip):
    """The reset-state VMSA that KVM (legacy KVM_SEV_ES_INIT, as QEMU 7.2 uses) encrypts for one vCPU.

    MXCSR and x87 FCW stay 0 and SEV_FEATURES 0, as for QEMU 7.2 (doc section 4)."""
    page = bytearray(VMSA_SIZE)
    for index, name in enumerate(_SEGMENTS):
        selector = 0xf000 if name == 'cs' else 0
        base = cs_base if name == 'cs' else 0
        struct.pack_into('<HHIQ', page, 16 * index, selector, _ATTRIBUTES[name], 0xffff, base)
    for offset, value in ((0xd0, 0x1000), (0x148, 0x40), (0x158, 0x10), (0x160, 0x400),
                          (0x168, 0xffff0ff0), (0x170, 0x2), (0x178, rip),
                          (0x268, 0x0007040600070406), (0x310, rdx), (0x3e8, 0x1)):
        struct.pack_into('<Q', page, offset, value)
    return bytes(page)


def vmsa_pages(num_cpus, signature, reset_address):
    """VMSA(BSP) then the APs' shared VMSA, one per vCPU."""
    bsp = vmsa_page(signature, 0xffff0000, 0xfff0)
    ap = vmsa_page(signature, reset_address & 0xffff0000, reset_address & 0xffff)
    return [bsp] + [ap] * (num_cpus - 1)


# ---- one launch --------------------------------------------------------------------------------

class LaunchPlan:
    """What LAUNCH_UPDATE_DATA / LAUNCH_UPDATE_VMSA receive for one launch, in order."""

    def __init__(self, firmware, policy, num_cpus=1, cpu_option=None, kernel_hashes=False,
                 kernel=None, initrd=None, cmdline=None):
        """``firmware`` a path; ``kernel``/``initrd`` paths, ``cmdline`` the -append text.
        Raises QemuRefusal where QEMU 7.2 refuses to start."""
        self.firmware = Firmware(firmware)
        self.policy = policy
        self.sev_es = bool(policy & POLICY_ES)
        self.num_cpus = num_cpus
        self.cpu_model, self.cpu_fms = resolve_cpu(cpu_option)
        self.kernel_hashes = bool(kernel_hashes)
        self.kernel_sha256 = self.initrd_sha256 = self.cmdline_sha256 = None
        self.pieces = [('firmware', self.firmware.image)]
        if self.sev_es:
            # QEMU reads the reset block while mapping the flash, before loading a kernel.
            self.reset_address = self.firmware.reset_address()
        if self.kernel_hashes and kernel:
            self.pieces.append(('kernel-hashes', self._hashes_table(kernel, initrd, cmdline)))
        if self.sev_es:
            if self.cpu_fms is None:
                raise QemuRefusal('EMULATED SEV platform: CPU model %r has no known family/model/stepping '
                                  '(the emulator cannot build its VMSA)' % self.cpu_model)
            signature = cpu_signature(*self.cpu_fms)
            for index, page in enumerate(vmsa_pages(num_cpus, signature, self.reset_address)):
                self.pieces.append(('vmsa-cpu%d' % index, page))

    def _hashes_table(self, kernel, initrd, cmdline):
        area = self.firmware.hash_table_area
        if area is None:
            raise QemuRefusal('SEV: kernel specified but guest firmware has no hashes table GUID')
        base, size = area
        if not base or size < HASH_TABLE_PADDED_SIZE:
            raise QemuRefusal('SEV: guest firmware hashes table area is invalid (base=0x%x size=0x%x)'
                              % (base, size))
        kernel_sha = file_sha256(kernel)
        initrd_sha = file_sha256(initrd) if initrd else None
        table = hashes_table(kernel_sha, initrd_sha, cmdline)
        self.kernel_sha256 = kernel_sha.hex()
        self.initrd_sha256 = table[68 + 18:68 + 50].hex()
        self.cmdline_sha256 = table[18 + 18:18 + 50].hex()
        return table

    def digest(self):
        digest = hashlib.sha256()
        for dummy, data in self.pieces:
            digest.update(data)
        return digest.digest()

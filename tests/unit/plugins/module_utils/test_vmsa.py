# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SEV-ES VMSA pages: every documented field at its offset, both variants."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, strategies as st

from ansible_collections.confidential.sev.plugins.module_utils.sev import vmsa
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage

RESET = 0x0080b004          # Debian 12 OVMF_CODE.fd / the real suffixes in tests/data
MILAN = 0xa00f11

# sha256 of the pages sev-snp-measure 0.0.13 builds for QEMU (VMSA(SevMode.SEV_ES,
# ap_eip=0x80b004, vcpu_sig=0xa00f11, guest_features=0)): that is the init2 variant.
# The legacy values are the same pages with MXCSR/FCW zeroed (libvirt 9.0).
KAT = {
    ('init2', 'bsp'): 'efcc96a66e22e3d25161643c1331c59ef2b11d0ac63369c49c0cf2133c0b58db',
    ('init2', 'ap'): 'a14b28cfdc8d4d0e2884708ff279ca1204b7e45d45970c38c32fcd3374ba9f4f',
    ('legacy', 'bsp'): 'f8b52f775502472e5797d2674d9de21f6abc05dc05e9bc49cbb7b6a13688d5e7',
    ('legacy', 'ap'): 'bcee5cb289f72882da17abd8dca5e8a7e9f8e2033e7ad96b4db0ab1a383a6487',
}


@pytest.mark.parametrize('family, model, stepping, signature', [
    (23, 1, 2, 0x800f12),      # Naples
    (23, 49, 0, 0x830f10),     # Rome
    (25, 1, 1, 0xa00f11),      # Milan
    (25, 17, 0, 0xa10f10),     # Genoa
    (26, 0, 0, 0xb00f00),      # Turin
    (6, 0x3a, 9, 0x306a9),     # family <= 0xf: no extended family
    (15, 0, 0, 0xf00),
    (16, 0, 0, 0x100f00),
    (0xf + 0xff, 0xff, 0xf, 0xfff0fff),
])
def test_cpu_signature(family, model, stepping, signature):
    assert vmsa.cpu_signature(family, model, stepping) == signature


@pytest.mark.parametrize('args, name', [
    ((-1, 0, 0), 'cpu_family'), ((0x10f, 0, 0), 'cpu_family'), ((True, 0, 0), 'cpu_family'),
    (('25', 1, 1), 'cpu_family'), ((None, 1, 1), 'cpu_family'),
    ((25, 256, 1), 'cpu_model'), ((25, -1, 1), 'cpu_model'), ((25, 1.0, 1), 'cpu_model'),
    ((25, 1, 16), 'cpu_stepping'), ((25, 1, -1), 'cpu_stepping'), ((25, 1, False), 'cpu_stepping'),
])
def test_cpu_signature_out_of_range_is_refused(args, name):
    with pytest.raises(UnsupportedUsage, match=name) as info:
        vmsa.cpu_signature(*args)
    assert info.value.rc == 2


def u16(page, offset):
    return struct.unpack_from('<H', page, offset)[0]


def u32(page, offset):
    return struct.unpack_from('<I', page, offset)[0]


def u64(page, offset):
    return struct.unpack_from('<Q', page, offset)[0]


SEGMENTS = [  # (offset, selector, attrib) for every segment but cs
    (0x00, 0, 0x93),     # es
    (0x20, 0, 0x93),     # ss
    (0x30, 0, 0x93),     # ds
    (0x40, 0, 0x93),     # fs
    (0x50, 0, 0x93),     # gs
    (0x60, 0, 0),        # gdtr
    (0x70, 0, 0x82),     # ldtr
    (0x80, 0, 0),        # idtr
    (0x90, 0, 0x8b),     # tr
]


def expected_page(cs_base, rip, signature, mxcsr, fcw, sev_features=0):
    """The page written field by field from the documented table."""
    page = bytearray(4096)
    for offset, selector, attrib in SEGMENTS:
        struct.pack_into('<HHIQ', page, offset, selector, attrib, 0xffff, 0)
    struct.pack_into('<HHIQ', page, 0x10, 0xf000, 0x9b, 0xffff, cs_base)
    for offset, value in ((0xd0, 0x1000), (0x148, 0x40), (0x158, 0x10), (0x160, 0x400),
                          (0x168, 0xffff0ff0), (0x170, 0x2), (0x178, rip),
                          (0x268, 0x0007040600070406), (0x310, signature),
                          (0x3b0, sev_features), (0x3e8, 0x1)):
        struct.pack_into('<Q', page, offset, value)
    struct.pack_into('<I', page, 0x408, mxcsr)
    struct.pack_into('<H', page, 0x410, fcw)
    return bytes(page)


@pytest.mark.parametrize('variant, mxcsr, fcw', [('legacy', 0, 0), ('init2', 0x1f80, 0x037f)])
def test_every_field_at_its_offset(variant, mxcsr, fcw):
    bsp, ap = vmsa.build_vmsas(RESET, 25, 1, 1, variant)
    for page, cs_base, rip in ((bsp, 0xffff0000, 0xfff0), (ap, 0x00800000, 0xb004)):
        assert len(page) == 4096
        for offset, selector, attrib in SEGMENTS:
            assert (u16(page, offset), u16(page, offset + 2), u32(page, offset + 4),
                    u64(page, offset + 8)) == (selector, attrib, 0xffff, 0), hex(offset)
        assert u16(page, 0x10) == 0xf000           # cs.selector
        assert u16(page, 0x12) == 0x9b             # cs.attrib
        assert u32(page, 0x14) == 0xffff           # cs.limit
        assert u64(page, 0x18) == cs_base          # cs.base
        assert u64(page, 0xd0) == 0x1000           # EFER.SVME
        assert u64(page, 0x148) == 0x40            # CR4.MCE
        assert u64(page, 0x158) == 0x10            # CR0
        assert u64(page, 0x160) == 0x400           # DR7
        assert u64(page, 0x168) == 0xffff0ff0      # DR6
        assert u64(page, 0x170) == 0x2             # RFLAGS
        assert u64(page, 0x178) == rip             # RIP
        assert u64(page, 0x268) == 0x0007040600070406   # G_PAT
        assert u64(page, 0x310) == MILAN           # RDX
        assert u64(page, 0x3b0) == 0               # SEV_FEATURES
        assert u64(page, 0x3e8) == 0x1             # XCR0
        assert u32(page, 0x408) == mxcsr
        assert u16(page, 0x410) == fcw
        # And nothing else is set.
        assert page == expected_page(cs_base, rip, MILAN, mxcsr, fcw)


def test_variants_differ_only_at_mxcsr_and_fcw():
    for legacy, init2 in zip(vmsa.build_vmsas(RESET, 25, 1, 1, 'legacy'),
                             vmsa.build_vmsas(RESET, 25, 1, 1, 'init2')):
        differing = [index for index in range(4096) if legacy[index] != init2[index]]
        assert differing == [0x408, 0x409, 0x410, 0x411]


def test_bsp_and_ap_differ_only_in_cs_base_and_rip():
    bsp, ap = vmsa.build_vmsas(RESET, 25, 1, 1)
    differing = {index for index in range(4096) if bsp[index] != ap[index]}
    assert differing <= set(range(0x18, 0x20)) | set(range(0x178, 0x180))
    assert differing


@pytest.mark.parametrize('variant', ['legacy', 'init2'])
def test_known_answers_from_sev_snp_measure(variant):
    bsp, ap = vmsa.build_vmsas(RESET, 25, 1, 1, variant)
    assert hashlib.sha256(bsp).hexdigest() == KAT[(variant, 'bsp')]
    assert hashlib.sha256(ap).hexdigest() == KAT[(variant, 'ap')]


def test_default_variant_is_legacy():
    assert vmsa.DEFAULT_VARIANT == 'legacy'
    assert vmsa.build_vmsas(RESET, 25, 1, 1) == vmsa.build_vmsas(RESET, 25, 1, 1, 'legacy')


def test_4m_reset_address():
    ap = vmsa.build_vmsas(0x00808004, 23, 49, 0)[1]
    assert u64(ap, 0x18) == 0x00800000
    assert u64(ap, 0x178) == 0x8004
    assert u64(ap, 0x310) == 0x830f10


def test_sev_features_at_0x3b0():
    bsp = vmsa.build_vmsa(0xffff0000, 0xfff0, MILAN, sev_features=0x20)
    assert u64(bsp, 0x3b0) == 0x20
    assert bsp == expected_page(0xffff0000, 0xfff0, MILAN, 0, 0, sev_features=0x20)
    both = vmsa.build_vmsas(RESET, 25, 1, 1, sev_features=0x20)
    assert all(u64(page, 0x3b0) == 0x20 for page in both)


@pytest.mark.parametrize('value', [-1, 1 << 64])
def test_sev_features_out_of_range(value):
    with pytest.raises(UnsupportedUsage, match='sev_features'):
        vmsa.build_vmsa(0xffff0000, 0xfff0, MILAN, sev_features=value)


@pytest.mark.parametrize('variant', ['', 'LEGACY', 'snp', None])
def test_unknown_variant_is_refused(variant):
    with pytest.raises(UnsupportedUsage, match='vmsa_variant must be one of init2, legacy'):
        vmsa.build_vmsa(0xffff0000, 0xfff0, MILAN, variant=variant)


def test_build_vmsas_checks_the_sku():
    with pytest.raises(UnsupportedUsage, match='cpu_model'):
        vmsa.build_vmsas(RESET, 25, 300, 1)


@given(st.integers(0, 0xf + 0xff), st.integers(0, 0xff), st.integers(0, 0xf))
def test_cpu_signature_matches_the_cpuid_layout(family, model, stepping):
    signature = vmsa.cpu_signature(family, model, stepping)
    base_family = (signature >> 8) & 0xf
    ext_family = (signature >> 20) & 0xff
    assert base_family + (ext_family if base_family == 0xf else 0) == family
    assert ((signature >> 16) & 0xf) << 4 | ((signature >> 4) & 0xf) == model
    assert signature & 0xf == stepping
    assert signature >> 28 == 0 and (signature >> 12) & 0xf == 0
    if family < 0xf:
        assert ext_family == 0


@given(st.integers(), st.integers(), st.integers())
def test_cpu_signature_out_of_range_is_only_ever_a_usage_error(family, model, stepping):
    try:
        vmsa.cpu_signature(family, model, stepping)
    except UnsupportedUsage:
        assert not (0 <= family <= 0x10e and 0 <= model <= 0xff and 0 <= stepping <= 0xf)

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The launch digest: firmware, then the hash table, then the VMSAs."""

from __future__ import annotations

import hashlib
import pathlib
import struct

import pytest

from ansible_collections.confidential.sev.plugins.module_utils.sev import vmsa
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage
from ansible_collections.confidential.sev.plugins.module_utils.sev.launch_digest import (
    LaunchDigest, compute_launch_digest,
)

AMDSEV = pathlib.Path(__file__).resolve().parents[3] / 'data' / 'ovmf' / 'ovmf_AmdSev_suffix.bin'

KERNEL = b'KERNEL-bzImage-bytes\x00\x01'
INITRD = b'initrd-cpio'
CMDLINE = b'console=ttyS0  root=/dev/vda '

# Known answers from sev-snp-measure 0.0.13 (guest.sev_calc_launch_digest /
# seves_calc_launch_digest, vmm_type QEMU), with the real AmdSevX64 suffix as
# the firmware file and the kernel/initrd/cmdline above.  sev-snp-measure's
# SEV-ES VMSAs are the init2 variant.
KAT_SEV_DIRECT_BOOT = '6cc42cde313b6141e1883ea52918ea3d5bb785da6a17548ac266b7d75e10fd1c'
KAT_SEV_KERNEL_ONLY = '80dbd30635434d9729379bef89d782dce41045eb05f638b682ce7df7cc4ebf9d'
KAT_ES_DIRECT_BOOT = {1: 'c3ef22d20575f8355a0179cecafe46a75f26766ee130d54adfbf6415b9e3cf03',
                      3: 'a9dd73c0d5080ba0bfac0ef0fe5f31003c1825165e11744819dfc090c8680509'}
KAT_ES_2CPUS_NO_KERNEL = 'c2c0ef40265a7de7176b00dd5e325ad070264a28db825cbeca204c7655092d1d'


def independent_table(cmdline, initrd, kernel):
    """The padded hash table, written from the documented layout."""
    def entry(guid_le, data):
        return guid_le + struct.pack('<H', 50) + hashlib.sha256(data).digest()
    return (bytes.fromhex('06d63894224fc94cb479a793d411fd21') + struct.pack('<H', 168)
            + entry(bytes.fromhex('d82dd09720bd944caa78e7714d36ab2a'), cmdline + b'\0')
            + entry(bytes.fromhex('31f7ba442f3ad74b9af141e29169781d'), initrd)
            + entry(bytes.fromhex('3794e74dd2ab7f42b835d5b172d2045b'), kernel)
            + bytes(8))


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, data in (('firmware', AMDSEV.read_bytes()), ('kernel', KERNEL), ('initrd', INITRD),
                       ('empty', b'')):
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = str(path)
    return paths


def test_plain_sev_is_the_firmware_sha256(files):
    result = compute_launch_digest(files['firmware'])
    expected = hashlib.sha256(AMDSEV.read_bytes()).hexdigest()
    assert isinstance(result, LaunchDigest)
    assert result.hex == expected
    assert result.digest == bytes.fromhex(expected)
    assert result.components == {'firmware': expected}
    assert result.sizes == {'firmware': 4096}


def test_empty_firmware(files):
    assert compute_launch_digest(files['empty']).hex == hashlib.sha256(b'').hexdigest()


def test_direct_boot_known_answer(files):
    result = compute_launch_digest(files['firmware'], files['kernel'], files['initrd'], CMDLINE)
    assert result.hex == KAT_SEV_DIRECT_BOOT
    table = independent_table(CMDLINE, INITRD, KERNEL)
    assert result.digest == hashlib.sha256(AMDSEV.read_bytes() + table).digest()
    assert result.components == {
        'firmware': hashlib.sha256(AMDSEV.read_bytes()).hexdigest(),
        'kernel': hashlib.sha256(KERNEL).hexdigest(),
        'initrd': hashlib.sha256(INITRD).hexdigest(),
        'cmdline': hashlib.sha256(CMDLINE + b'\0').hexdigest(),
        'hash_table': hashlib.sha256(table).hexdigest(),
    }
    assert result.sizes == {'firmware': 4096, 'kernel': len(KERNEL), 'initrd': len(INITRD)}


def test_kernel_without_initrd_or_cmdline(files):
    result = compute_launch_digest(files['firmware'], files['kernel'])
    assert result.hex == KAT_SEV_KERNEL_ONLY
    assert result.components['initrd'] == hashlib.sha256(b'').hexdigest()
    assert result.components['cmdline'] == hashlib.sha256(b'\0').hexdigest()
    assert 'initrd' not in result.sizes
    # An absent initrd and an empty initrd file measure the same; so do no
    # cmdline and an empty one.
    assert compute_launch_digest(files['firmware'], files['kernel'], files['empty'], b'').hex \
        == KAT_SEV_KERNEL_ONLY


def test_initrd_and_cmdline_are_ignored_without_kernel(files):
    """At this level no kernel means no table (validate() refuses the combination)."""
    plain = compute_launch_digest(files['firmware']).hex
    assert compute_launch_digest(files['firmware'], None, files['initrd'], CMDLINE).hex == plain


def test_cmdline_is_byte_exact(files):
    one = compute_launch_digest(files['firmware'], files['kernel'], None, b'a b')
    two = compute_launch_digest(files['firmware'], files['kernel'], None, b'a  b')
    assert one.hex != two.hex


@pytest.mark.parametrize('num_cpus', [1, 3])
def test_sev_es_direct_boot_known_answer(files, num_cpus):
    cpu0, cpu1 = vmsa.build_vmsas(0x0080b004, 25, 1, 1, 'init2')
    result = compute_launch_digest(files['firmware'], files['kernel'], files['initrd'], CMDLINE,
                                   cpu0, cpu1, num_cpus)
    assert result.hex == KAT_ES_DIRECT_BOOT[num_cpus]
    expected = hashlib.sha256(AMDSEV.read_bytes() + independent_table(CMDLINE, INITRD, KERNEL)
                              + cpu0 + cpu1 * (num_cpus - 1)).hexdigest()
    assert result.hex == expected
    assert result.components['vmsa_cpu0'] == hashlib.sha256(cpu0).hexdigest()
    assert ('vmsa_cpu1' in result.components) is (num_cpus > 1)


def test_sev_es_without_kernel_known_answer(files):
    cpu0, cpu1 = vmsa.build_vmsas(0x0080b004, 25, 1, 1, 'init2')
    result = compute_launch_digest(files['firmware'], vmsa_cpu0=cpu0, vmsa_cpu1=cpu1, num_cpus=2)
    assert result.hex == KAT_ES_2CPUS_NO_KERNEL
    assert result.components['vmsa_cpu1'] == hashlib.sha256(cpu1).hexdigest()


def test_one_vcpu_with_only_cpu0(files):
    """libvirt 9.0 crashes here (None * 0); the right value is cpu0 alone."""
    cpu0 = bytes([7]) * 4096
    result = compute_launch_digest(files['firmware'], vmsa_cpu0=cpu0, vmsa_cpu1=None, num_cpus=1)
    assert result.digest == hashlib.sha256(AMDSEV.read_bytes() + cpu0).digest()


@pytest.mark.parametrize('num_cpus', [2, 4, 64])
def test_ap_vmsa_repeated_for_every_other_vcpu(files, num_cpus):
    cpu0, cpu1 = bytes([1]) * 4096, bytes([2]) * 4096
    result = compute_launch_digest(files['firmware'], vmsa_cpu0=cpu0, vmsa_cpu1=cpu1,
                                   num_cpus=num_cpus)
    assert result.digest == hashlib.sha256(AMDSEV.read_bytes() + cpu0
                                           + cpu1 * (num_cpus - 1)).digest()


def test_vmsa_argument_errors(files):
    page = bytes(4096)
    with pytest.raises(ValueError, match='at least one vCPU'):
        compute_launch_digest(files['firmware'], vmsa_cpu0=page, num_cpus=0)
    with pytest.raises(ValueError, match='4096'):
        compute_launch_digest(files['firmware'], vmsa_cpu0=page, vmsa_cpu1=None, num_cpus=2)
    with pytest.raises(ValueError, match='4096'):
        compute_launch_digest(files['firmware'], vmsa_cpu0=bytes(4095), num_cpus=1)
    with pytest.raises(ValueError, match='4096'):
        compute_launch_digest(files['firmware'], vmsa_cpu0=page, vmsa_cpu1=bytes(4097), num_cpus=2)


@pytest.mark.parametrize('missing', ['firmware', 'kernel', 'initrd'])
def test_missing_file_names_the_input(files, tmp_path, missing):
    paths = dict(files)
    paths[missing] = str(tmp_path / 'absent')
    with pytest.raises(UnsupportedUsage, match='^%s: cannot read' % missing):
        compute_launch_digest(paths['firmware'], paths['kernel'], paths['initrd'])

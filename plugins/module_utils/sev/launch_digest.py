# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The launch digest (GCTX.LD): SHA-256 over everything the host encrypts and
measures before LAUNCH_MEASURE, in this order:

  1. the firmware image, all of it (for split builds the CODE file only);
  2. with measured direct boot: the padded kernel hashes table;
  3. SEV-ES: VMSA(cpu0), then VMSA(cpu1) once for every other vCPU.

The firmware bytes go straight into the digest stream and the per-file digest
of the firmware is a copy of that state, so no file is read twice.
"""

from __future__ import annotations

import hashlib

from . import kernel_hashes
from .streaming import hash_files
from .vmsa import VMSA_SIZE


class LaunchDigest:
    """The digest and the parts it was made of (hex digests, sizes), for debugging."""

    def __init__(self, digest, components, sizes):
        self.digest = digest
        self.components = components
        self.sizes = sizes

    @property
    def hex(self):
        return self.digest.hex()


def compute_launch_digest(firmware, kernel=None, initrd=None, cmdline=None,
                          vmsa_cpu0=None, vmsa_cpu1=None, num_cpus=0):
    """Compute the launch digest.

    firmware, kernel, initrd: paths (kernel None = no measured direct boot;
    initrd None with a kernel = no initrd).  cmdline: bytes or None.
    vmsa_cpu0 / vmsa_cpu1: 4096-byte pages for SEV-ES (cpu0 None = plain SEV);
    num_cpus counts every vCPU, so cpu1's page is measured num_cpus-1 times.
    """
    launch = hashlib.sha256()
    jobs = {'firmware': (firmware, launch)}
    file_hashers = {}
    if kernel is not None:
        file_hashers['kernel'] = hashlib.sha256()
        jobs['kernel'] = (kernel, file_hashers['kernel'])
        if initrd is not None:
            file_hashers['initrd'] = hashlib.sha256()
            jobs['initrd'] = (initrd, file_hashers['initrd'])
    sizes = hash_files(jobs)

    components = {'firmware': launch.copy().hexdigest()}
    if kernel is not None:
        kernel_digest = file_hashers['kernel'].digest()
        initrd_digest = (file_hashers['initrd'].digest() if initrd is not None
                         else kernel_hashes.EMPTY_INITRD_DIGEST)
        cmdline_digest = kernel_hashes.cmdline_digest(cmdline)
        table = kernel_hashes.build_hash_table(cmdline_digest, initrd_digest, kernel_digest)
        launch.update(table)
        components.update(kernel=kernel_digest.hex(), initrd=initrd_digest.hex(),
                          cmdline=cmdline_digest.hex(),
                          hash_table=hashlib.sha256(table).hexdigest())

    if vmsa_cpu0 is not None:
        if num_cpus < 1:
            raise ValueError('SEV-ES needs at least one vCPU')
        pages = [vmsa_cpu0] + [vmsa_cpu1] * (num_cpus - 1)
        for page in pages:
            if page is None or len(page) != VMSA_SIZE:
                raise ValueError('every VMSA must be %d bytes' % VMSA_SIZE)
            launch.update(page)
        components['vmsa_cpu0'] = hashlib.sha256(vmsa_cpu0).hexdigest()
        if num_cpus > 1:
            components['vmsa_cpu1'] = hashlib.sha256(vmsa_cpu1).hexdigest()
    return LaunchDigest(launch.digest(), components, sizes)

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

import functools
import hashlib

from . import kernel_hashes
from .ovmf import MAX_TAIL_SIZE
from .streaming import hash_files, run_concurrently
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


class MeasuredFiles:
    """The large files, each hashed once: the digest state after the firmware
    (to continue with any table and VMSAs), and the kernel/initrd digests."""

    def __init__(self, firmware_state, kernel_digest, initrd_digest, sizes, firmware_tail=b''):
        self.firmware_state = firmware_state
        # The firmware's last bytes as hashed, for its OVMF footer table.
        self.firmware_tail = firmware_tail
        self.kernel_digest = kernel_digest
        self.initrd_digest = initrd_digest
        self.sizes = sizes


def hash_measured_files(firmware, kernel=None, initrd=None, digest_cache=None, pins=None):
    """Stream firmware, kernel and initrd (paths) concurrently, once.

    With ``digest_cache`` (a digest_cache.DigestCache), a file whose identity
    it knows is not read again: the firmware's hash state and tail come from
    memory, kernel and initrd digests from memory or the cache file.  ``pins``
    (name -> 64 hex digits) are part of the cache key; they are checked by
    the caller (validation.check_pins), with or without a cache.
    """
    if digest_cache is not None:
        return _hash_with_cache(digest_cache, firmware, kernel, initrd, pins or {})
    launch = hashlib.sha256()
    jobs = {'firmware': (firmware, launch, MAX_TAIL_SIZE)}
    file_hashers = {}
    for name, path in (('kernel', kernel), ('initrd', initrd if kernel is not None else None)):
        if path is not None:
            file_hashers[name] = hashlib.sha256()
            jobs[name] = (path, file_hashers[name])
    sizes = hash_files(jobs)
    sizes['firmware'], firmware_tail = sizes['firmware']
    digests = dict((name, hasher.digest()) for name, hasher in file_hashers.items())
    initrd_digest = digests.get('initrd', kernel_hashes.EMPTY_INITRD_DIGEST) if kernel is not None else None
    return MeasuredFiles(launch, digests.get('kernel'), initrd_digest, sizes, firmware_tail)


def _hash_with_cache(cache, firmware, kernel, initrd, pins):
    calls = {'firmware': functools.partial(cache.firmware, firmware, 'firmware', pins.get('firmware'),
                                           MAX_TAIL_SIZE)}
    for name, path in (('kernel', kernel), ('initrd', initrd if kernel is not None else None)):
        if path is not None:
            calls[name] = functools.partial(cache.sha256, path, name, pins.get(name))
    # Hits first, in this thread (a thread pool costs more than a hit); then
    # the misses side by side, each through its own descriptor again.
    found = dict((name, call(only_cached=True)) for name, call in calls.items())
    found.update(run_concurrently(dict((name, calls[name]) for name, item in found.items() if item is None)))
    sizes = dict((name, item.size) for name, item in found.items())
    digests = dict((name, item.digest) for name, item in found.items() if name != 'firmware')
    initrd_digest = digests.get('initrd', kernel_hashes.EMPTY_INITRD_DIGEST) if kernel is not None else None
    return MeasuredFiles(found['firmware'].state, digests.get('kernel'), initrd_digest, sizes,
                         found['firmware'].tail)


def assemble_launch_digest(files, cmdline=None, vmsa_cpu0=None, vmsa_cpu1=None, num_cpus=0,
                           hash_table=True, initrd_digest=None):
    """The launch digest from hashed files plus the small parts.

    hash_table=False leaves the kernel hashes table out (a launch without
    kernel-hashes); initrd_digest overrides the initrd's.  Both serve the
    mismatch diagnosis, which tries alternatives without re-reading files.
    """
    launch = files.firmware_state.copy()
    components = {'firmware': launch.copy().hexdigest()}
    if files.kernel_digest is not None and hash_table:
        initrd = initrd_digest if initrd_digest is not None else files.initrd_digest
        cmdline_digest = kernel_hashes.cmdline_digest(cmdline)
        table = kernel_hashes.build_hash_table(cmdline_digest, initrd, files.kernel_digest)
        launch.update(table)
        components.update(kernel=files.kernel_digest.hex(), initrd=initrd.hex(),
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
    return LaunchDigest(launch.digest(), components, files.sizes)


def compute_launch_digest(firmware, kernel=None, initrd=None, cmdline=None,
                          vmsa_cpu0=None, vmsa_cpu1=None, num_cpus=0):
    """Compute the launch digest.

    firmware, kernel, initrd: paths (kernel None = no measured direct boot;
    initrd None with a kernel = no initrd).  cmdline: bytes or None.
    vmsa_cpu0 / vmsa_cpu1: 4096-byte pages for SEV-ES (cpu0 None = plain SEV);
    num_cpus counts every vCPU, so cpu1's page is measured num_cpus-1 times.
    """
    return assemble_launch_digest(hash_measured_files(firmware, kernel, initrd), cmdline,
                                  vmsa_cpu0, vmsa_cpu1, num_cpus)

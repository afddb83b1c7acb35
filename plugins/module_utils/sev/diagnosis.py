# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Why does a measurement not match?  Recompute under the common mistakes.

Each alternative changes ONE input (keys, kernel hashes, initrd, cmdline
whitespace, vCPU count, CPU SKU, VMSA variant, policy ES bit, firmware build)
and reports the ones whose measurement would have matched.  Files are hashed
once (the validation's hashed state is reused; candidate firmware files are
read once each), so the extra work is a few hundred small HMACs.

A diagnosis is advice: it never changes the verdict, and it never reveals a
MAC (only the names of the changes that match).
"""

from __future__ import annotations

import re

from .errors import SevError
from .kernel_hashes import EMPTY_INITRD_DIGEST
from .launch_digest import assemble_launch_digest, hash_measured_files
from .measurement import measurement_matches
from .ovmf import parse_footer
from .policy import ES
from .vmsa import NAMED_CPUS, QEMU_CPU_MODELS, VARIANTS, build_vmsas

# The SEV-ES CPU generations, which are also QEMU's named EPYC models.
KNOWN_SKUS = tuple(('%s / QEMU %s' % (name, model), NAMED_CPUS[name])
                   for model, name in sorted(QEMU_CPU_MODELS.items(), key=lambda item: NAMED_CPUS[item[1]]))
DEBUG_SWAP = 0x20
CPU_COUNT_SPREAD = 4


class LaunchContext:
    """What a validation resolved, kept for a diagnosis."""

    def __init__(self, request, blob, policy, files, footer, vmsa_cpu0, vmsa_cpu1, num_cpus):
        self.request = request
        self.blob = blob
        self.policy = policy
        self.files = files
        self.footer = footer
        self.vmsa_cpu0 = vmsa_cpu0
        self.vmsa_cpu1 = vmsa_cpu1
        self.num_cpus = num_cpus

    @property
    def sku(self):
        request = self.request
        if request.cpu_family is None:
            return None
        return (request.cpu_family, request.cpu_model, request.cpu_stepping)


class Diagnosis:
    def __init__(self, context):
        self.context = context
        self.tried = []
        self.matches = []

    def attempt(self, name, advice, files=None, tik=None, policy=None, **parts):
        """Recompute with some parts changed; record a match."""
        ctx = self.context
        request = ctx.request
        self.tried.append(name)
        layout = dict(cmdline=request.cmdline, vmsa_cpu0=ctx.vmsa_cpu0, vmsa_cpu1=ctx.vmsa_cpu1,
                      num_cpus=ctx.num_cpus)
        layout.update(parts)
        digest = assemble_launch_digest(files or ctx.files, **layout)
        matches = measurement_matches(tik or request.keys.tik, ctx.blob, request.api_major, request.api_minor,
                                      request.build_id, ctx.policy.value if policy is None else policy,
                                      digest.digest)[0]
        if matches:
            self.matches.append({'change': name, 'advice': advice})
        return matches

    def vmsas(self, reset_address, sku, variant=None, sev_features=None):
        request = self.context.request
        return build_vmsas(reset_address, sku[0], sku[1], sku[2],
                           variant or request.vmsa_variant,
                           request.sev_features if sev_features is None else sev_features)

    def as_dict(self):
        return {'matches': self.matches, 'tried': self.tried,
                'summary': (' / '.join(match['advice'] for match in self.matches) if self.matches else
                            'none of %d single changes matched' % len(self.tried))}


def _keys(diag):
    keys = diag.context.request.keys
    if keys.tek != keys.tik:
        diag.attempt('tik_tek_swapped', 'TIK and TEK are swapped (a tk file holds TEK first, then TIK)',
                     tik=keys.tek)


def _direct_boot(diag):
    ctx = diag.context
    request = ctx.request
    if ctx.files.kernel_digest is None:
        return
    diag.attempt('kernel_hashes_off', 'the launch did not measure the kernel: kernelHashes is off on the host '
                 '(so kernel, initrd and cmdline are NOT protected)', hash_table=False)
    if request.initrd is not None and ctx.files.initrd_digest != EMPTY_INITRD_DIGEST:
        diag.attempt('initrd_missing', 'the launch had no initrd', initrd_digest=EMPTY_INITRD_DIGEST)
    cmdline = request.cmdline or b''
    variants = (('cmdline_trailing_whitespace_removed', cmdline.rstrip(), 'trailing whitespace'),
                ('cmdline_leading_whitespace_removed', cmdline.lstrip(), 'leading whitespace'),
                ('cmdline_stripped', cmdline.strip(), 'leading and trailing whitespace'),
                ('cmdline_repeated_spaces_collapsed', re.sub(b' +', b' ', cmdline), 'repeated spaces'),
                ('cmdline_trailing_newline_added', cmdline + b'\n', 'a trailing newline missing'),
                ('cmdline_leading_space_added', b' ' + cmdline, 'a leading space missing'),
                ('cmdline_trailing_space_added', cmdline + b' ', 'a trailing space missing'),
                ('cmdline_empty', b'', 'the cmdline should be empty'))
    seen = {cmdline}
    for name, candidate, what in variants:
        if candidate in seen:
            continue
        seen.add(candidate)
        diag.attempt(name, 'the cmdline differs by %s: the host used %r' % (what, candidate.decode('utf-8', 'replace')),
                     cmdline=candidate)


def _sev_es(diag):
    ctx = diag.context
    if not ctx.policy.es:
        return
    for count in range(max(1, ctx.num_cpus - CPU_COUNT_SPREAD), ctx.num_cpus + CPU_COUNT_SPREAD + 1):
        # With only a cpu0 VMSA file there is no page for more vCPUs.
        if count != ctx.num_cpus and (count == 1 or ctx.vmsa_cpu1 is not None):
            diag.attempt('num_cpus_%d' % count, 'the guest has %d vCPUs, not %d' % (count, ctx.num_cpus),
                         num_cpus=count)
    diag.attempt('plain_sev', 'the launch was plain SEV: the policy should not have the ES bit (and the CPU '
                 'state is then not protected)', policy=ctx.policy.value & ~ES, vmsa_cpu0=None, num_cpus=0)
    reset = ctx.footer.sev_es_reset_address
    if ctx.sku is None or reset is None:
        return
    for label, sku in KNOWN_SKUS:
        if sku != ctx.sku:
            cpu0, cpu1 = diag.vmsas(reset, sku)
            diag.attempt('cpu_sku_%d_%d_%d' % sku, 'the VMSAs carry CPU %s (family %d, model %d, stepping %d)'
                         % ((label,) + sku), vmsa_cpu0=cpu0, vmsa_cpu1=cpu1)
    for variant in sorted(VARIANTS):
        if variant != ctx.request.vmsa_variant:
            cpu0, cpu1 = diag.vmsas(reset, ctx.sku, variant=variant)
            diag.attempt('vmsa_variant_%s' % variant, 'the host builds VMSAs as vmsa_variant %s' % variant,
                         vmsa_cpu0=cpu0, vmsa_cpu1=cpu1)
    features = ctx.request.sev_features ^ DEBUG_SWAP
    cpu0, cpu1 = diag.vmsas(reset, ctx.sku, sev_features=features)
    diag.attempt('sev_features_0x%x' % features, 'the VMSAs have SEV features 0x%x (DebugSwap, set by kvm_amd '
                 'debug_swap=1 or requested by QEMU)' % features, vmsa_cpu0=cpu0, vmsa_cpu1=cpu1)


def _firmware(diag, candidates):
    ctx = diag.context
    for path in candidates:
        if path == ctx.request.firmware:
            continue
        try:
            files = hash_measured_files(path)
            reset = parse_footer(files.firmware_tail, source=path).sev_es_reset_address
        except SevError as exc:
            diag.tried.append('firmware %s (not usable: %s)' % (path, exc))
            continue
        files.kernel_digest, files.initrd_digest = ctx.files.kernel_digest, ctx.files.initrd_digest
        parts = {}
        if ctx.policy.es and ctx.sku is not None:
            if reset is None:
                diag.tried.append('firmware %s (no SEV-ES reset block)' % path)
                continue
            parts['vmsa_cpu0'], parts['vmsa_cpu1'] = diag.vmsas(reset, ctx.sku)
        diag.attempt('firmware %s' % path, 'the guest booted firmware %s' % path, files=files, **parts)


def diagnose(context, firmware_candidates=()):
    """A Diagnosis (as a dict) of a mismatched launch."""
    diag = Diagnosis(context)
    _keys(diag)
    _direct_boot(diag)
    _sev_es(diag)
    _firmware(diag, firmware_candidates)
    return diag.as_dict()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sev_reference_measurement
short_description: Publish the AMD SEV / SEV-ES launch digests of a set of launch configurations
version_added: 0.1.0
description:
  - Computes, from the files alone and with no domain and no keys, the launch digest (the SHA-256 that
    C(LAUNCH_MEASURE) MACs) and the digest of each measured part for every combination of firmware image,
    measured direct boot (kernel, initrd, cmdline), and for SEV-ES vCPU count, CPU SKU, VMSA variant and SEV
    features.
  - Writes them to O(dest), by default as the policy file of confidential-containers' C(simple-kbs), the key
    broker that checks SEV and SEV-ES launches (O(format=simple-kbs)), or as a plain JSON list of records
    (O(format=json)). The records are also returned.
  - B(Runs on the controller), whatever host the task targets, through its action plugin. Files are read on
    the controller; every distinct firmware, kernel and initrd file is streamed once, concurrently, however
    many combinations use it.
  - The same computation as M(confidential.sev.sev_measurement_validate), and the same refusals (measured
    direct boot with a firmware that has no usable SEV hash table, SEV-ES with a firmware that has no reset
    block).
  - The output is written only when its content changes, atomically, mode C(0644) (reference values are
    public).
author:
  - confidential.sev developers (@confidential-sev)
extends_documentation_fragment:
  - action_common_attributes
  - action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: Computes everything and says whether O(dest) would change, but writes nothing.
  diff_mode:
    support: full
    details: Shows the old and the new content of O(dest).
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    platforms: all
options:
  firmware:
    description:
      - Paths on the controller to the firmware images, exactly as the guests boot them (for split OVMF builds
        the C(OVMF_CODE*.fd) file, never the VARS file).
      - Relative paths are searched like other file options (a role's C(files/), then the playbook directory).
    type: list
    elements: path
    required: true
  direct_boot:
    description:
      - Measured direct boots (QEMU C(kernel-hashes=on), libvirt C(kernelHashes='yes')), each combined with
        every firmware. Empty means no measured direct boot.
      - Refused for a firmware without a usable SEV hash table (Debian's OVMF builds have none), as QEMU refuses
        such a launch.
    type: list
    elements: dict
    default: []
    suboptions:
      kernel:
        description: Path on the controller to the kernel.
        type: path
        required: true
      initrd:
        description: Path on the controller to the initrd. Without it the table holds the digest of an empty one.
        type: path
      cmdline:
        description:
          - The kernel command line, hashed exactly as given (UTF-8, no normalisation).
          - YAML and Jinja can change whitespace; use O(direct_boot[].cmdline_b64) to be byte-exact.
        type: str
      cmdline_b64:
        description: The kernel command line as base64 of its exact bytes. Mutually exclusive with
          O(direct_boot[].cmdline).
        type: str
  modes:
    description:
      - V(sev) (plain SEV, the policy without the ES bit) and V(seves) (SEV-ES, each vCPU's initial state
        measured too), as C(sev-snp-measure --mode) names them.
      - When not set, V(seves) if any of O(num_cpus), O(cpu_skus), O(vmsa_variants) or O(vmsa_sev_features)
        is given, else V(sev).
    type: list
    elements: str
    choices: [sev, seves]
  num_cpus:
    description: vCPU counts (SEV-ES), each from 1 to 4096.
    type: list
    elements: int
  cpu_skus:
    description:
      - CPU SKUs the guests report (SEV-ES), each a name or C(FAMILY/MODEL/STEPPING) such as C(25/1/1)
        (decimal, or hex with C(0x)).
      - Names (case-insensitive) are C(Naples) (23/1/2, QEMU C(EPYC)), C(Rome) (23/49/0, C(EPYC-Rome)),
        C(Milan) (25/1/1, C(EPYC-Milan)), C(Genoa) (25/17/0, C(EPYC-Genoa))
        and C(Turin) (26/0/0, C(EPYC-Turin)); the QEMU C(EPYC*) names are accepted too.
      - A guest started with a named QEMU CPU model reports that model's values; with C(-cpu host) it reports
        the host's own family, model and stepping, so give those as C(FAMILY/MODEL/STEPPING).
    type: list
    elements: str
  vmsa_variants:
    description:
      - How the host's KVM builds the initial vCPU state (SEV-ES). Default V(legacy).
      - V(legacy) is KVM's C(KVM_SEV_ES_INIT) (QEMU before 9.1, or C(legacy-vm-type) set), what libvirt 9.0's
        C(virt-qemu-sev-validate) builds.
      - V(init2) is C(KVM_SEV_INIT2) (Linux 6.10 or later with QEMU 9.1 or later), with the FPU state (MXCSR
        C(0x1f80), x87 FCW C(0x037f)) that C(sev-snp-measure) models.
      - List both when the hosts that run the guests differ.
    type: list
    elements: str
    choices: [init2, legacy]
  vmsa_sev_features:
    description:
      - Values of the VMSA SEV features field (offset C(0x3b0)) (SEV-ES). Default C(0); for example C(32) (DebugSwap)
        on hosts where kvm_amd's C(debug_swap) parameter is on with the legacy interface.
    type: list
    elements: int
  dest:
    description:
      - Path on the controller of the file to write. Relative paths are taken from the playbook directory.
      - Written only when its content changes (an identical file is left as it is, mode included), through a
        temporary file that gets mode C(0644) before it is renamed over it.
      - Must be absent or a regular file (a symlink, directory, device node or FIFO is refused before anything is
        read or written), must not be one of the input files, and its directory must not be writable by other
        users unless it has the sticky bit.
    type: path
    required: true
  format:
    description:
      - V(simple-kbs) writes the policy file of C(simple-kbs) (its C(default_policy.json), or the values of a row
        of its C(policy) table), with every distinct launch digest, as standard base64, in C(allowed_digests),
        and O(allowed_policies), O(min_api_version) and O(allowed_build_ids).
      - V(json) writes the list of records RV(records) returns, keys sorted.
    type: str
    default: simple-kbs
    choices: [simple-kbs, json]
  allowed_policies:
    description:
      - Guest policies simple-kbs accepts (its C(allowed_policies)), for example C(7) (NODBG, NOKS, ES). Only with
        O(format=simple-kbs).
      - Not set, simple-kbs accepts any policy, a debuggable one too, and the task warns. Refused when no policy
        fits a mode in O(modes) (SEV-ES digests need the ES bit C(0x4), plain SEV digests need it clear).
    type: list
    elements: int
  min_api_version:
    description: Minimum platform firmware API version, as C(MAJOR.MINOR) (C(min_fw_api_major) and
      C(min_fw_api_minor)). Only with O(format=simple-kbs). Not set, C(0.0).
    type: str
  allowed_build_ids:
    description: Platform firmware build ids simple-kbs accepts (C(allowed_build_ids)); not set, any. Only with
      O(format=simple-kbs).
    type: list
    elements: int
notes:
  - Why simple-kbs, from its source (confidential-containers/simple-kbs) - C(src/policy.rs) reads
    C(default_policy.json) (and C(src/db.rs) the C(policy) table) into C(allowed_digests) (strings),
    C(allowed_policies), C(min_fw_api_major), C(min_fw_api_minor) and C(allowed_build_ids), all required, and
    accepts a launch only if the C(fw_digest) it is sent is one of C(allowed_digests) (an empty list allows any,
    so this module never writes one). C(src/sev_tools.rs) base64-decodes that digest and checks the SEV
    measurement against it. Its C(README.md) tells the guest owner to compute the digests ahead of time with
    C(sev-snp-measure --output-format=base64), for each initrd and vCPU count. Kata Containers sends
    C(fw_digest) as standard base64 of the launch digest (kata-containers C(src/runtime/virtcontainers/qemu_amd64.go)
    with C(src/runtime/pkg/sev/sev.go)).
  - Why not Trustee's RVPS - its C(sample) message (C(rvps/src/extractors/extractor_modules/sample/mod.rs),
    C(rvps/README.md)) would store the digests, but nothing in Trustee would ever read them for SEV or SEV-ES -
    C(deps/verifier/src/lib.rs) maps C(Tee::Sev) to C(todo!()), and the default policy
    (C(attestation-service/src/ear_token/ear_default_policy_cpu.rego)) reads C(snp_launch_measurement), the
    SHA-384 SEV-SNP measurement, which these SHA-256 digests are not.
  - SEV and SEV-ES pre-attestation is deprecated in Confidential Containers (simple-kbs and the C(online_sev_kbc)
    with it); the records and O(format=json) serve any other verifier.
  - The kernel hash is over the file as given. QEMU 7.2's setup_data/RNG-seed change briefly broke measured direct
    boot; a QEMU-version hazard the digests cannot show.
seealso:
  - module: confidential.sev.sev_measurement_validate
  - name: simple-kbs
    description: The SEV / SEV-ES key broker whose policy file O(format=simple-kbs) writes.
    link: https://github.com/confidential-containers/simple-kbs
  - name: sev-snp-measure
    description: Computes one such digest per run (C(--mode sev) or C(seves)); the differential tests compare with it.
    link: https://github.com/virtee/sev-snp-measure
"""

EXAMPLES = r"""
- name: Reference values for simple-kbs, SEV-ES, both KVM interfaces
  confidential.sev.sev_reference_measurement:
    firmware:
      - files/OVMF.amdsev.fd
    direct_boot:
      - kernel: files/vmlinuz
        initrd: files/kata-containers-initrd.img
        cmdline: console=ttyS0 loglevel=6
    num_cpus: [1, 2, 4, 8]
    cpu_skus: [Milan, Genoa]
    vmsa_variants: [legacy, init2]
    allowed_policies: [0x7]
    min_api_version: "1.51"
    dest: out/default_policy.json
  register: reference

- name: Plain SEV digests of every Debian OVMF build, as JSON records
  confidential.sev.sev_reference_measurement:
    firmware:
      - /usr/share/OVMF/OVMF_CODE.fd
      - /usr/share/OVMF/OVMF_CODE_4M.fd
    format: json
    dest: out/reference-values.json
"""

RETURN = r"""
dest:
  description: The file written (or that would be, in check mode).
  type: str
  returned: success
  sample: /srv/sev-owner/reference/allowed.json
format:
  description: The output format.
  type: str
  returned: success
  sample: simple-kbs
records:
  description:
    - One per combination, firmware outermost, then O(direct_boot), plain SEV before SEV-ES, then O(num_cpus),
      O(cpu_skus), O(vmsa_variants), O(vmsa_sev_features), each in the order given.
  type: list
  elements: dict
  returned: success
  sample:
    - mode: seves
      firmware: /srv/sev-owner/firmware/OVMF.amdsev.fd
      kernel: /srv/sev-owner/boot/vmlinuz
      initrd: /srv/sev-owner/boot/initrd.img
      cmdline: console=ttyS0
      cmdline_b64: Y29uc29sZT10dHlTMA==
      num_cpus: 4
      cpu_sku: EPYC-Milan
      cpu_family: 25
      cpu_model: 1
      cpu_stepping: 1
      cpu_signature: "0x00a00f11"
      vmsa_variant: legacy
      vmsa_sev_features: 0
      launch_digest: 5c023e990be4ff1fe40b21e9aca8f72bb9e65e6766fbfed27e91bd014...
      launch_digest_b64: XAI+mQvk/x/kCyHprKj3K7zmXmdm+/7SfpG9AUDWIMQ=
      digests: {firmware: 9a1b..., kernel: 33c4..., initrd: 0e7d..., cmdline: 5f21..., hash_table: c0de...,
                vmsa_cpu0: 7a7a..., vmsa_cpu1: 8b8b...}
      sizes: {firmware: 2097152, kernel: 11534336, initrd: 52428800}
  contains:
    mode:
      description: V(sev) or V(seves), as C(sev-snp-measure) names them.
      type: str
      sample: seves
    firmware:
      description: The firmware file, as given.
      type: str
      sample: /srv/sev-owner/firmware/OVMF.amdsev.fd
    kernel:
      description: The kernel file, as given, or null without measured direct boot.
      type: str
      sample: /srv/sev-owner/boot/vmlinuz
    initrd:
      description: The initrd file, as given, or null.
      type: str
      sample: /srv/sev-owner/boot/initrd.img
    cmdline:
      description: The kernel command line, or null when it is not UTF-8 (see RV(records[].cmdline_b64)) or not measured.
      type: str
      sample: console=ttyS0
    cmdline_b64:
      description: The kernel command line's exact bytes, base64, or null.
      type: str
      sample: Y29uc29sZT10dHlTMA==
    num_cpus:
      description: The vCPU count (SEV-ES), or null for plain SEV.
      type: int
      sample: 4
    cpu_sku:
      description: The CPU SKU label the VMSAs were built for (SEV-ES), or null.
      type: str
      sample: EPYC-Milan
    cpu_family:
      description: Its CPU family, or null.
      type: int
      sample: 25
    cpu_model:
      description: Its CPU model, or null.
      type: int
      sample: 1
    cpu_stepping:
      description: Its CPU stepping, or null.
      type: int
      sample: 1
    cpu_signature:
      description: Its CPUID signature in hex, or null.
      type: str
      sample: "0x00a00f11"
    vmsa_variant:
      description: The VMSA variant (V(legacy) or V(init2)), or null for plain SEV.
      type: str
      sample: legacy
    vmsa_sev_features:
      description: The VMSA's SEV features value, or null for plain SEV.
      type: int
      sample: 0
    launch_digest:
      description: The launch digest, hex.
      type: str
      sample: 5c023e990be4ff1fe40b21e9aca8f72bb9e65e6766fbfed27e91bd0140d62031
    launch_digest_b64:
      description: The launch digest, standard base64.
      type: str
      sample: XAI+mQvk/x/kCyHprKj3K7zmXmdm+/7SfpG9AUDWIMQ=
    digests:
      description:
        - SHA-256 (hex) of each measured component, those measured only, C(firmware), C(kernel), C(initrd),
          C(cmdline) (with its NUL), C(hash_table), C(vmsa_cpu0), C(vmsa_cpu1).
      type: dict
      sample: {firmware: 9a1b..., hash_table: c0de..., vmsa_cpu0: 7a7a..., vmsa_cpu1: 8b8b...}
      contains:
        firmware:
          description: SHA-256 of the firmware.
          type: str
          returned: when measured
          sample: 9a1b...
        kernel:
          description: SHA-256 of the kernel.
          type: str
          returned: when measured
          sample: 33c4...
        initrd:
          description: SHA-256 of the initrd.
          type: str
          returned: when measured
          sample: 0e7d...
        cmdline:
          description: SHA-256 of the command line with its NUL.
          type: str
          returned: when measured
          sample: 5f21...
        hash_table:
          description: SHA-256 of the hash table QEMU adds.
          type: str
          returned: when measured
          sample: c0de...
        vmsa_cpu0:
          description: SHA-256 of the first vCPU's VMSA (SEV-ES).
          type: str
          returned: when measured
          sample: 7a7a...
        vmsa_cpu1:
          description: SHA-256 of the other vCPUs' VMSA (SEV-ES, more than one vCPU).
          type: str
          returned: when measured
          sample: 8b8b...
    sizes:
      description: The size in bytes of each streamed file, C(firmware), C(kernel), C(initrd).
      type: dict
      sample: {firmware: 2097152, kernel: 11534336, initrd: 52428800}
      contains:
        firmware:
          description: Size of the firmware.
          type: int
          returned: when measured
          sample: 2097152
        kernel:
          description: Size of the kernel.
          type: int
          returned: when measured
          sample: 11534336
        initrd:
          description: Size of the initrd.
          type: int
          returned: when measured
          sample: 52428800
allowed_digests:
  description: The distinct launch digests, standard base64, as written to C(allowed_digests).
  type: list
  elements: str
  returned: with O(format=simple-kbs)
  sample: [XAI+mQvk/x/kCyHprKj3K7zmXmdm+/7SfpG9AUDWIMQ=]
warnings:
  description: Settings that were accepted but weaken the published policy.
  type: list
  elements: str
  returned: when there are any
  sample: ["allowed_policies is not set: simple-kbs then accepts any guest policy, including ones that let the host debug the guest"]
msg:
  description:
    - How many launch digests were written to RV(dest) (or would be, in check mode, or were already there), or why
      the task failed, naming the option or file at fault.
  type: str
  returned: always
  sample: "firmware: /srv/sev-owner/firmware/OVMF.fd has no SEV hash table: measured direct boot is impossible"
reason:
  description: V(ok), or on a refusal V(unsupported) (bad input) or V(error) (a malformed firmware, an unexpected
    error).
  type: str
  returned: always
  sample: ok
rc:
  description: The exit code for RV(reason), as C(virt-qemu-sev-validate) numbers them (0, 2 or 6).
  type: int
  returned: always
  sample: 0
"""

from ansible_collections.confidential.sev.plugins.module_utils.controller_only import refuse_on_managed_host
from ansible_collections.confidential.sev.plugins.module_utils.reference_values import (
    ARGUMENT_SPEC, VALIDATION_RULES,
)


def main():
    refuse_on_managed_host('sev_reference_measurement', ARGUMENT_SPEC, VALIDATION_RULES)


if __name__ == '__main__':
    main()

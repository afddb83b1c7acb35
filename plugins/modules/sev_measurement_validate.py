#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sev_measurement_validate
short_description: Validate an AMD SEV / SEV-ES launch measurement and build the secret packet
version_added: 0.1.0
description:
  - Recomputes the launch measurement of an AMD SEV or SEV-ES guest from the files the guest owner trusts
    (firmware, kernel, initrd, cmdline, vCPU state) and compares it, in constant time, with the measurement
    the platform reported.
  - Only on a match, and only if secrets are given, builds the LAUNCH_SECRET packet (header and payload),
    encrypted with the TEK and bound by a MAC to this launch, ready for C(virDomainSetLaunchSecurityState)
    or QEMU's C(sev-inject-launch-secret).
  - The same computation and checks as libvirt's C(virt-qemu-sev-validate) in its offline mode, with options
    named after its flags and its exit codes returned as RV(rc).
  - B(Runs on the controller), whatever host the task targets, through its action plugin. The hypervisor host
    is not trusted and is not contacted; TIK, TEK and plaintext secrets never leave the controller.
  - Key and secret files may be encrypted with Ansible Vault; they are decrypted in memory, never to a file.
  - Every file option takes a path to a regular file. Key and secret options never echo their value in a message
    (a key pasted where its path belongs stays out of logs).
  - A mismatch, or any refusal, fails the task. The result still says why in RV(reason) and RV(rc).
author:
  - confidential.sev developers (@confidential-sev)
extends_documentation_fragment:
  - action_common_attributes
  - action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: Validates and builds the packet, but writes no file.
  diff_mode:
    support: none
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    platforms: all
requirements:
  - cryptography (on the controller, to build a secret packet)
  - lxml (on the controller, with O(domain) or O(launch_info), to check the domain XML the host reports)
  - libvirt-python (on the controller, with O(domain))
options:
  measurement:
    description:
      - The launch measurement the platform reported, base64 of 48 bytes (MEASURE then MNONCE), as
        C(virsh domlaunchsecinfo) shows C(sev-measurement).
      - Required unless O(launch_info) or O(domain) supplies it; given with them, it overrides the host.
    type: str
  api_major:
    description:
      - The platform firmware's API major version, as reported (C(sev-api-major)).
      - Required unless O(launch_info) or O(domain) supplies it.
    type: int
  api_minor:
    description:
      - The platform firmware's API minor version, as reported (C(sev-api-minor)).
      - Required unless O(launch_info) or O(domain) supplies it.
    type: int
  build_id:
    description:
      - The platform firmware's build id, as reported (C(sev-build-id)).
      - Required unless O(launch_info) or O(domain) supplies it.
    type: int
  policy:
    description:
      - The guest policy, a 32-bit value (C(sev-policy)). Bit 2 (C(0x4)) means SEV-ES.
      - Reserved bits 6 to 15 are refused, since firmware never launches a guest with them.
      - Required unless O(launch_info) or O(domain) supplies it.
    type: int
  firmware:
    description:
      - Path on the controller to the firmware image the guest boots, exactly as loaded (for split OVMF
        builds the C(OVMF_CODE*.fd) file, never the VARS file).
      - Always required. From a domain, the loader path in its XML is never used, not even with O(insecure); the
        host would choose which controller file is hashed as the trusted firmware. The same holds for O(kernel) and
        O(initrd).
      - Only a regular file is read (a device, FIFO or directory is refused, also through a symlink). The OVMF
        footer table is parsed from the bytes that were hashed. A malformed footer is a usage error (RV(rc) 2).
    type: path
  kernel:
    description:
      - Path on the controller to the kernel of a measured direct boot (libvirt C(kernelHashes='yes')).
      - Refused when the firmware has no usable SEV hash table (Debian's OVMF builds have none), as QEMU
        refuses such a launch.
    type: path
  initrd:
    description: Path on the controller to the initrd of a measured direct boot. Requires O(kernel).
    type: path
  cmdline:
    description:
      - The kernel command line, hashed exactly as given (UTF-8, no normalisation). Requires O(kernel).
      - YAML and Jinja can change whitespace; use O(cmdline_b64) to be byte-exact.
      - A NUL byte is refused (usage error), since QEMU takes the command line as a C string and measures it up to
        the first NUL (C(strlen + 1) bytes), so nothing after a NUL can reach the guest.
    type: str
  cmdline_b64:
    description:
      - The kernel command line as base64 of its exact bytes. Mutually exclusive with O(cmdline).
      - A NUL byte in the decoded bytes is refused, as for O(cmdline).
    type: str
  num_cpus:
    description: Number of vCPUs. Required for SEV-ES, ignored (with a warning) for plain SEV.
    type: int
  vmsa_cpu0:
    description: Path to the 4096-byte VMSA of the boot vCPU (SEV-ES).
    type: path
  vmsa_cpu1:
    description: Path to the 4096-byte VMSA of the other vCPUs (SEV-ES, more than one vCPU).
    type: path
  cpu_family:
    description:
      - CPU family of the host, to build the VMSAs instead of reading files (SEV-ES), e.g. C(25) for Milan.
      - Needs O(cpu_model) and O(cpu_stepping); mutually exclusive with O(vmsa_cpu0) and O(vmsa_cpu1).
    type: int
  cpu_model:
    description: CPU model of the host, to build the VMSAs (SEV-ES).
    type: int
  cpu_stepping:
    description: CPU stepping of the host, to build the VMSAs (SEV-ES).
    type: int
  vmsa_variant:
    description:
      - How the host's KVM builds the initial vCPU state, when VMSAs are built from the CPU SKU.
      - V(legacy) is KVM's C(KVM_SEV_ES_INIT) (QEMU before 9.1, or C(legacy-vm-type) set), and is what
        libvirt 9.0's C(virt-qemu-sev-validate) builds.
      - V(init2) is C(KVM_SEV_INIT2) (Linux 6.10 or later with QEMU 9.1 or later and C(legacy-vm-type=off);
        QEMU's default stays the legacy interface), with the FPU state
        (MXCSR C(0x1f80), x87 FCW C(0x037f)) that C(sev-snp-measure) models.
    type: str
    default: legacy
    choices: [init2, legacy]
  vmsa_sev_features:
    description:
      - The SEV features field (offset C(0x3b0)) of VMSAs built from the CPU SKU, for example C(0x20) (DebugSwap)
        on hosts where kvm_amd's C(debug_swap) parameter is on with the legacy interface, or when QEMU requests it.
    type: int
    default: 0
  tik:
    description: Path to the 16-byte transport integrity key (TIK) file. May be vault-encrypted.
    type: path
  tek:
    description: Path to the 16-byte transport encryption key (TEK) file. May be vault-encrypted.
    type: path
  tk:
    description:
      - Path to a 32-byte file holding TEK then TIK (sev-tool's C(tmp_tk.bin)). Mutually exclusive with
        O(tik) and O(tek). May be vault-encrypted.
    type: path
  secrets:
    description:
      - Secrets to put in the packet, in order, built only after a match.
      - The values are the files' bytes, used as-is (a trailing newline is kept).
    type: list
    elements: dict
    default: []
    suboptions:
      guid:
        description: The alias V(luks-key) or a GUID such as C(736869e5-84f0-4973-92ec-06879ce3da0b).
        type: str
        required: true
      path:
        description: Path on the controller to the secret value. May be vault-encrypted.
        type: path
        required: true
  secret_address:
    description:
      - The guest physical address the secrets will be injected at (M(confidential.sev.sev_secret_inject)'s
        C(address)), for a firmware without a usable SEV secret area.
      - With O(secrets) and a firmware whose OVMF footer has no usable secret area (entry missing, or base 0 and
        size 0 as in Debian's and Ubuntu's generic OVMF builds), the validation is refused (RV(reason)
        V(config), 4) unless this is given, since the secret would otherwise be written at guest physical
        address 0, where no firmware reads it. C(0) is refused.
    type: int
  allow_secret_policy:
    description:
      - By default secrets are released only to a guest whose (authenticated) policy has C(NODBG) and C(NOKS),
        since without C(NODBG) the host can read guest memory, the injected secret included, with C(DBG_DECRYPT);
        without C(NOKS) it can share the guest's memory key with another guest. Otherwise the task fails with
        RV(reason) V(insecure) (3), after the measurement matched.
      - V(DBG) accepts a policy without C(NODBG), V(KS) one without C(NOKS); nothing else is relaxed.
      - Secrets released to a plain SEV guest (no C(ES) bit) come with a warning, since its register state is not
        encrypted.
      - Without O(secrets) nothing is released and the policy is checked only against O(require_policy).
    type: list
    elements: str
    default: []
    choices: [DBG, KS]
  allow_zero_keys:
    description:
      - Accept an all-zero TIK (a launch without a session, whose measurement anyone can forge) and an all-zero
        TEK (a secret packet the host can decrypt). For tests against a platform without a session only.
      - Not implied by O(insecure).
    type: bool
    default: false
  secret_header_file:
    description:
      - Path on the controller to write the packet header to, as base64 text, mode 0600.
      - Needs O(secret_payload_file). Written only after a match, and only with O(secrets).
      - Header and payload are written together (temporary files, then both renamed; a failure leaves neither
        new). Each must be absent or a regular file (a symlink, directory, device node or FIFO is refused), they
        must differ from each other and from every input file, and their directory must not be writable by its
        group or other users unless it has the sticky bit; all checked before anything is validated or written.
    type: path
  secret_payload_file:
    description: Path on the controller to write the encrypted payload to, as base64 text, mode 0600.
    type: path
  require_policy:
    description:
      - Policy flags the guest must have been launched with, for example V(NODBG), V(NOKS) and V(ES).
        Checked after the measurement matched, since only then is the policy authenticated.
    type: list
    elements: str
    default: []
    choices: [DOMAIN, ES, NODBG, NOKS, NOSEND, SEV]
  min_api_version:
    description:
      - Minimum platform firmware API version, as C(MAJOR.MINOR), for example C(0.24). Older firmware
        versions have known flaws; the launch is refused (RV(reason) V(insecure)) below it.
      - The reported version is authenticated only by the measurement MAC, i.e. by the TIK. Firmware with a known
        flaw, or rolled back to one, may let the host extract the TIK and then report any version; this check
        cannot catch that. Pin the platform's API version before the launch instead, through the PDH in
        M(confidential.sev.sev_session), whose certificate chain the AMD keys sign.
    type: str
  min_build_id:
    description:
      - Minimum platform firmware build id; the launch is refused below it.
      - Authenticated only by the TIK, like O(min_api_version), with the same limits.
    type: int
  insecure:
    description:
      - From a domain, accept a local connection, a domain that is not paused, NVRAM or unmeasured direct
        boot, and take the cmdline, vCPU count and CPU SKU from what the host reports.
      - It never takes a file path (firmware, kernel, initrd) from the host, and never accepts zero keys (see
        O(allow_zero_keys)) or a weak policy for secrets (see O(allow_secret_policy)).
    type: bool
    default: false
  allow_local:
    description:
      - From a domain, accept a hypervisor that is the controller itself (for a lab, or a single machine that is
        both). It relaxes that one rule and nothing else, unlike O(insecure); the result's RV(notes) say it was
        used.
    type: bool
    default: false
  replay_dir:
    description:
      - "A directory on the controller (created 0700) where every validated measurement is recorded by its TIK's
        SHA-256 digest and its mnonce, one file each, created exclusively. A measurement already recorded there is
        refused (RV(reason) V(insecure), RV(replayed) true, no secret packet), since a host may be reporting the genuine
        measurement of an earlier launch for a different one, which a reused (pre-made) session cannot tell apart."
      - Only a matching measurement is recorded (in check mode, only looked up). Keep the directory between runs.
    type: path
  replay_context:
    description: Free-form facts stored with the recorded measurement, shown when a replay is refused (host, domain).
    type: dict
  diagnose:
    description:
      - On a mismatch, recompute under the common mistakes (TIK and TEK swapped, kernel hashes off, initrd missing,
        cmdline whitespace, vCPU count off by up to 4, another CPU SKU, another VMSA variant or DebugSwap, plain SEV
        instead of SEV-ES, another firmware from O(diagnose_firmware)) and say which single change would have
        matched, in RV(diagnosis). Advice only, the task still fails, and no MAC is ever shown.
    type: bool
    default: true
  diagnose_firmware:
    description: Other firmware builds (paths on the controller) the diagnosis should try, each read once.
    type: list
    elements: path
    default: []
  firmware_sha256:
    description:
      - The SHA-256 (64 hex digits, optionally prefixed C(sha256:)) the O(firmware) file must have.
      - A file with another digest fails the task before any verdict, with RV(reason) V(config) (4), naming this
        option; the message shows the two digests and nothing else. Pins protect against a trusted file replaced
        on the controller, and are part of the O(digest_cache) key.
    type: str
  kernel_sha256:
    description: The SHA-256 the O(kernel) file must have, as O(firmware_sha256). Requires O(kernel).
    type: str
  initrd_sha256:
    description: The SHA-256 the O(initrd) file must have, as O(firmware_sha256). Requires O(initrd).
    type: str
  digest_cache:
    description:
      - Path on the controller of a digest cache file (JSON, mode 0600), shared by the validations of a play and
        by Ansible's forked workers, so that each distinct kernel and initrd is hashed once; for example
        C({{ state_dir }}/digests.json) in the launch role's state directory. Default, the digests are kept in
        memory for this task only.
      - A file is looked up by its identity, taken from the descriptor that is hashed, device, inode, size,
        modification and change time (nanoseconds), path, and the pin when given; any change to a file changes its
        change time, so it is hashed again. A file that changed less than two seconds before it was read is never
        cached (timestamps have a granularity). A file that changes while it is hashed fails the task. Workers that
        need one file at once wait for the one hashing it and read its digest from the cache.
      - The cache is trusted, whoever can write it decides which digest a file has. It must be a regular file owned
        by the user running Ansible, mode 0600, not a symbolic link, in a directory others cannot write, and none of
        the input or output files; otherwise the task fails (RV(reason) V(insecure) or V(unsupported)). A file that
        is not a digest cache at all is refused, never overwritten; an unreadable entry is ignored with a warning.
        It holds digests, sizes and paths of the measured files, no key or secret.
      - The firmware is hashed once per task (its hash state, needed to continue the launch digest, is kept in
        memory only). Not written in check mode. Writing it is not reported as a change.
      - See the threat model, C(docs/security.md), section Digest cache.
    type: path
  launch_info:
    description:
      - The registered result of M(confidential.sev.sev_launch_info), to validate straight from a domain.
        Every value in it is checked again before use. Mutually exclusive with O(domain).
      - It is taken to come from the host this task targets, read through this task's connection with O(uri).
    type: dict
  domain:
    description:
      - A domain (name, UUID or ID) to read the launch state from, over O(uri), from the controller.
        Needs libvirt-python on the controller.
    type: str
  uri:
    description:
      - The libvirt URI to reach O(domain) from the controller, for example C(qemu+ssh://root@hv1/system); with
        O(launch_info), the URI its M(confidential.sev.sev_launch_info) task used on the host (default
        C(qemu:///system)).
      - A hypervisor that is the controller itself is refused unless O(allow_local) or O(insecure). Unlike
        C(virt-qemu-sev-validate), which compares the hostname the host reports, local is decided from the URI
        and the connection, never from what the host says. A URI without a host (or naming a loopback name)
        reaches the machine its client runs on, the controller with O(domain), the targeted host with
        O(launch_info), which is the controller when the task's connection is C(local) or its address is one of
        the controller's. A URI naming a host is local when that name resolves to an address of the controller.
        This guards against misuse (validating on the hypervisor you distrust), not against a lying host.
    type: str
  ignore_config:
    description:
      - From a domain, do not fail on the configuration problems that
        RV(confidential.sev.sev_launch_info#module:config_problems) lists (no SEV launch security, no
        C(dhCert) or C(session), not one loader, C(kernelHashes) inconsistent).
      - The two security-relevant problems, NVRAM and unmeasured direct boot, are still refused; only O(insecure)
        accepts them. They are read from the host's XML, so they catch mistakes, not a lying host; the guarantee
        comes from the owner's firmware file (a usable hash table when O(kernel) is given, a secret area or
        O(secret_address) when O(secrets) are given).
    type: bool
    default: false
notes:
  - Without O(secrets), a valid measurement binds nothing to the guest that runs next, and a warning says so.
  - From a domain the order of checks is C(virt-qemu-sev-validate)'s, a local connection (V(insecure), 3), a domain
    not running or not paused (V(state), 5), configuration problems (V(config), 4, or V(insecure), 3), then inputs
    taken from the host only with O(insecure). libvirt cannot tell whether a paused domain ever ran; the state
    V(paused) is what is checked.
  - The measured files are read on the controller; relative paths are searched like other file options
    (a role's C(files/), then the playbook directory).
  - On a mismatch no computed measurement is returned (it would be a MAC over a nonce the host chose, an oracle
    for forgeries); compare RV(launch_digest) and RV(digests) with a known-good launch instead.
seealso:
  - name: virt-qemu-sev-validate
    description: libvirt's reference tool, whose options and exit codes this module follows.
    link: https://libvirt.org/manpages/virt-qemu-sev-validate.html
"""

EXAMPLES = r"""
- name: Validate an SEV-ES launch and build the LUKS key packet
  confidential.sev.sev_measurement_validate:
    measurement: "{{ launch.measurement }}"
    api_major: 1
    api_minor: 55
    build_id: 21
    policy: 0x7
    firmware: firmware/OVMF.amdsev.fd   # with a secret area (Debian's OVMF_CODE.fd has none)
    num_cpus: 4
    cpu_family: 25
    cpu_model: 1
    cpu_stepping: 1
    tik: keys/guest1.tik
    tek: keys/guest1.tek
    require_policy: [NODBG, NOKS, ES]
    min_api_version: "1.51"     # authenticated by the TIK only; pin the PDH's API version in sev_session too
    secrets:
      - guid: luks-key
        path: secrets/guest1-luks.key.vault
    secret_header_file: out/guest1.header
    secret_payload_file: out/guest1.payload
  register: attestation

- name: Measured direct boot, with a byte-exact command line
  confidential.sev.sev_measurement_validate:
    measurement: "{{ launch.measurement }}"
    api_major: 0
    api_minor: 24
    build_id: 15
    policy: 0x3
    firmware: firmware/OVMF.amdsev.fd
    kernel: boot/vmlinuz
    initrd: boot/initrd.img
    cmdline_b64: "{{ 'console=ttyS0 root=/dev/vda1' | b64encode }}"
    tk: keys/guest2.tk

- name: Read the launch state on the hypervisor
  confidential.sev.sev_launch_info:
    domain: guest3
  register: launch

- name: Validate from it, with the trusted files on the controller
  confidential.sev.sev_measurement_validate:
    launch_info: "{{ launch }}"
    firmware: firmware/OVMF_CODE.fd
    num_cpus: 2
    cpu_family: 25
    cpu_model: 1
    cpu_stepping: 1
    tik: keys/guest3.tik
    tek: keys/guest3.tek
"""

RETURN = r"""
msg:
  description: What happened, on success and on failure (on a failure, why; never a key, secret or MAC).
  type: str
  returned: always
  sample: the measurement matches the trusted files and keys (launch digest a78e7fef...3303a)
replay:
  description:
    - With O(replay_dir) and a valid measurement, what was recorded.
  type: dict
  returned: with O(replay_dir), when valid
  sample:
    tik_sha256: 0b6f1d3c2c5a9e1d3f4b8e7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d
    mnonce: 5e0c3a1f9b7d2e4c6a8b0d1f3e5c7a9b
    record: /srv/sev/state/seen/0b6f1d3c2c5a9e1d3f4b8e7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d/5e0c3a1f9b7d2e4c6a8b0d1f3e5c7a9b.json
  contains:
    tik_sha256:
      description: SHA-256 (hex) of a label and the TIK (never the TIK itself).
      type: str
      sample: 0b6f1d3c2c5a9e1d3f4b8e7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d
    mnonce:
      description: The launch's measurement nonce, hex.
      type: str
      sample: 5e0c3a1f9b7d2e4c6a8b0d1f3e5c7a9b
    record:
      description: The file the measurement was recorded in.
      type: str
      sample: /srv/sev/state/seen/0b6f1d3c2c5a9e1d3f4b8e7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d/5e0c3a1f9b7d2e4c6a8b0d1f3e5c7a9b.json
replayed:
  description: True when the measurement was refused as one validated before (a replay).
  type: bool
  returned: when a replay was refused
  sample: true
valid:
  description: Whether the measurement matched and every requirement held.
  type: bool
  returned: always
  sample: true
reason:
  description: V(ok), V(mismatch), V(unsupported) (bad input), V(insecure), V(config), V(state) or V(error).
  type: str
  returned: always
  sample: ok
rc:
  description: virt-qemu-sev-validate's exit code for RV(reason), 0 to 6.
  type: int
  returned: always
  sample: 0
error_kind:
  description: With O(domain), the class of a libvirt or domain-state failure (for example C(unreachable), C(libvirt),
    C(wrong_state)).
  type: str
  returned: on a libvirt or domain-state failure, when known
  sample: unreachable
libvirt_code:
  description: With O(domain), libvirt's error code of the failed call.
  type: int
  returned: on a libvirt failure, when known
  sample: 42
libvirt_call:
  description: With O(domain), the libvirt call that failed.
  type: str
  returned: on a libvirt failure, when known
  sample: virDomainLookupByName
launch_digest:
  description: SHA-256 (hex) of everything measured, the digest the platform MACs.
  type: str
  returned: when the measurement could be computed
  sample: a78e7fef823ebcc5cc90e19339e0fe4379f78dc1a44b2bb84a0cf43f9ee3303a
digests:
  description:
    - SHA-256 (hex) of each measured part, for finding what differs from a known-good launch.
  type: dict
  returned: when the measurement could be computed
  sample:
    firmware: 3f1ba4bd8f2a0a8b06b5d6e6ef0a6c1b7c7c1b7b1d1f1e9a4b2b5e9d2f3c4a5b
    vmsa_cpu0: 9d4e7f1d8d2a6c0e3b5a7c9e1f3d5b7a9c1e3f5d7b9a1c3e5f7d9b1a3c5e7f9d
  contains:
    firmware:
      description: SHA-256 of the firmware file.
      type: str
      returned: always
      sample: 3f1ba4bd8f2a0a8b06b5d6e6ef0a6c1b7c7c1b7b1d1f1e9a4b2b5e9d2f3c4a5b
    kernel:
      description: SHA-256 of the kernel (measured direct boot).
      type: str
      returned: with O(kernel)
      sample: 5c6b2f1e8d7a9c0b1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d
    initrd:
      description: SHA-256 of the initrd, or of nothing when there is none.
      type: str
      returned: with O(kernel)
      sample: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
    cmdline:
      description: SHA-256 of the command line with its NUL.
      type: str
      returned: with O(kernel)
      sample: 6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d
    hash_table:
      description: SHA-256 of the padded kernel hashes table.
      type: str
      returned: with O(kernel)
      sample: 1b4f0e9851971998e732078544c96b36c3d01cedf7caa332359d6f1d83567014
    vmsa_cpu0:
      description: SHA-256 of the boot vCPU's VMSA (SEV-ES).
      type: str
      returned: for SEV-ES
      sample: 9d4e7f1d8d2a6c0e3b5a7c9e1f3d5b7a9c1e3f5d7b9a1c3e5f7d9b1a3c5e7f9d
    vmsa_cpu1:
      description: SHA-256 of the other vCPUs' VMSA (SEV-ES, more than one vCPU).
      type: str
      returned: for SEV-ES with more than one vCPU
      sample: 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881
sizes:
  description: Byte counts of the streamed files.
  type: dict
  returned: when the measurement could be computed
  sample:
    firmware: 2097152
    kernel: 11534336
    initrd: 536870912
  contains:
    firmware:
      description: Bytes of the firmware.
      type: int
      returned: always
      sample: 2097152
    kernel:
      description: Bytes of the kernel.
      type: int
      returned: with O(kernel)
      sample: 11534336
    initrd:
      description: Bytes of the initrd.
      type: int
      returned: with O(initrd)
      sample: 536870912
policy:
  description: The guest policy decoded.
  type: dict
  returned: when the measurement could be computed
  sample:
    value: 7
    hex: '0x00000007'
    flags: [NODBG, NOKS, ES]
    min_api_major: 0
    min_api_minor: 0
  contains:
    value:
      description: The policy as an integer.
      type: int
      sample: 7
    hex:
      description: The policy in hex.
      type: str
      sample: '0x00000007'
    flags:
      description: The names of the policy bits set.
      type: list
      elements: str
      sample: [NODBG, NOKS, ES]
    min_api_major:
      description: The minimum firmware API major version the policy requires.
      type: int
      sample: 0
    min_api_minor:
      description: The minimum firmware API minor version the policy requires.
      type: int
      sample: 0
firmware:
  description: What the firmware's OVMF footer table says.
  type: dict
  returned: when the measurement could be computed
  sample:
    present: true
    sev_es_reset_address: 4294963200
    sev_hash_table: {base: 8457216, size: 1024}
    secret_area: {base: 8454144, size: 3072}
    snp_metadata_offset: null
    entries: [00f771de-1a7e-4fcb-890e-68c77e2fb44e]
  contains:
    present:
      description: Whether the firmware has an OVMF footer table.
      type: bool
      sample: true
    sev_es_reset_address:
      description: The SEV-ES reset vector address, or null.
      type: int
      sample: 4294963200
    sev_hash_table:
      description: C(base) and C(size) of the kernel hashes table area, or null.
      type: dict
      sample: {base: 8457216, size: 1024}
      contains:
        base:
          description: The guest physical address where the kernel hashes table area starts.
          type: int
          sample: 8457216
        size:
          description: Its size in bytes.
          type: int
          sample: 1024
    secret_area:
      description: C(base) and C(size) of the secret area, or null when the firmware has none (injection then
        needs an explicit guest address).
      type: dict
      sample: {base: 8454144, size: 3072}
      contains:
        base:
          description: The guest physical address where the secret area starts.
          type: int
          sample: 8454144
        size:
          description: Its size in bytes.
          type: int
          sample: 3072
    snp_metadata_offset:
      description: The SEV-SNP metadata offset, or null.
      type: int
      sample: null
    entries:
      description: The GUIDs of the footer table's entries.
      type: list
      elements: str
      sample: [00f771de-1a7e-4fcb-890e-68c77e2fb44e]
computed_measurement:
  description: The validated measurement, base64 of 48 bytes. Never returned on a mismatch.
  type: str
  returned: on a match
  sample: RjuaBStkRmVQIOGgC/Z47ZjRWHKoUjpfp0NovI/JktZPvgvtutbIauj2iXHRA+VU
secret_header:
  description: Base64 of the 52-byte LAUNCH_SECRET header (flags, IV, MAC).
  type: str
  returned: on a match, when O(secrets) were given
  sample: AAAAAHN3Y3RlZWN0c2VjcmV0aGVhZGVyc2FtcGxlMTIzNDU2Nzg5MGFiY2RlZmdoaWo=
secret_payload:
  description: Base64 of the encrypted secret table.
  type: str
  returned: on a match, when O(secrets) were given
  sample: q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ
secret_guids:
  description: The GUIDs in the secret table, in order.
  type: list
  elements: str
  returned: when the measurement could be computed
  sample: [736869e5-84f0-4973-92ec-06879ce3da0b]
secret_files:
  description: The header and payload paths written (or that would be, in check mode).
  type: dict
  returned: when files are written
  sample:
    header: out/guest1.header
    payload: out/guest1.payload
  contains:
    header:
      description: The path of the header file, as given.
      type: str
      sample: out/guest1.header
    payload:
      description: The path of the payload file, as given.
      type: str
      sample: out/guest1.payload
diagnosis:
  description: On a mismatch with O(diagnose), what was tried and which single change would have matched.
  type: dict
  returned: on a mismatch, with O(diagnose)
  sample:
    matches: [{change: vCPU count 2 instead of 4, advice: set num_cpus to 2}]
    tried: [TIK and TEK swapped, vCPU count 2 instead of 4]
    summary: set num_cpus to 2
  contains:
    matches:
      description: Each matching change, a C(change) and its C(advice).
      type: list
      elements: dict
      sample: [{change: vCPU count 2 instead of 4, advice: set num_cpus to 2}]
      contains:
        change:
          description: The change to the inputs under which the measurement matches.
          type: str
          sample: vCPU count 2 instead of 4
        advice:
          description: What to change in the task (or on the host) accordingly.
          type: str
          sample: set num_cpus to 2
    tried:
      description: The names of every change tried.
      type: list
      elements: str
      sample: [TIK and TEK swapped, vCPU count 2 instead of 4]
    summary:
      description: The advice of the matching changes, or a sentence saying none matched.
      type: str
      sample: set num_cpus to 2
digest_cache:
  description:
    - What this task's file hashing cost, from the in-memory cache, or O(digest_cache) when given.
  type: dict
  returned: when the validation ran (also when it failed after its options were read)
  sample:
    hits: 2
    misses: 1
    hashed_bytes: 2097152
  contains:
    hits:
      description: Files whose digest came from the cache (the file was opened and its identity checked, not read).
      type: int
      sample: 2
    misses:
      description: Files hashed.
      type: int
      sample: 1
    hashed_bytes:
      description: Bytes read and hashed.
      type: int
      sample: 2097152
notes:
  description: From a domain, which inputs came from the host and which explicit options overrode it.
  type: list
  elements: str
  returned: when validating from a domain
  sample: ['num_cpus: 2, from the host (insecure)']
warnings:
  description: Things worth knowing that did not stop the validation.
  type: list
  elements: str
  returned: when the measurement could be computed
  sample: ['num_cpus is ignored: a plain SEV measurement does not cover vCPUs']
"""

from ansible_collections.confidential.sev.plugins.module_utils.controller_only import refuse_on_managed_host
from ansible_collections.confidential.sev.plugins.module_utils.validate_options import (
    ARGUMENT_SPEC, VALIDATION_RULES,
)


def main():
    refuse_on_managed_host('sev_measurement_validate', ARGUMENT_SPEC, VALIDATION_RULES)


if __name__ == '__main__':
    main()

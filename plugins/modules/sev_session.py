#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sev_session
short_description: Verify an AMD SEV platform's certificate chain and create the launch session
version_added: 0.1.0
description:
  - The guest owner's side of an AMD SEV / SEV-ES launch. Checks that the platform's Diffie-Hellman key (PDH)
    belongs to a genuine AMD secure processor, then creates the launch session for it, ready for libvirt's
    C(<launchSecurity type='sev'>) C(<dhCert>) and C(<session>).
  - "Every link is checked, from AMD's root key down: the ARK equals one pinned in the collection (trust anchors
    never come from the host), the ARK's self-signature, the ASK certified and signed by that ARK, the chip's CEK
    signed by the ASK, the OCA self-signed, the PEK signed by the OCA and by the CEK, the PDH signed by the PEK
    and an ECDH key on P-384. A failure names the link (RV(reason) V(insecure), RV(rc) 3)."
  - "The session: a fresh P-384 key pair (its public half is the guest owner's certificate, GODH, returned as
    RV(dh_cert)), fresh random TEK and TIK, wrapped for the PDH key (ECDH, NIST SP 800-108 KDF, AES-128-CTR,
    HMAC-SHA256) with a MAC over exactly the 32-bit O(policy) (RV(session)). Only that platform can unwrap the
    keys, and it refuses the session for any other policy."
  - The TEK and TIK are written to O(tek_file) and O(tik_file) and/or O(tk_file), mode 0600 from creation, for
    M(confidential.sev.sev_measurement_validate). They are never returned and never appear in a message.
  - B(Runs on the controller), whatever host the task targets, through its action plugin. The hypervisor host
    is not contacted.
  - "What a verified chain proves: the PDH's private key is held by the firmware of a genuine AMD processor of
    RV(chain.generation), the chip whose CEK is O(cek_file). It does not say which machine that is. AMD's key server
    maps a chip id to its CEK, so it names the machine only if the CEK was fetched for a chip id the guest owner
    knows from elsewhere (recorded when the machine was enrolled, for example). O(cpu0_id) compares such an
    expected id with the id the host reports: that catches mix-ups (an inventory error, a guest started on
    another host), not a lying host, which can report any id. The binding comes from fetching O(cek_file) for
    the expected id."
  - Idempotent when O(dh_cert_file) and O(session_file) are given. When every requested output file exists and
    O(force) is false, no new session is made; the existing GODH and session are read back and returned, with
    C(changed) false, after checking that the existing session carries a policy MAC for O(policy) under the
    existing TIK and was made for B(this) platform's PDH with the existing keys (the GODH key is derived from
    the TEK, TIK and PDH, so the GODH and the whole session are made again and compared). Otherwise the task
    fails (a session for another PDH with RV(reason) V(insecure)); O(force=true) replaces them. A session
    made by another tool or an older release of this collection cannot be checked and is refused the same way. Without O(dh_cert_file) and
    O(session_file) the existing GODH and session cannot be returned, so every run makes a new session and
    overwrites the key files (C(changed) true).
  - O(state=absent) removes the key files and the GODH and session files, once the launch has been attested and
    its secret injected; C(changed) only if a file was removed.
author:
  - confidential.sev developers (@confidential-sev)
extends_documentation_fragment:
  - action_common_attributes
  - action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details:
      - Verifies the chain, the pins and the inputs, and reports whether a session would be made or files removed,
        but writes and removes nothing.
      - A new session's RV(dh_cert) and RV(session) are not returned in check mode (their keys are not kept).
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
  - cryptography (on the controller)
options:
  node_sev:
    description:
      - The platform's certificates as the host reports them, the RV(confidential.sev.sev_launch_info#module:node_sev)
        dict of a registered M(confidential.sev.sev_launch_info) result (run with
        O(confidential.sev.sev_launch_info#module:node_sev_info=true)), or that whole registered result.
      - Uses its C(pdh), C(cert_chain) and C(cpu0_id). Mutually exclusive with O(pdh), O(pdh_file), O(cert_chain)
        and O(cert_chain_file).
    type: dict
  pdh:
    description: The platform's PDH certificate, base64 of its 2084 bytes (as C(virsh nodesevinfo) shows C(pdh)).
    type: str
  cert_chain:
    description:
      - The platform's certificate chain, base64 of PEK, OCA and CEK (6252 bytes, as C(virsh nodesevinfo) shows
        C(cert-chain)), or of PDH, PEK, OCA and CEK (8336 bytes, as C(sevctl export) writes) without O(pdh).
      - The CEK in it is not used (the host's is an unsigned placeholder); O(cek_file) is.
    type: str
  pdh_file:
    description: Path on the controller to the PDH certificate, 2084 raw bytes or base64 text of them.
    type: path
  cert_chain_file:
    description:
      - Path on the controller to the certificate chain, raw PEK, OCA and CEK (6252 bytes), or base64 text of them.
      - Without O(pdh) and O(pdh_file), also the 8336-byte file C(sevctl export) writes (PDH, PEK, OCA, CEK).
        A C(sevctl export --full) file (with ASK and ARK appended) is refused, since trust anchors come from the
        collection.
    type: path
  cek_file:
    description:
      - Path on the controller to the chip's CEK (2084 bytes) as AMD's key server serves it, signed by AMD's ASK,
        from C(https://kdsintf.amd.com/cek/id/<hex of cpu0-id>) (the P(confidential.sev.kds_cek_url#filter) filter
        builds this URL; the key server rate-limits requests, so keep the file).
      - Required with O(state=present). The CEK the host exports is an unsigned placeholder and is refused.
    type: path
  generation:
    description:
      - Accept only AMD's root keys of this processor generation. By default the generation whose pinned signing
        key (ASK) signed the CEK is used and returned in RV(chain.generation).
    type: str
    choices: [naples, rome, milan, genoa, turin]
  ark_file:
    description:
      - Path on the controller to an ARK certificate (AMD format) to use instead of the pinned ones. It must still
        equal one of the collection's pinned ARKs (and O(ask_file) the pinned ASK it certified); trust anchors never
        come from the host. Needs O(ask_file).
      - With O(lab_root=true), the root of a lab or emulated platform to trust instead (see O(lab_root)).
    type: path
  ask_file:
    description: Path on the controller to the ASK certificate (AMD format) that goes with O(ark_file).
    type: path
  lab_root:
    description:
      - Trust O(ark_file) and O(ask_file) as given, although AMD did not sign them, for a lab or emulated platform
        whose chain ends at its own root. Every link is still checked (ARK self-signed, ASK certified and signed by
        it, CEK signed by the ASK, and on down to the PDH).
      - B(The chain then proves nothing about AMD hardware), only that the PDH belongs to a platform that root
        vouches for. The result says so loudly, in RV(user_supplied_root), RV(chain.anchors) and a warning, and
        RV(chain.generation) is V(lab).
      - The default, V(false), accepts only AMD's roots pinned in the collection. Needs O(ark_file) and
        O(ask_file); not with O(generation).
    type: bool
    default: false
  cpu0_id:
    description:
      - The chip id the guest owner expects (64 bytes, as 128 hex digits or base64), compared with the C(cpu0_id)
        the host reports in O(node_sev); a difference fails the task (RV(reason) V(insecure)).
      - Needs O(node_sev) with C(cpu0_id) (libvirt 8.4 or later). Fetch O(cek_file) for this id; see the
        description for what this proves.
    type: str
  min_pdh_api_version:
    description:
      - Minimum firmware API version, as C(MAJOR.MINOR), recorded in the PDH certificate (signed by the PEK). That
        is the firmware that made the PDH, which a later firmware update may keep; the running firmware's version
        is checked, after launch, by M(confidential.sev.sev_measurement_validate)'s
        O(confidential.sev.sev_measurement_validate#module:min_api_version).
    type: str
  policy:
    description:
      - The guest policy, the 32-bit value that goes into the domain's C(<policy>), MACed exactly as given.
        Bit 0 NODBG, 1 NOKS, 2 ES (SEV-ES), 3 NOSEND, 4 DOMAIN, 5 SEV, bits 16 to 23 minimum firmware API major,
        24 to 31 minimum API minor. Reserved bits 6 to 15 are refused, since firmware refuses them.
      - Required with O(state=present).
    type: int
  tek_file:
    description: Path on the controller to write the 16-byte transport encryption key (TEK) to, mode 0600.
    type: path
  tik_file:
    description: Path on the controller to write the 16-byte transport integrity key (TIK) to, mode 0600.
    type: path
  tk_file:
    description:
      - Path on the controller to write TEK then TIK to, 32 bytes (sev-tool's C(tmp_tk.bin)), mode 0600.
      - At least one of O(tk_file) and O(tek_file) with O(tik_file) is required.
    type: path
  dh_cert_file:
    description:
      - Path on the controller to write the GODH certificate to, as base64 text on one line (public, mode 0644).
      - Needs O(session_file); with both, the task is idempotent.
    type: path
  session_file:
    description: Path on the controller to write the session to, as base64 text on one line (public, mode 0644).
    type: path
  force:
    description: Make a new session even when every output file exists.
    type: bool
    default: false
  state:
    description:
      - V(present) verifies the chain and makes (or keeps) the session.
      - V(absent) removes O(tek_file), O(tik_file), O(tk_file), O(dh_cert_file) and O(session_file); nothing is
        verified.
    type: str
    default: present
    choices: [absent, present]
notes:
  - A session is bound to one PDH. The PDH changes when the platform's owner resets it (C(sevctl reset)) or the
    guest moves to another host; reusing an existing session is then refused (see the description), and
    O(force=true) makes a new one.
  - "Output files: each must be absent or a regular file (a symlink, directory, device node or FIFO is refused,
    nothing written), no path may be used for two outputs or also be an input file, and the directory must not be
    writable by others (for key files, not by its group either) unless it has the sticky bit, like C(/tmp).
    All outputs are written to temporary files with their final mode, then renamed together: a failure leaves
    none of them new."
  - Relative input paths are searched like other file options (a role's C(files/), then the playbook directory);
    output paths are relative to the playbook directory. Existing key files may be encrypted with Ansible Vault.
  - The platform's reported C(max_es_guests) and the PDH's API version are compared with O(policy) for warnings
    only; the platform itself enforces them at LAUNCH_START.
seealso:
  - module: confidential.sev.sev_launch_info
  - module: confidential.sev.sev_measurement_validate
"""

EXAMPLES = r"""
# On a real host: read the platform's certificates, fetch the chip's CEK from AMD, verify, make the session,
# and give it to libvirt (sev_domain sets dhCert, session and policy in the domain's definition).
- name: Read the platform's SEV certificates (no domain needed)
  confidential.sev.sev_launch_info: {}
  register: hv

- name: Fetch the chip's CEK, signed by AMD, from AMD's key server (once; on the controller)
  ansible.builtin.get_url:
    # https://kdsintf.amd.com/cek/id/<hex of cpu0-id>
    url: "{{ hv.node_sev.cpu0_id | confidential.sev.kds_cek_url }}"
    dest: "files/{{ inventory_hostname }}-cek.cert"
    mode: "0644"
  delegate_to: localhost

- name: Verify the platform's chain and make the launch session
  confidential.sev.sev_session:
    node_sev: "{{ hv }}"
    cek_file: "files/{{ inventory_hostname }}-cek.cert"
    min_pdh_api_version: "0.17"
    policy: 0x7                      # NODBG, NOKS, ES
    tek_file: keys/guest1.tek
    tik_file: keys/guest1.tik
    dh_cert_file: keys/guest1.godh.b64
    session_file: keys/guest1.session.b64
  register: launch_session

- name: Set them in the guest's definition and start it paused (the domain already has <launchSecurity type='sev'>)
  confidential.sev.sev_domain:
    domain: guest1
    state: paused
    launch_security:
      dh_cert: "{{ launch_session.dh_cert }}"
      session: "{{ launch_session.session }}"
      policy: 0x7

- name: Pin the machine, with a chip id recorded when it was enrolled (and the CEK fetched for that id)
  confidential.sev.sev_session:
    node_sev: "{{ hv.node_sev }}"
    cpu0_id: "{{ enrolled_chip_id }}"
    cek_file: "files/{{ inventory_hostname }}-cek.cert"
    generation: milan
    policy: 0x3
    tk_file: keys/guest2.tk

- name: From files, for example a sevctl export (PDH, PEK, OCA, CEK)
  confidential.sev.sev_session:
    cert_chain_file: files/hv1-sevctl-export.cert
    cek_file: files/hv1-cek.cert
    policy: 0x30010003   # NODBG, NOKS; firmware API 1.48 or later (major in bits 16-23, minor in 24-31)
    tk_file: keys/guest3.tk
    dh_cert_file: keys/guest3.godh.b64
    session_file: keys/guest3.session.b64

- name: A lab or emulated platform whose chain ends at its own root (never for production)
  confidential.sev.sev_session:
    node_sev: "{{ hv }}"
    cek_file: files/lab-cek.cert
    ark_file: files/lab_ark.cert
    ask_file: files/lab_ask.cert
    lab_root: true        # the result warns and says user_supplied_root: true
    policy: 0x7
    tk_file: keys/lab-guest.tk

- name: Once the launch is attested and its secret injected, remove the keys
  confidential.sev.sev_session:
    state: absent
    tek_file: keys/guest1.tek
    tik_file: keys/guest1.tik
    dh_cert_file: keys/guest1.godh.b64
    session_file: keys/guest1.session.b64
"""

RETURN = r"""
dh_cert:
  description: The guest owner's DH certificate (GODH), base64 of 2084 bytes, for the domain's C(<dhCert>).
  type: str
  returned: with O(state=present), except for a new session in check mode
  sample: AQAAAAAAAAAAAAAAAAAAAA... (2780 characters)
session:
  description: The launch session, base64 of 128 bytes, for the domain's C(<session>).
  type: str
  returned: with O(state=present), except for a new session in check mode
  sample: 8QIAbl3ZW1p7bKv0c9Q3iA... (172 characters)
policy:
  description: The guest policy, decoded.
  type: dict
  returned: with O(state=present)
  sample: {value: 7, hex: "0x00000007", flags: [NODBG, NOKS, ES], min_api_major: 0, min_api_minor: 0}
  contains:
    value:
      description: The policy as an integer.
      type: int
      sample: 7
    hex:
      description: The policy as 8 hexadecimal digits.
      type: str
      sample: "0x00000007"
    flags:
      description: The names of the policy bits that are set (V(NODBG), V(NOKS), V(ES), V(NOSEND), V(DOMAIN), V(SEV)).
      type: list
      elements: str
      sample: [NODBG, NOKS, ES]
    min_api_major:
      description: The oldest firmware API major version the policy accepts.
      type: int
      sample: 0
    min_api_minor:
      description: The oldest firmware API minor version the policy accepts.
      type: int
      sample: 0
chain:
  description: The verified chain.
  type: dict
  returned: with O(state=present)
  sample:
    generation: milan
    anchors: pinned
    user_supplied_root: false
    pdh: {usage: PDH, algo: ECDH-SHA256, api_major: 1, api_minor: 55}
    pek: {usage: PEK, algo: ECDSA-SHA256, api_major: 1, api_minor: 55}
    oca: {usage: OCA, algo: ECDSA-SHA256, api_major: 1, api_minor: 55}
    cek: {usage: CEK, algo: ECDSA-SHA256, api_major: 0, api_minor: 0}
  contains:
    generation:
      description: The processor generation of AMD's root key that anchors the chain, V(lab) with O(lab_root).
      type: str
      sample: rome
    anchors:
      description:
        - V(pinned), or that O(ark_file) and O(ask_file) were used (and equal the pinned ones), or with
          O(lab_root) that the chain ends at a user-supplied root, not AMD's.
      type: str
      sample: pinned
    user_supplied_root:
      description: Whether the chain ends at a root the user supplied (O(lab_root)) instead of AMD's.
      type: bool
      sample: false
    pdh:
      description: The PDH certificate's usage, algorithm and the firmware API version that made it.
      type: dict
      sample: {usage: PDH, algo: ECDH-SHA256, api_major: 0, api_minor: 22}
      contains: &cert_fields
        usage:
          description: The certificate's usage (V(PDH), V(PEK), V(OCA), V(CEK)).
          type: str
          sample: PDH
        algo:
          description: Its key algorithm.
          type: str
          sample: ECDH-SHA256
        api_major:
          description: The firmware API major version recorded in it.
          type: int
          sample: 1
        api_minor:
          description: The firmware API minor version recorded in it.
          type: int
          sample: 55
    pek:
      description: The same for the PEK.
      type: dict
      sample: {usage: PEK, algo: ECDSA-SHA256, api_major: 1, api_minor: 55}
      contains: *cert_fields
    oca:
      description: The same for the OCA.
      type: dict
      sample: {usage: OCA, algo: ECDSA-SHA256, api_major: 1, api_minor: 55}
      contains: *cert_fields
    cek:
      description: The same for the CEK (from O(cek_file)).
      type: dict
      sample: {usage: CEK, algo: ECDSA-SHA256, api_major: 0, api_minor: 0}
      contains: *cert_fields
user_supplied_root:
  description:
    - True when the chain ends at a user-supplied root (O(lab_root)), not at AMD's; the chain then proves nothing
      about AMD hardware. A warning says the same.
  type: bool
  returned: with O(state=present)
  sample: false
cpu0_id:
  description: The chip id the host reported, in hex, or null.
  type: str
  returned: with O(state=present)
  sample: 3a8e7f...(128 hexadecimal digits)
kds_cek_url:
  description: The key server URL of the CEK for the chip id the host reported, or null.
  type: str
  returned: with O(state=present)
  sample: https://kdsintf.amd.com/cek/id/3a8e7f...
files:
  description:
    - The output files (written, kept, or that would be written in check mode), by kind; only the outputs that
      were given appear.
  type: dict
  returned: with O(state=present)
  sample: {tek: keys/guest1.tek, tik: keys/guest1.tik, dh_cert: out/guest1.godh.b64, session: out/guest1.session.b64}
  contains:
    tek:
      description: O(tek_file).
      type: str
      sample: keys/guest1.tek
    tik:
      description: O(tik_file).
      type: str
      sample: keys/guest1.tik
    tk:
      description: O(tk_file).
      type: str
      sample: keys/guest1.tk
    dh_cert:
      description: O(dh_cert_file).
      type: str
      sample: out/guest1.godh.b64
    session:
      description: O(session_file).
      type: str
      sample: out/guest1.session.b64
removed:
  description: The files removed (or that would be, in check mode).
  type: list
  elements: str
  returned: with O(state=absent)
  sample: [keys/guest1.tek, keys/guest1.tik]
msg:
  description:
    - What was done (the chain verified; a fresh session made, or the existing one kept; files removed), or why the
      task failed, naming the option or certificate at fault (never key material).
  type: str
  returned: always
  sample: "CEK: no pinned AMD signing key (ASK) signed it; is it the CEK from AMD's key server for this chip, and not
    the unsigned one from the host? (...)"
reason:
  description: V(ok), or why the task failed, V(unsupported) (bad input), V(insecure) (a link or pin failed) or V(error).
  type: str
  returned: always
  sample: ok
rc:
  description: The exit code for RV(reason), as C(virt-qemu-sev-validate) numbers them (0, 2, 3, 6).
  type: int
  returned: always
  sample: 0
warnings:
  description: Reasons LAUNCH_START may fail that did not stop the task.
  type: list
  elements: str
  returned: when there are any
  sample:
    - "the policy has SEV-ES (bit 2) and the host reports max_es_guests 0: LAUNCH_START will fail unless the
      platform runs SEV-ES guests"
"""

from ansible_collections.confidential.sev.plugins.module_utils.controller_only import refuse_on_managed_host
from ansible_collections.confidential.sev.plugins.module_utils.session_options import (
    ARGUMENT_SPEC, VALIDATION_RULES,
)


def main():
    refuse_on_managed_host('sev_session', ARGUMENT_SPEC, VALIDATION_RULES)


if __name__ == '__main__':
    main()

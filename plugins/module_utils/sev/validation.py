# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline validation, start to end: what virt-qemu-sev-validate does without
a libvirt domain, with its checks in its order, plus the refusals it lacks.

validate() raises a SevError subclass for a refusal (usage, insecure input,
malformed firmware, unmet requirements) and returns a ValidationResult for a
computed verdict, match or mismatch.  It fails closed: nothing but a
constant-time equal MAC gives ``valid``.
"""

from __future__ import annotations

import base64

from . import kernel_hashes, policy as policy_mod
from .errors import FirmwareFormatError, IncorrectConfig, InsecureUsage, UnsupportedUsage
from .diagnosis import LaunchContext, diagnose
from .digest_cache import check_pin, parse_pin
from .launch_digest import assemble_launch_digest, hash_measured_files
from .measurement import decode_measurement, measurement_matches
from .ovmf import parse_footer, read_footer
from .secrets import SecretTable, build_secret_packet
from .vmsa import DEFAULT_VARIANT, VMSA_SIZE, build_vmsas

# More vCPUs than any SEV-ES host runs (the ASID and VMSA limits are far lower);
# the bound keeps a typo from hashing gigabytes of copies.
MAX_CPUS = 4096


class ValidationRequest:
    """Everything one validation needs.  Paths for the large files (hashed in
    a stream), bytes for the small ones (VMSAs, secrets), loaded SessionKeys."""

    def __init__(self, measurement, api_major, api_minor, build_id, policy, firmware, keys,
                 kernel=None, initrd=None, cmdline=None, num_cpus=None,
                 vmsa_cpu0=None, vmsa_cpu1=None, cpu_family=None, cpu_model=None,
                 cpu_stepping=None, vmsa_variant=DEFAULT_VARIANT, sev_features=0,
                 secrets=(), require_policy=(), min_api_version=None, min_build_id=None,
                 insecure=False, diagnose=True, diagnose_firmware=(), secret_address=None,
                 allow_secret_policy=(), allow_zero_keys=False, firmware_sha256=None, kernel_sha256=None,
                 initrd_sha256=None):
        self.measurement = measurement
        self.api_major = api_major
        self.api_minor = api_minor
        self.build_id = build_id
        self.policy = policy
        self.firmware = firmware
        self.keys = keys
        self.kernel = kernel
        self.initrd = initrd
        self.cmdline = cmdline
        self.num_cpus = num_cpus
        self.vmsa_cpu0 = vmsa_cpu0
        self.vmsa_cpu1 = vmsa_cpu1
        self.cpu_family = cpu_family
        self.cpu_model = cpu_model
        self.cpu_stepping = cpu_stepping
        self.vmsa_variant = vmsa_variant
        self.sev_features = sev_features
        # (alias_or_guid, value bytes, name for messages)
        self.secrets = list(secrets)
        self.require_policy = list(require_policy)
        self.min_api_version = min_api_version
        self.min_build_id = min_build_id
        self.insecure = insecure
        # Where the secrets will be injected when not at the firmware's secret area.
        self.secret_address = secret_address
        # Policy weaknesses (DBG, KS) under which secrets may still be released.
        self.allow_secret_policy = list(allow_secret_policy)
        # Accept all-zero TIK/TEK (a launch without a session): never implied by insecure.
        self.allow_zero_keys = allow_zero_keys
        # The user's pinned SHA-256 (hex) of each measured file: a file that
        # differs is refused before any verdict (a config error).
        self.firmware_sha256 = firmware_sha256
        self.kernel_sha256 = kernel_sha256
        self.initrd_sha256 = initrd_sha256
        # On a mismatch: try the common mistakes (and these other firmware builds).
        self.diagnose = diagnose
        self.diagnose_firmware = list(diagnose_firmware)


class ValidationResult:
    def __init__(self, valid, launch_digest, policy, firmware, computed_measurement=None,
                 secret_header=None, secret_payload=None, secret_guids=(), warnings=(), diagnosis=None):
        self.valid = valid
        self.reason = 'ok' if valid else 'mismatch'
        self.rc = 0 if valid else 1
        self.launch_digest = launch_digest
        self.policy = policy
        self.firmware = firmware
        self.computed_measurement = computed_measurement
        self.secret_header = secret_header
        self.secret_payload = secret_payload
        self.secret_guids = list(secret_guids)
        self.warnings = list(warnings)
        self.diagnosis = diagnosis

    def as_dict(self):
        """JSON-friendly; base64 for binary values.  Holds no key or plaintext."""
        def b64(value):
            return None if value is None else base64.b64encode(value).decode('ascii')
        return {
            'valid': self.valid,
            'reason': self.reason,
            'rc': self.rc,
            'launch_digest': self.launch_digest.hex,
            'digests': dict(self.launch_digest.components),
            'sizes': dict(self.launch_digest.sizes),
            'policy': self.policy.describe(),
            'firmware': self.firmware,
            'computed_measurement': b64(self.computed_measurement),
            'secret_header': b64(self.secret_header),
            'secret_payload': b64(self.secret_payload),
            'secret_guids': self.secret_guids,
            'warnings': self.warnings,
            'diagnosis': self.diagnosis,
        }


def _check_vmsa_inputs(request, policy):
    """The reference tool's SKU/VMSA/vCPU rules, plus agreement with the ES bit."""
    sku = (request.cpu_family, request.cpu_model, request.cpu_stepping)
    given_sku = [value for value in sku if value is not None]
    vmsa_files = request.vmsa_cpu0 is not None or request.vmsa_cpu1 is not None
    if given_sku and vmsa_files:
        raise UnsupportedUsage('vmsa_cpu0/vmsa_cpu1 are mutually exclusive with cpu_family/cpu_model/cpu_stepping')
    if given_sku and len(given_sku) != 3:
        raise UnsupportedUsage('a CPU SKU needs all of cpu_family, cpu_model and cpu_stepping')
    if request.vmsa_cpu1 is not None and request.vmsa_cpu0 is None:
        raise UnsupportedUsage('vmsa_cpu1 also requires vmsa_cpu0')
    for name in ('vmsa_cpu0', 'vmsa_cpu1'):
        page = getattr(request, name)
        if page is not None and len(page) != VMSA_SIZE:
            raise UnsupportedUsage('%s must be exactly %d bytes, got %d' % (name, VMSA_SIZE, len(page)))

    if not policy.es:
        if given_sku or vmsa_files:
            raise UnsupportedUsage(
                'policy 0x%08x has no ES bit (0x4), but VMSA files or a CPU SKU were given: '
                'either the guest was launched as plain SEV (its CPU state is not protected) '
                'or the policy is wrong' % policy.value)
        return
    if request.num_cpus is None:
        raise UnsupportedUsage('num_cpus is required for an SEV-ES guest (policy bit ES)')
    if not isinstance(request.num_cpus, int) or isinstance(request.num_cpus, bool) \
            or not 1 <= request.num_cpus <= MAX_CPUS:
        raise UnsupportedUsage('num_cpus must be from 1 to %d, got %s' % (MAX_CPUS, policy_mod.shown(request.num_cpus)))
    if not given_sku and request.vmsa_cpu0 is None:
        raise UnsupportedUsage('an SEV-ES guest needs vmsa_cpu0 (and vmsa_cpu1 with several vCPUs) '
                               'or cpu_family/cpu_model/cpu_stepping')
    if not given_sku and request.num_cpus > 1 and request.vmsa_cpu1 is None:
        raise UnsupportedUsage('vmsa_cpu1 is required for an SEV-ES guest with more than one vCPU')


# What a secret policy relaxation may name: the policy bit whose absence it accepts.
SECRET_POLICY_RELAXATIONS = {'DBG': 'NODBG', 'KS': 'NOKS'}
MAX_GUEST_ADDRESS = (1 << 64) - 1


def check_secret_address(address):
    """An explicit injection address: a 64-bit guest physical address, never 0."""
    if address is None:
        return None
    if not isinstance(address, int) or isinstance(address, bool) or not 0 < address <= MAX_GUEST_ADDRESS:
        raise UnsupportedUsage('secret_address must be a guest physical address from 1 to 2^64-1 (0 is where '
                               'a firmware without a secret area would get the secret, and reads none)')
    return address


def secret_policy_relaxations(names):
    unknown = [name for name in names if name not in SECRET_POLICY_RELAXATIONS]
    if unknown:
        raise UnsupportedUsage('allow_secret_policy: unknown value(s) %s; known: %s'
                               % (', '.join(str(name) for name in unknown), ', '.join(sorted(SECRET_POLICY_RELAXATIONS))))
    return list(names)


def check_secret_policy(policy, allowed=()):
    """Refuse to release secrets to a guest the host can read them from.

    Without NODBG the host may DBG_DECRYPT guest memory (the injected secret
    included); without NOKS it may share the guest's key with another guest
    it controls.  ``allowed`` names the weaknesses accepted (DBG, KS).
    Returns warnings (plain SEV: the CPU state is not protected).
    """
    missing = [flag for weakness, flag in sorted(SECRET_POLICY_RELAXATIONS.items())
               if weakness not in allowed and not policy.value & (1 << policy_mod.FLAG_BITS[flag])]
    if missing:
        raise InsecureUsage(
            'secrets: the guest policy 0x%08x lacks %s: the host could %s, so no secret is released '
            '(allow_secret_policy accepts it, naming DBG and/or KS)'
            % (policy.value, ' and '.join(missing),
               ' and '.join({'NODBG': 'decrypt guest memory with DBG_DECRYPT',
                             'NOKS': 'share the guest\'s memory key with another guest'}[flag] for flag in missing)))
    if not policy.es:
        return ['secrets released to a plain SEV guest (no ES bit): its register state is not encrypted, so the '
                'host can read and change it while the guest runs; prefer SEV-ES (policy bit 0x4)']
    return []


def _check_secrets(request):
    table = SecretTable()
    for alias_or_guid, value, name in request.secrets:
        table.add(alias_or_guid, value, name)
    return table


def _footer_checks(request, policy, table, footer):
    """What the owner's firmware must offer for this request: a usable hash
    table for a kernel, a secret area (or an explicit address) for secrets, a
    reset block to build VMSAs from a SKU.  Returns the VMSAs (cpu0, cpu1)."""
    if request.kernel is not None and footer.usable_hash_table(kernel_hashes.PADDED_TABLE_SIZE) is None:
        raise UnsupportedUsage(
            'kernel: firmware %s has no usable SEV hash table (entry missing, or base 0 or size < %d), '
            'so QEMU refuses measured direct boot with it; use a firmware built for it (e.g. OVMF AmdSevX64)'
            % (request.firmware, kernel_hashes.PADDED_TABLE_SIZE))
    if len(table) and footer.secret_area is None and request.secret_address is None:
        raise IncorrectConfig(
            'secrets: firmware %s has no usable SEV secret area (entry missing, or base 0 or size 0, as in '
            'Debian\'s and Ubuntu\'s generic OVMF builds) and no secret_address is given: injected there, the '
            'secret would land at guest physical address 0 where no firmware reads it; use a firmware with a '
            'secret area (e.g. OVMF AmdSevX64) or give the address your firmware reads secrets from'
            % request.firmware)
    vmsa_cpu0, vmsa_cpu1 = request.vmsa_cpu0, request.vmsa_cpu1
    if policy.es and vmsa_cpu0 is None:
        if footer.sev_es_reset_address is None:
            raise FirmwareFormatError(
                'firmware %s has no SEV-ES reset block in its OVMF footer table: VMSAs cannot be built '
                'from a CPU SKU for it' % request.firmware)
        vmsa_cpu0, vmsa_cpu1 = build_vmsas(footer.sev_es_reset_address, request.cpu_family,
                                           request.cpu_model, request.cpu_stepping,
                                           request.vmsa_variant, request.sev_features)
    return vmsa_cpu0, vmsa_cpu1


PINNED_FILES = (('firmware', 'firmware_sha256'), ('kernel', 'kernel_sha256'), ('initrd', 'initrd_sha256'))


def parse_pins(request):
    """name -> pinned hex digest, checked before any file is read: a pin
    needs its file, and must be a SHA-256 in hex."""
    pins = {}
    for name, option in PINNED_FILES:
        pin = parse_pin(getattr(request, option), option)
        if pin is None:
            continue
        if getattr(request, name) is None:
            raise UnsupportedUsage('%s is given but %s is not: a pin needs the file it pins' % (option, name))
        pins[name] = pin
    return pins


def check_pins(request, files, pins):
    """Fail closed (config error naming the option) on a file that is not the pinned one."""
    digests = {'firmware': files.firmware_state.copy().digest(), 'kernel': files.kernel_digest,
               'initrd': files.initrd_digest}
    for name, option in PINNED_FILES:
        if name in pins:
            check_pin(option, name, getattr(request, name), digests[name], pins[name])


def validate(request, digest_cache=None):
    """Validate one launch.  See the module docstring for the contract.

    ``digest_cache``: a digest_cache.DigestCache shared by many validations,
    so that each distinct firmware, kernel and initrd is hashed once."""
    # 1. What the host reported, as data to check.
    blob = decode_measurement(request.measurement)
    for name in ('api_major', 'api_minor', 'build_id'):
        policy_mod.check_byte(name, getattr(request, name))
    policy = policy_mod.GuestPolicy(request.policy)
    min_api = (policy_mod.parse_api_version(request.min_api_version)
               if request.min_api_version is not None else None)
    if request.min_build_id is not None:
        policy_mod.check_byte('min_build_id', request.min_build_id)

    # 2. What the guest owner gave: fail fast, before hashing large files.
    if request.kernel is None and (request.initrd is not None or request.cmdline is not None):
        raise UnsupportedUsage('initrd and cmdline require kernel')
    _check_vmsa_inputs(request, policy)
    table = _check_secrets(request)
    if request.keys is None:
        raise UnsupportedUsage('either tk or both of tik and tek are required')

    check_secret_address(request.secret_address)
    secret_policy_relaxations(request.allow_secret_policy)
    pins = parse_pins(request)

    # Fail fast on what the footer rules out, before hashing large files; the
    # verdict then uses only the footer parsed from the bytes that were hashed
    # (a second read of the file could see another one).
    _footer_checks(request, policy, table, read_footer(request.firmware))
    files = hash_measured_files(request.firmware, request.kernel, request.initrd, digest_cache, pins)
    check_pins(request, files, pins)
    footer = parse_footer(files.firmware_tail, source=request.firmware)
    vmsa_cpu0, vmsa_cpu1 = _footer_checks(request, policy, table, footer)
    num_cpus = request.num_cpus or 0
    warnings = []
    if not policy.es:
        vmsa_cpu0 = vmsa_cpu1 = None
        if request.num_cpus is not None:
            warnings.append('num_cpus is ignored: a plain SEV measurement does not cover vCPUs')

    # 3. The verdict.
    digest = assemble_launch_digest(files, request.cmdline, vmsa_cpu0, vmsa_cpu1, num_cpus)
    matches, computed = measurement_matches(request.keys.tik, blob, request.api_major,
                                            request.api_minor, request.build_id, policy.value,
                                            digest.digest)
    firmware = footer.describe()
    if not matches:
        diagnosis = None
        if request.diagnose:
            context = LaunchContext(request, blob, policy, files, footer, vmsa_cpu0, vmsa_cpu1, num_cpus)
            diagnosis = diagnose(context, request.diagnose_firmware)
        return ValidationResult(False, digest, policy, firmware, warnings=warnings, diagnosis=diagnosis)

    # 4. Only now are policy, API version and build id authenticated.
    policy_mod.check_requirements(policy, request.api_major, request.api_minor, request.build_id,
                                  request.require_policy, min_api, request.min_build_id)
    if len(table):
        warnings.extend(check_secret_policy(policy, request.allow_secret_policy))

    header = payload = None
    if len(table):
        plaintext = table.build()
        area = footer.secret_area
        if area is not None and request.secret_address in (None, area.base) and len(plaintext) > area.size:
            raise UnsupportedUsage('secrets: the table is %d bytes, larger than the firmware\'s secret '
                                   'area (%d bytes)' % (len(plaintext), area.size))
        header, payload = build_secret_packet(request.keys, computed, plaintext,
                                              allow_zero_keys=request.allow_zero_keys)
    return ValidationResult(True, digest, policy, firmware, computed_measurement=blob,
                            secret_header=header, secret_payload=payload,
                            secret_guids=table.guids, warnings=warnings)

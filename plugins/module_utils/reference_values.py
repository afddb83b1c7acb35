# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reference values: the SEV / SEV-ES launch digests a set of launch
configurations produces, computed from the files alone (no domain, no keys),
and written in a format an existing verifier reads.

Ansible-free, so that the action plugin, the unit tests and the differential
tests all go through the same code.  The engine (``sev/``) is used as is:

* every distinct firmware, kernel and initrd file is streamed once, all of
  them concurrently (``streaming.hash_files``), and the digest state after
  each firmware is kept (``launch_digest.MeasuredFiles``);
* every combination is then assembled from those states with
  ``launch_digest.assemble_launch_digest``: only the 176-byte hashes table and
  the 4096-byte VMSA pages are hashed per combination.

Output formats (see docs/reference-values.md for the evidence):

``simple-kbs``
    The policy file of confidential-containers/simple-kbs, the key broker that
    checks SEV / SEV-ES pre-attestation (``default_policy.json``, the
    ``Policy`` struct of its src/policy.rs).  ``allowed_digests`` holds the
    launch digests as standard base64, the string Kata's runtime sends as
    ``fw_digest`` and simple-kbs compares byte for byte.
``json``
    A list of records: each combination, its launch digest (hex and base64)
    and the digest of each measured part.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import stat

from .sev import kernel_hashes, policy as policy_mod
from .sev.errors import FirmwareFormatError, UnsupportedUsage
from .sev.files import check_not_vault  # noqa: F401  pylint: disable=unused-import
from .sev.outputs import PUBLIC_MODE, Output, check_outputs, write_outputs
from .sev.launch_digest import MeasuredFiles, assemble_launch_digest
from .sev.ovmf import read_footer
from .sev.streaming import hash_files
from .sev.validation import MAX_CPUS
from .sev.vmsa import DEFAULT_VARIANT, NAMED_CPUS, QEMU_CPU_MODELS, VARIANTS, build_vmsas, cpu_signature
from .validate_options import cmdline_bytes

FORMATS = ('simple-kbs', 'json')
DEFAULT_FORMAT = 'simple-kbs'
MODES = ('sev', 'seves')          # sev-snp-measure's --mode names

# Limits that keep a typo from running for hours or writing a huge file.
MAX_RECORDS = 10000
MAX_VMSA_PAGES = 1 << 20          # 4 GiB of VMSA pages hashed, all records together
# An existing output file bigger than this is not compared, just replaced.
MAX_COMPARE_SIZE = 64 << 20

# CPU SKUs by name, and QEMU's model names for them.
CPU_SKUS = NAMED_CPUS
CPU_SKU_ALIASES = QEMU_CPU_MODELS

ARGUMENT_SPEC = dict(
    firmware=dict(type='list', elements='path', required=True),
    direct_boot=dict(type='list', elements='dict', default=[], options=dict(
        kernel=dict(type='path', required=True),
        initrd=dict(type='path'),
        cmdline=dict(type='str'),
        cmdline_b64=dict(type='str'),
    ), mutually_exclusive=[('cmdline', 'cmdline_b64')]),
    modes=dict(type='list', elements='str', choices=list(MODES)),
    num_cpus=dict(type='list', elements='int'),
    cpu_skus=dict(type='list', elements='str'),
    vmsa_variants=dict(type='list', elements='str', choices=sorted(VARIANTS)),
    vmsa_sev_features=dict(type='list', elements='int'),
    dest=dict(type='path', required=True),
    format=dict(type='str', default=DEFAULT_FORMAT, choices=list(FORMATS)),
    allowed_policies=dict(type='list', elements='int'),
    min_api_version=dict(type='str'),
    allowed_build_ids=dict(type='list', elements='int'),
)
VALIDATION_RULES = {}

# Options that only shape SEV-ES records, and those only the simple-kbs format writes.
SEV_ES_OPTIONS = ('num_cpus', 'cpu_skus', 'vmsa_variants', 'vmsa_sev_features')
SIMPLE_KBS_OPTIONS = ('allowed_policies', 'min_api_version', 'allowed_build_ids')


# ------------------------------------------------------------------ inputs

class CpuSku:
    """One CPU SKU: a label for the records, and family/model/stepping."""

    def __init__(self, label, family, model, stepping):
        self.label = label
        self.family = family
        self.model = model
        self.stepping = stepping
        self.signature = cpu_signature(family, model, stepping)


def parse_cpu_sku(text):
    """A table name (case-insensitive, EPYC-* aliases too) or ``FAMILY/MODEL/STEPPING``
    (each decimal, or hex with 0x), e.g. ``Milan`` or ``25/1/1``."""
    value = str(text).strip()
    names = dict((name.lower(), name) for name in CPU_SKUS)
    names.update((alias.lower(), name) for alias, name in CPU_SKU_ALIASES.items())
    name = names.get(value.lower())
    if name is not None:
        return CpuSku(name, *CPU_SKUS[name])
    parts = value.split('/')
    try:
        if len(parts) != 3:
            raise ValueError(value)
        # ASCII only: int() would read other scripts' digits too
        if not all(policy_mod.is_integer_text(part) for part in parts):
            raise ValueError(value)
        family, model, stepping = (policy_mod.integer_from_text(part) for part in parts)
    except ValueError:
        raise UnsupportedUsage(
            'cpu_skus: %r is neither a known CPU (%s) nor FAMILY/MODEL/STEPPING such as 25/1/1'
            % (text, ', '.join(sorted(CPU_SKUS) + sorted(CPU_SKU_ALIASES))))
    try:
        return CpuSku('%d/%d/%d' % (family, model, stepping), family, model, stepping)
    except UnsupportedUsage as exc:
        raise UnsupportedUsage('cpu_skus: %r: %s' % (text, exc))


def _no_duplicates(name, values, key=None):
    seen = set()
    for value in values:
        marker = key(value) if key is not None else value
        if marker in seen:
            raise UnsupportedUsage('%s: %r is listed twice' % (name, value))
        seen.add(marker)


class BootSet:
    """One measured direct boot: kernel, optional initrd, cmdline bytes (or None)."""

    def __init__(self, index, kernel, initrd, cmdline, kernel_path, initrd_path):
        self.index = index
        self.kernel = kernel              # as given (for the records)
        self.initrd = initrd
        self.cmdline = cmdline            # bytes or None
        self.kernel_path = kernel_path    # resolved (to read)
        self.initrd_path = initrd_path


class Plan:
    """Checked options: what to compute and how to write it."""

    def __init__(self):
        self.firmware = []       # (as given, resolved path)
        self.boot_sets = []      # BootSet, or [None] for no measured direct boot
        self.modes = []
        self.num_cpus = []
        self.skus = []
        self.variants = []
        self.sev_features = []
        self.output_format = DEFAULT_FORMAT
        self.allowed_policies = []
        self.min_api = (0, 0)
        self.allowed_build_ids = []
        self.warnings = []

    @property
    def es_combinations(self):
        return len(self.num_cpus) * len(self.skus) * len(self.variants) * len(self.sev_features)

    @property
    def record_count(self):
        per_boot = (1 if 'sev' in self.modes else 0) + (self.es_combinations if 'seves' in self.modes else 0)
        return len(self.firmware) * len(self.boot_sets) * per_boot


def _given(params, name):
    return params.get(name) is not None


def _check_simple_kbs(params, plan):
    if plan.output_format != 'simple-kbs':
        given = [name for name in SIMPLE_KBS_OPTIONS if _given(params, name)]
        if given:
            raise UnsupportedUsage('%s only apply to format simple-kbs' % ', '.join(given))
        return
    policies = params.get('allowed_policies') or []
    _no_duplicates('allowed_policies', policies)
    for value in policies:
        policy_mod.GuestPolicy(value)     # 32 bits, no reserved bits
    if policies:
        with_es = [value for value in policies if value & policy_mod.ES]
        if 'seves' in plan.modes and not with_es:
            raise UnsupportedUsage('allowed_policies has no policy with the ES bit (0x4), so simple-kbs '
                                   'would refuse every SEV-ES launch these digests describe')
        if 'sev' in plan.modes and len(with_es) == len(policies):
            raise UnsupportedUsage('allowed_policies has only policies with the ES bit (0x4), so simple-kbs '
                                   'would refuse every plain SEV launch these digests describe')
        debuggable = ['0x%x' % value for value in policies if not value & 1]
        if debuggable:
            plan.warnings.append('allowed_policies %s lack NODBG (0x1): the host can debug such guests and '
                                 'read their memory' % ', '.join(debuggable))
    else:
        plan.warnings.append('allowed_policies is not set: simple-kbs then accepts any guest policy, '
                             'including ones that let the host debug the guest')
    build_ids = params.get('allowed_build_ids') or []
    _no_duplicates('allowed_build_ids', build_ids)
    for value in build_ids:
        policy_mod.check_byte('allowed_build_ids', value)
    plan.allowed_policies = list(policies)
    plan.allowed_build_ids = list(build_ids)
    if _given(params, 'min_api_version'):
        plan.min_api = policy_mod.parse_api_version(params['min_api_version'])


def _check_sev_es(params, plan):
    if 'seves' not in plan.modes:
        given = [name for name in SEV_ES_OPTIONS if _given(params, name)]
        if given:
            raise UnsupportedUsage('%s only apply to SEV-ES (mode seves), which modes does not include'
                                   % ', '.join(given))
        return
    num_cpus = params.get('num_cpus') or []
    skus = params.get('cpu_skus') or []
    if not num_cpus or not skus:
        raise UnsupportedUsage('SEV-ES (mode seves) needs num_cpus and cpu_skus: each vCPU\'s initial state '
                               'is measured')
    _no_duplicates('num_cpus', num_cpus)
    for value in num_cpus:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CPUS:
            raise UnsupportedUsage('num_cpus must be from 1 to %d, got %r' % (MAX_CPUS, value))
    plan.num_cpus = list(num_cpus)
    plan.skus = [parse_cpu_sku(text) for text in skus]
    _no_duplicates('cpu_skus', plan.skus, key=lambda sku: sku.signature)
    variants = params.get('vmsa_variants') or [DEFAULT_VARIANT]
    _no_duplicates('vmsa_variants', variants)
    for value in variants:
        if value not in VARIANTS:
            raise UnsupportedUsage('vmsa_variants: %r is not one of %s' % (value, ', '.join(sorted(VARIANTS))))
    plan.variants = list(variants)
    features = params.get('vmsa_sev_features')
    features = [0] if features is None else features
    if not features:
        raise UnsupportedUsage('vmsa_sev_features must not be empty')
    _no_duplicates('vmsa_sev_features', features)
    for value in features:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
            raise UnsupportedUsage('vmsa_sev_features must fit in 64 bits, got %r' % (value,))
    plan.sev_features = list(features)


def check_params(params, resolve_path=None):
    """Validated options -> Plan.  Raises UnsupportedUsage before any file is hashed.

    ``resolve_path(path, what)`` turns a firmware/kernel/initrd option into a
    path to read (default: as given).
    """
    resolve = resolve_path or (lambda path, what: path)
    plan = Plan()
    firmware = params.get('firmware') or []
    if not firmware:
        raise UnsupportedUsage('firmware: give at least one firmware image')
    _no_duplicates('firmware', firmware)
    plan.firmware = [(path, resolve(path, 'firmware[%d]' % index)) for index, path in enumerate(firmware)]

    boots = []
    for index, entry in enumerate(params.get('direct_boot') or []):
        what = 'direct_boot[%d]' % index
        if not entry or entry.get('kernel') is None:
            raise UnsupportedUsage('%s: kernel is required' % what)
        if entry.get('cmdline') is not None and entry.get('cmdline_b64') is not None:
            raise UnsupportedUsage('%s: cmdline and cmdline_b64 are mutually exclusive' % what)
        try:
            cmdline = cmdline_bytes(entry)
        except UnsupportedUsage as exc:
            raise UnsupportedUsage('%s: %s' % (what, exc))
        boots.append(BootSet(index, entry['kernel'], entry.get('initrd'), cmdline,
                             resolve(entry['kernel'], what + '.kernel'),
                             None if entry.get('initrd') is None else resolve(entry['initrd'], what + '.initrd')))
    _no_duplicates('direct_boot', boots, key=lambda boot: (boot.kernel, boot.initrd, boot.cmdline))
    plan.boot_sets = boots or [None]

    modes = params.get('modes')
    if modes is None:
        modes = ['seves'] if any(_given(params, name) for name in SEV_ES_OPTIONS) else ['sev']
    if not modes:
        raise UnsupportedUsage('modes must not be empty')
    _no_duplicates('modes', modes)
    for value in modes:
        if value not in MODES:
            raise UnsupportedUsage('modes: %r is not one of %s' % (value, ', '.join(MODES)))
    plan.modes = [mode for mode in MODES if mode in modes]
    _check_sev_es(params, plan)

    plan.output_format = params.get('format') or DEFAULT_FORMAT
    if plan.output_format not in FORMATS:
        raise UnsupportedUsage('format must be one of %s, got %r' % (', '.join(FORMATS), plan.output_format))
    _check_simple_kbs(params, plan)

    if plan.record_count > MAX_RECORDS:
        raise UnsupportedUsage('%d combinations; at most %d are computed in one task'
                               % (plan.record_count, MAX_RECORDS))
    if 'seves' in plan.modes:
        pages = (len(plan.firmware) * len(plan.boot_sets) * len(plan.skus) * len(plan.variants)
                 * len(plan.sev_features) * sum(plan.num_cpus))
        if pages > MAX_VMSA_PAGES:
            raise UnsupportedUsage('the combinations would hash %d VMSA pages; at most %d in one task'
                                   % (pages, MAX_VMSA_PAGES))
    return plan


# ------------------------------------------------------------- computing

def hash_inputs(plan):
    """Stream every distinct firmware, kernel and initrd file once, all concurrently.

    Returns (firmware states, file digests, sizes), keyed by resolved path:
    the SHA-256 state after each firmware (the start of its launch digests)
    and the SHA-256 of each kernel and initrd.
    """
    jobs, firmware_states, file_hashers, sizes_by_path = {}, {}, {}, {}

    def add(path, what, table):
        key = os.path.realpath(path)
        if key not in table:
            table[key] = hashlib.sha256()
            jobs[what] = (path, table[key], key)

    for index, (dummy, path) in enumerate(plan.firmware):
        add(path, 'firmware[%d]' % index, firmware_states)
    for boot in plan.boot_sets:
        if boot is None:
            continue
        add(boot.kernel_path, 'direct_boot[%d].kernel' % boot.index, file_hashers)
        if boot.initrd_path is not None:
            add(boot.initrd_path, 'direct_boot[%d].initrd' % boot.index, file_hashers)
    counts = hash_files(dict((what, (path, hasher)) for what, (path, hasher, dummy) in jobs.items()))
    for what, (dummy, dummy_hasher, key) in jobs.items():
        sizes_by_path[key] = counts[what]
    digests = dict((key, hasher.digest()) for key, hasher in file_hashers.items())
    return firmware_states, digests, sizes_by_path


def measured_files(firmware_states, digests, sizes, firmware_path, boot):
    """The engine's MeasuredFiles for one firmware and boot set, from hashes already made
    (what launch_digest.hash_measured_files would return for the same files)."""
    fw_key = os.path.realpath(firmware_path)
    file_sizes = {'firmware': sizes[fw_key]}
    kernel_digest = initrd_digest = None
    if boot is not None:
        kernel_key = os.path.realpath(boot.kernel_path)
        kernel_digest = digests[kernel_key]
        file_sizes['kernel'] = sizes[kernel_key]
        initrd_digest = kernel_hashes.EMPTY_INITRD_DIGEST
        if boot.initrd_path is not None:
            initrd_key = os.path.realpath(boot.initrd_path)
            initrd_digest = digests[initrd_key]
            file_sizes['initrd'] = sizes[initrd_key]
    return MeasuredFiles(firmware_states[fw_key], kernel_digest, initrd_digest, file_sizes)


def _record(mode, firmware, boot, digest, es=None):
    cmdline = cmdline_text = None
    if boot is not None and boot.cmdline is not None:
        cmdline = base64.b64encode(boot.cmdline).decode('ascii')
        try:
            cmdline_text = boot.cmdline.decode('utf-8')
        except UnicodeDecodeError:
            cmdline_text = None
    num_cpus, sku, variant, features = es if es is not None else (None, None, None, None)
    return {
        'mode': mode,
        'firmware': firmware,
        'kernel': None if boot is None else boot.kernel,
        'initrd': None if boot is None else boot.initrd,
        'cmdline': cmdline_text,
        'cmdline_b64': cmdline,
        'num_cpus': num_cpus,
        'cpu_sku': None if sku is None else sku.label,
        'cpu_family': None if sku is None else sku.family,
        'cpu_model': None if sku is None else sku.model,
        'cpu_stepping': None if sku is None else sku.stepping,
        'cpu_signature': None if sku is None else '0x%08x' % sku.signature,
        'vmsa_variant': variant,
        'vmsa_sev_features': features,
        'launch_digest': digest.hex,
        'launch_digest_b64': base64.b64encode(digest.digest).decode('ascii'),
        'digests': dict(digest.components),
        'sizes': dict(digest.sizes),
    }


def compute_records(plan):
    """Every combination's launch digest, firmware outermost, then the boot set,
    SEV before SEV-ES, then vCPU count, CPU SKU, VMSA variant, SEV features."""
    footers = []
    for index, (dummy, path) in enumerate(plan.firmware):
        footer = read_footer(path)
        if plan.boot_sets != [None] and footer.usable_hash_table(kernel_hashes.PADDED_TABLE_SIZE) is None:
            raise UnsupportedUsage(
                'direct_boot: firmware[%d] %s has no usable SEV hash table (entry missing, or base 0 or '
                'size < %d), so QEMU refuses measured direct boot with it; use a firmware built for it '
                '(e.g. OVMF AmdSevX64)' % (index, path, kernel_hashes.PADDED_TABLE_SIZE))
        if 'seves' in plan.modes and footer.sev_es_reset_address is None:
            raise FirmwareFormatError(
                'firmware[%d] %s has no SEV-ES reset block in its OVMF footer table: VMSAs cannot be built '
                'for it' % (index, path))
        footers.append(footer)

    firmware_states, digests, sizes = hash_inputs(plan)
    records = []
    for (label, path), footer in zip(plan.firmware, footers):
        vmsas = {}
        if 'seves' in plan.modes:
            for sku, variant, features in itertools.product(plan.skus, plan.variants, plan.sev_features):
                vmsas[(sku.signature, variant, features)] = build_vmsas(
                    footer.sev_es_reset_address, sku.family, sku.model, sku.stepping, variant, features)
        for boot in plan.boot_sets:
            files = measured_files(firmware_states, digests, sizes, path, boot)
            cmdline = None if boot is None else boot.cmdline
            if 'sev' in plan.modes:
                records.append(_record('sev', label, boot, assemble_launch_digest(files, cmdline)))
            if 'seves' not in plan.modes:
                continue
            for num_cpus, sku, variant, features in itertools.product(
                    plan.num_cpus, plan.skus, plan.variants, plan.sev_features):
                cpu0, cpu1 = vmsas[(sku.signature, variant, features)]
                digest = assemble_launch_digest(files, cmdline, cpu0, cpu1, num_cpus)
                records.append(_record('seves', label, boot, digest, (num_cpus, sku, variant, features)))
    return records


# ---------------------------------------------------------------- output

def distinct_digests(records):
    """The records' launch digests (standard base64), each once, in record order."""
    digests = []
    for record in records:
        if record['launch_digest_b64'] not in digests:
            digests.append(record['launch_digest_b64'])
    return digests


def render(plan, records):
    """The output file's bytes (UTF-8 JSON, 2-space indent, final newline; deterministic)."""
    if plan.output_format == 'json':
        return (json.dumps(records, indent=2, sort_keys=True) + '\n').encode('utf-8')
    digests = distinct_digests(records)
    if not digests:
        # simple-kbs reads an empty allowed_digests as "any digest": never write one.
        raise UnsupportedUsage('no launch digest to publish; an empty allowed_digests would allow any launch')
    policy = {
        'allowed_digests': digests,
        'allowed_policies': plan.allowed_policies,
        'min_fw_api_major': plan.min_api[0],
        'min_fw_api_minor': plan.min_api[1],
        'allowed_build_ids': plan.allowed_build_ids,
    }
    return (json.dumps(policy, indent=2) + '\n').encode('utf-8')


def check_dest(path, inputs=()):
    """Refuse a dest that is not absent or a regular file (a device, FIFO, directory or
    symlink), in a directory others can write, or that is one of the ``inputs``
    ((option, path) pairs): before the existing file is read or anything written."""
    check_outputs([Output('dest', path, None, PUBLIC_MODE)], inputs)


def read_existing(path):
    """The current bytes at ``path``, None if there is no file; only a regular file is read
    (check_dest first).  A file larger than MAX_COMPARE_SIZE gives b'' (different from any output)."""
    if not os.path.lexists(path):
        return None
    check_dest(path)
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_NOFOLLOW', 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnsupportedUsage('dest: cannot read %s: %s' % (path, exc.strerror or exc))
    if not stat.S_ISREG(os.fstat(handle).st_mode):
        os.close(handle)
        raise UnsupportedUsage('dest: %s is not a regular file' % path)
    with os.fdopen(handle, 'rb') as stream:
        try:
            data = stream.read(MAX_COMPARE_SIZE + 1)
        except OSError as exc:
            raise UnsupportedUsage('dest: cannot read %s: %s' % (path, exc.strerror or exc))
    return b'' if len(data) > MAX_COMPARE_SIZE else data


def write_public_file(path, data, mode=PUBLIC_MODE, inputs=()):
    """Write ``data`` to ``path`` atomically with ``mode`` (reference values are public):
    checked, then a temporary file with its final mode, synced, renamed (sev/outputs.py)."""
    write_outputs([Output('dest', path, data, mode)], inputs)


def publish(path, data, check_mode=False, inputs=()):
    """Write ``data`` unless ``path`` already holds exactly it.  Returns (changed, previous
    bytes or None).  In check mode nothing is written."""
    check_dest(path, inputs)
    previous = read_existing(path)
    if previous == data:
        return False, previous
    if not check_mode:
        write_public_file(path, data, inputs=inputs)
    return True, previous


def build(params, resolve_path=None):
    """Options -> (plan, records, output bytes).  Raises a SevError on bad input."""
    plan = check_params(params, resolve_path)
    records = compute_records(plan)
    return plan, records, render(plan, records)

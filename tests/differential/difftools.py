# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the differential suite: run the references, run the engine, and
check results with code written here from the AMD SEV API facts
(docs: sev-measurement.md), independently of plugins/.

References (subprocesses):
  * libvirt 9.0's virt-qemu-sev-validate, under Debian's /usr/bin/python3
    (the one with lxml and libvirt); with --debug it logs the launch digest,
    component digests and the MEASURE it computed;
  * sev-snp-measure (PyPI), which prints the launch digest only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
import subprocess
import sys
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ansible_collections.confidential.sev.plugins.module_utils.sev.files import read_small_file
from ansible_collections.confidential.sev.plugins.module_utils.validate_options import (
    ARGUMENT_SPEC, run_validation,
)
from ansible_collections.confidential.sev.tests.support import firmware as synthetic

REPO = Path(__file__).resolve().parents[2]
DEBIAN_PYTHON = '/usr/bin/python3'
VIRT_VALIDATE = '/usr/bin/virt-qemu-sev-validate'
REFERENCE = [DEBIAN_PYTHON, VIRT_VALIDATE]


def _snp_measure_path():
    for candidate in (Path(sys.executable).parent / 'sev-snp-measure',
                      REPO / '.venv' / 'bin' / 'sev-snp-measure'):
        if candidate.exists():
            return str(candidate)
    return 'sev-snp-measure'


SNP_MEASURE = _snp_measure_path()

DEBIAN_FIRMWARE = {
    'OVMF_CODE': '/usr/share/OVMF/OVMF_CODE.fd',
    'OVMF_CODE_4M': '/usr/share/OVMF/OVMF_CODE_4M.fd',
    'OVMF_CODE.secboot': '/usr/share/OVMF/OVMF_CODE.secboot.fd',
    'OVMF_CODE_4M.secboot': '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
    'OVMF_CODE.ms': '/usr/share/OVMF/OVMF_CODE.ms.fd',
    'OVMF.fd': '/usr/share/ovmf/OVMF.fd',
}
AMDSEV_SUFFIX = REPO / 'tests' / 'data' / 'ovmf' / 'ovmf_AmdSev_suffix.bin'

# name: (family, model, stepping, sev-snp-measure --vcpu-type or None)
SKUS = {
    'Naples': (23, 1, 2, 'EPYC'),
    'Rome': (23, 49, 0, 'EPYC-Rome'),
    'Milan': (25, 1, 1, 'EPYC-Milan'),
    'Genoa': (25, 17, 0, 'EPYC-Genoa'),
    'Turin': (26, 0, 0, 'EPYC-Turin'),
    'Bergamo': (25, 160, 2, None),
    'Siena': (25, 170, 0, None),
    'MilanX': (25, 1, 2, None),
    'Fam15': (15, 2, 0, None),
    'Fam16': (16, 4, 3, None),
}

LUKS_KEY_GUID = uuid.UUID('736869e5-84f0-4973-92ec-06879ce3da0b')
SECRET_TABLE_GUID = uuid.UUID('1e74f542-71dd-4d66-963e-ef4287ff173b')
SECRET_AREA_GUID = uuid.UUID('4c2eb361-7d9b-4cc3-8081-127c90d3d294')
# Where the generic-OVMF secret cases say they would inject (any non-zero address will do:
# the packet does not depend on it).
RELAXATION_SECRET_ADDRESS = 0x80_0000
HASH_TABLE_GUID = uuid.UUID('9438d606-4f22-4cc9-b479-a793d411fd21')
CMDLINE_GUID = uuid.UUID('97d02dd8-bd20-4c94-aa78-e7714d36ab2a')
INITRD_GUID = uuid.UUID('44baf731-3a2f-4bd7-9af1-41e29169781d')
KERNEL_GUID = uuid.UUID('4de79437-abd2-427f-b835-d5b172d2045b')

REF_OK = 'OK: Looks good to me\n'
REF_MISMATCH = 'Measurement does not match'

ABSENT = object()   # "no such input", where None could be ambiguous


def b64(data):
    return base64.b64encode(data).decode('ascii')


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def file_sha256(path):
    return sha256_hex(Path(path).read_bytes())


# --------------------------------------------------------------- subprocesses

def _env():
    env = dict(os.environ)
    for name in ('PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP'):
        env.pop(name, None)
    env['LC_ALL'] = 'C.UTF-8'
    return env


def run(argv, cwd=None, timeout=120):
    return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, check=False,
                          encoding='utf-8', errors='surrogateescape', timeout=timeout)


def run_reference(args, debug=False, cwd=None):
    return run(REFERENCE + (['--debug'] if debug else []) + list(args), cwd=cwd)


def run_snp_measure(args, cwd=None):
    return run([SNP_MEASURE] + list(args) + ['--output-format', 'hex'], cwd=cwd)


_DEBUG_LINE = re.compile(r'^\[DEBUG\]: ([^:]+): (.*)$')


def parse_debug(stderr):
    """name -> value of the reference's --debug log (first occurrence).  Also
    'tables': every Table(hex) value in order."""
    values, tables = {}, []
    for line in stderr.splitlines():
        match = _DEBUG_LINE.match(line)
        if not match:
            continue
        name, value = match.group(1), match.group(2).strip()
        if name == 'Table(hex)':
            tables.append(value)
        values.setdefault(name, value)
    values['tables'] = tables
    return values


# ------------------------------------------------------------- the engine

def full_params(**options):
    """Every ARGUMENT_SPEC key: the given value, else the spec default, else None."""
    unknown = set(options) - set(ARGUMENT_SPEC)
    if unknown:
        raise KeyError('not module options: %s' % sorted(unknown))
    params = {}
    for name, spec in ARGUMENT_SPEC.items():
        if name in options:
            params[name] = options[name]
        else:
            default = spec.get('default')
            params[name] = list(default) if isinstance(default, list) else default
    return params


def ours(**options):
    return run_validation(full_params(**options), read_small_file)


# ----------------------------------------- independent computations (no plugins/)

def measure_hmac(tik, api_major, api_minor, build_id, policy, digest, mnonce):
    """MEASURE = HMAC-SHA256(TIK, 0x04 || major || minor || build || policy u32 || LD || MNONCE)."""
    msg = (bytes([0x04, api_major, api_minor, build_id]) + struct.pack('<I', policy)
           + digest + mnonce)
    return hmac.new(tik, msg, hashlib.sha256).digest()


def hash_table(kernel, initrd=b'', cmdline=b''):
    """The padded 176-byte kernel hashes table from the raw bytes."""
    def entry(guid, data):
        return guid.bytes_le + struct.pack('<H', 50) + hashlib.sha256(data).digest()
    table = (HASH_TABLE_GUID.bytes_le + struct.pack('<H', 168)
             + entry(CMDLINE_GUID, (cmdline or b'') + b'\0')
             + entry(INITRD_GUID, initrd or b'')
             + entry(KERNEL_GUID, kernel))
    assert len(table) == 168
    return table + bytes(8)


def launch_digest(firmware, kernel=None, initrd=b'', cmdline=b'', vmsas=()):
    data = bytes(firmware)
    if kernel is not None:
        data += hash_table(kernel, initrd, cmdline)
    for page in vmsas:
        data += page
    return hashlib.sha256(data).digest()


def cpu_signature(family, model, stepping):
    sig = family << 8 if family <= 0xf else (0xf << 8) | ((family - 0xf) << 20)
    return sig | ((model & 0xf) << 4) | ((model >> 4) << 16) | (stepping & 0xf)


def flip_bit(blob, rng, limit=32):
    """The blob with one random bit of its first ``limit`` bytes (the MEASURE) flipped."""
    index = rng.randrange(limit * 8)
    out = bytearray(blob)
    out[index // 8] ^= 1 << (index % 8)
    return bytes(out)


def open_secret_packet(header_b64, payload_b64, tik, tek, measure):
    """Verify the LAUNCH_SECRET header MAC and decrypt the payload; the plaintext table."""
    header = base64.b64decode(header_b64, validate=True)
    payload = base64.b64decode(payload_b64, validate=True)
    assert len(header) == 52, len(header)
    flags = header[:4]
    assert flags == bytes(4), flags
    iv, mac = header[4:20], header[20:52]
    msg = (b'\x01' + flags + iv + struct.pack('<II', len(payload), len(payload))
           + payload + measure)
    expected = hmac.new(tik, msg, hashlib.sha256).digest()
    assert hmac.compare_digest(expected, mac), 'secret header MAC does not verify'
    decryptor = Cipher(algorithms.AES(tek), modes.CTR(iv)).decryptor()
    return decryptor.update(payload) + decryptor.finalize()


def parse_secret_table(plain):
    """[(UUID, value)] from a plaintext secret table; asserts its framing and padding."""
    assert plain[:16] == SECRET_TABLE_GUID.bytes_le, plain[:16].hex()
    table_len = struct.unpack_from('<I', plain, 16)[0]
    pad = 16 - table_len % 16
    assert len(plain) == table_len + pad, (len(plain), table_len)
    assert plain[table_len:] == bytes(pad)
    entries, pos = [], 20
    while pos < table_len:
        guid = uuid.UUID(bytes_le=plain[pos:pos + 16])
        entry_len = struct.unpack_from('<I', plain, pos + 16)[0]
        assert 20 <= entry_len <= table_len - pos, entry_len
        entries.append((guid, plain[pos + 20:pos + entry_len]))
        pos += entry_len
    assert pos == table_len
    return entries


def secret_guid(alias_or_guid):
    return LUKS_KEY_GUID if alias_or_guid == 'luks-key' else uuid.UUID(alias_or_guid)


# ------------------------------------------------------------------ scenario

class Scenario:
    """One set of guest-owner inputs, written as files under ``directory``, with
    the argument lists for each tool and the module options for the engine.

    kernel/initrd/vmsa/secret values are bytes (initrd ABSENT = no file);
    tik/tek are bytes; keys='split' writes tik+tek files, 'tk' one TEK||TIK file.
    """

    def __init__(self, directory, firmware, api=(1, 55, 21), policy=1, kernel=None,
                 initrd=ABSENT, cmdline=None, cmdline_b64=False, num_cpus=None, sku=None,
                 vmsa_cpu0=None, vmsa_cpu1=None, tik=None, tek=None, keys='split',
                 secrets=(), vmsa_variant=None, rng=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.firmware = str(firmware)
        self.api_major, self.api_minor, self.build_id = api
        self.policy = policy
        self.num_cpus = num_cpus
        self.sku = sku
        self.cmdline = cmdline
        self.cmdline_b64 = cmdline_b64
        self.vmsa_variant = vmsa_variant
        self.tik = tik if tik is not None else rng.randbytes(16)
        self.tek = tek if tek is not None else rng.randbytes(16)
        self.keys = keys
        if keys == 'tk':
            self.tk_path = self._write('tk.bin', self.tek + self.tik)
        else:
            self.tik_path = self._write('tik.bin', self.tik)
            self.tek_path = self._write('tek.bin', self.tek)
        self.kernel = kernel
        self.kernel_path = None if kernel is None else self._write('vmlinuz', kernel)
        self.initrd = initrd
        self.initrd_path = None if initrd is ABSENT else self._write('initrd.img', initrd)
        self.vmsa_cpu0_path = None if vmsa_cpu0 is None else self._write('vmsa_cpu0.bin', vmsa_cpu0)
        self.vmsa_cpu1_path = None if vmsa_cpu1 is None else self._write('vmsa_cpu1.bin', vmsa_cpu1)
        self.secrets = []  # (alias_or_guid, value bytes, path)
        for index, (guid, value) in enumerate(secrets):
            self.secrets.append((guid, value, self._write('secret%d.bin' % index, value)))

    def _write(self, name, data):
        path = self.dir / name
        path.write_bytes(data)
        return str(path)

    @property
    def es(self):
        return bool(self.policy & 0x4)

    def firmware_bytes(self):
        return Path(self.firmware).read_bytes()

    # -- virt-qemu-sev-validate
    def ref_args(self, measurement, secret_out=None):
        args = ['--measurement=%s' % measurement,
                '--api-major=%d' % self.api_major, '--api-minor=%d' % self.api_minor,
                '--build-id=%d' % self.build_id, '--policy=%d' % self.policy,
                '--firmware=%s' % self.firmware]
        if self.keys == 'tk':
            args.append('--tk=%s' % self.tk_path)
        else:
            args += ['--tik=%s' % self.tik_path, '--tek=%s' % self.tek_path]
        if self.kernel_path:
            args.append('--kernel=%s' % self.kernel_path)
        if self.initrd_path:
            args.append('--initrd=%s' % self.initrd_path)
        if self.cmdline is not None:
            args.append('--cmdline=%s' % self.cmdline)
        if self.num_cpus is not None:
            args.append('--num-cpus=%d' % self.num_cpus)
        if self.sku is not None:
            for flag, value in zip(('family', 'model', 'stepping'), self.sku[:3]):
                if value is not None:
                    args.append('--cpu-%s=%d' % (flag, value))
        if self.vmsa_cpu0_path:
            args.append('--vmsa-cpu0=%s' % self.vmsa_cpu0_path)
        if self.vmsa_cpu1_path:
            args.append('--vmsa-cpu1=%s' % self.vmsa_cpu1_path)
        if secret_out is not None:
            for guid, dummy, path in self.secrets:
                args.append('--inject-secret=%s:%s' % (guid, path))
            args += ['--secret-header=%s' % (secret_out / 'ref_header'),
                     '--secret-payload=%s' % (secret_out / 'ref_payload')]
        return args

    # -- the engine
    def params(self, measurement, **overrides):
        options = dict(measurement=measurement, api_major=self.api_major,
                       api_minor=self.api_minor, build_id=self.build_id,
                       policy=self.policy, firmware=self.firmware,
                       kernel=self.kernel_path, initrd=self.initrd_path,
                       num_cpus=self.num_cpus,
                       vmsa_cpu0=self.vmsa_cpu0_path, vmsa_cpu1=self.vmsa_cpu1_path,
                       secrets=[dict(guid=guid, path=path) for guid, dummy, path in self.secrets])
        if self.cmdline is not None:
            if self.cmdline_b64:
                options['cmdline_b64'] = b64(self.cmdline.encode('utf-8'))
            else:
                options['cmdline'] = self.cmdline
        if self.keys == 'tk':
            options['tk'] = self.tk_path
        else:
            options.update(tik=self.tik_path, tek=self.tek_path)
        if self.sku is not None:
            options.update(cpu_family=self.sku[0], cpu_model=self.sku[1], cpu_stepping=self.sku[2])
        if self.vmsa_variant is not None:
            options['vmsa_variant'] = self.vmsa_variant
        options.update(self.secret_relaxations())
        options.update(overrides)
        return options

    def secret_relaxations(self):
        """The two named relaxations (README, "Named relaxations") that keep secret cases
        comparable with virt-qemu-sev-validate, which releases secrets under any policy and
        to any firmware: allow_secret_policy names exactly the policy bits the case lacks,
        secret_address is given only when the firmware has no usable secret area.  Never
        insecure.  Tests of the refusals override them with [] / None."""
        if not self.secrets:
            return {}
        relax = {}
        missing = [name for bit, name in ((0x1, 'DBG'), (0x2, 'KS')) if not self.policy & bit]
        if missing:
            relax['allow_secret_policy'] = missing
        if secret_area(self.firmware_bytes()) is None:
            relax['secret_address'] = RELAXATION_SECRET_ADDRESS
        return relax

    def ours(self, measurement, **overrides):
        return ours(**self.params(measurement, **overrides))

    # -- sev-snp-measure
    def snp_args(self, sku_style='family'):
        args = ['--mode', 'seves' if self.es else 'sev', '--ovmf', self.firmware]
        if self.es:
            args += ['--vcpus', str(self.num_cpus)]
            family, model, stepping = self.sku[:3]
            vcpu_type = self.sku[3] if len(self.sku) > 3 else None
            if sku_style == 'type' and vcpu_type:
                args += ['--vcpu-type', vcpu_type]
            elif sku_style == 'sig':
                args += ['--vcpu-sig', hex(cpu_signature(family, model, stepping))]
            else:
                args += ['--vcpu-family', str(family), '--vcpu-model', str(model),
                         '--vcpu-stepping', str(stepping)]
        if self.kernel_path:
            args += ['--kernel', self.kernel_path]
        if self.initrd_path:
            args += ['--initrd', self.initrd_path]
        if self.cmdline is not None:
            args.append('--append=%s' % self.cmdline)
        return args

    def hmac_blob(self, digest, mnonce):
        """The 48-byte blob a platform would report for ``digest`` (own HMAC)."""
        return measure_hmac(self.tik, self.api_major, self.api_minor, self.build_id,
                            self.policy, digest, mnonce) + mnonce


# ------------------------------------------------------------------- flows

def assert_mismatch(result):
    assert result['valid'] is False, result
    assert result['reason'] == 'mismatch' and result['rc'] == 1, result
    assert result.get('failed') is True, result
    assert result.get('computed_measurement') is None, result


def assert_valid(result):
    assert result.get('valid') is True, result
    assert result['reason'] == 'ok' and result['rc'] == 0, result
    assert not result.get('failed'), result


def assert_refused(result, reason, rc, text=None):
    assert result.get('valid') is False, result
    assert result.get('failed') is True, result
    assert (result['reason'], result['rc']) == (reason, rc), result
    if text is not None:
        assert text.lower() in result['msg'].lower(), result


def reference_measure(scenario, rng):
    """Run the reference with --debug on a dummy blob: (its computed blob, debug log).

    The blob is computed MEASURE || mnonce: what a platform would report
    according to the reference.
    """
    mnonce, dummy = rng.randbytes(16), rng.randbytes(32)
    proc = run_reference(scenario.ref_args(b64(dummy + mnonce)), debug=True)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert REF_MISMATCH in proc.stderr, proc.stderr
    log = parse_debug(proc.stderr)
    computed = bytes.fromhex(log['Measurement computed(hex)'])
    assert len(computed) == 32
    # The reference's MEASURE, re-derived from its own launch digest with the HMAC written here.
    assert computed == measure_hmac(scenario.tik, scenario.api_major, scenario.api_minor,
                                    scenario.build_id, scenario.policy,
                                    bytes.fromhex(log['Measured-data(sha256)']), mnonce)
    log['dummy'] = dummy + mnonce
    return computed + mnonce, log


def check_digests(result, log, scenario):
    """Our per-component digests against the reference's debug log."""
    digests = result['digests']
    assert digests['firmware'] == log['Firmware(sha256)']
    if scenario.kernel_path:
        assert digests['kernel'] == log['Kernel(sha256)']
        assert digests['initrd'] == log['Initrd(sha256)']
        assert digests['cmdline'] == log['Cmdline(sha256)']
        assert digests['hash_table'] == sha256_hex(bytes.fromhex(log['tables'][0]))
    else:
        assert 'kernel' not in digests and 'hash_table' not in digests
    if scenario.es:
        assert digests['vmsa_cpu0'] == log['VMSA CPU 0(sha256)']
        if scenario.num_cpus > 1:
            assert digests['vmsa_cpu1'] == log['VMSA CPU 1(sha256)']
        else:
            assert 'vmsa_cpu1' not in digests
    else:
        assert 'vmsa_cpu0' not in digests


def reference_roundtrip(scenario, rng, **overrides):
    """The main differential flow against virt-qemu-sev-validate; returns (blob, log, result)."""
    blob, log = reference_measure(scenario, rng)
    # (a) ours on the reference's blob
    assert_mismatch(scenario.ours(b64(log['dummy']), **overrides))
    result = scenario.ours(b64(blob), **overrides)
    assert_valid(result)
    assert result['launch_digest'] == log['Measured-data(sha256)']
    assert result['computed_measurement'] == b64(blob)
    check_digests(result, log, scenario)
    # The reported platform data is under the MAC: another build id is another measurement.
    assert_mismatch(scenario.ours(b64(blob), build_id=(scenario.build_id + 1) % 256, **overrides))
    # (b) the reference accepts its own blob
    proc = run_reference(scenario.ref_args(b64(blob)))
    assert (proc.returncode, proc.stdout) == (0, REF_OK), (proc.returncode, proc.stdout, proc.stderr)
    # (c) one flipped bit of MEASURE: both say mismatch
    bad = flip_bit(blob, rng)
    assert_mismatch(scenario.ours(b64(bad), **overrides))
    proc = run_reference(scenario.ref_args(b64(bad)))
    assert proc.returncode == 1 and REF_MISMATCH in proc.stderr, (proc.returncode, proc.stderr)
    return blob, log, result


def snp_digest(scenario, sku_style='family', cwd=None, args=None):
    proc = run_snp_measure(args if args is not None else scenario.snp_args(sku_style), cwd=cwd)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    digest = proc.stdout.strip()
    assert re.fullmatch(r'[0-9a-f]{64}', digest), proc.stdout
    return digest


def snp_roundtrip(scenario, rng, digest_hex, **overrides):
    """Ours against a sev-snp-measure launch digest, with the measurement made by the
    HMAC written here; returns (blob, result)."""
    mnonce = rng.randbytes(16)
    blob = scenario.hmac_blob(bytes.fromhex(digest_hex), mnonce)
    result = scenario.ours(b64(blob), **overrides)
    assert_valid(result)
    assert result['launch_digest'] == digest_hex
    assert result['computed_measurement'] == b64(blob)
    assert_mismatch(scenario.ours(b64(flip_bit(blob, rng)), **overrides))
    return blob, result


def synthetic_firmware(path, rng, reset_address=0x0080b004, hash_table=(0x80c000, 0x400),
                       secret_area=(0x80d000, 0x1000), body_size=None):
    """An AmdSev-like image (tests/support/firmware.py) with a random filler."""
    size = body_size if body_size is not None else rng.randrange(16, 257) * 1024
    return synthetic.write_image(str(path), body_size=size, fill=rng.randbytes(61),
                                 reset_address=reset_address, hash_table=hash_table,
                                 secret_area=secret_area)


def amdsev_suffix_firmware(path, rng):
    """A random body ending in the last 4 KiB of a real AmdSevX64 build (tests/data)."""
    data = rng.randbytes(rng.randrange(32, 129) * 1024) + AMDSEV_SUFFIX.read_bytes()
    Path(path).write_bytes(data)
    return str(path)


def firmware_for(case, directory, rng):
    """The firmware path of a case: a Debian build by name, or a generated image."""
    name = case['fw']
    if name in DEBIAN_FIRMWARE:
        return DEBIAN_FIRMWARE[name]
    path = Path(directory) / ('%s.fd' % name)
    if name == 'synthetic':
        return synthetic_firmware(path, rng, reset_address=case.get('reset', 0x0080b004))
    if name == 'amdsev-suffix':
        return amdsev_suffix_firmware(path, rng)
    raise ValueError(name)


def footer_entries(image):
    """GUID text -> data of an OVMF footer table (written here from the doc, section 3)."""
    footer = uuid.UUID('96b582de-1fb2-45f7-baea-a366c55a082d')
    if uuid.UUID(bytes_le=bytes(image[-48:-32])) != footer:
        return {}
    total = struct.unpack_from('<H', image, len(image) - 50)[0]
    table = image[len(image) - 32 - total:len(image) - 50]
    entries = {}
    while table:
        guid = str(uuid.UUID(bytes_le=bytes(table[-16:])))
        length = struct.unpack_from('<H', table, len(table) - 18)[0]
        entries[guid] = bytes(table[len(table) - length:len(table) - 18])
        table = table[:len(table) - length]
    return entries


def secret_area(image):
    """(base, size) of the firmware's SEV secret area, None when missing or base/size 0."""
    data = footer_entries(image).get(str(SECRET_AREA_GUID))
    if data is None or len(data) < 8:
        return None
    base, size = struct.unpack_from('<II', data)
    return (base, size) if base and size else None


def reset_address(image):
    return struct.unpack_from('<I', footer_entries(image)['00f771de-1a7e-4fcb-890e-68c77e2fb44e'])[0]


def vmsa_page(cs_base, rip, signature, init2=False):
    """One SEV-ES VMSA as QEMU/KVM builds it (doc section 4)."""
    page = bytearray(4096)
    attribs = [0x93, 0x9b, 0x93, 0x93, 0x93, 0x93, 0, 0x82, 0, 0x8b]   # es cs ss ds fs gs gdtr ldtr idtr tr
    for index, attrib in enumerate(attribs):
        selector, base = (0xf000, cs_base) if index == 1 else (0, 0)
        struct.pack_into('<HHIQ', page, 16 * index, selector, attrib, 0xffff, base)
    for offset, value in ((0xd0, 0x1000), (0x148, 0x40), (0x158, 0x10), (0x160, 0x400),
                          (0x168, 0xffff0ff0), (0x170, 0x2), (0x178, rip),
                          (0x268, 0x0007040600070406), (0x310, signature), (0x3e8, 0x1)):
        struct.pack_into('<Q', page, offset, value)
    if init2:
        struct.pack_into('<I', page, 0x408, 0x1f80)
        struct.pack_into('<H', page, 0x410, 0x037f)
    return bytes(page)


def vmsa_pages(image, sku, num_cpus, init2=False):
    """[VMSA(cpu0)] + (num_cpus-1) * [VMSA(cpu1..)] for a firmware image and SKU."""
    signature = cpu_signature(*sku[:3])
    reset = reset_address(image)
    bsp = vmsa_page(0xffff0000, 0xfff0, signature, init2)
    ap = vmsa_page(reset & 0xffff0000, reset & 0xffff, signature, init2)
    return [bsp] + [ap] * (num_cpus - 1)

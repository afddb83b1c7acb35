# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fuzz targets over the collection's parsers of untrusted input; shared by atheris and hypothesis.

Each target takes bytes.  The documented outcome of bad input is a SevError
whose reason is a refusal or a mismatch (rc 1 to 5); ``refused`` lets those
through and turns a SevError with reason 'error' (rc 6, "unexpected") into a
crash.  Nothing here catches Exception: any other exception is a crash the
fuzzer reports with its input.

Targets:
  ovmf      the OVMF footer table parser (raw tails, and tails given a valid
            footer GUID so that the table walk is reached), then every accessor
  certs     SEV and AMD certificate parsing, and the whole platform chain
            (PDH <- PEK <- OCA/CEK <- ASK <- ARK, lab root) with one
            certificate of a valid EMULATED chain mutated
  xml       the domain XML reader (domain_config.launch_config,
            config_problems, host_cpu_signature) and the host report reader
            (launch_report.from_host_report, check_launch_info), from raw text
            and from a valid report with fuzzed fields
  args      sev_measurement_validate's argument handling: Ansible's argument
            spec validation, then run_validation with small files served
            from memory; its result must never be rc 6
"""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import tempfile

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.confidential.sev.plugins.module_utils import validate_options
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import domain_config, launch_report
from ansible_collections.confidential.sev.plugins.module_utils.sev import certs, chain, ovmf
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import SevError, UnsupportedUsage
from ansible_collections.confidential.sev.tests.support import firmware as synthetic

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.dirname(os.path.dirname(os.path.dirname(REPO))) if 'ansible_collections' in REPO \
    else os.path.join(REPO, 'build')


class Crash(AssertionError):
    """A documented error class with the 'unexpected' reason, or a wrong kind of result."""


class refused:  # pylint: disable=invalid-name
    """Context manager: a SevError with a refusal or mismatch reason is the documented outcome."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, _tb):
        if exc_type is not None and issubclass(exc_type, SevError):
            if exc.reason == 'error':
                raise Crash('rc 6 ("unexpected") from a documented class %s: %s' % (exc_type.__name__, exc))
            return True
        return False


class Bytes:
    """A small cursor over fuzz input (atheris's FuzzedDataProvider would tie the targets to atheris)."""

    def __init__(self, data):
        self.data, self.pos = bytes(data), 0

    def take(self, n):
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    def int(self, size=1):
        return int.from_bytes(self.take(size).ljust(size, b'\0'), 'little')

    def rest(self):
        return self.take(len(self.data))


# ------------------------------------------------------------------- ovmf ----

FOOTER_TRAILER = ovmf.FOOTER_GUID.bytes_le


def _footer_accessors(footer):
    footer.describe()
    for accessor in ('sev_es_reset_address', 'sev_hash_table', 'secret_area', 'snp_metadata_offset'):
        with refused():
            getattr(footer, accessor)
    with refused():
        footer.usable_hash_table(0x100)


def target_ovmf(data):
    with refused():
        _footer_accessors(ovmf.parse_footer(data))
    # the same bytes as a footer table body: a valid footer entry (GUID, total length) and reset vector
    # after them, the total taken from the first two bytes, so the walk over entries is reached
    src = Bytes(data)
    total = src.int(2)
    body = src.rest()
    tail = body + struct.pack('<H', total) + FOOTER_TRAILER + bytes(ovmf.RESET_VECTOR_SIZE)
    with refused():
        _footer_accessors(ovmf.parse_footer(tail))


def ovmf_seeds():
    seeds = []
    for name in ('ovmf_AmdSev_suffix.bin', 'ovmf_OvmfX64_suffix.bin'):
        with open(os.path.join(REPO, 'tests', 'data', 'ovmf', name), 'rb') as f:
            seeds.append(f.read())
    seeds.append(synthetic.build_image(body_size=64))
    table = synthetic.footer_table(synthetic.amdsev_like_entries())
    # the table body with its total first, as target_ovmf's second form reads it
    seeds.append(table[-50:-48] + table[:-50])
    return seeds


# ------------------------------------------------------------------ certs ----

_CHAIN = {}


def emulated_chain():
    """The public export of an EMULATED platform (tests/platform), made once per process."""
    if not _CHAIN:
        state = tempfile.mkdtemp(prefix='sev-fuzz-platform-')
        subprocess.run([sys.executable, '-m', 'ansible_collections.confidential.sev.tests.platform.qemu_emulator',
                        'init', state], check=True, capture_output=True,
                       env=dict(os.environ, PYTHONPATH=COLLECTIONS))
        export = os.path.join(state, 'export')
        for name in ('pdh.cert', 'cert_chain.bin', 'cek.cert', 'lab_ark.cert', 'lab_ask.cert'):
            with open(os.path.join(export, name), 'rb') as f:
                _CHAIN[name] = f.read()
        _CHAIN['state'] = state
    return _CHAIN


def _verify_chain(parts):
    pdh = certs.parse_sev_cert(parts['pdh.cert'], 'PDH')
    pek, oca, cek_unsigned = chain.split_platform_chain(parts['cert_chain.bin'])
    del cek_unsigned  # the firmware's CEK carries no ASK signature: the key server's copy does
    cek = certs.parse_sev_cert(parts['cek.cert'], 'CEK')
    ark = certs.parse_amd_cert(parts['lab_ark.cert'], 'ARK')[0]
    ask = certs.parse_amd_cert(parts['lab_ask.cert'], 'ASK')[0]
    for cert in (pdh, pek, oca, cek):
        cert.describe()
    return chain.verify_platform_chain(pdh, pek, oca, cek, ark=ark, ask=ask, lab_root=True)


def target_certs(data):
    src = Bytes(data)
    # 1. raw parsing of each format
    raw = src.rest()
    with refused():
        cert = certs.parse_sev_cert(raw[:certs.SEV_CERT_SIZE].ljust(certs.SEV_CERT_SIZE, b'\0'), 'PDH')
        cert.describe()
        cert.public_key()
    with refused():
        amd, _next = certs.parse_amd_cert(raw, 'ARK')
        amd.public_key()
    # 2. one certificate of a valid chain mutated: which one, then (offset, xor) pairs, then a truncation
    parts = dict(emulated_chain())
    src = Bytes(data)
    names = ('pdh.cert', 'cert_chain.bin', 'cek.cert', 'lab_ark.cert', 'lab_ask.cert')
    name = names[src.int() % len(names)]
    target = bytearray(parts[name])
    for dummy in range(src.int() % 8):
        target[src.int(2) % len(target)] ^= src.int() or 1
    if src.int() % 4 == 0:
        target = target[:src.int(2) % (len(target) + 1)]
    parts[name] = bytes(target)
    with refused():
        _verify_chain(parts)


def cert_seeds():
    return [bytes([n, 1, 0x10, 0x00, 0x80, 0]) for n in range(5)] + [emulated_chain()['lab_ark.cert']]


# -------------------------------------------------------------------- xml ----

DOMAIN_TEMPLATE = """<domain type='qemu'>
  <name>{name}</name><uuid>{uuid}</uuid>
  <vcpu current='{current}'>{vcpus}</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type>
    <loader readonly='yes' type='pflash' stateless='yes'>{loader}</loader>{extra_os}</os>
  <cpu mode='custom' match='exact'><model fallback='forbid'>{cpu}</model></cpu>
  <launchSecurity type='{lstype}' kernelHashes='{kh}'>
    <cbitpos>{cbitpos}</cbitpos><reducedPhysBits>{rpb}</reducedPhysBits><policy>{policy}</policy>{extra_ls}
  </launchSecurity>
</domain>"""
CAPS = ("<capabilities><host><cpu><arch>x86_64</arch><signature family='{f}' model='{m}' stepping='{s}'/>"
        "</cpu></host></capabilities>")
FIELD_CHOICES = ('', '0', '1', '47', '0x7', '07', '-1', '1' * 40, 'ffffffff', '100000000', ' 3 ', 'x', '&amp;',
                 '<a/>', '\u00e9', '0' * 5000, '<![CDATA[7]]>', '&#x37;', '\ud800')


def _pick(src):
    choice = src.int()
    if choice < len(FIELD_CHOICES) * 8:
        return FIELD_CHOICES[choice % len(FIELD_CHOICES)]
    return src.take(src.int() % 24).decode('utf-8', 'replace')


def target_xml(data):
    src = Bytes(data)
    text = src.rest().decode('utf-8', 'surrogateescape')
    with refused():
        config = domain_config.launch_config(text)
        domain_config.config_problems(config)
    with refused():
        domain_config.host_cpu_signature(text)
    src = Bytes(data)
    fields = {key: _pick(src) for key in ('name', 'uuid', 'current', 'vcpus', 'loader', 'cpu', 'lstype', 'kh',
                                          'cbitpos', 'rpb', 'policy', 'f', 'm', 's')}
    fields['extra_os'] = ['', '<nvram>/x</nvram>', '<kernel>/k</kernel><cmdline>c</cmdline>',
                          '<loader>/b</loader>'][src.int() % 4]
    fields['extra_ls'] = ['', '<dhCert>AAAA</dhCert><session>AAAA</session>', '<policy>3</policy>'][src.int() % 3]
    xml = DOMAIN_TEMPLATE.format(**fields)
    caps = CAPS.format(**fields)
    with refused():
        config = domain_config.launch_config(xml)
        domain_config.config_problems(config, secure=bool(src.int() & 1), kernel_given=bool(src.int() & 1))
    report = {'hostname': fields['name'], 'domain_xml': xml, 'capabilities_xml': caps,
              'domain': {'name': fields['name'], 'uuid': fields['uuid'], 'id': src.int(2) - 1},
              'state': {'active': bool(src.int() & 1), 'state': src.int(), 'state_name': fields['lstype'],
                        'reason': src.int(), 'reason_name': fields['kh'], 'vcpus': src.int(),
                        'run_state': ['prelaunch', 'running', 'paused', None, fields['cpu']][src.int() % 5]},
              'launch_security': {'sev-measurement': base64.b64encode(src.take(48)).decode(),
                                  'sev-api-major': src.int(), 'sev-api-minor': src.int(),
                                  'sev-build-id': src.int(), 'sev-policy': src.int(4)},
              'node_sev': None}
    # and the same report with one field replaced by a value of another type
    key_path = [('domain', 'id'), ('state', 'vcpus'), ('launch_security', 'sev-policy'), ('state', 'active'),
                ('domain', 'uuid'), ('launch_security', 'sev-measurement')][src.int() % 6]
    odd = [None, 'x', 1 << 70, -5, 1.5, [], {}, True][src.int() % 8]
    with refused():
        launch_report.check_launch_info(launch_report.from_host_report(report))
    report[key_path[0]] = dict(report[key_path[0]], **{key_path[1]: odd})
    with refused():
        launch_report.check_launch_info(launch_report.from_host_report(report))
    text_report = src.rest().decode('utf-8', 'replace')
    try:
        parsed = json.loads(text_report)
    except ValueError:
        return   # not JSON: nothing to feed the report reader (the input generator's miss, not the target's)
    with refused():
        launch_report.from_host_report(parsed)
    with refused():
        launch_report.from_node_report(parsed)


def xml_seeds():
    return [b'<domain/>', bytes(range(32)), b'{"domain": {}}']


# ------------------------------------------------------------------- args ----

_FILES = {}


def _files():
    """A firmware image with footer (a real file: firmware is streamed from disk) and small files in memory."""
    if not _FILES:
        directory = tempfile.mkdtemp(prefix='sev-fuzz-args-')
        _FILES['firmware'] = synthetic.write_image(os.path.join(directory, 'fw.fd'), body_size=4096)
        _FILES['generic'] = synthetic.write_image(os.path.join(directory, 'generic.fd'), body_size=4096,
                                                  hash_table=(0, 0), secret_area=(0, 0))
        _FILES['dir'] = directory
    return _FILES


MEMORY = {}


def _read_file(path, what):
    if path not in MEMORY:
        raise UnsupportedUsage('%s: could not find or access the file' % what)
    return MEMORY[path]


INT_CHOICES = (0, 1, 2, 3, 7, 0x30000, 255, 256, -1, 1 << 32, 1 << 64, 10 ** 5000, '9' * 5000, '0x7', '7', ' 1 ',
               '1e3', 'x',
               '', None, True, 1.5, [], {})
STR_CHOICES = ('', 'x', '1.55', '1.', '.5', '1.2.3', '99999999999999999999.1', 'AAAA', '\0', 'a\0b', '\u00e9',
               '\ud800', ' ' * 3, None, 5, [], {'a': 1}, 'luks-key', 'E9F1A2B3-C4D5-4E6F-8A9B-0C1D2E3F4A5B',
               '{e9f1a2b3-c4d5-4e6f-8a9b-0c1d2e3f4a5b}', 'not-a-guid')


GOOD_TIK, GOOD_TEK = bytes(range(1, 17)), bytes(range(17, 33))
HOSTILE_NAMES = []   # the options target_args replaces, in the order its input bytes index them


def _good_params(files):
    """A valid plain SEV validation (measured by the independent stand-in platform), with a secret."""
    if 'measurement' not in _FILES:
        from ansible_collections.confidential.sev.tests.support import emulated_platform  # pylint: disable=C0415
        tik = os.path.join(files['dir'], 'tik')
        with open(tik, 'wb') as f:
            f.write(GOOD_TIK)
        args = type('Args', (), dict(tik=tik, firmware=files['firmware'], kernel=None, initrd=None, cmdline=None,
                                     api_major=1, api_minor=55, build_id=21, policy=3))
        _FILES['measurement'] = emulated_platform.launch_measure(args)
    return {'measurement': _FILES['measurement'], 'api_major': 1, 'api_minor': 55, 'build_id': 21, 'policy': 3,
            'firmware': files['firmware'], 'tik': '/k/tik', 'tek': '/k/tek', 'require_policy': ['NODBG', 'NOKS'],
            'secrets': [{'guid': 'luks-key', 'path': '/k/s1'}]}


def target_args(data):
    """A valid validation with up to 5 options replaced by hostile values (or removed)."""
    files = _files()
    src = Bytes(data)
    MEMORY.clear()
    MEMORY.update({'/k/tik': GOOD_TIK, '/k/tek': GOOD_TEK, '/k/s1': b'passphrase', '/k/vmsa': bytes(4096)})
    params = _good_params(files)

    def pick(choices):
        return choices[src.int() % len(choices)]
    hostile = {
        'measurement': lambda: base64.b64encode(src.take(src.int() % 64)).decode() if src.int() & 1
        else pick(STR_CHOICES),
        'api_major': lambda: pick(INT_CHOICES), 'api_minor': lambda: pick(INT_CHOICES),
        'build_id': lambda: pick(INT_CHOICES), 'policy': lambda: pick(INT_CHOICES),
        'firmware': lambda: pick((files['generic'], '/nonexistent', '/dev/null', '/dev/zero', files['dir'], 'fw\0x',
                                  '', None, 5)),
        'tik': lambda: pick(('/k/short', None, '/missing', '/k/s1', '/k/vmsa')),
        'tek': lambda: pick(('/k/short', None, '/k/tik')), 'tk': lambda: pick(('/k/tk', '/k/short')),
        'secrets': lambda: pick(([], [{'guid': pick(STR_CHOICES), 'path': '/k/s1'}],
                                 [{'guid': 'luks-key', 'path': '/k/s1'}, {'guid': 'luks-key', 'path': '/k/s1'}],
                                 [{'guid': 'luks-key', 'path': '/k/empty'}], [{'guid': 'luks-key', 'path': '/k/big'}],
                                 [{'guid': 'luks-key'}], 'x', [None], [{'guid': 'luks-key', 'path': 'a\0b'}])),
        'cmdline': lambda: pick(STR_CHOICES), 'cmdline_b64': lambda: pick(('YQ==', 'YQBi', '%%%', '', None)),
        'kernel': lambda: pick((files['firmware'], '/dev/zero', '/nonexistent')),
        'num_cpus': lambda: pick(INT_CHOICES), 'cpu_family': lambda: pick(INT_CHOICES),
        'cpu_model': lambda: pick(INT_CHOICES), 'cpu_stepping': lambda: pick(INT_CHOICES),
        'vmsa_cpu0': lambda: pick(('/k/vmsa', '/k/s1', '/k/empty')),
        'vmsa_variant': lambda: pick(('legacy', 'init2', 'x', None)), 'vmsa_sev_features': lambda: pick(INT_CHOICES),
        'secret_address': lambda: pick(INT_CHOICES),
        'require_policy': lambda: pick(([], ['NODBG'], ['NODBG', 'NOKS', 'ES'], ['X'], 'NODBG')),
        'min_api_version': lambda: pick(STR_CHOICES), 'min_build_id': lambda: pick(INT_CHOICES),
        'insecure': lambda: pick((False, True, 'yes', 'x')), 'allow_zero_keys': lambda: pick((False, True)),
        'diagnose': lambda: pick((True, False)), 'launch_info': lambda: pick(({}, {'x': 1}, 'x', [])),
        'replay_context': lambda: pick(({}, 'x')),
        'firmware_sha256': lambda: pick(('0' * 64, 'x', '', 'A' * 64, 'g' * 64)),
        'kernel_sha256': lambda: pick(('0' * 64, 'zz')), 'initrd_sha256': lambda: pick(('f' * 64, '0' * 63)),
    }
    names = sorted(hostile)
    HOSTILE_NAMES[:] = names
    for dummy in range(1 + src.int() % 5):
        name = names[src.int() % len(names)]
        value = hostile[name]()
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    # the small files' bytes come last, so that the first bytes choose the options (structured inputs)
    MEMORY.update({'/k/short': src.take(src.int() % 20), '/k/tk': src.take(src.int() % 36), '/k/empty': b'',
                   '/k/big': b'\xa5' * (src.int(2) * 16)})
    validator = ArgumentSpecValidator(validate_options.ARGUMENT_SPEC, **validate_options.VALIDATION_RULES)
    checked = validator.validate(params)
    if checked.error_messages:
        return   # Ansible's own refusal of the options: the documented usage error (the action plugin's rc 2)
    result = validate_options.run_validation(dict(checked.validated_parameters), _read_file)
    if result.get('rc') not in (0, 1, 2, 3, 4, 5) or result.get('reason') == 'error':
        raise Crash('run_validation gave rc %r reason %r: %s' % (result.get('rc'), result.get('reason'),
                                                                 result.get('msg')))
    if result.get('valid') and result.get('rc') != 0:
        raise Crash('valid with rc %r' % result.get('rc'))
    return result


def args_seeds():
    return [bytes(64), bytes(range(256)), b'\x10' * 128]


TARGETS = {'ovmf': (target_ovmf, ovmf_seeds), 'certs': (target_certs, cert_seeds),
           'xml': (target_xml, xml_seeds), 'args': (target_args, args_seeds)}

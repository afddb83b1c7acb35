# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hostile-input corpus: each case a named mutation of a known-good task, and its expected class.

A good launch is built here from test-side code only (tests/support/firmware.py
for the image, tests/platform/launch_model.py and guest_owner.py, which import
nothing from plugins/, for its digest and measurement), so that a shared mistake
cannot make a case pass.  Every case starts from that launch's arguments for one
controller-side action plugin (its "driver") and changes one thing.

Expected classes (issue 10, Precisions):
  refusal   rc 2, 3 or 4, the message naming the input (one of ``words``)
  mismatch  rc 1: well-formed but wrong (another key, other VMSA bytes)
  valid     rc 0
  harmless  a harmless variant (surrounding whitespace, an upper-case GUID):
            valid, or refused naming the input; never a mismatch, never rc 6
  rejected  mismatch or refusal, where both are right and a sibling case pins the
            refusal (a footer that cannot serve the inputs, measured with another
            image's measurement); the bit flips use it too
Nothing may end in rc 6, a traceback, a hang, more than 10 s, or more than
100 MB over the driver's baseline case.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pathlib
import stat
import struct
from functools import partial

from ansible_collections.confidential.sev.tests.platform import guest_owner, launch_model
from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw
from ansible_collections.confidential.sev.tests.support import firmware as fwb

DATA = pathlib.Path(__file__).resolve().parents[1] / 'data'

TIK = bytes.fromhex('8c1a55e0a9d4b7f3126e0c4d9b2a7f61')
TEK = bytes.fromhex('3d7be2914f0a68c5d1e9b04a27f3c85e')
OTHER_KEY = bytes.fromhex('00112233445566778899aabbccddeeff')
MNONCE = bytes.fromhex('a1b2c3d4e5f60718293a4b5c6d7e8f90')
SECRET = b'correct horse battery staple -- LUKS passphrase\n'
API = (0, 24)
BUILD_ID = 15
POLICY = 0x7                     # NODBG | NOKS | ES
NUM_CPUS = 2
CPU = (23, 1, 2)                 # QEMU 7.2's EPYC
CMDLINE = 'console=ttyS0 root=/dev/vda1 ro'
KERNEL = bytes(range(256)) * 12
INITRD = bytes(reversed(range(256))) * 8
FIRMWARE = fwb.build_image(body_size=4096)
SECRETS = (TIK, TEK, SECRET)
DEVICE_MINORS = {'null': 3, 'zero': 5, 'urandom': 9}   # Linux mem devices, major 1

REFUSAL, MISMATCH, VALID, HARMLESS, REJECTED = 'refusal', 'mismatch', 'valid', 'harmless', 'rejected'
EXPECTED_RCS = {REFUSAL: {2, 3, 4}, MISMATCH: {1}, VALID: {0}, HARMLESS: {0, 2, 3, 4}, REJECTED: {1, 2, 3, 4}}


def b64(data):
    return base64.b64encode(data).decode('ascii')


def launch_digest(firmware_path, kernel_path, initrd_path, cmdline, policy=POLICY, num_cpus=NUM_CPUS):
    plan = launch_model.LaunchPlan(firmware_path, policy, num_cpus=num_cpus, cpu_option='EPYC',
                                   kernel_hashes=True, kernel=kernel_path, initrd=initrd_path, cmdline=cmdline)
    return plan


def measurement_for(digest, tik=TIK, api=API, build_id=BUILD_ID, policy=POLICY, mnonce=MNONCE):
    return b64(guest_owner.expected_measure(tik, api, build_id, policy, digest, mnonce) + mnonce)


class Env:
    """A playbook directory with the good launch's files; ``path(name)`` is absolute."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        for sub in ('files', 'keys', 'out', 'lab'):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.write('files/OVMF.fd', FIRMWARE)
        self.write('kernel', KERNEL)
        self.write('initrd', INITRD)
        self.write('tik.bin', TIK)
        self.write('tek.bin', TEK)
        self.write('tk.bin', TEK + TIK)
        self.write('secret.txt', SECRET)
        plan = launch_digest(self.path('files/OVMF.fd'), self.path('kernel'), self.path('initrd'), CMDLINE)
        vmsas = [data for name, data in plan.pieces if name.startswith('vmsa')]
        self.write('vmsa0.bin', vmsas[0])
        self.write('vmsa1.bin', vmsas[1])
        self.digest = plan.digest()
        self.measurement = measurement_for(self.digest)

    def path(self, name):
        return str(self.root / name)

    def write(self, name, data, mode=0o600):
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
        return str(path)

    def fifo(self, name):
        path = self.root / name
        os.mkfifo(path)
        return str(path)

    def device(self, kind):
        """A private character device node (null, zero or urandom) in this directory, never the
        system's: a defect replacing an output device (root replacing /dev/null) damages only this copy.
        Named dev-*, so that the test checks it is still a device afterwards."""
        path = self.root / ('dev-%s' % kind)
        if not path.exists():
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, DEVICE_MINORS[kind]))
        return str(path)

    def symlink(self, name, target):
        path = self.root / name
        os.symlink(target, path)
        return str(path)

    def sparse(self, name, size):
        path = self.root / name
        with open(path, 'wb') as stream:
            stream.truncate(size)
        return str(path)

    def validate_args(self, **kwargs):
        args = dict(measurement=self.measurement, api_major=API[0], api_minor=API[1], build_id=BUILD_ID,
                    policy=POLICY, firmware=self.path('files/OVMF.fd'), kernel=self.path('kernel'),
                    initrd=self.path('initrd'), cmdline=CMDLINE, num_cpus=NUM_CPUS, cpu_family=CPU[0],
                    cpu_model=CPU[1], cpu_stepping=CPU[2], tik=self.path('tik.bin'), tek=self.path('tek.bin'),
                    secrets=[{'guid': 'luks-key', 'path': self.path('secret.txt')}],
                    secret_header_file=self.path('out/header.b64'),
                    secret_payload_file=self.path('out/payload.b64'))
        args.update(kwargs)
        return args


def write_as(name, data, env):
    """For partial(write_as, name, data): a builder writing ``data`` to ``name`` in env."""
    return env.write(name, data)


class Case:
    """``build(env)`` returns the task arguments (for 'launch_info': the host's report);
    ``words``: the message must name one of them (case-insensitive) on a refusal."""

    def __init__(self, case_id, driver, expect, words, build, task_args=None):
        self.id = case_id
        self.category = case_id.split('/')[0]
        self.driver = driver
        self.expect = expect
        self.words = tuple(words)
        self.build = build
        self.task_args = task_args or {}

    def __repr__(self):
        return self.id


CASES = []


def add(case_id, driver, expect, words, build, **kwargs):
    assert case_id not in [case.id for case in CASES], case_id
    CASES.append(Case(case_id, driver, expect, words, build, **kwargs))


def validate(case_id, expect, words, **changes):
    """A validate case whose changes are plain values or callables of env."""
    def build(env):
        resolved = dict((key, value(env) if callable(value) else value) for key, value in changes.items())
        return env.validate_args(**resolved)
    add(case_id, 'validate', expect, words, build)


def validate_with(case_id, expect, words, mutate):
    """A validate case built by ``mutate(env, args)`` (in place)."""
    def build(env):
        args = env.validate_args()
        mutate(env, args)
        return args
    add(case_id, 'validate', expect, words, build)


# ---- baselines -------------------------------------------------------------------------------

validate('baseline/validate', VALID, ())
validate('baseline/validate-vmsa-files', VALID, (), cpu_family=None, cpu_model=None, cpu_stepping=None,
         vmsa_cpu0=lambda env: env.path('vmsa0.bin'), vmsa_cpu1=lambda env: env.path('vmsa1.bin'))
validate('baseline/validate-tk', VALID, (), tik=None, tek=None, tk=lambda env: env.path('tk.bin'))

# ---- integers ---------------------------------------------------------------------------------

HUGE = '9' * 5000
INT_OPTIONS = {
    # option: (out-of-range values, well-formed but wrong value)
    'api_major': ([-1, 256, 2 ** 64], 1),
    'api_minor': ([-1, 256, 2 ** 64], 25),
    'build_id': ([-1, 256, 2 ** 64], 16),
    'policy': ([-1, 2 ** 32, 2 ** 64], None),
    'num_cpus': ([-1, 0, 2 ** 64, 100000], 3),
    'cpu_family': ([-1, 2 ** 64], 25),
    'cpu_model': ([-1, 2 ** 64], 2),
    'cpu_stepping': ([-1, 2 ** 64], 1),
    'vmsa_sev_features': ([-1, 2 ** 64], None),
    'min_build_id': ([-1, 2 ** 64], None),
}
# The right value spelt in other digits: int() accepts them, a controller must not.
NON_ASCII = {'api_major': '\u0660', 'api_minor': '\u0662\u0664', 'build_id': '\uff11\uff15',
             'policy': '\u0667', 'num_cpus': '\u0968', 'cpu_family': '\u0662\u0663',
             'cpu_model': '\u0661', 'cpu_stepping': '\u0662', 'vmsa_sev_features': '\u0660',
             'min_build_id': '\u0661\u0665'}
# Where the engine's message names the field rather than the option, both are accepted.
WORDS = {'vmsa_sev_features': ('vmsa_sev_features', 'sev_features')}
for option, (bad_values, wrong) in INT_OPTIONS.items():
    for value in bad_values:
        validate('integer/%s/%s' % (option, value if abs(value) < 10 ** 6 else 'bits%d' % value.bit_length()),
                 REFUSAL, WORDS.get(option, (option,)), **{option: value})
    validate('integer/%s/5000-digits' % option, REFUSAL, WORDS.get(option, (option,)), **{option: HUGE})
    validate('integer/%s/minus-5000-digits' % option, REFUSAL, WORDS.get(option, (option,)), **{option: '-' + HUGE})
    validate('integer/%s/non-ascii-digits' % option, REFUSAL, WORDS.get(option, (option,)), **{option: NON_ASCII[option]})
    validate('integer/%s/bool-true' % option, REFUSAL, WORDS.get(option, (option,)), **{option: True})
    validate('integer/%s/float' % option, REFUSAL, WORDS.get(option, (option,)), **{option: 1.5})
    validate('integer/%s/text' % option, REFUSAL, WORDS.get(option, (option,)), **{option: 'twenty'})
    validate('integer/%s/hex-text' % option, REFUSAL, WORDS.get(option, (option,)), **{option: '0x18'})
    validate('integer/%s/list' % option, REFUSAL, WORDS.get(option, (option,)), **{option: [1]})
    if wrong is not None:
        validate('integer/%s/wrong' % option, MISMATCH, (), **{option: wrong})

# ---- keys -------------------------------------------------------------------------------------

KEY_FILES = {
    'empty': b'', 'short': TIK[:15], 'long': TIK + b'\0', 'double': TIK + TIK,
    'newline': TIK + b'\n', 'hex-text': TIK.hex().encode(), 'hex-text-nl': TIK.hex().encode() + b'\n',
    'base64-text': b64(TIK).encode(), 'megabyte': bytes(1 << 20), 'over-limit': bytes((1 << 20) + 1),
}
for option in ('tik', 'tek'):
    for label, data in KEY_FILES.items():
        validate('key/%s/%s' % (option, label), REFUSAL, (option,),
                 **{option: partial(write_as, 'bad.key', data)})
    validate('key/%s/all-zero' % option, REFUSAL, (option, 'zero'),
             **{option: lambda env: env.write('zero.key', bytes(16))})
    # The key itself where its path belongs: refused without echoing it.
    validate('key/%s/hex-as-path' % option, REFUSAL, (option,), **{option: TIK.hex()})
    validate('key/%s/base64-as-path' % option, REFUSAL, (option,), **{option: b64(TIK)})
    validate('key/%s/raw-as-path' % option, REFUSAL, (option,), **{option: TIK.decode('latin-1')})
for label, data in (('empty', b''), ('tik-only', TIK), ('long', TEK + TIK + b'\n'),
                    ('hex-text', (TEK + TIK).hex().encode()), ('zero-tik', TEK + bytes(16))):
    validate('key/tk/%s' % label, REFUSAL, ('tk', 'zero'), tik=None, tek=None,
             tk=partial(write_as, 'bad.tk', data))
validate('key/tik/other-key', MISMATCH, (), tik=lambda env: env.write('other.key', OTHER_KEY))
validate('key/tik/swapped-with-tek', MISMATCH, (), tik=lambda env: env.path('tek.bin'),
         tek=lambda env: env.path('tik.bin'))
validate('key/tk/swapped-halves', MISMATCH, (), tik=None, tek=None,
         tk=lambda env: env.write('swapped.tk', TIK + TEK))
validate('key/tek/other-key', VALID, (), tek=lambda env: env.write('other.key', OTHER_KEY))
validate('key/tik/all-zero-insecure', REFUSAL, ('tik', 'tek', 'zero', 'insecure'), insecure=True,
         tik=lambda env: env.write('zero.key', bytes(16)))
validate('key/tik-and-tk', REFUSAL, ('tk', 'tik'), tk=lambda env: env.path('tk.bin'))
validate('key/none', REFUSAL, ('tk', 'tik'), tik=None, tek=None)

# ---- VMSA files -------------------------------------------------------------------------------


def vmsa_case(label, expect, words, cpu0, cpu1=lambda env: env.path('vmsa1.bin'), **extra):
    changes = dict(cpu_family=None, cpu_model=None, cpu_stepping=None, vmsa_cpu0=cpu0, vmsa_cpu1=cpu1)
    changes.update(extra)
    validate('vmsa/%s' % label, expect, words, **changes)


for label, data in (('empty', b''), ('short', bytes(4095)), ('long', bytes(4097)), ('two-pages', bytes(8192)),
                    ('text', b'vmsa\n')):
    vmsa_case('cpu0-%s' % label, REFUSAL, ('vmsa_cpu0',), partial(write_as, 'v.bin', data))
    vmsa_case('cpu1-%s' % label, REFUSAL, ('vmsa_cpu1',), lambda env: env.path('vmsa0.bin'),
              partial(write_as, 'v.bin', data))
vmsa_case('cpu0-zero-page', MISMATCH, (), lambda env: env.write('v.bin', bytes(4096)))
vmsa_case('cpu0-other-bytes', MISMATCH, (), lambda env: env.write('v.bin', hashlib.sha256(b'x').digest() * 128))
vmsa_case('cpu1-is-cpu0', MISMATCH, (), lambda env: env.path('vmsa0.bin'), lambda env: env.path('vmsa0.bin'))
vmsa_case('cpu0-only', REFUSAL, ('vmsa_cpu1',), lambda env: env.path('vmsa0.bin'), None)
vmsa_case('cpu1-without-cpu0', REFUSAL, ('vmsa_cpu0', 'vmsa_cpu1'), None)
vmsa_case('with-sku', REFUSAL, ('vmsa_cpu0', 'cpu_family'), lambda env: env.path('vmsa0.bin'),
          cpu_family=CPU[0], cpu_model=CPU[1], cpu_stepping=CPU[2])
vmsa_case('plain-sev-policy', REFUSAL, ('vmsa', 'policy', 'ES'), lambda env: env.path('vmsa0.bin'), policy=0x3)
vmsa_case('bad-variant', REFUSAL, ('vmsa_variant',), lambda env: env.path('vmsa0.bin'), vmsa_variant='qemu-9')
vmsa_case('bad-variant-empty', REFUSAL, ('vmsa_variant',), lambda env: env.path('vmsa0.bin'), vmsa_variant='')
validate('vmsa/no-sku-no-files', REFUSAL, ('cpu_family', 'vmsa_cpu0', 'vmsa'), cpu_family=None, cpu_model=None,
         cpu_stepping=None)
validate('vmsa/sku-incomplete', REFUSAL, ('cpu_family', 'cpu_model', 'cpu_stepping'), cpu_stepping=None)
validate('vmsa/sku-other', MISMATCH, (), cpu_family=25, cpu_model=1, cpu_stepping=1)

# ---- base64 of the measurement and the cmdline ---------------------------------------------------


def measurement_variant(transform):
    return lambda env: transform(env.measurement)


for label, transform, expect in (
        ('empty', lambda m: '', REFUSAL),
        ('not-base64', lambda m: 'not base64 at all!', REFUSAL),
        ('47-bytes', lambda m: b64(base64.b64decode(m)[:47]), REFUSAL),
        ('49-bytes', lambda m: b64(base64.b64decode(m) + b'\0'), REFUSAL),
        ('32-bytes', lambda m: b64(base64.b64decode(m)[:32]), REFUSAL),
        ('96-bytes', lambda m: b64(base64.b64decode(m) * 2), REFUSAL),
        # the same bytes: harmless
        ('no-padding', lambda m: m.rstrip('='), HARMLESS),
        ('bad-padding', lambda m: m + '==', HARMLESS),
        ('urlsafe', lambda m: base64.urlsafe_b64encode(base64.b64decode(m)).decode() + '-_', REFUSAL),
        ('inner-space', lambda m: m[:20] + ' ' + m[20:], REFUSAL),
        ('non-ascii', lambda m: m[:-2] + '\u00e9=', REFUSAL),
        ('nul', lambda m: m + '\0', REFUSAL),
        ('hex', lambda m: base64.b64decode(m).hex(), REFUSAL),
        ('megabyte', lambda m: 'A' * (1 << 20), REFUSAL),
        ('5000-chars', lambda m: 'QUFB' * 1250, REFUSAL),
        ('all-zero', lambda m: b64(bytes(48)), MISMATCH),
        ('other-mac', lambda m: b64(hashlib.sha256(b'o').digest() + MNONCE), MISMATCH),
        ('other-mnonce', lambda m: b64(base64.b64decode(m)[:32] + bytes(16)), MISMATCH),
        ('mac-mnonce-swapped', lambda m: b64(base64.b64decode(m)[32:] + base64.b64decode(m)[:32]), MISMATCH),
        ('surrounding-space', lambda m: ' %s\n' % m, HARMLESS),
):
    validate('base64/measurement/%s' % label, expect, ('measurement',), measurement=measurement_variant(transform))
validate('base64/measurement/int', REFUSAL, ('measurement',), measurement=12345)
validate('base64/measurement/list', REFUSAL, ('measurement',), measurement=['a'])

for label, value, expect in (
        ('not-base64', '!!', REFUSAL), ('urlsafe', base64.urlsafe_b64encode(b'\xfb\xff').decode(), REFUSAL),
        ('no-padding', b64(CMDLINE.encode())[:-1], REFUSAL),
        ('embedded-nul', b64(b'console=ttyS0\0 root=/dev/vda1 ro'), REFUSAL),
        ('trailing-nul', b64(CMDLINE.encode() + b'\0'), REFUSAL),
        ('non-utf8', b64(b'console=ttyS0 \xff\xfe root=/dev/vda1 ro'), MISMATCH),
        ('other', b64(b'console=ttyS0 root=/dev/vda2 ro'), MISMATCH),
        ('exact', b64(CMDLINE.encode()), VALID)):
    validate('cmdline/b64-%s' % label, expect, ('cmdline_b64', 'cmdline'), cmdline=None, cmdline_b64=value)
for label, value, expect in (
        ('embedded-nul', 'console=ttyS0\0 root=/dev/vda1 ro', REFUSAL),
        ('trailing-nul', CMDLINE + '\0', REFUSAL),
        ('lone-surrogate', 'console=ttyS0 \udcff root=/dev/vda1 ro', REFUSAL),
        ('huge', 'x' * (1 << 20), MISMATCH),
        ('trailing-space', CMDLINE + ' ', MISMATCH),
        ('empty', '', MISMATCH)):
    validate('cmdline/text-%s' % label, expect, ('cmdline',), cmdline=value)
validate('cmdline/both', REFUSAL, ('cmdline',), cmdline_b64=b64(CMDLINE.encode()))
validate('cmdline/without-kernel', REFUSAL, ('kernel', 'cmdline'), kernel=None, initrd=None)

# ---- GUIDs and secrets ------------------------------------------------------------------------------


def secrets_case(case_id, expect, words, items):
    """``items(env)``: the secrets list."""
    validate(case_id, expect, words, secrets=items)


LUKS = '736869e5-84f0-4973-92ec-06879ce3da0b'
for label, guid, expect in (
        ('empty', '', REFUSAL), ('garbage', 'not-a-guid', REFUSAL), ('short', LUKS[:-1], REFUSAL),
        ('long', LUKS + '0', REFUSAL), ('braces', '{%s}' % LUKS, HARMLESS), ('upper', LUKS.upper(), HARMLESS),
        ('urn', 'urn:uuid:' + LUKS, HARMLESS), ('no-dashes', LUKS.replace('-', ''), HARMLESS),
        ('nul', LUKS + '\0', REFUSAL), ('5000-chars', 'a' * 5000, REFUSAL), ('unknown-alias', 'luks', REFUSAL),
        ('int', 5, REFUSAL), ('non-ascii-hex', LUKS[:-1] + '\uff42', REFUSAL),
        ('secret-table-guid', '1e74f542-71dd-4d66-963e-ef4287ff173b', HARMLESS),
        ('nil', '00000000-0000-0000-0000-000000000000', HARMLESS),
        ('other-guid', '6f2c1b4e-3a5d-4e7f-8a9b-0c1d2e3f4a5b', VALID)):
    secrets_case('guid/%s' % label, expect, ('guid', 'secrets'),
                 partial(lambda guid, env: [{'guid': guid, 'path': env.path('secret.txt')}], guid))
secrets_case('secret/duplicate-guid', REFUSAL, ('secrets', 'guid', 'duplicate'),
             lambda env: [{'guid': 'luks-key', 'path': env.path('secret.txt')},
                          {'guid': LUKS, 'path': env.path('secret.txt')}])
secrets_case('secret/empty-file', REFUSAL, ('secrets',),
             lambda env: [{'guid': 'luks-key', 'path': env.write('empty.secret', b'')}])
secrets_case('secret/too-big-for-area', REFUSAL, ('secret',),
             lambda env: [{'guid': 'luks-key', 'path': env.write('big.secret', b's' * 8192)}])
secrets_case('secret/megabyte', REFUSAL, ('secret',),
             lambda env: [{'guid': 'luks-key', 'path': env.write('big.secret', b's' * (1 << 20))}])
secrets_case('secret/huge-sparse', REFUSAL, ('secret',),
             lambda env: [{'guid': 'luks-key', 'path': env.sparse('huge.secret', 1 << 32)}])
secrets_case('secret/many', REFUSAL, ('secret',),
             lambda env: [{'guid': '6f2c1b4e-3a5d-4e7f-8a9b-%012x' % index, 'path': env.path('secret.txt')}
                          for index in range(200)])
secrets_case('secret/missing-path', REFUSAL, ('path', 'secrets'), lambda env: [{'guid': 'luks-key'}])
secrets_case('secret/missing-guid', REFUSAL, ('guid', 'secrets'), lambda env: [{'path': env.path('secret.txt')}])
secrets_case('secret/unknown-key', REFUSAL, ('secrets', 'value'),
             lambda env: [{'guid': 'luks-key', 'path': env.path('secret.txt'), 'value': 'x'}])
secrets_case('secret/not-a-list', REFUSAL, ('secrets',), lambda env: 'luks-key')
secrets_case('secret/passphrase-as-path', REFUSAL, ('secrets',),
             lambda env: [{'guid': 'luks-key', 'path': SECRET.decode().strip()}])
secrets_case('secret/nul-bytes', VALID, (),
             lambda env: [{'guid': 'luks-key', 'path': env.write('nul.secret', b'\0' * 32)}])
validate('secret/header-without-payload', REFUSAL, ('secret_payload_file', 'secret_header_file'),
         secret_payload_file=None)
validate('secret/header-is-payload', REFUSAL, ('secret_header_file', 'secret_payload_file'),
         secret_payload_file=lambda env: env.path('out/header.b64'))
validate('secret/header-is-tik', REFUSAL, ('secret_header_file', 'tik'),
         secret_header_file=lambda env: env.path('tik.bin'))
validate('secret/payload-is-firmware', REFUSAL, ('secret_payload_file', 'firmware'),
         secret_payload_file=lambda env: env.path('files/OVMF.fd'))
validate('secret/header-dev-null', REFUSAL, ('secret_header_file',), secret_header_file=lambda env: env.device('null'))
validate('secret/header-directory', REFUSAL, ('secret_header_file',),
         secret_header_file=lambda env: env.path('out'))
validate('secret/header-fifo', REFUSAL, ('secret_header_file',),
         secret_header_file=lambda env: env.fifo('out/fifo'))
validate('secret/header-missing-dir', REFUSAL, ('secret_header_file',),
         secret_header_file=lambda env: env.path('nowhere/header.b64'))

# ---- policy requirements -----------------------------------------------------------------------

validate('policy/no-nodbg-with-secrets', REFUSAL, ('NODBG', 'policy'), policy=POLICY & ~1,
         measurement=lambda env: measurement_for(env.digest, policy=POLICY & ~1))
validate('policy/no-noks-with-secrets', REFUSAL, ('NOKS', 'policy'), policy=POLICY & ~2,
         measurement=lambda env: measurement_for(env.digest, policy=POLICY & ~2))
validate('policy/reserved-bit', REFUSAL, ('policy',), policy=POLICY | 0x40,
         measurement=lambda env: measurement_for(env.digest, policy=POLICY | 0x40))
validate('policy/require-unknown', REFUSAL, ('require_policy',), require_policy=['NODEBUG'])
validate('policy/require-unmet', REFUSAL, ('NOSEND', 'policy'), require_policy=['NOSEND'])
validate('policy/require-not-list', REFUSAL, ('require_policy',), require_policy={'a': 1})
for label, value in (('empty', ''), ('text', 'latest'), ('three-parts', '0.24.1'), ('negative', '-1.0'),
                     ('5000-digits', HUGE + '.0'), ('non-ascii', '\u0660.\u0662\u0664'), ('nul', '0.24\0'),
                     ('minor-256', '0.256')):
    validate('policy/min-api-%s' % label, REFUSAL, ('min_api_version',), min_api_version=value)
validate('policy/min-api-unmet', REFUSAL, ('min_api_version', 'api'), min_api_version='0.25')
validate('policy/min-build-unmet', REFUSAL, ('min_build_id', 'build'), min_build_id=16)
validate('policy/insecure-string', REFUSAL, ('insecure',), insecure='perhaps')

# ---- OVMF footers -----------------------------------------------------------------------------------

TAIL = len(fwb.RESET_VECTOR) + 18          # reset vector, then the footer's length and GUID


def footer_image(table_bytes, total=None, body=4096):
    """A firmware whose table is ``table_bytes`` (entries), with footer total length ``total``."""
    if total is None:
        total = len(table_bytes) + 18
    return (b'\xa5' * body + table_bytes + struct.pack('<H', total & 0xffff) + fwb.FOOTER.bytes_le
            + fwb.RESET_VECTOR)


def raw_entry(guid, data, length=None):
    length = len(data) + 18 if length is None else length
    return data + struct.pack('<H', length & 0xffff) + guid.bytes_le


GOOD_TABLE = FIRMWARE[4096:-TAIL]
RESET = raw_entry(fwb.SEV_ES_RESET_BLOCK, struct.pack('<I', 0x80b004))
HASHES = raw_entry(fwb.SEV_HASH_TABLE, struct.pack('<II', 0x80c000, 0x400))
SECRET_AREA = raw_entry(fwb.SEV_SECRET_AREA, struct.pack('<II', 0x80d000, 0x1000))
FOOTER_IMAGES = {
    # malformed: refusal naming the firmware
    'empty-file': (b'', REFUSAL),
    'one-byte': (b'\0', REFUSAL),
    'reset-vector-only': (fwb.RESET_VECTOR, REFUSAL),
    'truncated-footer': (FIRMWARE[-40:], REFUSAL),
    'truncated-table': (FIRMWARE[4096 + 10:], REFUSAL),
    'total-past-start': (footer_image(GOOD_TABLE, 0xffff, body=0), REFUSAL),
    'total-zero': (footer_image(GOOD_TABLE, 0), REFUSAL),
    'total-17': (footer_image(GOOD_TABLE, 17), REFUSAL),
    'total-odd': (footer_image(GOOD_TABLE, len(GOOD_TABLE) + 18 - 3), REFUSAL),
    'total-past-entries': (footer_image(GOOD_TABLE, len(GOOD_TABLE) + 18 + 40), REFUSAL),
    'entry-length-zero': (footer_image(raw_entry(fwb.SEV_HASH_TABLE, b'\0' * 8, 0) + RESET), REFUSAL),
    'entry-length-17': (footer_image(raw_entry(fwb.SEV_HASH_TABLE, b'\0' * 8, 17) + RESET), REFUSAL),
    'entry-length-past-table': (footer_image(SECRET_AREA + HASHES + raw_entry(
        fwb.SEV_ES_RESET_BLOCK, b'\0' * 4, 0x7000)), REFUSAL),
    'entry-length-ffff': (footer_image(RESET + raw_entry(fwb.SEV_HASH_TABLE, b'\0' * 8, 0xffff)), REFUSAL),
    'hash-table-short-data': (footer_image(RESET + raw_entry(fwb.SEV_HASH_TABLE, b'\0' * 4) + SECRET_AREA),
                              REFUSAL),
    'reset-block-short-data': (footer_image(raw_entry(fwb.SEV_ES_RESET_BLOCK, b'\0\0') + HASHES + SECRET_AREA),
                               REFUSAL),
    'duplicate-hash-table': (footer_image(SECRET_AREA + raw_entry(fwb.SEV_HASH_TABLE, struct.pack(
        '<II', 0x900000, 0x400)) + HASHES + RESET), REFUSAL),
    'huge-count': (footer_image(raw_entry(fwb.SNP_METADATA, b'') * 3000 + SECRET_AREA + HASHES + RESET,
                                body=4096), REJECTED),
    'table-fills-file': (footer_image(raw_entry(fwb.SNP_METADATA, b'\0' * (0xffff - 36 - 18)), body=0),
                         REFUSAL),
    'no-footer': (b'\xa5' * 8192, REFUSAL),
    'all-ff': (b'\xff' * 8192, REFUSAL),
    'all-zero': (bytes(8192), REFUSAL),
    'no-reset-block': (footer_image(SECRET_AREA + HASHES), REFUSAL),
    'no-hash-table': (footer_image(SECRET_AREA + RESET), REJECTED),
    'hash-table-base-zero': (footer_image(SECRET_AREA + raw_entry(fwb.SEV_HASH_TABLE, struct.pack(
        '<II', 0, 0x400)) + RESET), REJECTED),
    'hash-table-too-small': (footer_image(SECRET_AREA + raw_entry(fwb.SEV_HASH_TABLE, struct.pack(
        '<II', 0x80c000, 0x10)) + RESET), REJECTED),
    'no-secret-area': (footer_image(HASHES + RESET), REJECTED),
    'secret-area-zero': (footer_image(raw_entry(fwb.SEV_SECRET_AREA, bytes(8)) + HASHES + RESET), REJECTED),
    'secret-area-tiny': (footer_image(raw_entry(fwb.SEV_SECRET_AREA, struct.pack('<II', 0x80d000, 16))
                                      + HASHES + RESET), REJECTED),
    # well-formed but another image: a mismatch
    'other-body': (b'\x5a' * 4096 + GOOD_TABLE + FIRMWARE[-TAIL:], MISMATCH),
    'other-reset-address': (footer_image(SECRET_AREA + HASHES + raw_entry(fwb.SEV_ES_RESET_BLOCK, struct.pack(
        '<I', 0x80f004))), MISMATCH),
    'entries-reordered': (footer_image(RESET + SECRET_AREA + HASHES), MISMATCH),
    'unknown-entry': (footer_image(raw_entry(fwb.SNP_METADATA, b'\1' * 12) + GOOD_TABLE), MISMATCH),
    'longer-body': (b'\xa5' + FIRMWARE, MISMATCH),
    'real-amdsev-suffix': ((DATA / 'ovmf' / 'ovmf_AmdSev_suffix.bin').read_bytes(), MISMATCH),
}
SEV_POLICY = 0x3                 # NODBG | NOKS, plain SEV: no VMSA, the reset block unused
# Plain SEV, measurement matching the image: where the expected class differs from "refused if
# malformed, else valid".
SEV_MATCHING = {
    'no-reset-block': VALID, 'reset-block-short-data': REFUSAL,
    'huge-count': HARMLESS,          # 3000 unknown entries: well-formed, may be refused as absurd
}


def footer_measurement(image):
    table = launch_model.hashes_table(hashlib.sha256(KERNEL).digest(), hashlib.sha256(INITRD).digest(), CMDLINE)
    return measurement_for(hashlib.sha256(image + table).digest(), policy=SEV_POLICY)


for label, (image, expect) in FOOTER_IMAGES.items():
    # The SEV-ES launch's own measurement: a malformed footer is refused, another image a mismatch.
    validate('ovmf/es/%s' % label, expect, ('firmware',), firmware=partial(write_as, 'files/bad.fd', image))
    # Plain SEV with the measurement the platform would report for this very image: nothing but
    # the footer is wrong, so a refusal is the only right answer (a pass would be a false pass).
    matching = SEV_MATCHING.get(label, REFUSAL if expect in (REFUSAL, REJECTED) else VALID)
    validate('ovmf/sev-matching/%s' % label, matching, ('firmware', 'secret', 'kernel', 'hash'),
             firmware=partial(write_as, 'files/bad.fd', image),
             measurement=footer_measurement(image), policy=SEV_POLICY, num_cpus=None, cpu_family=None,
             cpu_model=None, cpu_stepping=None)
validate('ovmf/generic-ovmf-suffix-secrets', REFUSAL, ('firmware', 'secret'),
         firmware=lambda env: env.write('files/generic.fd', (DATA / 'ovmf' / 'ovmf_OvmfX64_suffix.bin').read_bytes()))
validate('ovmf/vault-encrypted', REFUSAL, ('firmware', 'vault'),
         firmware=lambda env: env.write('files/v.fd', b'$ANSIBLE_VAULT;1.1;AES256\n3030\n'))

# ---- non-regular files and unreadable paths ----------------------------------------------------------

PATH_OPTIONS = {
    # option: how to put a path there
    'firmware': lambda path: {'firmware': path},
    'kernel': lambda path: {'kernel': path},
    'initrd': lambda path: {'initrd': path},
    'tik': lambda path: {'tik': path},
    'tek': lambda path: {'tek': path},
    'vmsa_cpu0': lambda path: {'vmsa_cpu0': path, 'cpu_family': None, 'cpu_model': None, 'cpu_stepping': None},
    'secrets': lambda path: {'secrets': [{'guid': 'luks-key', 'path': path}]},
    'diagnose_firmware': lambda path: {'diagnose_firmware': [path]},
}
NON_REGULAR = {
    'dev-zero': lambda env: env.device('zero'),
    'dev-urandom': lambda env: env.device('urandom'),
    'dev-null': lambda env: env.device('null'),
    'fifo': lambda env: env.fifo('pipe'),
    'directory': lambda env: env.path('files'),
    'symlink-urandom': lambda env: env.symlink('link', env.device('urandom')),
    'proc-kmsg-like': lambda env: '/proc/self/fd/0',
}
UNREADABLE = {
    'missing': lambda env: env.path('no-such-file'),
    'not-a-directory': lambda env: env.path('kernel') + '/child',
    'name-too-long': lambda env: env.path('x' * 5000),
    'symlink-loop': lambda env: env.symlink('loop', env.path('loop')),
    'dangling-symlink': lambda env: env.symlink('dangling', env.path('gone')),
    'nul-byte': lambda env: env.path('kernel') + '\0suffix',
    'empty': lambda env: '',
    'newline': lambda env: env.path('kernel') + '\n',
}
for option, place in PATH_OPTIONS.items():
    # diagnose_firmware is only read on a mismatch: give it one.
    mismatch = {'measurement': b64(bytes(48))} if option == 'diagnose_firmware' else {}
    for label, make in list(NON_REGULAR.items()) + list(UNREADABLE.items()):
        expect = REFUSAL
        if option == 'diagnose_firmware' and label in UNREADABLE and label != 'nul-byte':
            # An optional diagnosis candidate that cannot be found may be reported as unusable
            # (the verdict stays a mismatch) or refused; a non-regular file or a NUL is refused.
            expect = REJECTED
        if option == 'initrd' and label == 'empty':
            continue
        validate_with('path/%s/%s' % (option, label), expect, (option,),
                      partial(lambda place, make, mismatch, env, args: args.update(place(make(env)), **mismatch),
                              place, make, mismatch))

# ---- host reports given to validation (launch_info) -----------------------------------------------
# sev_launch_info's action plugin, with the module's result injected: the host is not trusted.

UUID = '5d3c8a4e-7f0b-4c1e-9a2d-3b6f1e8c9d01'


def domain_xml(launch='', body='', root_attrs=" type='kvm' id='7'", prolog='', vcpus='2', policy='0x0007'):
    if launch is None:
        launch = ("<launchSecurity type='sev'><cbitpos>51</cbitpos><reducedPhysBits>1</reducedPhysBits>"
                  "<policy>%s</policy></launchSecurity>" % policy)
    return ("%s<domain%s><name>sev-guest</name><uuid>%s</uuid><vcpu placement='static'>%s</vcpu>"
            "<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type>"
            "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF.amdsev.fd</loader></os>%s%s</domain>"
            % (prolog, root_attrs, UUID, vcpus, body, launch))


CAPS = ("<capabilities><host><cpu><arch>x86_64</arch><signature family='23' model='1' stepping='2'/>"
        "</cpu></host></capabilities>")


def host_report(**changes):
    report = {
        'hostname': 'hv1.example.net',
        'domain': {'name': 'sev-guest', 'uuid': UUID, 'id': 7},
        'state': {'state': 3, 'state_name': 'paused', 'reason': 1, 'reason_name': 'user', 'active': True,
                  'vcpus': 2, 'run_state': 'prelaunch'},
        'domain_xml': domain_xml(None),
        'capabilities_xml': CAPS,
        'launch_security': {'sev-measurement': b64(bytes(range(48))), 'sev-api-major': 0, 'sev-api-minor': 24,
                            'sev-build-id': 15, 'sev-policy': 7},
        'node_sev': None,
    }
    for key, value in changes.items():
        if '.' in key:
            outer, inner = key.split('.', 1)
            if value is DELETE:
                del report[outer][inner]
            else:
                report[outer][inner] = value
        elif value is DELETE:
            del report[key]
        else:
            report[key] = value
    return report


DELETE = object()
XXE = ('<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>')
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY a "aaaaaaaaaa">'
          + ''.join('<!ENTITY %s "%s">' % (chr(98 + i), ('&%s;' % chr(97 + i)) * 10) for i in range(9)) + ']>')


def launch_info_case(label, expect, words, report_changes, task_args=None):
    add('host-report/%s' % label, 'launch_info', expect, words,
        partial(lambda changes, env: host_report(**changes), report_changes),
        task_args=task_args or {'domain': 'sev-guest'})


launch_info_case('baseline', VALID, (), {})
for label, xml in (
        ('xxe-file', domain_xml(None, body='<description>&xxe;</description>', prolog=XXE)),
        ('xxe-parameter', '<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
         + domain_xml(None)),
        ('billion-laughs', LAUGHS + domain_xml(None, body='<description>&j;</description>')),
        ('quadratic-blowup', '<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY a "%s">]>' % ('x' * 100000)
         + domain_xml(None, body='<description>%s</description>' % ('&a;' * 2000))),
        ('external-dtd', '<?xml version="1.0"?><!DOCTYPE domain SYSTEM "http://198.51.100.99/d.dtd">'
         + domain_xml(None)),
        ('internal-dtd-default-attr', "<?xml version='1.0'?><!DOCTYPE domain [<!ATTLIST launchSecurity type "
         "CDATA 'sev'>]>" + domain_xml("<launchSecurity><policy>0x7</policy></launchSecurity>")),
        ('huge-document', domain_xml(None, body='<description>%s</description>' % ('x' * (64 << 20)))),
        ('deep-nesting', domain_xml(None, body='<a>' * 100000 + '</a>' * 100000)),
        ('namespace-launch', domain_xml("<s:launchSecurity xmlns:s='urn:x' type='sev'><s:policy>0x7</s:policy>"
                                        "</s:launchSecurity>")),
        ('default-namespace', domain_xml(None, root_attrs=" xmlns='urn:evil' type='kvm'")),
        ('policy-5000-hex', domain_xml(None, policy='0x' + 'f' * 5000)),
        ('policy-negative', domain_xml(None, policy='-1')),
        ('policy-text', domain_xml(None, policy='NODBG')),
        ('policy-empty', domain_xml(None, policy='')),
        ('policy-2-to-32', domain_xml(None, policy='0x100000000')),
        ('policy-non-ascii', domain_xml(None, policy='\u0667')),
        ('two-launch-security', domain_xml(None, body="<launchSecurity type='sev'><policy>0x0</policy>"
                                                      "</launchSecurity>")),
        ('cbitpos-5000-digits', domain_xml("<launchSecurity type='sev'><cbitpos>%s</cbitpos><policy>0x7</policy>"
                                           "</launchSecurity>" % HUGE)),
        ('cbitpos-out-of-range', domain_xml("<launchSecurity type='sev'><cbitpos>200</cbitpos>"
                                            "<policy>0x7</policy></launchSecurity>")),
        ('vcpus-huge', domain_xml(None, vcpus='99999999999999')),
        ('vcpus-negative', domain_xml(None, vcpus='-2')),
        ('vcpus-5000-digits', domain_xml(None, vcpus=HUGE)),
        ('not-xml', 'this is not xml'),
        ('empty-xml', ''),
        ('nul-in-xml', domain_xml(None) + '\0'),
        ('utf16-declared', '<?xml version="1.0" encoding="UTF-16"?>' + domain_xml(None)),
        ('processing-instruction', '<?evil cmd="rm -rf"?>' + domain_xml(None)),
        ('wrong-root', domain_xml(None).replace('<domain', '<domainx', 1).replace('</domain>', '</domainx>')),
):
    # Harmless: well-formed XML that says the same (a processing instruction, an encoding
    # declaration the reader overrides, a launchSecurity in another namespace, i.e. none).
    launch_info_case('xml/%s' % label, HARMLESS if label in ('processing-instruction', 'utf16-declared',
                                                             'namespace-launch') else REFUSAL,
                     ('domain', 'xml', 'policy', 'vcpu', 'cbitpos'), {'domain_xml': xml})
for label, caps in (('xxe', XXE.replace('domain', 'capabilities') + '<capabilities>&xxe;</capabilities>'),
                    ('laughs', LAUGHS.replace('domain', 'capabilities') + '<capabilities>&j;</capabilities>'),
                    ('family-5000-digits', CAPS.replace("family='23'", "family='%s'" % HUGE)),
                    ('family-negative', CAPS.replace("family='23'", "family='-1'")),
                    ('not-xml', '<<<')):
    launch_info_case('capabilities/%s' % label, REFUSAL, ('capabilities', 'family', 'signature', 'xml'),
                     {'capabilities_xml': caps})
for label, changes in (
        ('not-a-mapping', {'domain': 'sev-guest'}),
        ('domain-missing', {'domain': DELETE}),
        ('uuid-garbage', {'domain.uuid': 'x' * 5000}),
        ('uuid-int', {'domain.uuid': 7}),
        ('uuid-upper', {'domain.uuid': UUID.upper()}),
        ('name-empty', {'domain.name': ''}),
        ('name-list', {'domain.name': ['a']}),
        ('id-huge', {'domain.id': 2 ** 64}),
        ('id-bool', {'domain.id': True}),
        ('id-string', {'domain.id': '7'}),
        ('state-huge', {'state.state': 2 ** 40}),
        ('vcpus-huge', {'state.vcpus': 2 ** 40}),
        ('vcpus-negative', {'state.vcpus': -1}),
        ('vcpus-string', {'state.vcpus': '2'}),
        ('active-string', {'state.active': 'yes'}),
        ('run-state-garbage', {'state.run_state': 'x' * 5000}),
        ('hostname-int', {'hostname': 5}),
        ('hostname-missing', {'hostname': DELETE}),
        ('measurement-int', {'launch_security': {'sev-measurement': 5, 'sev-api-major': 0, 'sev-api-minor': 24,
                                                 'sev-build-id': 15, 'sev-policy': 7}}),
        ('api-major-huge', {'launch_security': {'sev-measurement': 'AA==', 'sev-api-major': 2 ** 70,
                                                'sev-api-minor': 24, 'sev-build-id': 15, 'sev-policy': 7}}),
        ('policy-huge', {'launch_security': {'sev-measurement': 'AA==', 'sev-api-major': 0, 'sev-api-minor': 24,
                                             'sev-build-id': 15, 'sev-policy': 2 ** 64}}),
        ('policy-negative', {'launch_security': {'sev-measurement': 'AA==', 'sev-api-major': 0,
                                                 'sev-api-minor': 24, 'sev-build-id': 15, 'sev-policy': -1}}),
        ('policy-bool', {'launch_security': {'sev-measurement': 'AA==', 'sev-api-major': 0, 'sev-api-minor': 24,
                                             'sev-build-id': 15, 'sev-policy': True}}),
        ('launch-security-list', {'launch_security': ['sev']}),
        ('node-sev-cbitpos-huge', {'node_sev': {'pdh': 'AA==', 'cert-chain': 'AA==', 'cpu0-id': 'AA==',
                                                'cbitpos': 2 ** 40, 'reduced-phys-bits': 1}}),
        ('node-sev-cbitpos-200', {'node_sev': {'pdh': 'AA==', 'cert-chain': 'AA==', 'cpu0-id': 'AA==',
                                               'cbitpos': 200, 'reduced-phys-bits': 1}}),
        ('node-sev-pdh-int', {'node_sev': {'pdh': 5, 'cert-chain': 'AA==', 'cpu0-id': 'AA==', 'cbitpos': 51,
                                           'reduced-phys-bits': 1}}),
):
    if label == 'not-a-mapping':
        add('host-report/not-a-mapping', 'launch_info', REFUSAL, ('host report', 'mapping'),
            lambda env: ['report'], task_args={'domain': 'sev-guest'})
        continue
    launch_info_case('field/%s' % label, REFUSAL,
                     ('domain', 'state', 'uuid', 'name', 'id', 'vcpus', 'hostname', 'launch', 'policy',
                      'measurement', 'api', 'node', 'cbitpos', 'pdh', 'active', 'run_state', 'report'),
                     changes)
# A failed host result claiming success in its own verdict fields.
add('host-report/failed-claims-ok', 'launch_info', REFUSAL, ('host',),
    lambda env: {'__module_result__': {'failed': True, 'rc': 0, 'reason': 'ok', 'msg': 'all good'}},
    task_args={'domain': 'sev-guest'})
add('host-report/failed-claims-mismatch-valid', 'launch_info', REFUSAL, ('host',),
    lambda env: {'__module_result__': {'failed': True, 'rc': 1, 'reason': 'mismatch', 'valid': True,
                                       'msg': 'x'}},
    task_args={'domain': 'sev-guest'})


# ---- sev_session: certificates --------------------------------------------------------------------

P384_P = 2 ** 384 - 2 ** 128 - 2 ** 96 + 2 ** 32 - 1
P384_N = int('ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973',
             16)
CERT = 2084


class Lab:
    """The emulated platform's certificates (a lab root), made once per process."""
    _platform = None

    @classmethod
    def platform(cls):
        if cls._platform is None:
            cls._platform = fw.EmulatedPlatform(api=(1, 55), build_id=21)
        return cls._platform


def session_env(env):
    platform = Lab.platform()
    env.write('lab/ark.cert', platform.roots.ark_cert, 0o644)
    env.write('lab/ask.cert', platform.roots.ask_cert, 0o644)
    env.write('files/cek.cert', platform.kds_cek(), 0o644)
    info = platform.node_sev_info()
    return base64.b64decode(info['pdh']), base64.b64decode(info['cert-chain']), info['cpu0-id']


def session_args(env, pdh_raw, chain_raw, cpu0_id, **kwargs):
    node = {'pdh': b64(pdh_raw), 'cert_chain': b64(chain_raw), 'cpu0_id': cpu0_id, 'cbitpos': 51, 'reduced_phys_bits': 1,
            'max_guests': 15, 'max_es_guests': 494}
    args = dict(node_sev={'changed': False, 'node_sev': node}, cek_file=env.path('files/cek.cert'), policy=POLICY,
                lab_root=True, ark_file=env.path('lab/ark.cert'), ask_file=env.path('lab/ask.cert'),
                tek_file=env.path('keys/guest.tek'), tik_file=env.path('keys/guest.tik'),
                dh_cert_file=env.path('keys/guest.godh.b64'), session_file=env.path('keys/guest.session.b64'))
    args.update(kwargs)
    return args


def session(case_id, expect, words, mutate):
    """``mutate(env, pdh, chain) -> (pdh, chain, extra args)`` on bytearrays; extra values may be callables."""
    def build(env):
        pdh, chain, cpu0 = session_env(env)
        pdh, chain, extra = mutate(env, bytearray(pdh), bytearray(chain))
        extra = dict((key, value(env) if callable(value) else value) for key, value in (extra or {}).items())
        return session_args(env, bytes(pdh), bytes(chain), cpu0, **extra)
    add(case_id, 'session', expect, words, build)


def flip(data, offset, bit=0):
    data[offset] ^= 1 << bit
    return data


def put_int(data, offset, size, value):
    data[offset:offset + size] = value.to_bytes(size, 'little')
    return data


def get_int(data, offset, size):
    return int.from_bytes(data[offset:offset + size], 'little')


QX, QY, SIG = 0x14, 0x5c, 0x414 + 8
session('session/baseline', VALID, (), lambda env, pdh, chain: (pdh, chain, None))
CERT_MUTATIONS = {
    'truncated': (lambda c: c[:-1], REFUSAL),
    'extended': (lambda c: c + b'\0', REFUSAL),
    'empty': (lambda c: c[:0], REFUSAL),
    'all-zero': (lambda c: bytearray(len(c)), REFUSAL),
    'version-2': (lambda c: put_int(c, 0, 4, 2), REFUSAL),
    'usage-ark': (lambda c: put_int(c, 8, 4, 0), REFUSAL),
    'usage-cek': (lambda c: put_int(c, 8, 4, 0x1004), REFUSAL),
    'algo-rsa': (lambda c: put_int(c, 12, 4, 1), REFUSAL),
    'algo-unknown': (lambda c: put_int(c, 12, 4, 0x77), REFUSAL),
    'curve-p256': (lambda c: put_int(c, 0x10, 4, 1), REFUSAL),
    'curve-unknown': (lambda c: put_int(c, 0x10, 4, 9), REFUSAL),
    'off-curve': (lambda c: flip(c, QX), REFUSAL),
    'x-plus-p': (lambda c: put_int(c, QX, 72, get_int(c, QX, 72) + P384_P), REFUSAL),
    'y-plus-p': (lambda c: put_int(c, QY, 72, get_int(c, QY, 72) + P384_P), REFUSAL),
    'y-negated': (lambda c: put_int(c, QY, 72, P384_P - get_int(c, QY, 72)), REFUSAL),
    'point-at-zero': (lambda c: put_int(put_int(c, QX, 72, 0), QY, 72, 0), REFUSAL),
    'high-coordinate-byte': (lambda c: flip(c, QX + 71, 7), REFUSAL),
    'api-version-byte': (lambda c: flip(c, 4), REFUSAL),
    'signature-bit': (lambda c: flip(c, SIG + 3), REFUSAL),
    'signature-r-zero': (lambda c: put_int(c, SIG, 72, 0), REFUSAL),
    'signature-r-plus-n': (lambda c: put_int(c, SIG, 72, get_int(c, SIG, 72) + P384_N), REFUSAL),
    'signature-s-plus-n': (lambda c: put_int(c, SIG + 72, 72, get_int(c, SIG + 72, 72) + P384_N), REFUSAL),
    'signature-usage': (lambda c: put_int(c, 0x414, 4, 0x1000), REFUSAL),
    'signature-algo': (lambda c: put_int(c, 0x418, 4, 0x1), REFUSAL),
    'both-signatures-empty': (lambda c: c[:0x414] + bytearray(CERT - 0x414), REFUSAL),
}
for label, (mutate, expect) in CERT_MUTATIONS.items():
    session('cert/pdh/%s' % label, expect, ('pdh', 'PDH'),
            partial(lambda mutate, env, pdh, chain: (mutate(pdh), chain, None), mutate))
    for index, name in ((0, 'pek'), (1, 'oca')):
        if label in ('empty', 'extended'):
            continue

        def chain_mutation(env, pdh, chain, mutate=mutate, index=index):
            cert = mutate(bytearray(chain[index * CERT:(index + 1) * CERT]))
            return pdh, chain[:index * CERT] + cert + chain[(index + 1) * CERT:], None
        session('cert/%s/%s' % (name, label), expect, (name, name.upper(), 'cert_chain', 'chain'), chain_mutation)
for label, mutate in (
        ('truncated', lambda chain: chain[:-1]), ('one-cert', lambda chain: chain[:CERT]),
        ('empty', lambda chain: chain[:0]), ('extra-bytes', lambda chain: chain + b'\0' * 16),
        ('pek-oca-swapped', lambda chain: chain[CERT:2 * CERT] + chain[:CERT] + chain[2 * CERT:]),
        ('four-certs', lambda chain: chain + chain[:CERT])):
    session('cert/chain/%s' % label, REFUSAL, ('cert_chain', 'chain', 'PEK', 'OCA'),
            partial(lambda mutate, env, pdh, chain: (pdh, mutate(chain), None), mutate))
session('cert/pdh/is-pek', REFUSAL, ('pdh', 'PDH'), lambda env, pdh, chain: (chain[:CERT], chain, None))
session('cert/pdh/not-base64', REFUSAL, ('pdh',),
        lambda env, pdh, chain: (pdh, chain, {'node_sev': None, 'pdh': '!!not base64', 'cert_chain': b64(chain)}))
session('cert/cek/truncated', REFUSAL, ('cek',),
        lambda env, pdh, chain: (pdh, chain, {'cek_file': env.write('c.cert', Lab.platform().kds_cek()[:-1])}))
session('cert/cek/signature-bit', REFUSAL, ('cek', 'CEK'),
        lambda env, pdh, chain: (pdh, chain, {'cek_file': env.write('c.cert', bytes(flip(bytearray(
            Lab.platform().kds_cek()), SIG + 5)))}))
session('cert/cek/real-rome', REFUSAL, ('cek', 'CEK', 'OCA', 'PEK'),
        lambda env, pdh, chain: (pdh, chain, {'cek_file': str(DATA / 'amd-certs/sev-chains/rome/cek.cert')}))
session('cert/cek/empty', REFUSAL, ('cek',), lambda env, pdh, chain: (pdh, chain, {'cek_file': env.write(
    'c.cert', b'')}))
session('cert/cek/dev-zero', REFUSAL, ('cek',), lambda env, pdh, chain: (pdh, chain, {'cek_file': env.device('zero')}))
session('cert/cek/fifo', REFUSAL, ('cek',), lambda env, pdh, chain: (pdh, chain, {'cek_file': env.fifo('c')}))
session('cert/roots/swapped', REFUSAL, ('ark', 'ask', 'ARK', 'ASK'),
        lambda env, pdh, chain: (pdh, chain, {'ark_file': env.path('lab/ask.cert'),
                                              'ask_file': env.path('lab/ark.cert')}))
session('cert/roots/amd-ark-lab-ask', REFUSAL, ('ark', 'ask', 'ARK', 'ASK'),
        lambda env, pdh, chain: (pdh, chain, {'ark_file': str(DATA / 'amd-certs/sev-builtin/genoa/ark.cert')}))
session('cert/roots/ark-truncated', REFUSAL, ('ark', 'ARK'),
        lambda env, pdh, chain: (pdh, chain, {'ark_file': env.write('a.cert', Lab.platform().roots.ark_cert[:-7])}))
session('cert/roots/ask-signature-bit', REFUSAL, ('ask', 'ASK'),
        lambda env, pdh, chain: (pdh, chain, {'ask_file': env.write('a.cert', bytes(flip(bytearray(
            Lab.platform().roots.ask_cert), len(Lab.platform().roots.ask_cert) - 9)))}))
session('cert/roots/lab-root-without-files', REFUSAL, ('lab_root', 'ark_file'),
        lambda env, pdh, chain: (pdh, chain, {'ark_file': None, 'ask_file': None}))
session('cert/roots/files-without-lab-root', REFUSAL, ('lab_root', 'ark_file', 'ARK'),
        lambda env, pdh, chain: (pdh, chain, {'lab_root': False}))
session('cert/roots/pinned-amd-for-lab-chain', REFUSAL, ('chain', 'CEK', 'ASK', 'cek'),
        lambda env, pdh, chain: (pdh, chain, {'lab_root': False, 'ark_file': None, 'ask_file': None}))


def real_chain(generation='rome', **extra):
    def build(env):
        root = DATA / 'amd-certs/sev-chains' / generation
        pdh = (root / 'pdh.cert').read_bytes()
        chain = b''.join((root / ('%s.cert' % name)).read_bytes() for name in ('pek', 'oca', 'cek'))
        args = session_args(env, pdh, chain, b64(bytes(64)), cek_file=str(root / 'cek.cert'), lab_root=False,
                            ark_file=None, ask_file=None)
        for key, value in extra.items():
            args[key] = value(env, args) if callable(value) else value
        return args
    return build


add('session/real-rome', 'session', VALID, (), real_chain())
add('session/real-naples', 'session', VALID, (), real_chain('naples'))
add('cert/real/rome-pdh-naples-chain', 'session', REFUSAL, ('PDH', 'pdh', 'PEK'), real_chain(
    node_sev=lambda env, args: dict(args['node_sev'], node_sev=dict(args['node_sev']['node_sev'], pdh=b64((
        DATA / 'amd-certs/sev-chains/naples/pdh.cert').read_bytes())))))
add('cert/real/rome-cek-naples', 'session', REFUSAL, ('CEK', 'cek', 'OCA', 'PEK'), real_chain(
    cek_file=str(DATA / 'amd-certs/sev-chains/naples/cek.cert')))
add('cert/real/rome-with-lab-roots', 'session', REFUSAL, ('ASK', 'ARK', 'CEK', 'cek', 'ask'), real_chain(
    lab_root=True, ark_file=lambda env, args: session_env(env) and env.path('lab/ark.cert'),
    ask_file=lambda env, args: env.path('lab/ask.cert')))
for label, value in (('-1', -1), ('2-to-32', 2 ** 32), ('5000-digits', HUGE), ('bool', True),
                     ('non-ascii', '\u0667'), ('float', 7.5), ('text', 'NODBG')):
    session('session/policy/%s' % label, REFUSAL, ('policy',),
            partial(lambda value, env, pdh, chain: (pdh, chain, {'policy': value}), value))
for label, value in (('empty', ''), ('text', 'new'), ('higher', '1.56'), ('5000-digits', HUGE + '.0'),
                     ('non-ascii', '\u0661.\u0665\u0665'), ('three-parts', '1.55.0'), ('negative', '-1.0')):
    session('session/min-pdh-api/%s' % label, REFUSAL, ('min_pdh_api_version',),
            partial(lambda value, env, pdh, chain: (pdh, chain, {'min_pdh_api_version': value}), value))
for label, extra, words in (
        ('tek-is-tik', {'tek_file': lambda env: env.path('keys/guest.tik')}, ('tek_file', 'tik_file')),
        ('tik-is-session', {'tik_file': lambda env: env.path('keys/guest.session.b64')},
         ('tik_file', 'session_file')),
        ('godh-is-session', {'dh_cert_file': lambda env: env.path('keys/guest.session.b64')},
         ('dh_cert_file', 'session_file')),
        ('tik-dev-null', {'tik_file': lambda env: env.device('null')}, ('tik_file',)),
        ('godh-dev-null', {'dh_cert_file': lambda env: env.device('null')}, ('dh_cert_file',)),
        ('session-fifo', {'session_file': lambda env: env.fifo('keys/s.fifo')}, ('session_file',)),
        ('tek-directory', {'tek_file': lambda env: env.path('keys')}, ('tek_file',)),
        ('tik-missing-dir', {'tik_file': lambda env: env.path('nowhere/t')}, ('tik_file',)),
        ('tik-is-cek', {'tik_file': lambda env: env.path('files/cek.cert')}, ('tik_file', 'cek_file')),
        ('tik-nul', {'tik_file': lambda env: env.path('keys/t\0x')}, ('tik_file',)),
        ('cpu0-id-not-base64', {'node_sev': lambda env: None, 'pdh': lambda env: 'AA==',
                                'cert_chain': lambda env: 'AA=='}, ('pdh', 'PDH')),
        ('node-sev-string', {'node_sev': 'hv1'}, ('node_sev',)),
        ('node-sev-pdh-int', {'node_sev': {'changed': False, 'node_sev': {'pdh': 5, 'cert_chain': 'AA=='}}},
         ('pdh', 'node_sev')),
        ('node-sev-empty', {'node_sev': {}}, ('node_sev', 'pdh')),
        ('state-bogus', {'state': 'exists'}, ('state',)),
):
    session('session/output/%s' % label if 'node' not in label and 'cpu0' not in label
            and 'state' not in label else 'session/input/%s' % label, REFUSAL, words,
            partial(lambda extra, env, pdh, chain: (pdh, chain, extra), extra))


# ---- sev_reference_measurement ----------------------------------------------------------------------

def reference(case_id, expect, words, **changes):
    def build(env):
        args = dict(firmware=[env.path('files/OVMF.fd')],
                    direct_boot=[{'kernel': env.path('kernel'), 'initrd': env.path('initrd'), 'cmdline': CMDLINE}],
                    modes=['seves'], num_cpus=[1, 2], cpu_skus=['EPYC'], dest=env.path('out/reference.json'))
        for key, value in changes.items():
            args[key] = value(env) if callable(value) else value
        return args
    add(case_id, 'reference', expect, words, build)


reference('reference/baseline', VALID, ())
for label, value in (('-1', [-1]), ('zero', [0]), ('5000-digits', [HUGE]), ('huge', [10 ** 6]), ('bool', [True]),
                     ('non-ascii', ['\u0662']), ('not-list', 'two')):
    reference('reference/num_cpus/%s' % label, REFUSAL, ('num_cpus',), num_cpus=value)
for label, value in (('garbage', ['EPYC-Nope']), ('empty', ['']), ('triple-huge', ['%s/1/1' % HUGE]),
                     ('triple-negative', ['-1/1/1']), ('two-parts', ['23/1']), ('non-ascii', ['\u0662\u0663/1/2']),
                     ('nul', ['EPYC\0'])):
    reference('reference/cpu_skus/%s' % label, REFUSAL, ('cpu_skus', 'cpu'), cpu_skus=value)
for label, make in list(NON_REGULAR.items()) + list(UNREADABLE.items()):
    reference('reference/firmware/%s' % label, REFUSAL, ('firmware',),
              firmware=partial(lambda make, env: [make(env)], make))
reference('reference/firmware/empty-list', REFUSAL, ('firmware',), firmware=[])
reference('reference/firmware/malformed-footer', REFUSAL, ('firmware',),
          firmware=lambda env: [env.write('files/bad.fd', FOOTER_IMAGES['entry-length-zero'][0])])
for label, make in (('dev-null', lambda env: env.device('null')), ('fifo', lambda env: env.fifo('out/ref.fifo')),
                    ('directory', lambda env: env.path('out')), ('missing-dir', lambda env: env.path('no/ref.json')),
                    ('is-firmware', lambda env: env.path('files/OVMF.fd')), ('nul', lambda env: env.path('out/r\0')),
                    ('is-kernel', lambda env: env.path('kernel'))):
    reference('reference/dest/%s' % label, REFUSAL, ('dest',), dest=make)
for label, boot in (('cmdline-nul', {'cmdline': 'a\0b'}), ('cmdline-b64-bad', {'cmdline': None, 'cmdline_b64': '!!'}),
                    ('cmdline-b64-nul', {'cmdline': None, 'cmdline_b64': b64(b'a\0b')}),
                    ('kernel-dev-zero', {'kernel': 'ZERO'}), ('initrd-fifo', {'initrd': 'FIFO'}),
                    ('cmdline-surrogate', {'cmdline': '\udcff'})):
    def boot_build(env, boot=boot):  # pylint: disable=dangerous-default-value
        entry = {'kernel': env.path('kernel'), 'initrd': env.path('initrd'), 'cmdline': CMDLINE}
        entry.update(boot)
        if entry.get('kernel') == 'ZERO':
            entry['kernel'] = env.device('zero')
        if entry.get('initrd') == 'FIFO':
            entry['initrd'] = env.fifo('initrd.fifo')
        if entry.get('cmdline') is None:
            del entry['cmdline']
        return [entry]
    reference('reference/direct_boot/%s' % label, REFUSAL, ('direct_boot', 'cmdline', 'kernel', 'initrd'),
              direct_boot=boot_build)
for label, key, value, words in (
        ('policy-negative', 'allowed_policies', [-1], ('allowed_policies', 'policy')),
        ('policy-huge', 'allowed_policies', [2 ** 32], ('allowed_policies', 'policy')),
        ('build-huge', 'allowed_build_ids', [256], ('allowed_build_ids', 'build id')),
        ('min-api-bad', 'min_api_version', 'x.y', ('min_api_version',)),
        ('features-huge', 'vmsa_sev_features', [2 ** 64], ('vmsa_sev_features', 'sev_features'))):
    reference('reference/%s' % label, REFUSAL, words, format='simple-kbs', **{key: value})


# ---- sev_launch_record -----------------------------------------------------------------------------

def record(case_id, expect, words, prepared=False, **changes):
    def build(env):
        args = dict(state_dir=env.path('state'), host='hv1', domain_uuid=UUID, state='prepare')
        if prepared:
            # A launch prepared first, so that only the changed option is wrong.
            from ansible_collections.confidential.sev.plugins.action import sev_launch_record
            from ansible_collections.confidential.sev.tests.unit.plugins.action import action_harness
            harness = action_harness.Harness(sev_launch_record, 'confidential.sev.sev_launch_record', env.root)
            args['launch_id'] = harness.run(**args)['launch_id']
            # the stages before the one under test, with good values
            stages = {'validated': ('started',), 'injected': ('started', 'validated')}.get(changes.get('state'), ())
            for stage in stages:
                stage_args = dict(args)
                stage_args.update(state=stage, domain_id=7, measurement=env.measurement)
                done = harness.run(**stage_args)
                assert not done.get('failed'), done
        for key, value in changes.items():
            args[key] = value(env) if callable(value) else value
        return args
    add(case_id, 'record', expect, words, build)


record('record/baseline', VALID, ())
for label, value in (('empty', ''), ('garbage', 'not-a-uuid'), ('5000', 'a' * 5000), ('nul', UUID + '\0'),
                     ('traversal', '../../etc/passwd'), ('int', 7)):
    record('record/domain_uuid/%s' % label, REFUSAL, ('domain_uuid', 'uuid'), domain_uuid=value)
for label, value in (('traversal', '../../../etc'), ('slash', 'a/b'), ('nul', 'hv\0'), ('empty', ''),
                     ('dot', '.'), ('dotdot', '..'), ('5000', 'h' * 5000)):
    # A host name becomes one %-escaped path component: a traversal is harmless.
    record('record/host/%s' % label, REFUSAL if label in ('empty', '5000') else HARMLESS, ('host',), host=value)
for label, make in (('is-file', lambda env: env.write('statefile', b'x')), ('dev-null', lambda env: env.device('null')),
                    ('fifo', lambda env: env.fifo('state.fifo')), ('nul', lambda env: env.path('st\0ate')),
                    ('world-writable', lambda env: (os.makedirs(env.path('ww'), exist_ok=True),
                                                    os.chmod(env.path('ww'), 0o777), env.path('ww'))[2])):
    record('record/state_dir/%s' % label, REFUSAL, ('state_dir',), state_dir=make)
record('record/query-not-mapping', REFUSAL, ('reported',), state='query', reported='x')
record('record/query-mistyped', REFUSAL, ('reported', 'id', 'domain'), state='query',
       reported={'domain': {'uuid': UUID, 'id': 'seven'}})
record('record/started-id-huge', REFUSAL, ('domain_id',), prepared=True, state='started', domain_id=2 ** 64)
record('record/started-id-negative', REFUSAL, ('domain_id',), prepared=True, state='started', domain_id=-5)
record('record/started-id-bool', REFUSAL, ('domain_id',), prepared=True, state='started', domain_id=True)
record('record/validated-measurement-not-base64', REFUSAL, ('measurement',), prepared=True, state='validated',
       measurement='!!')
record('record/injected-count-negative', REFUSAL, ('secret_count',), prepared=True, state='injected',
       secret_count=-1)
record('record/started-launch-id-traversal', REFUSAL, ('launch_id',), state='started', launch_id='../x',
       domain_id=7)
record('record/validated-measurement-garbage', REFUSAL, ('measurement', 'launch_id', 'launch'), state='validated',
       launch_id='a' * 32, measurement='!!')
record('record/secret-count-negative', REFUSAL, ('secret_count', 'launch_id', 'launch'), state='injected',
       launch_id='a' * 32, secret_count=-1)


# ---- sev_secret_inject's packet (host side, checked before it reaches libvirt) -----------------------

PACKET_HEADER = bytes(4) + bytes(range(16)) + bytes(range(100, 132))
PACKET_PAYLOAD = bytes(range(64))


def packet(case_id, expect, words, header=b64(PACKET_HEADER), payload=b64(PACKET_PAYLOAD)):
    add(case_id, 'packet', expect, words, lambda env: {'header': header, 'payload': payload})


packet('packet/baseline', VALID, ())
for label, value in (('empty', ''), ('not-base64', 'not base64!'), ('51-bytes', b64(PACKET_HEADER[:-1])),
                     ('53-bytes', b64(PACKET_HEADER + b'\0')), ('flags-set', b64(b'\1' + PACKET_HEADER[1:])),
                     ('urlsafe', base64.urlsafe_b64encode(b'\xfb' * 52).decode()), ('inner-newline',
                     b64(PACKET_HEADER)[:10] + '\n' + b64(PACKET_HEADER)[10:]), ('non-ascii', '\u00e9' * 72),
                     ('5000-chars', 'A' * 5000), ('nul', b64(PACKET_HEADER) + '\0')):
    packet('packet/header/%s' % label, REFUSAL, ('header',), header=value)
for label, value in (('empty', ''), ('not-base64', '!!!!'), ('15-bytes', b64(bytes(15))), ('17-bytes', b64(bytes(17))),
                     ('no-padding', b64(bytes(16)).rstrip('=')), ('nul', b64(bytes(16)) + '\0'),
                     ('16-mib', b64(bytes(16 << 20)))):
    # (header and payload are str options: AnsibleModule turns anything else into text first)
    # 16 MiB is well-formed; the host-side module does not know the secret area, the platform refuses it.
    packet('packet/payload/%s' % label, HARMLESS if label == '16-mib' else REFUSAL, ('payload',), payload=value)

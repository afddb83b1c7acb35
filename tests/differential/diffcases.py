# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The generated cases: plain dicts with a readable ``id`` and a ``seed``.

Everything comes from ONE random.Random(1234), drawn in a fixed order at import,
so every pytest-xdist worker collects exactly the same parameters.  The bytes
of a case (keys, kernels, nonces, ...) come from random.Random(case['seed'])
inside the test (fixture ``rng``).
"""

from __future__ import annotations

import random

from difftools import DEBIAN_FIRMWARE, SKUS

_RNG = random.Random(1234)

FLAG_SETS = [0x0, 0x1, 0x3, 0x5, 0x7, 0x33, 0x0b, 0x13, 0x3f, 0x37, 0x2b, 0x19]
ES_FLAG_SETS = [flags for flags in FLAG_SETS if flags & 0x4] + [0x4, 0x0c, 0x1d, 0x26]
MIN_API_POLICIES = [0x00180001, 0x18000001, 0x00010003, 0x22000033]

CMDLINES = [
    None, '', 'console=ttyS0', '  console=ttyS0 root=/dev/vda1  ', 'a  b   c  ',
    '\tconsole=ttyS0\tquiet\t', 'console=ttyS0\n', ' ', '\n',
    'root=UUID=0b5c4f4e-1d2a-4c3b-9e8f-7a6b5c4d3e2f ro quiet splash',
    'ünïcødé=☃ 日本語 emoji=🔐', 'init="/bin/sh -c \'echo hi\'" x=\'y z\'',
    '=starts-with-equals', '-starts-with-dash', '--double-dash=1 -x',
    'a=b=c\\d', 'x' * 3000, 'trailing space ',
]
_SKU_NAMES = list(SKUS)


def _seed():
    return _RNG.getrandbits(64)


def _api_for(policy):
    """(major, minor, build), at least the policy's minimum API (bits 16-23 major, 24-31 minor)."""
    min_major, min_minor = (policy >> 16) & 0xff, (policy >> 24) & 0xff
    major = _RNG.randint(min_major, 255) if _RNG.random() < 0.5 else min(255, min_major + _RNG.randint(0, 3))
    minor = _RNG.randint(min_minor if major == min_major else 0, 255)
    return (major, minor, _RNG.randint(0, 255))


def _policy(es, with_min_api=None):
    policy = _RNG.choice(ES_FLAG_SETS if es else [f for f in FLAG_SETS if not f & 0x4])
    if with_min_api is None:
        with_min_api = _RNG.random() < 0.35
    if with_min_api:
        policy |= (_RNG.randint(0, 40) << 16) | (_RNG.randint(0, 60) << 24)
    return policy


def _sku():
    name = _RNG.choice(_SKU_NAMES)
    return name, SKUS[name]


# --------------------------------------------------------- plain SEV, Debian OVMF
def _plain_sev_cases():
    cases = []
    edge_apis = [(0, 0, 0), (255, 255, 255), (0, 24, 15), (1, 55, 21)]
    fixed_policies = [0, 1, 3, 0x5, 0x7, 0x33] + MIN_API_POLICIES
    for fw in DEBIAN_FIRMWARE:
        for index in range(9):
            policy = fixed_policies[index] if index < len(fixed_policies) and fw in ('OVMF_CODE', 'OVMF_CODE_4M') \
                else _policy(es=_RNG.random() < 0.25)
            api = _api_for(policy)
            if index < len(edge_apis) and fw == 'OVMF.fd' and not policy & 0xffff0000:
                api = edge_apis[index]
            case = dict(seed=_seed(), fw=fw, api=api, policy=policy)
            if policy & 0x4:
                case['sku_name'], case['sku'] = _sku()
                case['num_cpus'] = _RNG.randint(1, 8)
            case['id'] = 'sev-%s-api%d.%d-b%d-pol0x%08x%s' % (
                fw, api[0], api[1], api[2], policy,
                '-%s-%dcpu' % (case['sku_name'], case['num_cpus']) if policy & 0x4 else '')
            cases.append(case)
    return cases


PLAIN_SEV = _plain_sev_cases()

# Policies the firmware never launches (reserved bits 6-15), which the reference accepts.
RESERVED_POLICY = [dict(seed=_seed(), id='reserved-pol0x%08x' % policy, policy=policy,
                        api=_api_for(policy & 0xffff0000 | 0x1)) for policy in
                   (0x00000041, 0x00181033, 0x00008003)]


# ------------------------------------------------- measured direct boot (synthetic)
def _kernel_size():
    return int(4096 * 2 ** (_RNG.random() * 10))   # 4 KiB .. 4 MiB, log-uniform


def _direct_boot_cases():
    cases = []
    initrd_modes = ['absent', 'empty', 'random']
    for index in range(42):
        cmdline = CMDLINES[index % len(CMDLINES)]
        b64 = cmdline is not None and index % 3 == 1
        fw = 'amdsev-suffix' if index % 7 == 3 else 'synthetic'
        initrd = initrd_modes[index % 3] if index % 6 != 5 else 'random'
        policy = _policy(es=False)
        case = dict(seed=_seed(), fw=fw, kernel_size=_kernel_size(), initrd=initrd,
                    cmdline=cmdline, cmdline_b64=b64, policy=policy, api=_api_for(policy),
                    initrd_size=_kernel_size() if initrd == 'random' else 0)
        label = 'none' if cmdline is None else ('empty' if cmdline == '' else 'c%02d' % (index % len(CMDLINES)))
        case['id'] = 'boot-%s-k%d-initrd_%s-cmdline_%s%s' % (
            fw, case['kernel_size'], initrd, label, '-b64' if b64 else '')
        cases.append(case)
    return cases


DIRECT_BOOT = _direct_boot_cases()

DEBIAN_DIRECT_BOOT = [dict(seed=_seed(), fw=fw, es=False, id='debian-boot-%s' % fw)
                      for fw in DEBIAN_FIRMWARE] + [
    dict(seed=_seed(), fw=fw, es=True, id='debian-boot-es-%s' % fw)
    for fw in ('OVMF_CODE', 'OVMF_CODE_4M')]


# ------------------------------------------------------------- SEV-ES from a SKU
def _sev_es_cases():
    cases = []
    plan = [('OVMF_CODE', 18), ('OVMF_CODE_4M', 18), ('synthetic', 22), ('amdsev-suffix', 8)]
    styles = ['family', 'type', 'sig']
    counter = 0
    for fw, count in plan:
        for index in range(count):
            counter += 1
            num_cpus = (counter % 16) + 1
            sku_name = _SKU_NAMES[counter % len(_SKU_NAMES)]
            sku = SKUS[sku_name]
            boot = fw in ('synthetic', 'amdsev-suffix') and _RNG.random() < 0.5
            policy = _policy(es=True)
            reset = _RNG.choice([0x0080b004, 0x00808004, 0x00ffe004, _RNG.getrandbits(32)])
            case = dict(seed=_seed(), fw=fw, num_cpus=num_cpus, sku_name=sku_name, sku=sku,
                        boot=boot, policy=policy, api=_api_for(policy),
                        style=styles[counter % 3] if (sku[3] or counter % 3 != 1) else 'family',
                        reset=reset, kernel_size=_kernel_size() if boot else 0,
                        cmdline=_RNG.choice(CMDLINES) if boot else None)
            case['id'] = 'es-%s-%s-%dcpu%s-pol0x%08x%s' % (
                fw, sku_name, num_cpus, '-boot' if boot else '', policy,
                '-reset0x%08x' % reset if fw == 'synthetic' else '')
            cases.append(case)
    return cases


SEV_ES = _sev_es_cases()


# ---------------------------------------------------------- explicit VMSA files
def _vmsa_dump_cases():
    cases = []
    fws = ['OVMF_CODE', 'OVMF_CODE_4M', 'synthetic']
    cpus = [1, 2, 3, 4, 8, 16, 1, 5, 2, 12, 1, 7, 6]
    for index, num_cpus in enumerate(cpus):
        fw = fws[index % 3]
        sku_name, sku = _sku()
        policy = _policy(es=True)
        boot = fw == 'synthetic' and index % 2 == 0
        cases.append(dict(seed=_seed(), fw=fw, num_cpus=num_cpus, sku_name=sku_name, sku=sku,
                          policy=policy, api=_api_for(policy), boot=boot,
                          id='vmsa-dump-%s-%s-%dcpu%s' % (fw, sku_name, num_cpus, '-boot' if boot else '')))
    return cases


VMSA_DUMP = _vmsa_dump_cases()

VMSA_RANDOM = []
for _index, _cpus in enumerate([2, 3, 4, 9, 16, 2, 5, 11, 32, 64]):
    _policy_value = _policy(es=True)
    VMSA_RANDOM.append(dict(seed=_seed(), fw=['OVMF_CODE', 'OVMF_CODE_4M', 'OVMF.fd', 'synthetic'][_index % 4],
                            num_cpus=_cpus, policy=_policy_value, api=_api_for(_policy_value),
                            id='vmsa-random-%dcpu-%d' % (_cpus, _index)))

VMSA_ONE_CPU = [dict(seed=_seed(), fw=fw, source=source, with_cpu1=with_cpu1,
                     id='vmsa-1cpu-%s-%s%s' % (source, fw, '-cpu1ignored' if with_cpu1 else ''))
                for fw, source, with_cpu1 in [('OVMF_CODE', 'dump', False), ('OVMF_CODE_4M', 'dump', False),
                                              ('synthetic', 'dump', False), ('OVMF_CODE', 'random', False),
                                              ('OVMF.fd', 'random', False), ('OVMF_CODE', 'random', True)]]


# ------------------------------------------------------------------------- keys
TK_FILE = []
for _index, _kind in enumerate(['plain', 'es', 'boot', 'plain', 'es', 'secrets']):
    _policy_value = _policy(es=_kind == 'es')
    TK_FILE.append(dict(seed=_seed(), kind=_kind, policy=_policy_value, api=_api_for(_policy_value),
                        id='tk-%s-%d' % (_kind, _index)))

SWAPPED_KEYS = [dict(seed=_seed(), keys=keys, es=es, id='swapped-%s%s' % (keys, '-es' if es else ''))
                for keys, es in [('split', False), ('split', True), ('tk', False), ('tk', True)]]


# ---------------------------------------------------------------------- secrets
_GUIDS = ['4c1f2ad0-5d0b-4d7e-9a12-0f8e6d4c2b1a', 'E9F1A2B3-C4D5-4E6F-8A9B-0C1D2E3F4A5B',
          'deadbeef-0000-4000-8000-000000000001', '00000000-0000-0000-0000-000000000000',
          'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', 'a1b2c3d4-e5f6-4789-abcd-ef0123456789']


def _secret_cases():
    cases = []

    def add(name, secrets, fw='synthetic', es=False):
        policy = _policy(es=es)
        cases.append(dict(seed=_seed(), fw=fw, es=es, secrets=secrets, policy=policy,
                          api=_api_for(policy), id='secrets-%s-%s%s' % (name, fw, '-es' if es else '')))

    # values: ('text', str) | ('random', size)
    add('luks-newline', [('luks-key', ('text', 'correct horse battery staple\n'))])
    add('luks-newline', [('luks-key', ('text', 'hunter2\n'))], fw='OVMF_CODE')
    add('luks-binary', [('luks-key', ('random', 64))], fw='amdsev-suffix')
    add('guid-lower', [(_GUIDS[0], ('text', 'value'))])
    add('guid-upper', [(_GUIDS[1], ('text', 'VALUE\n'))])
    add('guid-upper-mixed', [(_GUIDS[1], ('random', 33)), (_GUIDS[0], ('text', 'x'))], fw='OVMF_CODE_4M')
    add('guid-zero-and-ones', [(_GUIDS[3], ('random', 5)), (_GUIDS[4], ('random', 6))])
    add('several', [('luks-key', ('text', 'k\n')), (_GUIDS[0], ('random', 100)),
                    (_GUIDS[1], ('text', 'ünïcødé\n')), (_GUIDS[2], ('random', 1))])
    add('several', [(_GUIDS[5], ('random', 300)), ('luks-key', ('random', 17)),
                    (_GUIDS[2], ('random', 2))], es=True)
    add('binary-big', [(_GUIDS[2], ('random', 2000))])
    add('binary-nul', [(_GUIDS[0], ('text', '\0\0\0\n'))], fw='OVMF.fd')
    # table length = 20 + sum(20 + len): multiples of 16 get a FULL 16-byte pad block
    for size in (8, 24, 40, 1000):
        add('aligned-one-%d' % size, [('luks-key', ('random', size))])
    add('aligned-two-4', [(_GUIDS[0], ('random', 1)), (_GUIDS[1], ('random', 3))])
    add('aligned-two-20', [(_GUIDS[0], ('random', 10)), ('luks-key', ('text', '123456789\n'))])
    add('aligned-three', [(_GUIDS[0], ('random', 4)), (_GUIDS[1], ('random', 4)), (_GUIDS[2], ('random', 8))])
    for size in (7, 9, 23):
        add('near-aligned-%d' % size, [('luks-key', ('random', size))])
    add('es-luks', [('luks-key', ('text', 'pass\n'))], fw='OVMF_CODE', es=True)
    return cases


SECRETS = _secret_cases()

SECRET_REFUSALS = [
    dict(id='dup-alias-and-guid', secrets=[('luks-key', 'a'), ('736869e5-84f0-4973-92ec-06879ce3da0b', 'b')],
         reason='unsupported', ref_rc=2, ref_text='already loaded'),
    dict(id='dup-upper-lower', secrets=[(_GUIDS[0], 'a'), (_GUIDS[0].upper(), 'b')],
         reason='unsupported', ref_rc=2, ref_text='already loaded'),
    dict(id='dup-alias-twice', secrets=[('luks-key', 'a'), ('luks-key', 'a')],
         reason='unsupported', ref_rc=2, ref_text='already loaded'),
    dict(id='unknown-alias', secrets=[('disk-key', 'a')],
         reason='unsupported', ref_rc=2, ref_text='is not known'),
    dict(id='unknown-alias-case', secrets=[('LUKS-KEY', 'a')],
         reason='unsupported', ref_rc=2, ref_text='is not known'),
    dict(id='guid-braces', secrets=[('{%s}' % _GUIDS[0], 'a')],
         reason='unsupported', ref_rc=2, ref_text='is not known'),
]
for _case in SECRET_REFUSALS:
    _case['seed'] = _seed()

ALL_GROUPS = dict(PLAIN_SEV=PLAIN_SEV, RESERVED_POLICY=RESERVED_POLICY, DIRECT_BOOT=DIRECT_BOOT,
                  DEBIAN_DIRECT_BOOT=DEBIAN_DIRECT_BOOT, SEV_ES=SEV_ES, VMSA_DUMP=VMSA_DUMP,
                  VMSA_RANDOM=VMSA_RANDOM, VMSA_ONE_CPU=VMSA_ONE_CPU, TK_FILE=TK_FILE,
                  SWAPPED_KEYS=SWAPPED_KEYS, SECRETS=SECRETS, SECRET_REFUSALS=SECRET_REFUSALS)


def params(cases):
    """pytest.param list with readable ids (made unique)."""
    import pytest
    seen, out = {}, []
    for case in cases:
        ident = case['id']
        if ident in seen:
            seen[ident] += 1
            ident = '%s-%d' % (ident, seen[ident])
        else:
            seen[ident] = 0
        out.append(pytest.param(case, id=ident))
    return out

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reference values: option checks, combinations, hashing each file once, output, publishing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import struct

import pytest
import yaml

from ansible_collections.confidential.sev.plugins.module_utils import reference_values as rv
from ansible_collections.confidential.sev.plugins.module_utils.sev import streaming, vmsa
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import (
    FirmwareFormatError, UnsupportedUsage,
)
from ansible_collections.confidential.sev.plugins.module_utils.sev.launch_digest import (
    assemble_launch_digest, compute_launch_digest, hash_measured_files,
)
from ansible_collections.confidential.sev.plugins.modules import sev_reference_measurement
from ansible_collections.confidential.sev.tests.support import firmware as synthetic

RESET = 0x0080b004


def params(**options):
    """Every ARGUMENT_SPEC key: the given value, else the spec default."""
    unknown = set(options) - set(rv.ARGUMENT_SPEC)
    assert not unknown, unknown
    out = dict((name, spec.get('default')) for name, spec in rv.ARGUMENT_SPEC.items())
    out.update(dest='unused')
    out.update(options)
    return out


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, data in (('fw_a', synthetic.build_image(body_size=40000, fill=b'A')),
                       ('fw_b', synthetic.build_image(body_size=50000, fill=b'B', reset_address=0x00808004)),
                       ('debian_like', synthetic.build_image(body_size=30000, hash_table=(0, 0))),
                       ('no_reset', synthetic.build_image(body_size=30000, entries=[
                           (synthetic.SEV_HASH_TABLE, struct.pack('<II', 0x80c000, 0x400))])),
                       ('no_footer', b'\x5a' * 70000),
                       ('kernel1', b'bzImage-one' * 3000), ('kernel2', b'bzImage-two' * 2000),
                       ('initrd', b'cpio' * 1000), ('empty', b'')):
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = str(path)
    return paths


def independent_digest(firmware, kernel=None, initrd=b'', cmdline=b'', pages=()):
    """SHA-256 over the concatenation, table written from the documented layout."""
    data = open(firmware, 'rb').read()
    if kernel is not None:
        def entry(guid_le, payload):
            return guid_le + struct.pack('<H', 50) + hashlib.sha256(payload).digest()
        data += (bytes.fromhex('06d63894224fc94cb479a793d411fd21') + struct.pack('<H', 168)
                 + entry(bytes.fromhex('d82dd09720bd944caa78e7714d36ab2a'), (cmdline or b'') + b'\0')
                 + entry(bytes.fromhex('31f7ba442f3ad74b9af141e29169781d'), initrd or b'')
                 + entry(bytes.fromhex('3794e74dd2ab7f42b835d5b172d2045b'), kernel) + bytes(8))
    for page in pages:
        data += page
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- CPU SKUs

@pytest.mark.parametrize('text, label, fms, signature', [
    ('Milan', 'Milan', (25, 1, 1), 0xa00f11),
    ('milan', 'Milan', (25, 1, 1), 0xa00f11),
    ('EPYC-Milan', 'Milan', (25, 1, 1), 0xa00f11),
    ('epyc', 'Naples', (23, 1, 2), 0x800f12),
    ('Rome', 'Rome', (23, 49, 0), 0x830f10),
    ('Genoa', 'Genoa', (25, 17, 0), 0xa10f10),
    ('Turin', 'Turin', (26, 0, 0), 0xb00f00),
    ('25/1/1', '25/1/1', (25, 1, 1), 0xa00f11),
    (' 0x19 / 0x11 / 0 ', '25/17/0', (25, 17, 0), 0xa10f10),
    ('15/2/0', '15/2/0', (15, 2, 0), 0xf20),
])
def test_cpu_skus(text, label, fms, signature):
    sku = rv.parse_cpu_sku(text)
    assert (sku.label, (sku.family, sku.model, sku.stepping)) == (label, fms)
    assert sku.signature == vmsa.cpu_signature(*fms)
    if signature is not None:
        assert sku.signature == signature


@pytest.mark.parametrize('text, message', [
    ('Zen9', 'neither a known CPU'), ('25/1', 'neither a known CPU'), ('25/x/1', 'neither a known CPU'),
    ('25/256/0', 'cpu_model'), ('25/1/16', 'cpu_stepping'), ('-1/1/1', 'cpu_family'),
])
def test_cpu_sku_refusals(text, message):
    with pytest.raises(UnsupportedUsage, match=message):
        rv.parse_cpu_sku(text)


# ---------------------------------------------------------------- option checks

@pytest.mark.parametrize('options, message', [
    (dict(firmware=[]), 'at least one firmware'),
    (dict(firmware=['a', 'a']), 'listed twice'),
    (dict(modes=['sev'], num_cpus=[2]), 'only apply to SEV-ES'),
    (dict(modes=['sev'], vmsa_variants=['init2']), 'only apply to SEV-ES'),
    (dict(num_cpus=[2]), 'needs num_cpus and cpu_skus'),
    (dict(cpu_skus=['Milan']), 'needs num_cpus and cpu_skus'),
    (dict(modes=['seves']), 'needs num_cpus and cpu_skus'),
    (dict(modes=[]), 'must not be empty'),
    (dict(modes=['sev', 'sev']), 'listed twice'),
    (dict(modes=['snp']), 'not one of'),
    (dict(num_cpus=[0], cpu_skus=['Milan']), 'from 1 to 4096'),
    (dict(num_cpus=[4097], cpu_skus=['Milan']), 'from 1 to 4096'),
    (dict(num_cpus=[2, 2], cpu_skus=['Milan']), 'listed twice'),
    (dict(num_cpus=[2], cpu_skus=['Milan', 'EPYC-Milan']), 'listed twice'),
    (dict(num_cpus=[2], cpu_skus=['Milan'], vmsa_variants=['legacy', 'legacy']), 'listed twice'),
    (dict(num_cpus=[2], cpu_skus=['Milan'], vmsa_variants=['fancy']), 'not one of'),
    (dict(num_cpus=[2], cpu_skus=['Milan'], vmsa_sev_features=[]), 'must not be empty'),
    (dict(num_cpus=[2], cpu_skus=['Milan'], vmsa_sev_features=[1 << 64]), '64 bits'),
    (dict(num_cpus=[2], cpu_skus=['Milan'], vmsa_sev_features=[-1]), '64 bits'),
    (dict(format='json', allowed_policies=[1]), 'only apply to format simple-kbs'),
    (dict(format='json', min_api_version='1.0'), 'only apply to format simple-kbs'),
    (dict(format='yaml'), 'format must be one of'),
    (dict(allowed_policies=[0x40]), 'reserved bits'),
    (dict(allowed_policies=[1 << 32]), '32-bit'),
    (dict(allowed_policies=[1, 1]), 'listed twice'),
    (dict(allowed_policies=[0x5]), 'only policies with the ES bit'),
    (dict(num_cpus=[1], cpu_skus=['Milan'], allowed_policies=[0x1]), 'no policy with the ES bit'),
    (dict(allowed_build_ids=[256]), '0 to 255'),
    (dict(min_api_version='1'), 'MAJOR.MINOR'),
    (dict(min_api_version='1.256'), '0 to 255'),
    (dict(direct_boot=[dict(kernel=None)]), 'kernel is required'),
    (dict(direct_boot=[dict(kernel='k', cmdline='a', cmdline_b64='YQ==')]), 'mutually exclusive'),
    (dict(direct_boot=[dict(kernel='k', cmdline_b64='not base64!')]), r'direct_boot\[0\]: cmdline_b64'),
    (dict(direct_boot=[dict(kernel='k', cmdline='a'), dict(kernel='k', cmdline_b64='YQ==')]), 'listed twice'),
])
def test_option_refusals(options, message):
    options.setdefault('firmware', ['fw'])
    with pytest.raises(UnsupportedUsage, match=message):
        rv.check_params(params(**options))


def test_limits(monkeypatch):
    base = dict(firmware=['a', 'b'], direct_boot=[dict(kernel='k%d' % i) for i in range(3)])
    monkeypatch.setattr(rv, 'MAX_RECORDS', 5)
    with pytest.raises(UnsupportedUsage, match='6 combinations'):
        rv.check_params(params(**base))
    monkeypatch.setattr(rv, 'MAX_RECORDS', 6)
    rv.check_params(params(**base))
    # VMSA pages: 2 firmware x 3 boots x 1 SKU x 1 variant x 1 feature x (1 + 4096) vCPUs
    with pytest.raises(UnsupportedUsage, match='VMSA pages'):
        monkeypatch.setattr(rv, 'MAX_RECORDS', 100)
        monkeypatch.setattr(rv, 'MAX_VMSA_PAGES', 6 * 4097 - 1)
        rv.check_params(params(num_cpus=[1, 4096], cpu_skus=['Milan'], **base))
    monkeypatch.setattr(rv, 'MAX_VMSA_PAGES', 6 * 4097)
    rv.check_params(params(num_cpus=[1, 4096], cpu_skus=['Milan'], **base))


def test_default_modes_and_values():
    plan = rv.check_params(params(firmware=['fw']))
    assert plan.modes == ['sev'] and plan.boot_sets == [None]
    plan = rv.check_params(params(firmware=['fw'], num_cpus=[2], cpu_skus=['Genoa'], allowed_policies=[7]))
    assert plan.modes == ['seves']
    assert (plan.variants, plan.sev_features) == (['legacy'], [0])
    assert plan.allowed_policies == [7] and plan.min_api == (0, 0) and plan.warnings == []
    plan = rv.check_params(params(firmware=['fw'], modes=['seves', 'sev'], num_cpus=[2], cpu_skus=['Genoa'],
                                  allowed_policies=[7, 3], min_api_version='1.51', allowed_build_ids=[21]))
    assert plan.modes == ['sev', 'seves'] and plan.record_count == 2
    assert plan.min_api == (1, 51) and plan.allowed_build_ids == [21]


def test_warnings():
    assert 'accepts any guest policy' in rv.check_params(params(firmware=['fw'])).warnings[0]
    warnings = rv.check_params(params(firmware=['fw'], allowed_policies=[0, 1])).warnings
    assert len(warnings) == 1 and '0x0' in warnings[0] and 'NODBG' in warnings[0]
    assert rv.check_params(params(firmware=['fw'], format='json')).warnings == []


# ---------------------------------------------------------------- records

def test_every_combination_matches_the_engine_and_an_independent_sum(files):
    options = params(firmware=[files['fw_a'], files['fw_b']],
                     direct_boot=[dict(kernel=files['kernel1'], initrd=files['initrd'], cmdline=' a  b '),
                                  dict(kernel=files['kernel2'])],
                     modes=['sev', 'seves'], num_cpus=[1, 3], cpu_skus=['Milan', '23/49/0'],
                     vmsa_variants=['legacy', 'init2'], vmsa_sev_features=[0, 0x20], format='json')
    plan, records, content = rv.build(options)
    assert len(records) == plan.record_count == 2 * 2 * (1 + 2 * 2 * 2 * 2)
    assert json.loads(content) == records
    seen = set()
    for record in records:
        fw = record['firmware']
        boot = [entry for entry in options['direct_boot'] if entry['kernel'] == record['kernel']][0]
        kernel = open(boot['kernel'], 'rb').read()
        initrd = open(boot['initrd'], 'rb').read() if boot.get('initrd') else b''
        cmdline = boot.get('cmdline', '').encode() if boot.get('cmdline') else b''
        pages, cpu0, cpu1 = (), None, None
        if record['mode'] == 'seves':
            reset = RESET if fw == files['fw_a'] else 0x00808004
            cpu0, cpu1 = vmsa.build_vmsas(reset, record['cpu_family'], record['cpu_model'], record['cpu_stepping'],
                                          record['vmsa_variant'], record['vmsa_sev_features'])
            pages = [cpu0] + [cpu1] * (record['num_cpus'] - 1)
        expected = independent_digest(fw, kernel, initrd, cmdline, pages)
        assert record['launch_digest'] == expected
        assert base64.b64decode(record['launch_digest_b64']).hex() == expected
        engine = compute_launch_digest(fw, boot['kernel'], boot.get('initrd'),
                                       boot.get('cmdline', '').encode() if boot.get('cmdline') else None,
                                       cpu0, cpu1, record['num_cpus'] or 0)
        assert record['digests'] == engine.components and record['sizes'] == engine.sizes
        seen.add(expected)
    assert len(seen) == len(records)      # every combination measures differently


def test_record_fields(files):
    cmdline = b'console=ttyS0 \xff\xfe'
    dummy, records, dummy_content = rv.build(params(
        firmware=[files['fw_a']], num_cpus=[2], cpu_skus=['Genoa'], modes=['sev', 'seves'],
        direct_boot=[dict(kernel=files['kernel1'], cmdline_b64=base64.b64encode(cmdline).decode())],
        format='json'))
    sev, seves = records
    assert sev['mode'] == 'sev' and sev['num_cpus'] is None and sev['cpu_sku'] is None
    assert sev['vmsa_variant'] is None and sev['vmsa_sev_features'] is None
    assert sev['cmdline'] is None and base64.b64decode(sev['cmdline_b64']) == cmdline
    assert sev['initrd'] is None and sev['digests']['initrd'] == hashlib.sha256(b'').hexdigest()
    assert set(sev['digests']) == {'firmware', 'kernel', 'initrd', 'cmdline', 'hash_table'}
    assert seves['cpu_signature'] == '0x00a10f10' and seves['vmsa_variant'] == 'legacy'
    assert set(seves['digests']) == set(sev['digests']) | {'vmsa_cpu0', 'vmsa_cpu1'}
    assert set(sev) == set(seves)
    assert sev['sizes'] == {'firmware': os.path.getsize(files['fw_a']),
                            'kernel': os.path.getsize(files['kernel1'])}


def test_plain_sev_without_kernel_is_the_firmware_sha256(files):
    for name in ('fw_a', 'debian_like', 'no_footer'):
        dummy, records, dummy_content = rv.build(params(firmware=[files[name]], format='json'))
        assert records[0]['launch_digest'] == hashlib.sha256(open(files[name], 'rb').read()).hexdigest()


def test_one_vcpu_has_no_ap_vmsa(files):
    dummy, records, dummy_content = rv.build(params(firmware=[files['fw_a']], num_cpus=[1], cpu_skus=['Milan']))
    assert 'vmsa_cpu1' not in records[0]['digests']


def test_refusals_as_in_validation(files):
    with pytest.raises(UnsupportedUsage, match='no usable SEV hash table'):
        rv.build(params(firmware=[files['fw_a'], files['debian_like']],
                        direct_boot=[dict(kernel=files['kernel1'])]))
    with pytest.raises(UnsupportedUsage, match='no usable SEV hash table'):
        rv.build(params(firmware=[files['no_footer']], direct_boot=[dict(kernel=files['kernel1'])]))
    with pytest.raises(FirmwareFormatError, match='no SEV-ES reset block'):
        rv.build(params(firmware=[files['no_reset']], num_cpus=[2], cpu_skus=['Milan']))
    with pytest.raises(UnsupportedUsage, match=r'direct_boot\[0\]\.initrd: cannot read'):
        rv.build(params(firmware=[files['fw_a']],
                        direct_boot=[dict(kernel=files['kernel1'], initrd=files['initrd'] + '.missing')]))


def test_each_file_is_read_once(files, monkeypatch):
    reads = []
    real = streaming.hash_file

    def counting(path, hasher, what='file', chunk_size=streaming.CHUNK_SIZE):
        reads.append(os.path.realpath(path))
        return real(path, hasher, what, chunk_size)

    monkeypatch.setattr(streaming, 'hash_file', counting)
    link = files['fw_a'] + '.link'
    os.symlink(files['fw_a'], link)
    rv.build(params(firmware=[files['fw_a'], files['fw_b'], link],
                    direct_boot=[dict(kernel=files['kernel1'], initrd=files['initrd'], cmdline='x'),
                                 dict(kernel=files['kernel1'], initrd=files['initrd'], cmdline='y'),
                                 dict(kernel=files['kernel2'], initrd=files['initrd'])],
                    modes=['sev', 'seves'], num_cpus=[1, 2, 4], cpu_skus=['Milan', 'Genoa'],
                    vmsa_variants=['legacy', 'init2']))
    assert sorted(reads) == sorted(os.path.realpath(files[name])
                                   for name in ('fw_a', 'fw_b', 'kernel1', 'kernel2', 'initrd'))


def test_measured_files_equal_the_engines(files):
    plan = rv.check_params(params(firmware=[files['fw_a']],
                                  direct_boot=[dict(kernel=files['kernel1'], initrd=files['initrd']),
                                               dict(kernel=files['kernel2'])]))
    states, digests, sizes = rv.hash_inputs(plan)
    for boot in plan.boot_sets:
        ours = rv.measured_files(states, digests, sizes, files['fw_a'], boot)
        engine = hash_measured_files(files['fw_a'], boot.kernel_path, boot.initrd_path)
        assert (ours.kernel_digest, ours.initrd_digest, ours.sizes) == \
            (engine.kernel_digest, engine.initrd_digest, engine.sizes)
        assert assemble_launch_digest(ours, b'c').hex == assemble_launch_digest(engine, b'c').hex


# ---------------------------------------------------------------- output

def test_simple_kbs_policy_file(files):
    plan, records, content = rv.build(params(
        firmware=[files['fw_a'], files['fw_b']], num_cpus=[1, 2], cpu_skus=['Milan'],
        allowed_policies=[0x7, 0x5], min_api_version='1.51', allowed_build_ids=[21, 3]))
    text = content.decode('utf-8')
    assert text.endswith('}\n')
    policy = json.loads(text)
    # simple-kbs' Policy (src/policy.rs): exactly these five fields, in default_policy.json's order.
    assert list(policy) == ['allowed_digests', 'allowed_policies', 'min_fw_api_major', 'min_fw_api_minor',
                            'allowed_build_ids']
    assert policy['allowed_digests'] == [record['launch_digest_b64'] for record in records]
    for value in policy['allowed_digests']:
        assert len(value) == 44 and base64.b64encode(base64.b64decode(value)).decode() == value
    assert (policy['allowed_policies'], policy['min_fw_api_major'], policy['min_fw_api_minor'],
            policy['allowed_build_ids']) == ([7, 5], 1, 51, [21, 3])
    assert rv.build(params(firmware=[files['fw_a'], files['fw_b']], num_cpus=[1, 2], cpu_skus=['Milan'],
                           allowed_policies=[0x7, 0x5], min_api_version='1.51',
                           allowed_build_ids=[21, 3]))[2] == content


def test_simple_kbs_lists_each_digest_once(files):
    # The same file under two names: two records, one digest.
    link = files['fw_a'] + '.link'
    os.symlink(files['fw_a'], link)
    dummy, records, content = rv.build(params(firmware=[files['fw_a'], link]))
    assert len(records) == 2
    assert json.loads(content)['allowed_digests'] == [records[0]['launch_digest_b64']]


def test_empty_allowed_digests_is_never_written():
    plan = rv.check_params(params(firmware=['fw']))
    with pytest.raises(UnsupportedUsage, match='would allow any launch'):
        rv.render(plan, [])


# ---------------------------------------------------------------- publishing

def test_publish_writes_0644_atomically_and_only_on_change(tmp_path):
    dest = tmp_path / 'policy.json'
    old_umask = os.umask(0o077)
    try:
        assert rv.publish(str(dest), b'one\n') == (True, None)
    finally:
        os.umask(old_umask)
    assert dest.read_bytes() == b'one\n'
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    inode, mtime = dest.stat().st_ino, dest.stat().st_mtime_ns
    assert rv.publish(str(dest), b'one\n') == (False, b'one\n')
    assert (dest.stat().st_ino, dest.stat().st_mtime_ns) == (inode, mtime)
    # check mode: says it would change, writes nothing
    assert rv.publish(str(dest), b'two\n', check_mode=True) == (True, b'one\n')
    assert dest.read_bytes() == b'one\n'
    dest.chmod(0o600)
    assert rv.publish(str(dest), b'two\n') == (True, b'one\n')
    assert dest.read_bytes() == b'two\n' and stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert dest.stat().st_ino != inode          # replaced, not rewritten in place
    assert sorted(path.name for path in tmp_path.iterdir()) == ['policy.json']


def test_publish_refusals(tmp_path):
    with pytest.raises(UnsupportedUsage, match='is a directory'):
        rv.publish(str(tmp_path), b'x')
    with pytest.raises(UnsupportedUsage, match='does not exist'):
        rv.publish(str(tmp_path / 'missing' / 'file.json'), b'x')


def test_publish_compares_big_files_without_reading_them_all(tmp_path, monkeypatch):
    monkeypatch.setattr(rv, 'MAX_COMPARE_SIZE', 8)
    dest = tmp_path / 'big'
    dest.write_bytes(b'0123456789')
    assert rv.publish(str(dest), b'0123456789') == (True, b'')


def test_vault_files_are_refused(tmp_path):
    path = tmp_path / 'vmlinuz'
    path.write_bytes(b'$ANSIBLE_VAULT;1.1;AES256\n6162')
    with pytest.raises(UnsupportedUsage, match='Vault-encrypted'):
        rv.check_not_vault(str(path), 'direct_boot[0].kernel')
    path.write_bytes(b'MZ...')
    assert rv.check_not_vault(str(path), 'kernel') == str(path)
    with pytest.raises(UnsupportedUsage, match='cannot read'):
        rv.check_not_vault(str(tmp_path / 'missing'), 'kernel')


def test_resolve_path_is_used_for_every_measured_file(files):
    asked = []

    def resolve(path, what):
        asked.append(what)
        return files[path]

    dummy, records, dummy_content = rv.build(
        params(firmware=['fw_a'], direct_boot=[dict(kernel='kernel1', initrd='initrd')]), resolve_path=resolve)
    assert asked == ['firmware[0]', 'direct_boot[0].kernel', 'direct_boot[0].initrd']
    assert (records[0]['firmware'], records[0]['kernel'], records[0]['initrd']) == ('fw_a', 'kernel1', 'initrd')


# ---------------------------------------------------------------- documentation

def test_documentation_matches_the_argument_spec():
    doc = yaml.safe_load(sev_reference_measurement.DOCUMENTATION)['options']

    def compare(documented, spec):
        assert set(documented) == set(spec)
        for name, option in spec.items():
            entry = documented[name]
            assert entry['type'] == option['type'], name
            assert entry.get('elements') == option.get('elements'), name
            assert entry.get('required', False) == option.get('required', False), name
            assert entry.get('default') == option.get('default'), name
            assert entry.get('choices') == option.get('choices'), name
            if 'options' in option:
                compare(entry['suboptions'], option['options'])

    compare(doc, rv.ARGUMENT_SPEC)

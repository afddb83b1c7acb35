# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""launch_report: everything the host returned is type- and range-checked on
the controller; anything wrong is an UnsupportedUsage naming the field, never a
KeyError, TypeError or AttributeError."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, strategies as st

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import domain_config
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import launch_report as lr
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx

RAW_SEV = lx.LAUNCH_SECURITY
CHECKED_SEV = {'measurement': RAW_SEV['sev-measurement'], 'api_major': 0, 'api_minor': 24, 'build_id': 15,
               'policy': 0x33}


def short_id(value):
    """A test id that never prints a huge integer (Python refuses ints of over 4,300 digits)."""
    if isinstance(value, int) and value.bit_length() > 256:
        return 'int%dbits' % value.bit_length()
    return None


# ---- launch_security ----------------------------------------------------------------

@pytest.mark.parametrize('raw', [None, {}])
def test_launch_security_none(raw):
    assert lr.launch_security(raw) is None


def test_launch_security():
    assert lr.launch_security(dict(RAW_SEV)) == CHECKED_SEV
    extended = dict(RAW_SEV, **{'sev-snp-policy': 0x30000, 'unknown': 'ignored'})
    assert lr.launch_security(extended) == CHECKED_SEV


@pytest.mark.parametrize('raw', [[], 'sev', 7, [('sev-api-major', 0)]])
def test_launch_security_not_a_mapping(raw):
    with pytest.raises(UnsupportedUsage, match='^launch security info is not a mapping$'):
        lr.launch_security(raw)


def test_launch_security_without_api_major():
    raw = dict(RAW_SEV)
    del raw['sev-api-major']
    with pytest.raises(UnsupportedUsage, match="^launch security info: 'sev-api-major' not reported"):
        lr.launch_security(raw)
    with pytest.raises(UnsupportedUsage, match="'sev-api-major' not reported"):
        lr.launch_security({'sev-measurement': RAW_SEV['sev-measurement']})


@pytest.mark.parametrize('key', ['sev-measurement', 'sev-api-minor', 'sev-build-id', 'sev-policy'])
def test_launch_security_missing_field(key):
    raw = dict(RAW_SEV)
    del raw[key]
    with pytest.raises(UnsupportedUsage, match='^launch security info: %s is missing$' % key):
        lr.launch_security(raw)
    raw[key] = None
    with pytest.raises(UnsupportedUsage, match='%s is missing' % key):
        lr.launch_security(raw)


@pytest.mark.parametrize('key, value, expected', [
    ('sev-measurement', 12, 'sev-measurement has type int, expected str'),
    ('sev-measurement', b'AAAA', 'sev-measurement has type bytes, expected str'),
    ('sev-measurement', ['AAAA'], 'sev-measurement has type list, expected str'),
    ('sev-api-major', '0', 'sev-api-major has type str, expected int'),
    ('sev-api-major', True, 'sev-api-major has type bool, expected int'),
    ('sev-api-major', None, "'sev-api-major' is missing"),
    ('sev-api-minor', 24.0, 'sev-api-minor has type float, expected int'),
    ('sev-build-id', False, 'sev-build-id has type bool, expected int'),
    ('sev-policy', '0x33', 'sev-policy has type str, expected int'),
    ('sev-policy', {'value': 51}, 'sev-policy has type dict, expected int'),
    ('sev-api-major', 256, 'sev-api-major = 256 is outside 0..255'),
    ('sev-api-minor', -1, 'sev-api-minor = -1 is outside 0..255'),
    ('sev-build-id', 1 << 64, 'sev-build-id = %d is outside 0..255' % (1 << 64)),
    ('sev-policy', 1 << 32, 'sev-policy = 4294967296 is outside 0..4294967295'),
    ('sev-policy', -1, 'sev-policy = -1 is outside 0..4294967295'),
])
def test_launch_security_bad_values_name_the_field(key, value, expected):
    raw = dict(RAW_SEV)
    raw[key] = value
    with pytest.raises(UnsupportedUsage) as info:
        lr.launch_security(raw)
    if value is None:  # present, but null: not "reported"
        assert 'sev-api-major' in str(info.value)
        return
    assert str(info.value) == 'launch security info: ' + expected


def test_launch_security_range_edges():
    raw = dict(RAW_SEV, **{'sev-api-major': 255, 'sev-api-minor': 0, 'sev-build-id': 255,
                           'sev-policy': 0xffffffff})
    assert lr.launch_security(raw)['policy'] == 0xffffffff
    assert lr.launch_security(raw, where='elsewhere')['api_major'] == 255
    raw['sev-policy'] = 'x'
    with pytest.raises(UnsupportedUsage, match='^elsewhere: sev-policy has type str'):
        lr.launch_security(raw, where='elsewhere')


# ---- node_sev ------------------------------------------------------------------------

def test_node_sev():
    assert lr.node_sev(None) is None
    assert lr.node_sev(dict(lx.NODE_SEV)) == {
        'pdh': lx.NODE_SEV['pdh'], 'cert_chain': lx.NODE_SEV['cert-chain'], 'cpu0_id': lx.NODE_SEV['cpu0-id'],
        'cbitpos': 51, 'reduced_phys_bits': 1, 'max_guests': 509, 'max_es_guests': 100}


def test_node_sev_fields_are_optional():
    # libvirt before 8.0 reports neither max-guests nor cpu0-id
    assert lr.node_sev({}) == dict.fromkeys(
        ('pdh', 'cert_chain', 'cpu0_id', 'cbitpos', 'reduced_phys_bits', 'max_guests', 'max_es_guests'))
    raw = dict(lx.NODE_SEV)
    del raw['cpu0-id'], raw['max-es-guests']
    checked = lr.node_sev(raw)
    assert (checked['cpu0_id'], checked['max_es_guests'], checked['max_guests']) == (None, None, 509)


@pytest.mark.parametrize('key, value, expected', [
    ('pdh', 5, 'pdh has type int, expected str'),
    ('cert-chain', b'x', 'cert-chain has type bytes, expected str'),
    ('cpu0-id', ['x'], 'cpu0-id has type list, expected str'),
    ('cbitpos', '51', 'cbitpos has type str, expected int'),
    ('cbitpos', True, 'cbitpos has type bool, expected int'),
    ('reduced-phys-bits', -1, 'reduced-phys-bits = -1 is outside 0..63'),
    ('reduced-phys-bits', 64, 'reduced-phys-bits = 64 is outside 0..63'),
    ('cbitpos', 31, 'cbitpos = 31 is outside 32..63'),
    ('cbitpos', 64, 'cbitpos = 64 is outside 32..63'),
    ('cbitpos', 10 ** 5000, 'cbitpos = an integer of 16610 bits is outside 32..63'),
    ('pdh', 'A' * 20000, 'pdh is 20000 characters, more than the 16384 accepted'),
    ('max-guests', 1 << 32, 'max-guests = 4294967296 is outside 0..4294967295'),
    ('max-es-guests', 1.0, 'max-es-guests has type float, expected int'),
], ids=short_id)
def test_node_sev_bad_values_name_the_field(key, value, expected):
    raw = dict(lx.NODE_SEV)
    raw[key] = value
    with pytest.raises(UnsupportedUsage) as info:
        lr.node_sev(raw)
    assert str(info.value) == 'node SEV info: ' + expected


@pytest.mark.parametrize('raw', [[], 'pdh', 0, {'pdh'}])
def test_node_sev_not_a_mapping(raw):
    with pytest.raises(UnsupportedUsage, match='^node SEV info is not a mapping$'):
        lr.node_sev(raw)


# ---- from_host_report -------------------------------------------------------------

def test_from_host_report():
    raw = lx.raw_report(node_sev=dict(lx.NODE_SEV))
    pristine = copy.deepcopy(raw)
    info = lr.from_host_report(raw)
    assert raw == pristine
    assert info['hostname'] == 'hv1.example.net'
    assert info['domain'] == {'name': 'sev-guest', 'uuid': lx.UUID, 'id': 7}
    assert (info['state'], info['state_code'], info['state_reason'], info['state_reason_code']) == (
        'paused', 3, 'user', 1)
    assert (info['active'], info['paused'], info['vcpus']) == (True, True, 4)
    assert info['launch_security'] == CHECKED_SEV
    for key, value in CHECKED_SEV.items():
        assert info[key] == value
    assert info['config'] == domain_config.launch_config(raw['domain_xml'])
    assert info['config']['policy'] == info['policy']
    assert info['host_cpu_signature'] == {'family': 25, 'model': 1, 'stepping': 1}
    assert info['node_sev']['max_guests'] == 509
    assert info['config_problems'] == []
    assert info['domain_xml'] == raw['domain_xml']
    # the registered result goes through JSON; nothing in it is binary
    assert json.loads(json.dumps(info)) == info


def test_from_host_report_of_a_shut_off_domain():
    info = lr.from_host_report(lx.raw_report(state='shutoff'))
    assert (info['state'], info['active'], info['paused'], info['domain']['id']) == ('shutoff', False, False, -1)
    assert info['launch_security'] is None
    assert 'measurement' not in info and 'policy' not in info
    assert info['node_sev'] is None


def test_from_host_report_problems_and_missing_signature():
    xml = lx.domain_xml(dh_cert=False, nvram=lx.NVRAM)
    info = lr.from_host_report(lx.raw_report(xml=xml, capabilities=lx.capabilities_xml(None)))
    assert [(problem['check'], problem['reason']) for problem in info['config_problems']] == [
        ('dh_cert', 'config'), ('nvram', 'insecure')]
    assert info['host_cpu_signature'] is None


def test_from_host_report_empty_launch_security_is_none():
    info = lr.from_host_report(lx.raw_report(launch_security={}))
    assert info['launch_security'] is None


def field_paths(report):
    """(path, required) of every field of a raw report."""
    optional_top = {'launch_security', 'node_sev'}
    for key, value in report.items():
        yield (key,), key not in optional_top
        if isinstance(value, dict):
            for inner in value:
                yield (key, inner), key not in ('node_sev',)


FULL = lx.raw_report(node_sev=dict(lx.NODE_SEV))
PATHS = list(field_paths(FULL))


def edited(path, value=None, delete=False):
    raw = copy.deepcopy(FULL)
    target = raw
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


@pytest.mark.parametrize('path, required', PATHS, ids=['.'.join(path) for path, required in PATHS])
def test_every_missing_field(path, required):
    raw = edited(path, delete=True)
    if not required:
        info = lr.from_host_report(raw)
        assert info is not None
        return
    with pytest.raises(UnsupportedUsage) as info:
        lr.from_host_report(raw)
    assert path[-1] in str(info.value)


WRONG_TYPE = {str: 12345, int: 'text', bool: 1, dict: ['a list']}


@pytest.mark.parametrize('path', [path for path, required in PATHS],
                         ids=['.'.join(path) for path, required in PATHS])
def test_every_mistyped_field(path):
    value = FULL
    for key in path:
        value = value[key]
    if value is None:  # node_sev absent
        return
    wrong = WRONG_TYPE[type(value)]
    with pytest.raises(UnsupportedUsage) as info:
        lr.from_host_report(edited(path, wrong))
    message = str(info.value)
    assert path[-1] in message or (path == ('domain_xml',) and 'domain XML' in message) or (
        path == ('capabilities_xml',) and 'capabilities XML' in message) or (
        path[-1] == 'launch_security' and 'launch security' in message) or (
        path[-1] == 'node_sev' and 'node SEV' in message), message


@pytest.mark.parametrize('raw', [None, [], 'report', 3, [('hostname', 'x')]])
def test_report_not_a_mapping(raw):
    with pytest.raises(UnsupportedUsage, match='^host report is not a mapping$'):
        lr.from_host_report(raw)


def test_bool_is_not_an_int_and_int_is_not_a_bool():
    with pytest.raises(UnsupportedUsage, match='^state: vcpus has type bool, expected int$'):
        lr.from_host_report(edited(('state', 'vcpus'), True))
    with pytest.raises(UnsupportedUsage, match='^domain: id has type bool, expected int$'):
        lr.from_host_report(edited(('domain', 'id'), False))
    with pytest.raises(UnsupportedUsage, match='^state: active has type int, expected bool$'):
        lr.from_host_report(edited(('state', 'active'), 1))


@pytest.mark.parametrize('path, value, expected', [
    (('state', 'vcpus'), 4097, 'state: vcpus = 4097 is outside 1..4096'),
    (('state', 'vcpus'), 0, 'state: vcpus = 0 is outside 1..4096'),
    (('state', 'vcpus'), -1, 'state: vcpus = -1 is outside 1..4096'),
    (('state', 'state'), 8, 'state: state = 8 is outside 0..7'),
    (('state', 'reason'), -3, 'state: reason = -3 is outside 0..65535'),
    (('launch_security', 'sev-api-minor'), 300, 'launch security info: sev-api-minor = 300 is outside 0..255'),
    (('node_sev', 'cbitpos'), -51, 'node SEV info: cbitpos = -51 is outside 32..63'),
    (('node_sev', 'cbitpos'), 1 << 32, 'node SEV info: cbitpos = 4294967296 is outside 32..63'),
])
def test_out_of_range(path, value, expected):
    with pytest.raises(UnsupportedUsage) as info:
        lr.from_host_report(edited(path, value))
    assert str(info.value) == expected


def test_xml_problems_are_usage_errors():
    with pytest.raises(UnsupportedUsage, match='^the domain XML is not well-formed XML'):
        lr.from_host_report(edited(('domain_xml',), '<domain>'))
    with pytest.raises(UnsupportedUsage, match='^the host capabilities XML is not well-formed XML'):
        lr.from_host_report(edited(('capabilities_xml',), '<capabilities>'))
    with pytest.raises(UnsupportedUsage, match='CPU signature model is not an integer'):
        lr.from_host_report(edited(('capabilities_xml',), lx.capabilities_xml(
            "<signature family='25' model='one' stepping='1'/>")))
    with pytest.raises(UnsupportedUsage, match='not <domain>'):
        lr.from_host_report(edited(('domain_xml',), lx.capabilities_xml()))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6)

MUTATION = st.tuples(st.sampled_from(PATHS), st.one_of(st.just(('delete',)), st.tuples(JSON_VALUES)))


@given(st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_reports_give_a_result_or_a_usage_error(mutations):
    raw = copy.deepcopy(FULL)
    for (path, dummy_required), action in mutations:
        target = raw
        for key in path[:-1]:
            if not isinstance(target, dict) or key not in target:
                break
            target = target[key]
        else:
            if isinstance(target, dict):
                if action == ('delete',):
                    target.pop(path[-1], None)
                else:
                    target[path[-1]] = action[0]
    try:
        info = lr.from_host_report(raw)
    except UnsupportedUsage:
        return
    # accepted: then it holds checked types, and check_launch_info agrees
    assert isinstance(info['hostname'], str)
    assert isinstance(info['active'], bool)
    assert isinstance(info['vcpus'], int) and not isinstance(info['vcpus'], bool)
    if info['launch_security'] is not None:
        assert isinstance(info['measurement'], str)
    checked = lr.check_launch_info(json.loads(json.dumps(info)))
    assert checked['launch_security'] == info['launch_security']


@pytest.mark.parametrize('signature', [
    "<signature family='-1' model='1' stepping='1'/>",
    "<signature family='25' model='4096' stepping='1'/>",
    "<signature family='25' model='1' stepping='99999999999'/>",
])
def test_what_from_host_report_accepts_check_launch_info_accepts(signature):
    """BUG: from_host_report takes the CPU signature unchecked (any integer),
    while check_launch_info refuses values outside 0..0xfff: the host's
    out-of-range signature is reported by sev_launch_info as if fine, and only
    refused later, as a tampered launch_info."""
    raw = lx.raw_report(capabilities=lx.capabilities_xml(signature))
    try:
        info = lr.from_host_report(raw)
    except UnsupportedUsage as exc:
        assert 'signature' in str(exc)
        return
    lr.check_launch_info(json.loads(json.dumps(info)))


@given(st.text(max_size=200))
def test_arbitrary_domain_xml_text(text):
    try:
        lr.from_host_report(edited(('domain_xml',), text))
    except UnsupportedUsage as exc:
        assert 'domain XML' in str(exc)


# ---- check_launch_info ----------------------------------------------------------------

def registered(**kwargs):
    """sev_launch_info's registered result, as it comes back from variables."""
    info = json.loads(json.dumps(lr.from_host_report(lx.raw_report(**kwargs))))
    info.update(changed=False, failed=False)
    return info


def test_check_launch_info_of_from_host_report():
    info = registered(node_sev=dict(lx.NODE_SEV))
    checked = lr.check_launch_info(info)
    assert checked == {
        'hostname': 'hv1.example.net', 'active': True, 'state': 'paused', 'vcpus': 4,
        'domain_xml': info['domain_xml'], 'launch_security': CHECKED_SEV,
        'host_cpu_signature': {'family': 25, 'model': 1, 'stepping': 1},
        'config': info['config'],
    }


def test_check_launch_info_recomputes_config_from_the_xml():
    info = registered()
    info['config'] = dict(info['config'], dh_cert_count=1, nvram_count=0, loader='/tmp/evil.fd')
    info['domain_xml'] = lx.domain_xml(dh_cert=False, nvram=lx.NVRAM)
    checked = lr.check_launch_info(info)
    assert checked['config']['dh_cert_count'] == 0
    assert checked['config']['nvram_count'] == 1
    assert checked['config']['loader'] == lx.AMDSEV_LOADER


def test_check_launch_info_of_a_shut_off_domain():
    checked = lr.check_launch_info(registered(state='shutoff', capabilities=lx.capabilities_xml(None)))
    assert (checked['active'], checked['state'], checked['launch_security'], checked['host_cpu_signature']) == (
        False, 'shutoff', None, None)


@pytest.mark.parametrize('value', [None, [], 'launch info', 5])
def test_check_launch_info_not_a_mapping(value):
    with pytest.raises(UnsupportedUsage, match='^launch_info must be the registered result of sev_launch_info$'):
        lr.check_launch_info(value)


def tampered(path, value=None, delete=False):
    info = registered()
    target = info
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return info


@pytest.mark.parametrize('path, value, expected', [
    (('hostname',), None, 'launch_info: hostname is missing'),
    (('hostname',), 42, 'launch_info: hostname has type int, expected str'),
    (('active',), 'yes', 'launch_info: active has type str, expected bool'),
    (('active',), 1, 'launch_info: active has type int, expected bool'),
    (('state',), ['paused'], 'launch_info: state has type list, expected str'),
    (('vcpus',), True, 'launch_info: vcpus has type bool, expected int'),
    (('vcpus',), 70000, 'launch_info: vcpus = 70000 is outside 1..4096'),
    (('vcpus',), '4', 'launch_info: vcpus has type str, expected int'),
    (('domain_xml',), 7, 'launch_info: domain_xml has type int, expected str'),
    (('domain_xml',), '<domain', 'the domain XML is not well-formed XML'),
    (('launch_security',), {}, 'launch_info.launch_security: measurement is missing'),
    (('launch_security',), [], 'launch_info.launch_security: measurement is missing'),
    (('launch_security',), 'sev', 'launch_info.launch_security: measurement is missing'),
    (('launch_security', 'measurement'), 5, 'launch_info.launch_security: measurement has type int, expected str'),
    (('launch_security', 'api_major'), '0', 'launch_info.launch_security: api_major has type str, expected int'),
    (('launch_security', 'api_minor'), 256, 'launch_info.launch_security: api_minor = 256 is outside 0..255'),
    (('launch_security', 'build_id'), False, 'launch_info.launch_security: build_id has type bool, expected int'),
    (('launch_security', 'policy'), -1, 'launch_info.launch_security: policy = -1 is outside 0..4294967295'),
    (('launch_security', 'policy'), 1 << 32, 'launch_info.launch_security: policy = 4294967296 is outside'),
    (('host_cpu_signature',), {}, 'launch_info.host_cpu_signature: family is missing'),
    (('host_cpu_signature',), [25, 1, 1], 'launch_info.host_cpu_signature: family is missing'),
    (('host_cpu_signature', 'model'), '1', 'launch_info.host_cpu_signature: model has type str, expected int'),
    (('host_cpu_signature', 'stepping'), 0x1000, 'launch_info.host_cpu_signature: stepping = 4096 is outside'),
    (('host_cpu_signature', 'family'), True, 'launch_info.host_cpu_signature: family has type bool'),
])
def test_check_launch_info_refuses_tampering(path, value, expected):
    with pytest.raises(UnsupportedUsage) as info:
        lr.check_launch_info(tampered(path, value))
    assert str(info.value).startswith(expected)


@pytest.mark.parametrize('key', ['hostname', 'active', 'state', 'vcpus', 'domain_xml'])
def test_check_launch_info_requires(key):
    with pytest.raises(UnsupportedUsage, match='^launch_info: %s is missing$' % key):
        lr.check_launch_info(tampered((key,), delete=True))


@pytest.mark.parametrize('key', ['measurement', 'api_major', 'api_minor', 'build_id', 'policy'])
def test_check_launch_info_requires_every_launch_value(key):
    with pytest.raises(UnsupportedUsage, match='^launch_info.launch_security: %s is missing$' % key):
        lr.check_launch_info(tampered(('launch_security', key), delete=True))


def test_check_launch_info_ignores_the_top_level_copies():
    """The flat measurement/policy keys are conveniences; only launch_security counts."""
    info = registered()
    info.update(measurement='forged', policy=0)
    assert lr.check_launch_info(info)['launch_security'] == CHECKED_SEV


# ---- identity: uuid, name, id, run_state (issue 8) ----------------------------------------

def test_identity_at_the_top_level():
    info = lr.from_host_report(lx.raw_report())
    assert (info['uuid'], info['name'], info['id']) == (lx.UUID, 'sev-guest', 7)
    assert (info['state'], info['state_reason'], info['run_state'], info['prelaunch']) == (
        'paused', 'user', 'prelaunch', True)
    off = lr.from_host_report(lx.raw_report(state='shutoff'))
    assert (off['id'], off['run_state'], off['prelaunch']) == (-1, None, False)


@pytest.mark.parametrize('state, run_state, prelaunch', [
    ('paused', 'paused', False), ('paused', 'prelaunch', True), ('running', 'running', False),
    ('paused', 'io-error', False), ('paused', 'inmigrate', False),
])
def test_prelaunch_only_before_the_first_run(state, run_state, prelaunch):
    info = lr.from_host_report(lx.raw_report(state=state, run_state=run_state))
    assert (info['run_state'], info['prelaunch']) == (run_state, prelaunch)


@pytest.mark.parametrize('path, value, expected', [
    # uuid: canonical lower-case 8-4-4-4-12 only
    (('domain', 'uuid'), lx.UUID.upper(), 'is not a UUID in canonical form'),
    (('domain', 'uuid'), lx.UUID.replace('-', ''), 'is not a UUID in canonical form'),
    (('domain', 'uuid'), '{%s}' % lx.UUID, 'is not a UUID in canonical form'),
    (('domain', 'uuid'), 'urn:uuid:' + lx.UUID, 'is not a UUID in canonical form'),
    (('domain', 'uuid'), 'prod-db', 'is not a UUID in canonical form'),
    (('domain', 'uuid'), '', 'is not a UUID in canonical form'),
    (('domain', 'uuid'), 7, 'domain: uuid has type int, expected str'),
    (('domain', 'name'), '', 'domain: name is empty'),
    # id: an int >= -1, -1 exactly when inactive
    (('domain', 'id'), -2, 'domain: id = -2 is outside -1..2147483647'),
    (('domain', 'id'), 1 << 31, 'domain: id = 2147483648 is outside -1..2147483647'),
    (('domain', 'id'), -1, 'domain: id = -1 for an active domain'),
    (('domain', 'id'), 7.0, 'domain: id has type float, expected int'),
    (('domain', 'id'), '7', 'domain: id has type str, expected int'),
    # run_state: one of QEMU's RunState names, or null when inactive
    (('state', 'run_state'), 'prelaunched', "run_state 'prelaunched' is not one of QEMU's run states"),
    (('state', 'run_state'), 'PRELAUNCH', "is not one of QEMU's run states"),
    (('state', 'run_state'), 'prelaunch ', "is not one of QEMU's run states"),
    (('state', 'run_state'), None, 'state: run_state is null for an active domain'),
    (('state', 'run_state'), ['prelaunch'], 'state: run_state has type list, expected str or null'),
    (('state', 'run_state'), True, 'state: run_state has type bool, expected str or null'),
])
def test_garbage_identity_is_refused(path, value, expected):
    with pytest.raises(UnsupportedUsage) as exc:
        lr.from_host_report(edited(path, value))
    assert expected in str(exc.value)


def test_identity_of_an_inactive_domain_is_consistent():
    off = lx.raw_report(state='shutoff')
    off['domain']['id'] = 3
    with pytest.raises(UnsupportedUsage, match='^domain: id = 3 for an inactive domain$'):
        lr.from_host_report(off)
    off = lx.raw_report(state='shutoff', run_state='prelaunch')
    with pytest.raises(UnsupportedUsage, match="^state: run_state 'prelaunch' for an inactive domain$"):
        lr.from_host_report(off)


def test_run_state_must_be_reported():
    raw = lx.raw_report()
    del raw['state']['run_state']
    with pytest.raises(UnsupportedUsage, match='^state: run_state is missing$'):
        lr.from_host_report(raw)


# ---- from_node_report: the node's SEV info without a domain ---------------------------------

def test_from_node_report():
    info = lr.from_node_report({'hostname': 'hv1.example.net', 'node_sev': dict(lx.NODE_SEV)})
    assert info == {'hostname': 'hv1.example.net', 'node_sev': {
        'pdh': lx.NODE_SEV['pdh'], 'cert_chain': lx.NODE_SEV['cert-chain'], 'cpu0_id': lx.NODE_SEV['cpu0-id'],
        'cbitpos': 51, 'reduced_phys_bits': 1, 'max_guests': 509, 'max_es_guests': 100}}


@pytest.mark.parametrize('raw, expected', [
    (None, 'host report is not a mapping'),
    ({'hostname': 'hv1'}, 'host report: node_sev is missing'),
    ({'hostname': 'hv1', 'node_sev': None}, 'host report: node_sev is missing'),
    ({'hostname': 'hv1', 'node_sev': 'pdh'}, 'node SEV info is not a mapping'),
    ({'node_sev': dict(lx.NODE_SEV)}, 'host report: hostname is missing'),
    ({'hostname': 'hv1', 'node_sev': dict(lx.NODE_SEV, pdh=3)}, 'node SEV info: pdh has type int'),
    ({'hostname': 'hv1', 'node_sev': dict(lx.NODE_SEV, cbitpos=-1)}, 'node SEV info: cbitpos = -1 is outside'),
])
def test_from_node_report_refuses_garbage(raw, expected):
    with pytest.raises(UnsupportedUsage) as exc:
        lr.from_node_report(raw)
    assert str(exc.value).startswith(expected)

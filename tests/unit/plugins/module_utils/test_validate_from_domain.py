# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_validation straight from a domain: with a registered sev_launch_info
result (launch_info), and with the fetch_report callback (uri + domain).

The measurement is computed here, from the AMD SEV API's LAUNCH_MEASURE
definition, not by the engine: HMAC-SHA256 under the TIK over
0x04 || api_major || api_minor || build_id || policy (u32 LE) || launch digest || mnonce,
the launch digest being SHA-256 of the firmware bytes for plain SEV.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import struct
import types

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.confidential.sev.plugins.module_utils import validate_options as vo
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor.connection import LibvirtFailure
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor.launch_report import from_host_report
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import read_small_file
from ansible_collections.confidential.sev.plugins.modules.sev_secret_inject import check_packet
from ansible_collections.confidential.sev.tests.support import emulated_platform
from ansible_collections.confidential.sev.tests.support import firmware as fwb
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx

TIK = bytes.fromhex('66320db73158a35a255d051758e95ed4')
TEK = bytes.fromhex('0f1e2d3c4b5a69788796a5b4c3d2e1f0')
MNONCE = bytes.fromhex('4fbe0bedbad6c86ae8f68971d103e554')
FIRMWARE = fwb.build_image(body_size=4096)
HOST = 'hv1.example.net'
CONTROLLER = 'controller.example.net'
POLICY = 0x0033
URI = 'qemu+ssh://root@hv1.example.net/system'


def measure(digest, api=(0, 24), build_id=15, policy=POLICY, tik=TIK, mnonce=MNONCE):
    message = bytes([4, api[0], api[1], build_id]) + struct.pack('<I', policy) + digest + mnonce
    return base64.b64encode(hmac.new(tik, message, hashlib.sha256).digest() + mnonce).decode()


MEASUREMENT = measure(hashlib.sha256(FIRMWARE).digest())
OTHER_MEASUREMENT = measure(hashlib.sha256(FIRMWARE + b'\0').digest(), mnonce=bytes(16))


def host_report(measurement=MEASUREMENT, hostname=HOST, policy=POLICY, **kwargs):
    launch = dict(lx.LAUNCH_SECURITY, **{'sev-measurement': measurement, 'sev-policy': policy})
    return lx.raw_report(hostname=hostname, launch_security=launch, **kwargs)


def launch_info(**kwargs):
    """What `register:` holds after confidential.sev.sev_launch_info."""
    info = json.loads(json.dumps(from_host_report(host_report(**kwargs))))
    info.update(changed=False)
    return info


def normalise(args):
    result = ArgumentSpecValidator(vo.ARGUMENT_SPEC, **vo.VALIDATION_RULES).validate(args)
    if result.error_messages:
        raise AssertionError(result.error_messages)
    params = dict(args)
    params.update(result.validated_parameters)
    return params


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, data in (('firmware', FIRMWARE), ('tik', TIK), ('tek', TEK), ('secret', b'disk passphrase\n'),
                       ('kernel', b'\x4d\x5a kernel image ' * 100), ('initrd', b'initrd image ' * 50)):
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = str(path)
    return paths


def options(files, info=None, **kwargs):
    args = dict(launch_info=launch_info() if info is None else info, firmware=files['firmware'],
                tik=files['tik'], tek=files['tek'])
    args.update(kwargs)
    return normalise({key: value for key, value in args.items() if value is not None})


def run(params, controller=CONTROLLER, **kwargs):
    return vo.run_validation(params, read_small_file, controller_hostname=controller, **kwargs)


def assert_refused(result, reason, rc):
    assert (result['failed'], result['valid'], result['reason'], result['rc']) == (True, False, reason, rc)
    assert 'computed_measurement' not in result and 'secret_header' not in result


# ---- launch_info: the positive path ----------------------------------------------

def test_valid_from_launch_info(files):
    result = run(options(files))
    assert (result['valid'], result['reason'], result['rc']) == (True, 'ok', 0)
    assert 'failed' not in result
    assert result['launch_digest'] == hashlib.sha256(FIRMWARE).hexdigest()
    assert result['computed_measurement'] == MEASUREMENT
    assert result['policy']['value'] == POLICY
    assert 'notes' not in result


def test_launch_info_must_be_the_checked_report(files):
    # the raw host report is not a launch_info (no top-level active/vcpus)
    result = run(options(files, info=host_report()))
    assert_refused(result, 'unsupported', 2)
    assert result['msg'].startswith('launch_info: ')


def test_the_controller_itself_as_host_is_insecure(files):
    result = run(options(files), controller=HOST)
    assert_refused(result, 'insecure', 3)
    assert "reports hostname '%s'" % HOST in result['msg']


def test_local_insecure_never_takes_the_firmware_from_the_domain_xml(files):
    """Issue 10: even with insecure, the host's XML does not choose the controller file hashed
    as the trusted firmware (here the very file that would validate)."""
    info = launch_info(xml=lx.domain_xml(loader=files['firmware']))
    result = run(options(files, info=info, firmware=None, insecure=True), controller=HOST)
    assert_refused(result, 'unsupported', 2)
    assert result['msg'].startswith('firmware not given: give the trusted file on the controller')


def test_remote_without_firmware_is_unsupported(files):
    result = run(options(files, firmware=None))
    assert_refused(result, 'unsupported', 2)
    assert result['msg'].startswith('firmware not given: give the trusted file on the controller')


def test_explicit_measurement_overrides_the_hosts(files):
    result = run(options(files, info=launch_info(measurement=OTHER_MEASUREMENT), measurement=MEASUREMENT))
    assert result['valid'] is True
    assert result['computed_measurement'] == MEASUREMENT
    assert result['notes'] == ['measurement given explicitly, overriding the host']
    # and the other way round: the owner's value is the one checked
    result = run(options(files, measurement=OTHER_MEASUREMENT))
    assert_refused(result, 'mismatch', 1)
    assert result['msg'].startswith(vo.FAILURE_HINTS['mismatch'])


def test_explicit_policy_must_match_the_measured_one(files):
    result = run(options(files, policy=0x0031))
    assert_refused(result, 'mismatch', 1)
    result = run(options(files, info=launch_info(policy=0x0031), policy=POLICY))
    assert result['valid'] is True
    assert result['notes'] == ['policy given explicitly, overriding the host']


def test_secret_packet_from_launch_info(files):
    result = run(options(files, secrets=[{'guid': 'luks-key', 'path': files['secret']}]))
    assert result['valid'] is True
    check_packet(result['secret_header'], result['secret_payload'])
    assert len(base64.b64decode(result['secret_header'])) == 52


def test_measured_direct_boot_from_launch_info(files):
    cmdline = 'console=ttyS0 root=/dev/vda1'
    pages = emulated_platform.loaded_pages(types.SimpleNamespace(
        firmware=files['firmware'], kernel=files['kernel'], initrd=files['initrd'], cmdline=cmdline))
    digest = hashlib.sha256(b''.join(pages)).digest()
    info = launch_info(measurement=measure(digest), xml=lx.domain_xml(kernel_hashes='yes', direct_boot=True))
    result = run(options(files, info=info, kernel=files['kernel'], initrd=files['initrd'], cmdline=cmdline))
    assert result['valid'] is True
    # the XML's cmdline is the host's word: not taken unless insecure
    result = run(options(files, info=info, kernel=files['kernel'], initrd=files['initrd']))
    assert_refused(result, 'insecure', 3)
    assert result['msg'] == 'cmdline not given: using the one from the domain XML is not secure'


# ---- launch_info: tampered --------------------------------------------------------

def edit(info, path, value):
    info = copy.deepcopy(info)
    target = info
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return info


@pytest.mark.parametrize('path, value, match', [
    (('launch_security', 'api_major'), '0', 'launch_info.launch_security: api_major has type str'),
    (('launch_security', 'policy'), 1 << 40, 'launch_info.launch_security: policy = '),
    (('launch_security', 'measurement'), KeyError, 'launch_info.launch_security: measurement is missing'),
    (('launch_security',), 'sev', 'launch_info.launch_security: measurement is missing'),
    (('vcpus',), True, 'launch_info: vcpus has type bool'),
    (('active',), 'true', 'launch_info: active has type str'),
    (('hostname',), KeyError, 'launch_info: hostname is missing'),
    (('domain_xml',), '<domain>', 'the domain XML is not well-formed XML'),
    (('host_cpu_signature', 'family'), -1, 'launch_info.host_cpu_signature: family = -1'),
])
def test_tampered_launch_info_is_unsupported(files, path, value, match):
    result = run(options(files, info=edit(launch_info(), path, value)))
    assert_refused(result, 'unsupported', 2)
    assert result['msg'].startswith(match)


def test_launch_info_without_launch_security(files):
    result = run(options(files, info=edit(launch_info(), ('launch_security',), None)))
    assert_refused(result, 'unsupported', 2)
    assert "'sev-api-major' missing" in result['msg']


@pytest.mark.parametrize('path, value, reason, rc', [
    # still well-formed: the MAC catches what the host or an editor changed
    (('launch_security', 'policy'), 0x0031, 'mismatch', 1),
    (('launch_security', 'api_minor'), 25, 'mismatch', 1),
    (('launch_security', 'build_id'), 16, 'mismatch', 1),
    (('launch_security', 'measurement'), OTHER_MEASUREMENT, 'mismatch', 1),
    # the rules read the re-parsed XML and the state, not the stored copies
    (('domain_xml',), lx.domain_xml(dh_cert=False), 'config', 4),
    (('domain_xml',), lx.domain_xml(nvram=lx.NVRAM), 'insecure', 3),
    (('state',), 'running', 'state', 5),
    (('active',), False, 'state', 5),
    (('hostname',), CONTROLLER, 'insecure', 3),
])
def test_tampered_but_well_formed_launch_info(files, path, value, reason, rc):
    result = run(options(files, info=edit(launch_info(), path, value)))
    assert_refused(result, reason, rc)


def test_stored_config_and_flat_copies_are_not_trusted(files):
    info = launch_info(xml=lx.domain_xml(dh_cert=False))
    info['config'] = launch_info()['config']
    info['config_problems'] = []
    assert_refused(run(options(files, info=info)), 'config', 4)
    info = launch_info(measurement=OTHER_MEASUREMENT)
    info['measurement'] = MEASUREMENT
    assert_refused(run(options(files, info=info)), 'mismatch', 1)


def test_ignore_config(files):
    info = launch_info(xml=lx.domain_xml(dh_cert=False, session=False))
    assert_refused(run(options(files, info=info)), 'config', 4)
    assert run(options(files, info=info, ignore_config=True))['valid'] is True


# ---- fetch_report: uri + domain -------------------------------------------------------

class Fetcher:
    def __init__(self, report=None, error=None):
        self.report = host_report() if report is None else report
        self.error = error
        self.calls = []

    def __call__(self, uri, domain):
        self.calls.append((uri, domain))
        if self.error is not None:
            raise self.error
        return copy.deepcopy(self.report)


def domain_options(files, **kwargs):
    args = dict(domain='sev-guest', uri=URI, firmware=files['firmware'], tik=files['tik'], tek=files['tek'])
    args.update(kwargs)
    return normalise({key: value for key, value in args.items() if value is not None})


def test_valid_from_fetch_report(files):
    fetch = Fetcher()
    result = run(domain_options(files), fetch_report=fetch)
    assert (result['valid'], result['rc']) == (True, 0)
    assert fetch.calls == [(URI, 'sev-guest')]
    assert result['computed_measurement'] == MEASUREMENT


def test_fetch_report_without_uri(files):
    fetch = Fetcher()
    assert run(domain_options(files, uri=None), fetch_report=fetch)['valid'] is True
    assert fetch.calls == [(None, 'sev-guest')]


def test_domain_without_a_way_to_fetch(files):
    result = run(domain_options(files))
    assert_refused(result, 'unsupported', 2)
    assert result['msg'] == 'domain given, but no way to reach libvirt here'


def test_fetch_report_local_and_mismatch(files):
    assert_refused(run(domain_options(files), controller=HOST, fetch_report=Fetcher()), 'insecure', 3)
    fetch = Fetcher(host_report(measurement=OTHER_MEASUREMENT))
    assert_refused(run(domain_options(files), fetch_report=fetch), 'mismatch', 1)


@pytest.mark.parametrize('mutate', ['drop_state', 'bad_xml', 'bool_vcpus', 'not_a_dict'])
def test_fetch_report_malformed(files, mutate):
    report = host_report()
    if mutate == 'drop_state':
        del report['state']
    elif mutate == 'bad_xml':
        report['domain_xml'] = '<domain'
    elif mutate == 'bool_vcpus':
        report['state']['vcpus'] = True
    else:
        report = ['not', 'a', 'report']
    result = run(domain_options(files), fetch_report=Fetcher(report))
    assert_refused(result, 'unsupported', 2)


@pytest.mark.parametrize('kind, reason, rc', [('unreachable', 'error', 6), ('unknown_domain', 'error', 6),
                                              ('wrong_state', 'state', 5)])
def test_fetch_report_libvirt_failures(files, kind, reason, rc):
    error = LibvirtFailure("libvirt URI %s: virConnectOpen failed: boom" % URI, kind=kind, call='virConnectOpen')
    result = run(domain_options(files), fetch_report=Fetcher(error=error))
    assert_refused(result, reason, rc)
    assert result['msg'] == str(error)


def test_domain_and_launch_info_are_mutually_exclusive(files):
    messages = ArgumentSpecValidator(vo.ARGUMENT_SPEC, **vo.VALIDATION_RULES).validate(
        dict(domain='sev-guest', launch_info=launch_info(), tik=files['tik'], tek=files['tek'])).error_messages
    assert any('mutually exclusive: launch_info|domain' in message for message in messages), messages

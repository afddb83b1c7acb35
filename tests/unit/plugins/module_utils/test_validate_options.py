# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options -> request -> result dict, with options normalised by Ansible's own
ArgumentSpecValidator exactly as the action plugin does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pathlib
import struct

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.confidential.sev.plugins.module_utils import validate_options as vo
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import read_small_file
from ansible_collections.confidential.sev.tests.support import firmware as fwb

DATA = pathlib.Path(__file__).resolve().parents[3] / 'data' / 'ovmf'
TIK = bytes.fromhex('66320db73158a35a255d051758e95ed4')
TEK = bytes.fromhex('0f1e2d3c4b5a69788796a5b4c3d2e1f0')
MNONCE = bytes.fromhex('4fbe0bedbad6c86ae8f68971d103e554')
VIRTEE = base64.b64encode(
    bytes.fromhex('6faab2daae389bcd3405a05d6cafe33c0414f7bedd0bae19ba5f38b7fd1664ea') + MNONCE).decode()
SECRET = b'the disk passphrase 42\n'


def reported(digest, tik=TIK, api=(0, 24), build_id=15, policy=0):
    message = bytes([4, api[0], api[1], build_id]) + struct.pack('<I', policy) + digest + MNONCE
    return base64.b64encode(hmac.new(tik, message, hashlib.sha256).digest() + MNONCE).decode()


def normalise(args):
    """What validate_argument_spec gives the action plugin."""
    result = ArgumentSpecValidator(vo.ARGUMENT_SPEC, **vo.VALIDATION_RULES).validate(args)
    if result.error_messages:
        raise AssertionError(result.error_messages)
    params = dict(args)
    params.update(result.validated_parameters)
    return params


def spec_errors(args):
    messages = ArgumentSpecValidator(vo.ARGUMENT_SPEC, **vo.VALIDATION_RULES).validate(args).error_messages
    assert messages, 'the argument spec accepted %r' % (args,)
    return ' | '.join(messages)


class Reader:
    """read_file callback that records what it was asked for."""

    def __init__(self):
        self.calls = []

    def __call__(self, path, what):
        self.calls.append((path, what))
        return read_small_file(path, what)


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, data in (('tik', TIK), ('tek', TEK), ('tk', TEK + TIK), ('zero_tik', bytes(16)),
                       ('zero_tek', bytes(16)), ('long_tik', TIK + b'\n'), ('secret', SECRET),
                       ('secret2', b'second secret value'), ('empty', b''),
                       ('kernel', b'kernel image'), ('initrd', b'initrd image'),
                       ('vmsa0', bytes([1]) * 4096)):
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = str(path)
    synthetic = tmp_path / 'amdsev-like.fd'
    synthetic.write_bytes(fwb.build_image(body_size=1024))
    paths['synthetic'] = str(synthetic)
    paths['amdsev'] = str(DATA / 'ovmf_AmdSev_suffix.bin')
    return paths


def base_args(files, firmware='empty', measurement=None, **kwargs):
    data = pathlib.Path(files[firmware]).read_bytes()
    args = dict(measurement=measurement or reported(hashlib.sha256(data).digest()),
                api_major=0, api_minor=24, build_id=15, policy=0,
                firmware=files[firmware], tik=files['tik'], tek=files['tek'])
    args.update(kwargs)
    return args


def assert_no_keys_or_secrets(result, *extra):
    text = json.dumps(result)
    for value in (TIK, TEK, SECRET) + extra:
        assert value.hex() not in text.lower()
        assert base64.b64encode(value).decode() not in text
        assert value.decode('latin-1') not in text
        assert repr(value)[2:-1] not in text


# ---- argument spec ----------------------------------------------------------------

def test_key_and_secret_options_are_no_log():
    for name in ('tik', 'tek', 'tk', 'secrets'):
        assert vo.ARGUMENT_SPEC[name].get('no_log') is True, name


def test_choices():
    assert vo.ARGUMENT_SPEC['vmsa_variant']['choices'] == ['init2', 'legacy']
    assert vo.ARGUMENT_SPEC['vmsa_variant']['default'] == 'legacy'
    assert vo.ARGUMENT_SPEC['require_policy']['choices'] == sorted(
        ['NODBG', 'NOKS', 'ES', 'NOSEND', 'DOMAIN', 'SEV'])


@pytest.mark.parametrize('extra, match', [
    (dict(tk='x'), 'mutually exclusive: tk|tik'),
    (dict(cmdline='a', cmdline_b64='YQ==', kernel='k'), 'mutually exclusive: cmdline|cmdline_b64'),
    (dict(vmsa_cpu0='v', cpu_family=25, cpu_model=1, cpu_stepping=1), 'mutually exclusive'),
    (dict(initrd='i'), 'missing parameter(s) required by \'initrd\': kernel'),
    (dict(cmdline_b64='YQ=='), 'required by \'cmdline_b64\': kernel'),
    (dict(vmsa_cpu1='v'), 'required by \'vmsa_cpu1\': vmsa_cpu0'),
    (dict(cpu_family=25), 'parameters are required together: cpu_family, cpu_model, cpu_stepping'),
    (dict(secret_header_file='h'), 'required together: secret_header_file, secret_payload_file'),
    (dict(vmsa_variant='snp'), 'vmsa_variant must be one of'),
    (dict(require_policy=['nodbg']), 'require_policy must be one or more of'),
    (dict(bogus=1), 'bogus'),
])
def test_spec_refusals(files, extra, match):
    assert match in spec_errors(base_args(files, **extra))


def test_spec_requires_a_key_option(files):
    args = base_args(files)
    del args['tik'], args['tek']
    assert 'one of the following is required: tk, tik' in spec_errors(args)
    args['tek'] = files['tek']
    assert 'required together: tik, tek' in spec_errors(args)


def test_offline_validation_requires_the_reported_state_and_firmware(files):
    args = base_args(files)
    for key in ('measurement', 'policy', 'firmware'):
        del args[key]
    # optional in the spec, since a domain can supply them
    result = vo.run_validation(normalise(args), read_small_file)
    assert (result['reason'], result['rc']) == ('unsupported', 2)
    assert result['msg'] == 'measurement, policy, firmware required without domain or launch_info'


# ---- cmdline ----------------------------------------------------------------------

def test_cmdline_bytes():
    assert vo.cmdline_bytes({}) is None
    assert vo.cmdline_bytes({'cmdline': None, 'cmdline_b64': None}) is None
    assert vo.cmdline_bytes({'cmdline': ' a  b '}) == b' a  b '
    assert vo.cmdline_bytes({'cmdline': 'h\u00f4te'}) == b'h\xc3\xb4te'
    raw = b'  console=ttyS0\t \xff'
    assert vo.cmdline_bytes({'cmdline_b64': base64.b64encode(raw).decode()}) == raw
    assert vo.cmdline_bytes({'cmdline_b64': ''}) == b''


@pytest.mark.parametrize('text', ['not base64!', 'YQ', '\u00e9\u00e9\u00e9\u00e9'])
def test_invalid_cmdline_b64(text):
    with pytest.raises(UnsupportedUsage, match='cmdline_b64 is not valid base64'):
        vo.cmdline_bytes({'cmdline_b64': text})


# ---- build_request ----------------------------------------------------------------

def test_build_request_reads_only_small_files(files):
    params = normalise(base_args(files, firmware='synthetic', kernel=files['kernel'],
                                 initrd=files['initrd'], cmdline='quiet',
                                 secrets=[{'guid': 'luks-key', 'path': files['secret']}]))
    reader = Reader()
    request = vo.build_request(params, reader)
    assert reader.calls == [(files['tik'], 'tik'), (files['tek'], 'tek'),
                            (files['secret'], 'secrets[0]')]
    assert request.firmware == files['synthetic']
    assert request.kernel == files['kernel'] and request.initrd == files['initrd']
    assert request.cmdline == b'quiet'
    assert request.keys.tik == TIK and request.keys.tek == TEK
    assert request.secrets == [('luks-key', SECRET, 'secrets[0]')]
    assert request.vmsa_variant == 'legacy'
    assert request.insecure is False


def test_build_request_tk_and_vmsa(files):
    args = base_args(files, policy=4, num_cpus=1, vmsa_cpu0=files['vmsa0'])
    del args['tik'], args['tek']
    args['tk'] = files['tk']
    reader = Reader()
    request = vo.build_request(normalise(args), reader)
    assert request.keys.tik == TIK and request.keys.tek == TEK
    assert request.vmsa_cpu0 == bytes([1]) * 4096 and request.vmsa_cpu1 is None
    assert ('%s' % files['vmsa0'], 'vmsa_cpu0') in reader.calls


# ---- run_validation ------------------------------------------------------------------

def test_virtee_vector_end_to_end(files):
    params = normalise(base_args(files, measurement=VIRTEE, api_minor=18))
    result = vo.run_validation(params, Reader())
    assert result['valid'] is True and result['rc'] == 0 and result['reason'] == 'ok'
    assert 'failed' not in result
    assert result['launch_digest'] == hashlib.sha256(b'').hexdigest()
    assert result['computed_measurement'] == VIRTEE


def test_absent_values_are_left_out(files):
    """No secrets: no secret_header/secret_payload keys rather than nulls."""
    result = vo.run_validation(normalise(base_args(files)), Reader())
    assert result['valid'] is True
    assert 'secret_header' not in result and 'secret_payload' not in result
    assert result['computed_measurement'] == base64.b64encode(base64.b64decode(
        base_args(files)['measurement'])).decode()


def test_mismatch(files):
    params = normalise(base_args(files, measurement=reported(bytes(32))))
    result = vo.run_validation(params, Reader())
    assert result['failed'] is True and result['valid'] is False
    assert result['rc'] == 1 and result['reason'] == 'mismatch'
    assert result['msg'].startswith(vo.FAILURE_HINTS['mismatch'])
    assert 'diagnosis tried' in result['msg']
    assert 'computed_measurement' not in result
    assert result['launch_digest'] == hashlib.sha256(b'').hexdigest()
    assert_no_keys_or_secrets(result)


def test_cmdline_b64_is_hashed_byte_exact(files):
    data = pathlib.Path(files['synthetic']).read_bytes()
    raw = b' root=/dev/vda  quiet\n'
    ok_args = base_args(files, firmware='synthetic', kernel=files['kernel'],
                        cmdline_b64=base64.b64encode(raw).decode())
    result = vo.run_validation(normalise(ok_args), Reader())
    assert result['digests']['cmdline'] == hashlib.sha256(raw + b'\0').hexdigest()
    assert result['digests']['firmware'] == hashlib.sha256(data).hexdigest()


def test_secret_packet_in_the_result(files):
    params = normalise(base_args(files, firmware='synthetic',
                                 secrets=[{'guid': 'luks-key', 'path': files['secret']}],
                                 allow_secret_policy=['DBG', 'KS']))
    result = vo.run_validation(params, Reader())
    assert result['valid'] is True
    assert len(base64.b64decode(result['secret_header'])) == 52
    assert len(base64.b64decode(result['secret_payload'])) == 64
    assert result['secret_guids'] == ['736869e5-84f0-4973-92ec-06879ce3da0b']
    assert_no_keys_or_secrets(result)


@pytest.mark.parametrize('case, reason, rc', [
    ('tik_size', 'unsupported', 2),
    ('zero_tik', 'insecure', 3),
    ('zero_tek', 'insecure', 3),
    ('duplicate_guid', 'unsupported', 2),
    ('empty_secret', 'unsupported', 2),
    ('missing_secret', 'unsupported', 2),
    ('bad_guid', 'unsupported', 2),
    ('require_policy', 'config', 4),
    ('min_build_id', 'insecure', 3),
    ('missing_kernel', 'unsupported', 2),
    ('no_hash_table', 'unsupported', 2),
])
def test_refusals_become_failure_dicts_without_key_or_secret_bytes(files, case, reason, rc):
    luks = {'guid': 'luks-key', 'path': files['secret']}
    args = {
        'tik_size': base_args(files, tik=files['long_tik']),
        'zero_tik': base_args(files, tik=files['zero_tik']),
        'zero_tek': base_args(files, firmware='synthetic', tek=files['zero_tek'], secrets=[luks]),
        'duplicate_guid': base_args(files, secrets=[luks, {'guid': '736869E5-84F0-4973-92EC-06879CE3DA0B',
                                                           'path': files['secret2']}]),
        'empty_secret': base_args(files, secrets=[{'guid': 'luks-key', 'path': files['empty']}]),
        'missing_secret': base_args(files, secrets=[{'guid': 'luks-key', 'path': files['empty'] + '.nope'}]),
        'bad_guid': base_args(files, secrets=[{'guid': SECRET.decode().strip(), 'path': files['secret2']}]),
        'require_policy': base_args(files, firmware='synthetic', require_policy=['NODBG'], secrets=[luks]),
        'min_build_id': base_args(files, firmware='synthetic', min_build_id=16, secrets=[luks]),
        'missing_kernel': base_args(files, firmware='synthetic', kernel=files['kernel'] + '.nope'),
        'no_hash_table': base_args(files, firmware='empty', kernel=files['kernel']),
    }[case]
    result = vo.run_validation(normalise(args), Reader())
    assert result['failed'] is True and result['valid'] is False
    assert result['reason'] == reason and result['rc'] == rc
    assert set(result) == {'failed', 'changed', 'valid', 'reason', 'rc', 'msg'}
    assert result['changed'] is False
    extra = (b'second secret value',) if case in ('duplicate_guid', 'bad_guid') else ()
    if case == 'bad_guid':
        # The GUID option is not secret and is quoted back; the secret file is not.
        assert_no_keys_or_secrets({'msg': result['msg'].replace(SECRET.decode().strip(), '')}, *extra)
    else:
        assert_no_keys_or_secrets(result, *extra)


def test_refusal_messages_name_the_input(files):
    result = vo.run_validation(normalise(base_args(files, tik=files['long_tik'])), Reader())
    assert result['msg'] == 'tik: expected 16 bytes, got 17'
    result = vo.run_validation(normalise(base_args(
        files, secrets=[{'guid': 'luks-key', 'path': files['empty']}])), Reader())
    assert result['msg'].startswith('secrets[0]: ')


def test_zero_tik_needs_allow_zero_keys_not_insecure(files):
    """Issue 10: insecure no longer silently allows zero keys."""
    data = pathlib.Path(files['empty']).read_bytes()
    measurement = reported(hashlib.sha256(data).digest(), tik=bytes(16))
    refused = vo.run_validation(normalise(base_args(files, tik=files['zero_tik'], insecure=True,
                                                    measurement=measurement)), Reader())
    assert (refused['reason'], refused['rc']) == ('insecure', 3) and 'allow_zero_keys' in refused['msg']
    params = normalise(base_args(files, tik=files['zero_tik'], allow_zero_keys=True, measurement=measurement))
    assert vo.run_validation(params, Reader())['valid'] is True


def test_other_exceptions_propagate(files):
    def broken(path, what):
        raise RuntimeError('disk on fire')
    with pytest.raises(RuntimeError, match='disk on fire'):
        vo.run_validation(normalise(base_args(files)), broken)


def test_failure_helper():
    assert vo.failure('state', 'paused', {'extra': 1}) == {
        'failed': True, 'changed': False, 'valid': False, 'reason': 'state', 'rc': 5, 'msg': 'paused', 'extra': 1}

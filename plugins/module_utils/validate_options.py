# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_measurement_validate's options, and the step from options to a verdict.

Ansible-free, so that the action plugin, the module's documentation checks
and the differential tests all go through the same code.  Options are named
after virt-qemu-sev-validate's flags.
"""

from __future__ import annotations

import base64
import binascii

from .hypervisor.connection import failure_result
from .hypervisor.domain_rules import apply_domain_rules
from .hypervisor.launch_report import check_launch_info, from_host_report
from .launch_record import ReplayError, claim_measurement
from .sev import errors, policy as policy_mod
from .sev.digest_cache import DigestCache
from .sev.files import NotRegularFile
from .sev.keys import load_keys
from .sev.validation import ValidationRequest, validate
from .sev.vmsa import DEFAULT_VARIANT, VARIANTS

ARGUMENT_SPEC = dict(
    measurement=dict(type='str'),
    api_major=dict(type='int'),
    api_minor=dict(type='int'),
    build_id=dict(type='int'),
    policy=dict(type='int'),
    firmware=dict(type='path'),
    kernel=dict(type='path'),
    initrd=dict(type='path'),
    cmdline=dict(type='str'),
    cmdline_b64=dict(type='str'),
    num_cpus=dict(type='int'),
    vmsa_cpu0=dict(type='path'),
    vmsa_cpu1=dict(type='path'),
    cpu_family=dict(type='int'),
    cpu_model=dict(type='int'),
    cpu_stepping=dict(type='int'),
    vmsa_variant=dict(type='str', default=DEFAULT_VARIANT, choices=sorted(VARIANTS)),
    vmsa_sev_features=dict(type='int', default=0),
    tik=dict(type='path', no_log=True),
    tek=dict(type='path', no_log=True),
    tk=dict(type='path', no_log=True),
    secrets=dict(type='list', elements='dict', default=[], no_log=True, options=dict(
        guid=dict(type='str', required=True),
        path=dict(type='path', required=True),
    )),
    secret_address=dict(type='int', no_log=False),
    allow_secret_policy=dict(type='list', elements='str', default=[], choices=['DBG', 'KS']),
    allow_zero_keys=dict(type='bool', default=False),
    secret_header_file=dict(type='path'),
    secret_payload_file=dict(type='path'),
    require_policy=dict(type='list', elements='str', default=[],
                        choices=sorted(policy_mod.FLAG_BITS)),
    min_api_version=dict(type='str'),
    min_build_id=dict(type='int'),
    insecure=dict(type='bool', default=False),
    allow_local=dict(type='bool', default=False),
    replay_dir=dict(type='path'),
    replay_context=dict(type='dict'),
    launch_info=dict(type='dict'),
    uri=dict(type='str'),
    domain=dict(type='str'),
    ignore_config=dict(type='bool', default=False),
    diagnose=dict(type='bool', default=True),
    diagnose_firmware=dict(type='list', elements='path', default=[]),
    firmware_sha256=dict(type='str'),
    kernel_sha256=dict(type='str'),
    initrd_sha256=dict(type='str'),
    digest_cache=dict(type='path'),
)

# Without a domain, the reported launch state and the firmware must be given.
OFFLINE_REQUIRED = ('measurement', 'api_major', 'api_minor', 'build_id', 'policy', 'firmware')

MUTUALLY_EXCLUSIVE = [
    ('tk', 'tik'), ('tk', 'tek'), ('cmdline', 'cmdline_b64'),
    ('vmsa_cpu0', 'cpu_family'), ('vmsa_cpu0', 'cpu_model'), ('vmsa_cpu0', 'cpu_stepping'),
    ('vmsa_cpu1', 'cpu_family'), ('vmsa_cpu1', 'cpu_model'), ('vmsa_cpu1', 'cpu_stepping'),
    ('launch_info', 'domain'),
]
REQUIRED_TOGETHER = [('tik', 'tek'), ('secret_header_file', 'secret_payload_file'),
                     ('cpu_family', 'cpu_model', 'cpu_stepping')]
REQUIRED_ONE_OF = [('tk', 'tik')]
REQUIRED_BY = {'initrd': 'kernel', 'cmdline': 'kernel', 'cmdline_b64': 'kernel',
               'vmsa_cpu1': 'vmsa_cpu0', 'replay_context': 'replay_dir',
               'kernel_sha256': 'kernel', 'initrd_sha256': 'initrd'}
VALIDATION_RULES = dict(mutually_exclusive=MUTUALLY_EXCLUSIVE, required_together=REQUIRED_TOGETHER,
                        required_one_of=REQUIRED_ONE_OF, required_by=REQUIRED_BY)


def cmdline_bytes(params):
    """The cmdline exactly as it must be hashed: UTF-8 of ``cmdline``, or the
    decoded ``cmdline_b64`` (byte-exact, immune to YAML/Jinja whitespace).

    A NUL byte is refused: QEMU takes the command line as a C string and
    hashes strlen + 1 bytes, so nothing after a NUL can reach or be measured
    for the guest; accepting it would let the owner believe the rest counts."""
    if params.get('cmdline_b64') is not None:
        try:
            data, name = base64.b64decode(params['cmdline_b64'], validate=True), 'cmdline_b64'
        except (binascii.Error, ValueError):
            raise errors.UnsupportedUsage('cmdline_b64 is not valid base64')
    elif params.get('cmdline') is not None:
        try:
            data, name = params['cmdline'].encode('utf-8'), 'cmdline'
        except UnicodeEncodeError:
            raise errors.UnsupportedUsage('cmdline is not valid Unicode text (use cmdline_b64 for raw bytes)')
    else:
        return None
    if b'\0' in data:
        raise errors.UnsupportedUsage(
            '%s contains a NUL byte at offset %d: QEMU passes the command line as a C string and measures '
            'it up to the first NUL (strlen + 1 bytes), so what follows never reaches the guest; remove it'
            % (name, data.index(b'\0')))
    return data


def build_request(params, read_file):
    """A ValidationRequest from validated options.

    ``read_file(path, what)`` returns the bytes of a small file (keys, VMSAs,
    secrets); the caller decides how (e.g. decrypting Ansible Vault).  Large
    files (firmware, kernel, initrd) are passed on as paths and streamed.
    """
    def small(name):
        path = params.get(name)
        return None if path is None else read_file(path, name)

    keys = load_keys(tik=small('tik'), tek=small('tek'), tk=small('tk'),
                     allow_zero_keys=bool(params.get('allow_zero_keys')))
    secrets = [(item['guid'], read_file(item['path'], 'secrets[%d]' % index), 'secrets[%d]' % index)
               for index, item in enumerate(params.get('secrets') or [])]
    return ValidationRequest(
        measurement=params['measurement'], api_major=params['api_major'],
        api_minor=params['api_minor'], build_id=params['build_id'], policy=params['policy'],
        firmware=params['firmware'], keys=keys, kernel=params.get('kernel'),
        initrd=params.get('initrd'), cmdline=cmdline_bytes(params), num_cpus=params.get('num_cpus'),
        vmsa_cpu0=small('vmsa_cpu0'), vmsa_cpu1=small('vmsa_cpu1'),
        cpu_family=params.get('cpu_family'), cpu_model=params.get('cpu_model'),
        cpu_stepping=params.get('cpu_stepping'), vmsa_variant=params.get('vmsa_variant') or DEFAULT_VARIANT,
        sev_features=params.get('vmsa_sev_features') or 0,
        secrets=secrets, require_policy=params.get('require_policy') or [],
        min_api_version=params.get('min_api_version'), min_build_id=params.get('min_build_id'),
        insecure=params['insecure'], diagnose=params.get('diagnose', True),
        diagnose_firmware=params.get('diagnose_firmware') or [],
        secret_address=params.get('secret_address'),
        allow_secret_policy=params.get('allow_secret_policy') or [],
        allow_zero_keys=bool(params.get('allow_zero_keys')),
        firmware_sha256=params.get('firmware_sha256'), kernel_sha256=params.get('kernel_sha256'),
        initrd_sha256=params.get('initrd_sha256'))


FAILURE_HINTS = {
    'mismatch': ('the measurement does not match: check the firmware build, kernel/initrd/cmdline '
                 '(byte for byte), vCPU count and CPU SKU, the TIK (and that TIK/TEK are not swapped), '
                 'and the reported API version, build id and policy'),
}


NO_SECRETS_WARNING = ('no secrets: the validated measurement binds nothing to the guest that runs next (only a '
                      'secret injected with this launch\'s TEK reaches exactly the launch that was measured)')


def failure(reason, message, extra=None):
    """A failed-task result with the reference tool's exit code for ``reason``."""
    return errors.failure_result(reason, message, valid=False, **(extra or {}))


def resolve_launch_inputs(params, fetch_report=None, controller_hostname=None, local=None):
    """Offline: check the required options.  From a domain (``domain`` or
    ``launch_info``): apply the reference tool's rules (``local``: see
    apply_domain_rules).  Returns (params, notes)."""
    if params.get('domain') is None and params.get('launch_info') is None:
        if params.get('uri') is not None:
            raise errors.UnsupportedUsage('uri is used with domain or launch_info')
        missing = [key for key in OFFLINE_REQUIRED if params.get(key) is None]
        if missing:
            raise errors.UnsupportedUsage('%s required without domain or launch_info' % ', '.join(missing))
        return params, []
    if params.get('launch_info') is not None:
        info = params['launch_info']
    else:
        if fetch_report is None:
            raise errors.UnsupportedUsage('domain given, but no way to reach libvirt here')
        info = from_host_report(fetch_report(params.get('uri'), params['domain']))
    return apply_domain_rules(params, check_launch_info(info), controller_hostname, local=local)


def _resolve_candidate(resolve_path, path, index):
    """A diagnosis candidate that cannot be found stays as given: the
    diagnosis reports it as not usable, and the verdict is not affected.
    One that is not a regular file (a device would be hashed forever) is a
    usage error naming the option."""
    try:
        return resolve_path(path, 'diagnose_firmware[%d]' % index)
    except NotRegularFile:
        raise
    except errors.SevError:
        return path


def _cache_report(cache, before, result):
    """This validation's share of the cache's counters, and the cache's warnings not reported yet."""
    if cache is None:
        return result
    after = cache.stats()
    result['digest_cache'] = dict((key, after[key] - before[key]) for key in after)
    warnings = cache.take_warnings()
    if warnings:
        result['warnings'] = list(result.get('warnings') or []) + warnings
    return result


def run_validation(params, read_file, resolve_path=None, fetch_report=None, controller_hostname=None, local=None,
                   check_mode=False, digest_cache=None):
    """Options -> result dict (never raises a SevError; the caller maps
    anything else to reason 'error').  Files are not written here, except the
    seen-measurement record in ``replay_dir`` and the digest cache file (not
    in ``check_mode``).

    ``resolve_path(path, what)`` turns a firmware/kernel/initrd option into a
    path to stream (default: as given); ``fetch_report(uri, domain)`` returns
    the raw host report for ``domain`` (see hypervisor.connection); ``local``
    is (whether the hypervisor is the controller, why), see locality.py.
    ``digest_cache``: a sev.digest_cache.DigestCache to share between many
    validations (default: one made from the ``digest_cache`` option, a path,
    when given, else none).  With a cache, the result has ``digest_cache``:
    this validation's hits, misses and hashed bytes.
    """
    cache, before = digest_cache, None
    try:
        if cache is None and params.get('digest_cache') is not None:
            cache = DigestCache(params['digest_cache'], read_only=check_mode)
        if cache is not None:
            before = cache.stats()
        params, notes = resolve_launch_inputs(params, fetch_report, controller_hostname, local)
        if resolve_path is not None:
            for name in ('firmware', 'kernel', 'initrd'):
                if params.get(name) is not None:
                    params[name] = resolve_path(params[name], name)
            params['diagnose_firmware'] = [_resolve_candidate(resolve_path, path, index)
                                           for index, path in enumerate(params.get('diagnose_firmware') or [])]
        request = build_request(params, read_file)
        result = validate(request, cache).as_dict()
        if result['valid'] and params.get('replay_dir') is not None:
            # Only a measurement that matched is claimed: a mismatch proves nothing to remember.
            result['replay'] = claim_measurement(params['replay_dir'], request.keys.tik, request.measurement,
                                                 params.get('replay_context'), check_mode)
    except ReplayError as exc:
        return _cache_report(cache, before, failure(exc.reason, str(exc), {'replayed': True}))
    except errors.SevError as exc:
        # A libvirt failure keeps its classification (error_kind, libvirt_code, libvirt_call).
        return _cache_report(cache, before, dict(failure_result(exc), valid=False))
    if notes:
        result['notes'] = notes
    for key in ('computed_measurement', 'secret_header', 'secret_payload', 'diagnosis'):
        if result.get(key) is None:
            result.pop(key, None)
    if not params.get('secrets') and result['valid'] and (params.get('domain') or params.get('launch_info')):
        result['warnings'] = list(result.get('warnings') or []) + [NO_SECRETS_WARNING]
    _cache_report(cache, before, result)
    if not result['valid']:
        # No computed MEASURE on a mismatch (as_dict never holds one): it
        # would be a MAC over a host-chosen nonce.  Digests only.
        message = FAILURE_HINTS['mismatch']
        diagnosis = result.get('diagnosis')
        if diagnosis and diagnosis['matches']:
            message = 'the measurement does not match. Diagnosis: %s' % diagnosis['summary']
        elif diagnosis:
            message += ' (the diagnosis tried %d single changes; none matched)' % len(diagnosis['tried'])
        result.update(failed=True, msg=message)
    else:
        result['msg'] = 'the measurement matches the trusted files and keys (launch digest %s)%s' % (
            result['launch_digest'], '; secret packet built for %d secret(s)' % len(result['secret_guids'])
            if result.get('secret_header') else '')
    return result

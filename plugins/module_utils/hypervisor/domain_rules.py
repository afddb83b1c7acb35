# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validating straight from a domain: virt-qemu-sev-validate's rules, in its order.

1. A libvirt connection local to the validating machine is refused (insecure, 3)
   unless ``insecure`` or ``allow_local`` (which relaxes this rule only).
   The caller decides "local" from the URI and the connection (``local``,
   see locality.py); without it, as the reference tool decides it: the
   host's hostname equals the controller's (a host can report any hostname).
   This guards against misuse (validating on the hypervisor you are trying
   to distrust); it is no defence against a lying host.
2. A domain that is not running is refused (state, 5); one that is not paused
   is refused (state, 5) unless ``insecure``.  libvirt cannot tell whether a
   paused domain was ever resumed: what is checked is the state "paused".
   (The measurement itself cannot be taken after the guest ran; a secret
   injection after resume is refused by libvirt and firmware.)
3. Configuration problems fail (config 4, or insecure 3 for NVRAM and
   unmeasured direct boot).  ``ignore_config`` drops the config ones only:
   the two security-relevant ones give way to ``insecure`` alone.  (They are
   read from the host's XML, so they guard against mistakes; the guarantee
   comes from the owner's firmware file: a usable hash table when a kernel is
   given, a secret area or an explicit address when secrets are given.)
4. Measurement, API version, build id and policy come from the host unless
   given explicitly; they are covered by the measurement MAC.
5. Cmdline, vCPU count and CPU SKU come from the host only with ``insecure``.
   File paths (firmware, kernel, initrd) never do, even with ``insecure``:
   the host would choose which controller file is hashed as trusted.
"""

from __future__ import annotations

from ..sev.errors import IncorrectConfig, InsecureUsage, InvalidState, UnsupportedUsage
from ..sev.policy import ES
from . import domain_config

ERRORS = {'config': IncorrectConfig, 'insecure': InsecureUsage, 'unsupported': UnsupportedUsage}


def apply_domain_rules(params, info, controller_hostname=None, local=None):
    """Fill ``params`` (validate options, copied) from a checked launch info.

    ``local`` is (is local, why) as the caller decided it from the URI and the
    connection; None falls back to the reference tool's hostname comparison.
    Returns (params, notes): notes say which inputs came from the host.
    """
    params = dict(params)
    insecure = params.get('insecure', False)
    secure = not insecure
    notes = []

    if local is None:
        remote = info['hostname'] != controller_hostname
        if not remote and secure and not params.get('allow_local'):
            raise InsecureUsage(
                "the libvirt host reports hostname '%s', the same as this controller's: validating on the "
                'hypervisor host is not secure (set insecure to accept)' % info['hostname'])
    else:
        remote = not local[0]
        if local[0] and secure and not params.get('allow_local'):
            raise InsecureUsage('the hypervisor is this controller (%s): validating on the hypervisor host is not '
                                'secure (allow_local accepts a hypervisor that is the controller)' % local[1])
    if not remote and params.get('allow_local'):
        notes.append('the hypervisor is this controller, accepted by allow_local')

    if not info['active']:
        raise InvalidState('the domain is not running (state %s): start it paused to validate its measurement'
                           % info['state'])
    if info['state'] != 'paused' and secure:
        raise InvalidState('the domain is %s, not paused: its measurement can only be trusted before it '
                           'first runs (set insecure to accept)' % info['state'])

    problems = domain_config.config_problems(info['config'], secure=secure,
                                             kernel_given=params.get('kernel') is not None)
    if params.get('ignore_config'):
        # Only insecure relaxes the security-relevant checks (NVRAM, unmeasured direct boot).
        problems = [problem for problem in problems if problem['reason'] == 'insecure']
    if problems:
        error = ERRORS[problems[0]['reason']]
        raise error('; '.join(problem['message'] for problem in problems))

    launch = info['launch_security']
    if launch is None:
        raise UnsupportedUsage("the host reported no SEV launch security info for the domain "
                               "('sev-api-major' missing): is it an SEV guest?")
    for key in ('measurement', 'api_major', 'api_minor', 'build_id', 'policy'):
        if params.get(key) is None:
            params[key] = launch[key]
        else:
            notes.append('%s given explicitly, overriding the host' % key)

    config = info['config']
    if params['policy'] & ES and params.get('num_cpus') is None:
        if secure:
            raise InsecureUsage('num_cpus not given: using the vCPU count from the host is not secure')
        params['num_cpus'] = info['vcpus']
        notes.append('num_cpus %d taken from the host' % info['vcpus'])

    for key in ('firmware', 'kernel', 'initrd'):
        host_value = config['loader'] if key == 'firmware' else config[key]
        if params.get(key) is not None or (host_value is None and key != 'firmware'):
            continue
        # Never from the host, not even with insecure: the host's XML would pick
        # which controller file is hashed as the trusted one.
        raise UnsupportedUsage('%s not given: give the trusted file on the controller (a path from the '
                               'domain XML is never used, since the host would choose what is trusted)' % key)

    if params.get('cmdline') is None and params.get('cmdline_b64') is None and config['cmdline'] is not None:
        if secure:
            raise InsecureUsage('cmdline not given: using the one from the domain XML is not secure')
        params['cmdline'] = config['cmdline']
        notes.append('cmdline taken from the domain XML')

    sku_given = params.get('cpu_family') is not None
    if params['policy'] & ES and params.get('vmsa_cpu0') is None and not sku_given:
        if secure:
            raise InsecureUsage('no VMSA files or CPU SKU given: using the CPU signature from the host '
                                'capabilities is not secure')
        signature = info['host_cpu_signature']
        if signature is None:
            raise UnsupportedUsage('the host capabilities report no CPU signature (libvirt too old)')
        params.update(cpu_family=signature['family'], cpu_model=signature['model'],
                      cpu_stepping=signature['stepping'])
        notes.append('CPU SKU %(family)d/%(model)d/%(stepping)d taken from the host capabilities' % signature)
    return params, notes

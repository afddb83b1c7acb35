# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The domain's launch configuration, read from XML the host sent.

The XML is untrusted data: it is parsed on the controller with a parser that
expands no entities, loads no DTD, touches no network and refuses huge
documents, after a size check.  What it says is used for diagnosis (and, only
with ``insecure``, as validation input).
"""

from __future__ import annotations

from ..sev.errors import IncorrectConfig, InsecureUsage, UnsupportedUsage
from ..sev.policy import integer_from_text, is_integer_text

try:
    from lxml import etree
except ImportError:
    HAS_LXML = False
else:
    HAS_LXML = True

# A domain XML with a dhCert and session is a few KiB; capabilities can reach
# a few hundred KiB on large hosts.
MAX_XML_SIZE = 4 << 20


def parse_xml(text, what):
    """Parse untrusted XML text safely; errors name ``what``."""
    if not HAS_LXML:
        raise UnsupportedUsage('parsing the %s needs the Python lxml library on the controller' % what)
    if not isinstance(text, str):
        raise UnsupportedUsage('the %s must be a string, got %s' % (what, type(text).__name__))
    try:
        data = text.encode('utf-8')
    except UnicodeEncodeError:
        raise UnsupportedUsage('the %s is not valid Unicode text' % what)
    if len(data) > MAX_XML_SIZE:
        raise UnsupportedUsage('the %s is %d bytes, more than the %d accepted' % (what, len(data), MAX_XML_SIZE))
    # libvirt never writes a DTD: refusing one rules out every entity trick.
    if b'<!DOCTYPE' in data or b'<!ENTITY' in data:
        raise UnsupportedUsage('the %s declares a DTD or entities, which libvirt never writes' % what)
    parser = etree.XMLParser(encoding='utf-8', resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=False, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise UnsupportedUsage('the %s is not well-formed XML: %s' % (what, exc))
    if root is None:
        raise UnsupportedUsage('the %s is empty' % what)
    return root


def _text(nodes):
    return nodes[0].text if nodes else None


# Host-reported integers: no field here needs more than 32 bits, so more than
# this many characters is garbage (and Python refuses to print ints of over
# 4,300 digits: a 5,000-digit <policy> must be refused before any message
# formats it).
MAX_INT_TEXT = 32
# C-bit position, CPUID 0x8000001F EBX[5:0] (AMD APM vol. 3): a 6-bit field,
# and a physical address bit above 4 GiB (47 on Naples to Milan, 51 on Genoa).
CBITPOS_RANGE = (32, 63)
# Reduced physical address bits, CPUID 0x8000001F EBX[11:6]: 6 bits; QEMU
# refuses 0 for a guest (sev-guest reduced-phys-bits must be at least 1).
REDUCED_PHYS_BITS_RANGE = (1, 63)
# vCPUs: QEMU's largest machine maximum (q35, 4096 since QEMU 8.2; 288 in 7.2);
# the same bound as the validation engine's num_cpus.
MAX_VCPUS = 4096


def _int(value, what, base=0, limit=None, low=0):
    """An integer the host reported as text, within low..limit; errors name ``what``
    and never print a huge value."""
    if value is None:
        return None
    text = str(value).strip()
    if len(text) > MAX_INT_TEXT:
        raise UnsupportedUsage('%s is not an integer of at most %d characters (%d given)'
                               % (what, MAX_INT_TEXT, len(text)))
    # ASCII digits only: int() reads other scripts' digits too, which libvirt never writes
    if not is_integer_text(text, base):
        raise UnsupportedUsage('%s is not an integer: %r' % (what, text))
    number = integer_from_text(text, base)
    if limit is not None and not low <= number <= limit:
        raise UnsupportedUsage('%s = %d is outside %d..%d' % (what, number, low, limit))
    return number


def _present_text(nodes, what):
    """The text of the first of ``nodes``, None when there is none; an element
    present but empty is refused (libvirt never writes one: <policy></policy>
    is not 'no policy')."""
    if not nodes:
        return None
    if len(nodes) > 1:
        raise UnsupportedUsage('the domain XML has %d <%s> elements where libvirt writes one' % (len(nodes), what))
    if nodes[0].text is None or not nodes[0].text.strip():
        raise UnsupportedUsage('the domain XML has an empty <%s>' % what)
    return nodes[0].text


def launch_config(domain_xml):
    """The parts of a domain's XML that matter for an SEV launch, as plain data."""
    doc = parse_xml(domain_xml, 'domain XML')
    if doc.tag != 'domain':
        raise UnsupportedUsage('the domain XML has root <%s>, not <domain>' % doc.tag)
    security = doc.xpath('/domain/launchSecurity')
    # libvirt's schema allows one <launchSecurity>; with two, which one QEMU got is
    # anyone's guess (a second one with policy 0x0 could hide behind the first)
    if len(security) > 1:
        raise UnsupportedUsage('the domain XML has %d <launchSecurity> elements; libvirt writes at most one'
                               % len(security))
    sev = doc.xpath("/domain/launchSecurity[@type='sev']")
    loaders = doc.xpath('/domain/os/loader')
    vcpu = doc.xpath('/domain/vcpu')
    config = {
        'name': _text(doc.xpath('/domain/name')),
        'uuid': _text(doc.xpath('/domain/uuid')),
        'domain_type': doc.get('type'),
        'launch_security_type': security[0].get('type') if security else None,
        'launch_security_count': len(security),
        'sev_count': len(sev),
        # libvirt reads <policy> as hex, with or without 0x.
        'policy': _int(_present_text(sev[0].xpath('policy'), 'policy'), 'launchSecurity policy', 16, 0xffffffff) if sev else None,
        'kernel_hashes': (sev[0].get('kernelHashes') == 'yes') if sev else False,
        'kernel_hashes_attribute': sev[0].get('kernelHashes') if sev else None,
        'cbitpos': _int(_present_text(sev[0].xpath('cbitpos'), 'cbitpos'), 'cbitpos', limit=CBITPOS_RANGE[1],
                        low=CBITPOS_RANGE[0]) if sev else None,
        'reduced_phys_bits': _int(_present_text(sev[0].xpath('reducedPhysBits'), 'reducedPhysBits'), 'reducedPhysBits',
                                  limit=REDUCED_PHYS_BITS_RANGE[1], low=REDUCED_PHYS_BITS_RANGE[0]) if sev else None,
        'dh_cert_count': len(sev[0].xpath('dhCert')) if sev else 0,
        'session_count': len(sev[0].xpath('session')) if sev else 0,
        'loader_count': len(loaders),
        'loader': loaders[0].text if loaders else None,
        'loader_type': loaders[0].get('type') if loaders else None,
        'loader_readonly': (loaders[0].get('readonly') == 'yes') if loaders else None,
        'nvram_count': len(doc.xpath('/domain/os/nvram')),
        'nvram': _text(doc.xpath('/domain/os/nvram')),
        'kernel': _text(doc.xpath('/domain/os/kernel')),
        'initrd': _text(doc.xpath('/domain/os/initrd')),
        'cmdline': _text(doc.xpath('/domain/os/cmdline')),
        'direct_boot_count': len(doc.xpath('/domain/os/kernel | /domain/os/initrd | /domain/os/cmdline')),
        'vcpus_max': _int(_present_text(vcpu, 'vcpu'), 'vcpu count', limit=MAX_VCPUS, low=1),
        'vcpus_current': _int(vcpu[0].get('current'), 'vcpu current', limit=MAX_VCPUS, low=1) if vcpu else None,
        'cpu_mode': doc.xpath('/domain/cpu')[0].get('mode') if doc.xpath('/domain/cpu') else None,
        'cpu_model': _text(doc.xpath('/domain/cpu/model')),
        'emulator': _text(doc.xpath('/domain/devices/emulator')),
    }
    config['has_dh_cert'] = config['dh_cert_count'] == 1
    config['has_session'] = config['session_count'] == 1
    return config


def host_cpu_signature(capabilities_xml):
    """(family, model, stepping) from <host><cpu><signature>, or None (libvirt < 8.x)."""
    doc = parse_xml(capabilities_xml, 'host capabilities XML')
    signatures = doc.xpath('/capabilities/host/cpu/signature')
    if len(signatures) != 1:
        return None
    values = tuple(_int(signatures[0].get(name), 'CPU signature ' + name, limit=0xfff)
                   for name in ('family', 'model', 'stepping'))
    return None if None in values else values


def config_problems(config, secure=True, kernel_given=False):
    """The reference tool's configuration checks, in its order: every one that
    fails, as {'check', 'reason', 'message'} with an actionable sentence.

    reason is the SevError reason the reference tool exits with for it:
    'config' (4), 'insecure' (3, only when ``secure``) or 'unsupported' (2).
    """
    problems = []

    def add(check, error, message):
        problems.append({'check': check, 'reason': error.reason, 'message': message})

    if config['sev_count'] != 1:
        add('launch_security', IncorrectConfig,
            'the domain is not configured with SEV launch security: add <launchSecurity type="sev"> '
            'with a policy to its XML')
    if config['dh_cert_count'] != 1:
        add('dh_cert', IncorrectConfig,
            'the domain has no guest owner certificate: add <dhCert> (the GODH from sev_session) to '
            '<launchSecurity>, or the launch is keyed with zero keys that anyone can forge')
    if config['session_count'] != 1:
        add('session', IncorrectConfig,
            'the domain has no launch session: add <session> (the session blob from sev_session) to '
            '<launchSecurity>, or the TIK/TEK are zeros that anyone knows')
    if config['nvram_count'] and secure:
        add('nvram', InsecureUsage,
            'the firmware has NVRAM (<nvram>), which is not measured and can be altered by the host: '
            'use a stateless firmware build for SEV guests')
    if config['loader_count'] != 1:
        add('loader', IncorrectConfig,
            'the domain must have exactly one firmware <loader>, it has %d' % config['loader_count'])
    if not config['kernel_hashes']:
        if kernel_given:
            add('kernel_hashes', UnsupportedUsage,
                'a kernel was given for validation but the domain does not measure it: set '
                'kernelHashes="yes" on <launchSecurity>, or do not pass kernel/initrd/cmdline')
        if config['direct_boot_count'] and secure:
            add('unmeasured_direct_boot', InsecureUsage,
                'the domain boots a kernel directly without measuring it: set kernelHashes="yes" on '
                '<launchSecurity>, otherwise the host can swap kernel, initrd or cmdline')
    elif not config['direct_boot_count']:
        add('kernel_hashes', IncorrectConfig,
            'kernelHashes="yes" is set but the domain has no <kernel>/<initrd>/<cmdline>: remove the '
            'attribute or configure the direct boot')
    return problems

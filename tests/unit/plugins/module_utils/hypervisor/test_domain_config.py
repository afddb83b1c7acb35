# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""domain_config: the hardened parse of XML the host sent, the launch
configuration read from a libvirt 9.0 domain, the host CPU signature, and the
reference tool's configuration checks (LibvirtConfidentialVM.check_domain)."""

from __future__ import annotations

import resource

import pytest
from lxml import etree

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import domain_config as dc
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import REASON_CODES, UnsupportedUsage
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx


def peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def laughs(levels, where='content'):
    """A billion-laughs document: ``levels`` entities, each ten of the one
    before; the last one is 30 * 10**levels characters when expanded."""
    entities = ['<!ENTITY lol0 "lollollollollollollollollollol">']
    for level in range(1, levels + 1):
        entities.append('<!ENTITY lol%d "%s">' % (level, '&lol%d;' % (level - 1) * 10))
    top = '&lol%d;' % levels
    body = ('<name>%s</name>' % top if where == 'content'
            else "<name>sev-guest</name><launchSecurity type='sev' note='%s'/>" % top)
    return ('<?xml version="1.0"?>\n<!DOCTYPE domain [\n%s\n]>\n<domain type="kvm">%s</domain>'
            % ('\n'.join(entities), body))


# ---- hardened parsing -------------------------------------------------------------

DTD_REFUSED = '^the domain XML declares a DTD or entities, which libvirt never writes$'


def test_entity_declarations_are_refused_before_parsing():
    with pytest.raises(UnsupportedUsage, match=DTD_REFUSED):
        dc.parse_xml(laughs(3), 'domain XML')
    with pytest.raises(UnsupportedUsage, match=DTD_REFUSED):
        dc.launch_config(laughs(3))


@pytest.mark.parametrize('levels', [5, 9, 12])
def test_billion_laughs_is_refused_without_expanding(levels):
    before = peak_rss_kib()
    with pytest.raises(UnsupportedUsage, match=DTD_REFUSED) as info:
        dc.parse_xml(laughs(levels), 'domain XML')
    assert 'lollol' not in str(info.value)
    grown = peak_rss_kib() - before
    assert grown < 64 * 1024, 'parsing grew the peak RSS by %d KiB' % grown


def test_billion_laughs_in_an_attribute_is_refused():
    with pytest.raises(UnsupportedUsage, match=DTD_REFUSED):
        dc.parse_xml(laughs(9, where='attribute'), 'domain XML')


@pytest.mark.parametrize('text', [
    ('<?xml version="1.0"?>\n<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
     "<domain type='kvm'><name>&x;</name><os><loader>&x;</loader></os></domain>"),
    '<?xml version="1.0"?>\n<!DOCTYPE domain SYSTEM "file:///etc/passwd">\n<domain><name>x</name></domain>',
    ('<?xml version="1.0"?>\n<!DOCTYPE domain [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>\n'
     '<domain><name>x</name></domain>'),
    ('<?xml version="1.0"?>\n<!DOCTYPE domain [<!ENTITY x SYSTEM "http://192.0.2.1/x">]>\n'
     '<domain><name>&x;</name></domain>'),
])
def test_external_entities_and_dtds_are_refused(text):
    with pytest.raises(UnsupportedUsage, match=DTD_REFUSED) as info:
        dc.launch_config(text)
    assert 'root:' not in str(info.value)


def test_an_undeclared_entity_is_malformed_not_resolved():
    with pytest.raises(UnsupportedUsage, match='^the domain XML is not well-formed XML: '):
        dc.launch_config("<domain type='kvm'><name>&lt;&x;</name></domain>")


def test_size_limit_counts_utf8_bytes():
    frame = "<domain type='kvm'><name>x</name><!--%s--></domain>"
    padding = dc.MAX_XML_SIZE - len(frame % '')
    assert dc.launch_config(frame % ('p' * padding))['name'] == 'x'
    with pytest.raises(UnsupportedUsage) as info:
        dc.launch_config(frame % ('p' * (padding + 1)))
    assert str(info.value) == 'the domain XML is %d bytes, more than the %d accepted' % (
        dc.MAX_XML_SIZE + 1, dc.MAX_XML_SIZE)
    # fewer characters than the limit, more bytes: refused
    wide = frame % ('\u00e9' * (padding // 2 + 1))
    assert len(wide) < dc.MAX_XML_SIZE
    with pytest.raises(UnsupportedUsage, match='the domain XML is %d bytes' % (dc.MAX_XML_SIZE + 1)):
        dc.launch_config(wide)
    with pytest.raises(UnsupportedUsage, match='^the host capabilities XML is .* bytes, more than'):
        dc.host_cpu_signature(lx.capabilities_xml() + ' ' * dc.MAX_XML_SIZE)


@pytest.mark.parametrize('text', [
    '', '   ', '<domain>', '<domain></name></domain>', 'not xml at all', "<domain type='kvm'>&undefined;</domain>",
    '<domain/><domain/>', lx.domain_xml()[:-20], '\0<domain/>',
])
def test_malformed_xml_names_the_document(text):
    with pytest.raises(UnsupportedUsage, match='^the domain XML is not well-formed XML: '):
        dc.launch_config(text)
    with pytest.raises(UnsupportedUsage, match='^the host capabilities XML is not well-formed XML: '):
        dc.host_cpu_signature(text)


@pytest.mark.parametrize('value', [None, b"<domain type='kvm'/>", 7, ['<domain/>'], {'xml': '<domain/>'}])
def test_non_string_input(value):
    with pytest.raises(UnsupportedUsage) as info:
        dc.launch_config(value)
    assert str(info.value) == 'the domain XML must be a string, got %s' % type(value).__name__
    with pytest.raises(UnsupportedUsage, match='^the host capabilities XML must be a string'):
        dc.host_cpu_signature(value)


def test_processing_instructions_are_removed_and_comments_are_ignored():
    root = dc.parse_xml("<domain><?evil payload?><!-- note --><name>n</name></domain>", 'domain XML')
    assert b'evil' not in etree.tostring(root)
    assert dc.launch_config("<domain><!-- c --><name>n</name></domain>")['name'] == 'n'


def test_root_must_be_domain():
    with pytest.raises(UnsupportedUsage, match='^the domain XML has root <capabilities>, not <domain>$'):
        dc.launch_config(lx.capabilities_xml())
    with pytest.raises(UnsupportedUsage, match='not <domain>'):
        dc.launch_config("<domain xmlns='urn:x'/>")


def test_lone_surrogate_is_a_usage_error_not_a_crash():
    """BUG: text.encode('utf-8') raises UnicodeEncodeError (not a SevError) for
    a string with a lone surrogate, which JSON can carry ("\\udc80")."""
    with pytest.raises(UnsupportedUsage, match='domain XML'):
        dc.launch_config("<domain type='kvm'><name>\udc80</name></domain>")


def test_encoding_declaration_does_not_alter_text():
    """BUG: the str is re-encoded as UTF-8 but parsed with the encoding its
    declaration names, so a non-ASCII path comes back altered ('é' -> 'Ã©').
    Either refuse the declaration or read the text as given."""
    path = '/srv/firmware/OVMF-\u00e9t\u00e9.fd'
    text = ("<?xml version='1.0' encoding='ISO-8859-1'?>\n"
            "<domain type='kvm'><os><loader readonly='yes' type='pflash'>%s</loader></os></domain>" % path)
    try:
        config = dc.launch_config(text)
    except UnsupportedUsage:
        return
    assert config['loader'] == path


def test_utf8_text_round_trips():
    path = '/srv/firmware/OVMF-\u00e9t\u00e9-\u4e2d.fd'
    assert dc.launch_config(lx.domain_xml(loader=path))['loader'] == path
    declared = "<?xml version='1.0' encoding='UTF-8'?>\n" + lx.domain_xml(loader=path)
    assert dc.launch_config(declared)['loader'] == path


# ---- launch_config on libvirt 9.0 domains -----------------------------------------

def test_sev_direct_boot_domain():
    config = dc.launch_config(lx.domain_xml(kernel_hashes='yes', direct_boot=True, current=2))
    assert config == {
        'name': 'sev-guest', 'uuid': lx.UUID, 'domain_type': 'kvm',
        'launch_security_type': 'sev', 'launch_security_count': 1, 'sev_count': 1,
        'policy': 0x0033, 'kernel_hashes': True, 'kernel_hashes_attribute': 'yes',
        'cbitpos': 47, 'reduced_phys_bits': 1,
        'dh_cert_count': 1, 'session_count': 1, 'has_dh_cert': True, 'has_session': True,
        'loader_count': 1, 'loader': lx.AMDSEV_LOADER, 'loader_type': 'pflash', 'loader_readonly': True,
        'nvram_count': 0, 'nvram': None,
        'kernel': lx.KERNEL, 'initrd': lx.INITRD, 'cmdline': lx.CMDLINE, 'direct_boot_count': 3,
        'vcpus_max': 4, 'vcpus_current': 2,
        'cpu_mode': 'host-passthrough', 'cpu_model': None,
        'emulator': '/usr/bin/qemu-system-x86_64',
    }


def test_sev_es_domain_with_epyc_milan_model():
    config = dc.launch_config(lx.domain_xml(policy='0x0007', cpu=lx.EPYC_MILAN, vcpus=4))
    assert config['policy'] == 0x0007
    assert (config['cpu_mode'], config['cpu_model']) == ('custom', 'EPYC-Milan')
    assert (config['vcpus_max'], config['vcpus_current']) == (4, None)
    assert config['kernel_hashes'] is False
    assert config['kernel_hashes_attribute'] is None
    assert (config['kernel'], config['initrd'], config['cmdline'], config['direct_boot_count']) == (
        None, None, None, 0)
    assert dc.config_problems(config) == []


def test_nvram_domain():
    config = dc.launch_config(lx.domain_xml(loader=lx.OVMF_CODE, nvram=lx.NVRAM))
    assert (config['loader'], config['loader_type'], config['loader_readonly']) == (
        lx.OVMF_CODE, 'pflash', True)
    assert (config['nvram'], config['nvram_count']) == (lx.NVRAM, 1)


def test_domain_without_launch_security():
    config = dc.launch_config(lx.domain_xml(launch_security=''))
    assert (config['launch_security_type'], config['launch_security_count'], config['sev_count']) == (
        None, 0, 0)
    assert (config['policy'], config['cbitpos'], config['reduced_phys_bits']) == (None, None, None)
    assert (config['kernel_hashes'], config['dh_cert_count'], config['session_count']) == (False, 0, 0)
    assert (config['has_dh_cert'], config['has_session']) == (False, False)


def test_other_launch_security_types_are_not_sev():
    snp = ("  <launchSecurity type='sev-snp' authorKey='no' vcek='yes'>\n    <cbitpos>51</cbitpos>\n"
           "    <reducedPhysBits>1</reducedPhysBits>\n    <policy>0x00030000</policy>\n  </launchSecurity>\n")
    config = dc.launch_config(lx.domain_xml(launch_security=snp))
    assert (config['launch_security_type'], config['launch_security_count'], config['sev_count']) == (
        'sev-snp', 1, 0)
    assert config['policy'] is None
    config = dc.launch_config(lx.domain_xml(launch_security="  <launchSecurity type='s390-pv'/>\n"))
    assert (config['launch_security_type'], config['sev_count']) == ('s390-pv', 0)


def test_kernel_hashes_attribute_values():
    for value, measured in (('yes', True), ('no', False), ('YES', False), ('1', False)):
        config = dc.launch_config(lx.domain_xml(kernel_hashes=value, direct_boot=True))
        assert (config['kernel_hashes'], config['kernel_hashes_attribute']) == (measured, value)


def test_missing_dh_cert_session_and_loader():
    config = dc.launch_config(lx.domain_xml(dh_cert=False, session=False, loader=None))
    assert (config['dh_cert_count'], config['has_dh_cert']) == (0, False)
    assert (config['session_count'], config['has_session']) == (0, False)
    assert (config['loader_count'], config['loader'], config['loader_type'], config['loader_readonly']) == (
        0, None, None, None)


def test_partial_direct_boot_is_counted():
    config = dc.launch_config(lx.domain_xml(direct_boot=('cmdline',)))
    assert (config['kernel'], config['initrd'], config['cmdline'], config['direct_boot_count']) == (
        None, None, lx.CMDLINE, 1)


@pytest.mark.parametrize('replace, match', [
    (('<policy>0x0033</policy>', '<policy>0xZZ</policy>'), "launchSecurity policy is not an integer: '0xZZ'"),
    (('<cbitpos>47</cbitpos>', '<cbitpos>forty-seven</cbitpos>'), 'cbitpos is not an integer'),
    (('<reducedPhysBits>1</reducedPhysBits>', '<reducedPhysBits>1.5</reducedPhysBits>'),
     'reducedPhysBits is not an integer'),
    (("<vcpu placement='static'>4</vcpu>", "<vcpu placement='static'>four</vcpu>"), 'vcpu count is not an integer'),
    (("<vcpu placement='static'>4</vcpu>", "<vcpu placement='static' current='two'>4</vcpu>"),
     'vcpu current is not an integer'),
    (("<vcpu placement='static'>4</vcpu>", "<vcpu placement='static'>%s</vcpu>" % ('9' * 5000)),
     'vcpu count is not an integer'),
])
def test_malformed_numbers_name_the_element(replace, match):
    text = lx.domain_xml()
    assert replace[0] in text
    with pytest.raises(UnsupportedUsage, match=match):
        dc.launch_config(text.replace(*replace))


def test_numbers_tolerate_whitespace_and_hex():
    text = lx.domain_xml().replace('<cbitpos>47</cbitpos>', '<cbitpos>\n  0x2f  </cbitpos>')
    assert dc.launch_config(text)['cbitpos'] == 47


# ---- host_cpu_signature -------------------------------------------------------------

def test_host_cpu_signature():
    assert dc.host_cpu_signature(lx.capabilities_xml()) == (25, 1, 1)
    genoa = "<signature family='25' model='17' stepping='1'/>"
    assert dc.host_cpu_signature(lx.capabilities_xml(genoa)) == (25, 17, 1)


@pytest.mark.parametrize('signature', [
    None,  # libvirt before 8.x
    "<signature family='25' model='1'/>",
    "<signature family='25' model='1' stepping='1'/><signature family='23' model='49' stepping='0'/>",
])
def test_host_cpu_signature_absent_or_incomplete(signature):
    assert dc.host_cpu_signature(lx.capabilities_xml(signature)) is None


def test_host_cpu_signature_only_under_host_cpu():
    text = lx.capabilities_xml(None).replace('<os_type>hvm</os_type>',
                                             "<os_type>hvm</os_type><cpu><signature family='1' model='2' stepping='3'/></cpu>")
    assert dc.host_cpu_signature(text) is None


def test_host_cpu_signature_malformed():
    with pytest.raises(UnsupportedUsage, match="CPU signature family is not an integer: 'AMD'"):
        dc.host_cpu_signature(lx.capabilities_xml("<signature family='AMD' model='1' stepping='1'/>"))
    with pytest.raises(UnsupportedUsage, match="CPU signature stepping is not an integer: ''"):
        dc.host_cpu_signature(lx.capabilities_xml("<signature family='25' model='1' stepping=''/>"))


# ---- config_problems: the reference tool's checks, in its order ------------------

GOOD = {}
NO_SEV = dict(launch_security='')
DIRECT = dict(direct_boot=True)
HASHED = dict(kernel_hashes='yes', direct_boot=True)

# (domain_xml kwargs, secure, kernel_given) -> [(check, reason)], reason being
# the reference tool's exception: IncorrectConfig 'config', InsecureUsage
# 'insecure' (only raised when secure), UnsupportedUsage 'unsupported'.
CASES = [
    (GOOD, True, False, []),
    (GOOD, False, False, []),
    (NO_SEV, True, False, [('launch_security', 'config'), ('dh_cert', 'config'), ('session', 'config')]),
    (NO_SEV, False, False, [('launch_security', 'config'), ('dh_cert', 'config'), ('session', 'config')]),
    (dict(dh_cert=False), True, False, [('dh_cert', 'config')]),
    (dict(session=False), False, False, [('session', 'config')]),
    (dict(loader=lx.OVMF_CODE, nvram=lx.NVRAM), True, False, [('nvram', 'insecure')]),
    (dict(loader=lx.OVMF_CODE, nvram=lx.NVRAM), False, False, []),
    (dict(loader=None), True, False, [('loader', 'config')]),
    (dict(loader=None), False, False, [('loader', 'config')]),
    (GOOD, True, True, [('kernel_hashes', 'unsupported')]),
    (GOOD, False, True, [('kernel_hashes', 'unsupported')]),
    (dict(kernel_hashes='no'), True, True, [('kernel_hashes', 'unsupported')]),
    (DIRECT, True, False, [('unmeasured_direct_boot', 'insecure')]),
    (DIRECT, False, False, []),
    (dict(direct_boot=('cmdline',)), True, False, [('unmeasured_direct_boot', 'insecure')]),
    (dict(kernel_hashes='no', direct_boot=('kernel',)), True, False, [('unmeasured_direct_boot', 'insecure')]),
    (DIRECT, True, True, [('kernel_hashes', 'unsupported'), ('unmeasured_direct_boot', 'insecure')]),
    (DIRECT, False, True, [('kernel_hashes', 'unsupported')]),
    (dict(kernel_hashes='yes'), True, False, [('kernel_hashes', 'config')]),
    (dict(kernel_hashes='yes'), False, True, [('kernel_hashes', 'config')]),
    (HASHED, True, True, []),
    (HASHED, True, False, []),
    (HASHED, False, False, []),
    (dict(kernel_hashes='yes', direct_boot=('initrd',)), True, True, []),
    (dict(dh_cert=False, session=False, loader=None, nvram=lx.NVRAM, direct_boot=True), True, True,
     [('dh_cert', 'config'), ('session', 'config'), ('nvram', 'insecure'), ('loader', 'config'),
      ('kernel_hashes', 'unsupported'), ('unmeasured_direct_boot', 'insecure')]),
    (dict(dh_cert=False, session=False, loader=None, nvram=lx.NVRAM, direct_boot=True), False, True,
     [('dh_cert', 'config'), ('session', 'config'), ('loader', 'config'), ('kernel_hashes', 'unsupported')]),
]


@pytest.mark.parametrize('xml, secure, kernel_given, expected', CASES)
def test_config_problems(xml, secure, kernel_given, expected):
    problems = dc.config_problems(dc.launch_config(lx.domain_xml(**xml)), secure=secure,
                                  kernel_given=kernel_given)
    assert [(problem['check'], problem['reason']) for problem in problems] == expected
    for problem in problems:
        assert set(problem) == {'check', 'reason', 'message'}
        assert problem['reason'] in REASON_CODES


def test_config_problems_defaults_are_secure_without_kernel():
    config = dc.launch_config(lx.domain_xml(nvram=lx.NVRAM, direct_boot=True))
    assert [problem['check'] for problem in dc.config_problems(config)] == ['nvram', 'unmeasured_direct_boot']


def test_two_sev_elements_are_refused():
    # libvirt writes at most one: a second one (policy 0x0) could hide behind the first
    twice = lx.sev_element() + lx.sev_element()
    with pytest.raises(UnsupportedUsage, match='2 <launchSecurity> elements'):
        dc.launch_config(lx.domain_xml(launch_security=twice))


# Each message names the XML element or attribute to change.
ACTIONABLE = {
    'launch_security': ('<launchSecurity type="sev">', 'policy'),
    'dh_cert': ('<dhCert>', '<launchSecurity>'),
    'session': ('<session>', '<launchSecurity>'),
    'nvram': ('<nvram>', 'stateless'),
    'loader': ('<loader>', 'it has 0'),
    'unmeasured_direct_boot': ('kernelHashes="yes"', '<launchSecurity>'),
}


def test_messages_are_actionable():
    everything_wrong = dict(launch_security='', loader=None, nvram=lx.NVRAM, direct_boot=True)
    problems = dc.config_problems(dc.launch_config(lx.domain_xml(**everything_wrong)), secure=True)
    assert {problem['check'] for problem in problems} == set(ACTIONABLE)
    for problem in problems:
        for words in ACTIONABLE[problem['check']]:
            assert words in problem['message'], (problem['check'], problem['message'])
    given = dc.config_problems(dc.launch_config(lx.domain_xml()), kernel_given=True)[0]['message']
    assert 'kernelHashes="yes"' in given and 'kernel/initrd/cmdline' in given
    unused = dc.config_problems(dc.launch_config(lx.domain_xml(kernel_hashes='yes')))[0]['message']
    assert 'kernelHashes="yes"' in unused and '<kernel>' in unused

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""domain_definition: setting <dhCert>, <session> and <policy> of a domain's
<launchSecurity type='sev'> on the host, keeping everything else.

A libvirt without SEV refuses to define an SEV domain at all
(CONFIG_UNSUPPORTED), so the transformation is tested here on XML as libvirt
9.0 writes it; the integration tests cover the refusal paths on a real daemon.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest
from lxml import etree

from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import domain_config
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import domain_definition as dd
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import IncorrectConfig, UnsupportedUsage
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx

DH_CERT = base64.b64encode(b'G' * 2084).decode()
SESSION = base64.b64encode(b'S' * 112).decode()
WANTED = dd.check_launch_security({'dh_cert': DH_CERT, 'session': SESSION, 'policy': 0x5})
SUBJECT = "domain 'sev-guest'"

METADATA_AND_QEMU = lx.domain_xml(dh_cert=False, session=False).replace(
    "<domain type='kvm' id='7'>",
    "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>").replace(
    "  <memory unit='KiB'>",
    "  <metadata>\n"
    "    <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>\n"
    "      <libosinfo:os id='http://debian.org/debian/12'/>\n"
    "    </libosinfo:libosinfo>\n"
    "  </metadata>\n"
    "  <memory unit='KiB'>", 1).replace(
    "</domain>",
    "  <qemu:commandline>\n    <qemu:arg value='-no-reboot'/>\n  </qemu:commandline>\n</domain>")


def canonical(xml, drop_sev_values=False):
    """C14N of a document, optionally without dhCert/session/policy (what may change)."""
    root = etree.fromstring(xml.encode())
    if drop_sev_values:
        for element in root.xpath("/domain/launchSecurity/*[self::dhCert or self::session or self::policy]"):
            element.getparent().remove(element)
    for element in root.iter():
        if element.tail is not None:
            element.tail = element.tail.strip() or None
        if element.text is not None and not element.text.strip():
            element.text = None
    # exclusive: namespace declarations where used, wherever the document declared them
    return etree.tostring(root, method='c14n', exclusive=True)


@pytest.mark.parametrize('xml', [
    lx.domain_xml(dh_cert=False, session=False),                 # a fresh SEV domain
    lx.domain_xml(),                                              # an earlier session, replaced
    lx.domain_xml(kernel_hashes='yes', direct_boot=True, policy='0x0007'),
    lx.domain_xml(dh_cert=True, session=False, policy='7'),
    METADATA_AND_QEMU,
])
def test_sets_the_three_values_and_keeps_everything_else(xml):
    new_xml, changed = dd.set_launch_security(xml, WANTED, SUBJECT)
    assert changed is True
    config = domain_config.launch_config(new_xml)
    assert (config['sev_count'], config['dh_cert_count'], config['session_count']) == (1, 1, 1)
    assert config['policy'] == 0x5
    sev = ET.fromstring(new_xml).find('launchSecurity')
    assert (sev.findtext('dhCert'), sev.findtext('session'), sev.findtext('policy')) == (DH_CERT, SESSION, '0x0005')
    assert canonical(new_xml, drop_sev_values=True) == canonical(xml, drop_sev_values=True)
    # written in libvirt's order, indented like the siblings
    assert [child.tag for child in sev][-3:] == ['policy', 'dhCert', 'session']
    assert '    <dhCert>' in new_xml and '    <session>' in new_xml
    assert dd.launch_security_matches(new_xml, WANTED, SUBJECT)
    # idempotent: nothing to change the second time
    assert dd.set_launch_security(new_xml, WANTED, SUBJECT) == (new_xml, False)


def test_namespace_prefixes_are_kept():
    new_xml, _changed = dd.set_launch_security(METADATA_AND_QEMU, WANTED, SUBJECT)
    assert '<qemu:commandline>' in new_xml and '<qemu:arg value="-no-reboot"' in new_xml
    assert '<libosinfo:os id="http://debian.org/debian/12"' in new_xml
    assert 'ns0:' not in new_xml


def test_already_holding_the_values_is_unchanged():
    xml = lx.domain_xml(policy='0x0005').replace(lx.DH_CERT, DH_CERT).replace(lx.SESSION, SESSION)
    assert dd.set_launch_security(xml, WANTED, SUBJECT) == (xml, False)
    # policy compared as a number (libvirt reads it as hex, with or without 0x)
    assert dd.set_launch_security(xml.replace('0x0005', '5'), WANTED, SUBJECT)[1] is False
    assert dd.set_launch_security(xml.replace('0x0005', '0x0007'), WANTED, SUBJECT)[1] is True


@pytest.mark.parametrize('launch_security, found', [
    ('', 'none'),
    (lx.sev_element(kind='sev-snp'), "'sev-snp'"),
    ("  <launchSecurity type='s390-pv'/>\n", "'s390-pv'"),
    (lx.sev_element() + lx.sev_element(), "'sev', 'sev'"),
])
def test_refuses_a_domain_without_one_sev_launch_security(launch_security, found):
    xml = lx.domain_xml(launch_security=launch_security)
    with pytest.raises(IncorrectConfig) as exc:
        dd.set_launch_security(xml, WANTED, SUBJECT)
    assert str(exc.value) == ("%s has no single <launchSecurity type='sev'> (found: %s): launch_security can only "
                              "set the session of an SEV domain" % (SUBJECT, found))


@pytest.mark.parametrize('xml, words', [
    ('<domain>', 'its XML is not well-formed'),
    ('<!DOCTYPE domain [<!ENTITY a "b">]><domain/>', 'declares a DTD or entities'),
    (lx.capabilities_xml(), 'its XML has root <capabilities>, not <domain>'),
])
def test_refuses_xml_that_is_not_a_domain(xml, words):
    with pytest.raises(UnsupportedUsage, match=words):
        dd.set_launch_security(xml, WANTED, SUBJECT)


@pytest.mark.parametrize('options, words', [
    ('dh_cert', 'launch_security must be a mapping'),
    ({'dh_cert': DH_CERT, 'session': SESSION}, 'launch_security.policy must be an integer in 0..0xffffffff'),
    ({'dh_cert': DH_CERT, 'session': SESSION, 'policy': True}, 'launch_security.policy must be an integer'),
    ({'dh_cert': DH_CERT, 'session': SESSION, 'policy': '5'}, 'launch_security.policy must be an integer'),
    ({'dh_cert': DH_CERT, 'session': SESSION, 'policy': 1 << 32}, 'launch_security.policy must be an integer'),
    ({'dh_cert': DH_CERT[:-1], 'session': SESSION, 'policy': 1}, 'launch_security.dh_cert is not valid base64'),
    ({'dh_cert': DH_CERT, 'session': '<session/>', 'policy': 1}, 'launch_security.session is not valid base64'),
    ({'dh_cert': '  ', 'session': SESSION, 'policy': 1}, 'launch_security.dh_cert must be non-empty base64'),
    ({'dh_cert': DH_CERT, 'session': None, 'policy': 1}, 'launch_security.session must be non-empty base64'),
])
def test_check_launch_security_names_the_bad_input(options, words):
    with pytest.raises(UnsupportedUsage) as exc:
        dd.check_launch_security(options)
    assert str(exc.value).startswith(words)


def test_check_launch_security_accepts_wrapped_base64():
    wrapped = '\n'.join(DH_CERT[i:i + 64] for i in range(0, len(DH_CERT), 64))
    assert dd.check_launch_security({'dh_cert': wrapped, 'session': SESSION, 'policy': 0})['dh_cert'] == b'G' * 2084


def test_matches_tells_each_value_apart():
    xml, _changed = dd.set_launch_security(lx.domain_xml(), WANTED, SUBJECT)
    assert dd.launch_security_matches(xml, WANTED, SUBJECT)
    for key, other in (('dh_cert', b'H' * 2084), ('session', b'T' * 112), ('policy', 0x7)):
        assert not dd.launch_security_matches(xml, dict(WANTED, **{key: other}), SUBJECT), key
    assert not dd.launch_security_matches(lx.domain_xml(dh_cert=False), WANTED, SUBJECT)

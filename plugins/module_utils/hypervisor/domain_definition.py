# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host side: set the guest owner's launch session in a domain's persistent definition.

Runs on the hypervisor host on the host's own XML (what libvirt returned for
the domain), so the standard library's parser is enough and nothing beyond
libvirt-python is needed there.  Only <dhCert>, <session> and <policy> of the
one <launchSecurity type='sev'> change; every other element, attribute and
namespace is written back as it was.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET

from ..sev.errors import IncorrectConfig, UnsupportedUsage

POLICY_LIMIT = 0xffffffff
# libvirt's formatting order inside <launchSecurity type='sev'>: new elements go there.
_ORDER = ('cbitpos', 'reducedPhysBits', 'policy', 'handle', 'dhCert', 'session')
# ElementTree refuses to register these prefixes; it invents its own for them.
_RESERVED_PREFIX = re.compile(r'ns\d+$|xml', re.I)


def decode_base64(name, text):
    """``text`` as bytes; errors name the option."""
    if not isinstance(text, str) or not text.strip():
        raise UnsupportedUsage('launch_security.%s must be non-empty base64 text' % name)
    try:
        return base64.b64decode(''.join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise UnsupportedUsage('launch_security.%s is not valid base64' % name)


def check_launch_security(options):
    """The checked values of the launch_security option: {dh_cert, session (bytes), policy (int)}."""
    if not isinstance(options, dict):
        raise UnsupportedUsage('launch_security must be a mapping of dh_cert, session and policy')
    policy = options.get('policy')
    if isinstance(policy, bool) or not isinstance(policy, int) or not 0 <= policy <= POLICY_LIMIT:
        raise UnsupportedUsage('launch_security.policy must be an integer in 0..0x%x' % POLICY_LIMIT)
    return {'dh_cert': decode_base64('dh_cert', options.get('dh_cert')),
            'session': decode_base64('session', options.get('session')),
            'policy': policy}


def _parse(xml_text, subject):
    if '<!DOCTYPE' in xml_text or '<!ENTITY' in xml_text:
        raise UnsupportedUsage('%s: its XML declares a DTD or entities, which libvirt never writes' % subject)
    try:
        return ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise UnsupportedUsage('%s: its XML is not well-formed: %s' % (subject, exc))


def _sev_element(root, subject):
    if root.tag != 'domain':
        raise UnsupportedUsage('%s: its XML has root <%s>, not <domain>' % (subject, root.tag))
    securities = root.findall('launchSecurity')
    sev = [element for element in securities if element.get('type') == 'sev']
    if len(securities) != 1 or len(sev) != 1:
        kinds = ', '.join(repr(element.get('type')) for element in securities) or 'none'
        raise IncorrectConfig("%s has no single <launchSecurity type='sev'> (found: %s): launch_security "
                              "can only set the session of an SEV domain" % (subject, kinds))
    return sev[0]


def _values(sev):
    """(dh_cert bytes or None, session bytes or None, policy int or None) of a <launchSecurity>."""
    def blob(tag):
        text = sev.findtext(tag)
        if text is None:
            return None
        try:
            return base64.b64decode(''.join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            return text  # never equal to decoded bytes: a mismatch, rewritten
    policy_text = sev.findtext('policy')
    try:
        # libvirt reads <policy> as hex, with or without 0x
        policy = int(policy_text.strip(), 16) if policy_text is not None else None
    except ValueError:
        policy = policy_text
    return blob('dhCert'), blob('session'), policy


def launch_security_matches(xml_text, wanted, subject):
    """Whether the <launchSecurity type='sev'> of ``xml_text`` holds ``wanted`` (from check_launch_security)."""
    sev = _sev_element(_parse(xml_text, subject), subject)
    return _values(sev) == (wanted['dh_cert'], wanted['session'], wanted['policy'])


def _register_namespaces(xml_text):
    """Keep the prefixes of the host's XML (metadata, qemu:commandline) when writing it back.

    ElementTree's prefix table is process-wide; a module process edits one document.
    """
    parser = ET.XMLPullParser(events=('start-ns',))
    parser.feed(xml_text)
    parser.close()
    for _event, (prefix, uri) in parser.read_events():
        if prefix and not _RESERVED_PREFIX.match(prefix):
            ET.register_namespace(prefix, uri)


def set_launch_security(xml_text, wanted, subject):
    """(new XML text, changed) with <dhCert>, <session> and <policy> set to ``wanted``.

    ``xml_text`` is the domain's persistent definition (VIR_DOMAIN_XML_INACTIVE
    | VIR_DOMAIN_XML_SECURE, so that no secret of other devices is lost).
    Unchanged text when the definition already holds these values.
    """
    root = _parse(xml_text, subject)
    sev = _sev_element(root, subject)
    if _values(sev) == (wanted['dh_cert'], wanted['session'], wanted['policy']):
        return xml_text, False
    texts = {'policy': '0x%04x' % wanted['policy'],
             'dhCert': base64.b64encode(wanted['dh_cert']).decode('ascii'),
             'session': base64.b64encode(wanted['session']).decode('ascii')}
    for tag, text in texts.items():
        found = sev.findall(tag)
        for extra in found[1:]:
            sev.remove(extra)
        if found:
            found[0].text = text
            continue
        element = ET.Element(tag)
        element.text = text
        children = list(sev)
        # after the last child that libvirt writes before this one, indented like its siblings
        position = 0
        for index, child in enumerate(children):
            if child.tag in _ORDER and _ORDER.index(child.tag) < _ORDER.index(tag):
                position = index + 1
        if position == 0:
            element.tail = sev.text
        else:
            before = children[position - 1]
            element.tail = before.tail
            if position == len(children):
                before.tail = sev.text
        sev.insert(position, element)
    _register_namespaces(xml_text)
    return ET.tostring(root, encoding='unicode'), True

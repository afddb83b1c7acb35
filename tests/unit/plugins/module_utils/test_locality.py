# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is the hypervisor the controller?  From the URI and the connection, never from a reported hostname."""

from __future__ import annotations

import pytest

from ansible_collections.confidential.sev.plugins.module_utils import locality
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage

# TEST-NET-3 (RFC 5737): never an address of this machine
NOT_HERE = '203.0.113.77'


@pytest.mark.parametrize('uri, host', [
    (None, None),
    ('qemu:///system', None),
    ('qemu+unix:///system?socket=/run/x/libvirt-sock', None),
    ('qemu+ssh://root@hv1.example.net/system', 'hv1.example.net'),
    ('qemu+tcp://HV1.Example.NET:16509/system', 'hv1.example.net'),
    ('qemu+ssh://root@[2001:db8::1]:22/system', '2001:db8::1'),
    ('qemu+tls://127.0.0.1/system', '127.0.0.1'),
])
def test_uri_host(uri, host):
    assert locality.uri_host(uri) == host


@pytest.mark.parametrize('uri', ['system', '/var/run/libvirt-sock', 'qemu+ssh://[bad/system'])
def test_not_a_uri_is_a_usage_error(uri):
    with pytest.raises(UnsupportedUsage, match='is not a libvirt URI'):
        locality.uri_host(uri)


@pytest.mark.parametrize('host, expected', [
    ('localhost', True), ('127.0.0.1', True), ('127.0.1.1', True), ('::1', True), ('ip6-localhost.localhost', True),
    (NOT_HERE, False), ('2001:db8::99', False), ('name-that-does-not-resolve.invalid', None),
])
def test_is_controller_address(host, expected):
    assert locality.is_controller_address(host) is expected


@pytest.mark.parametrize('uri, client_on_controller, local', [
    ('qemu:///system', True, True),            # the controller's own libvirtd
    ('qemu:///system', False, False),          # the managed host's own libvirtd
    ('qemu+ssh://root@localhost/system', False, False),   # loopback on the managed host is the managed host
    ('qemu+ssh://root@localhost/system', True, True),
    ('qemu+tcp://127.0.0.1/system', True, True),
    ('qemu+ssh://root@%s/system' % NOT_HERE, True, False),
    ('qemu+ssh://root@%s/system' % NOT_HERE, False, False),
    ('qemu+ssh://root@name-that-does-not-resolve.invalid/system', True, False),
])
def test_hypervisor_is_local(uri, client_on_controller, local):
    found, why = locality.hypervisor_is_local(uri, client_on_controller)
    assert found is local
    assert uri in why


@pytest.mark.parametrize('transport, address, expected', [
    ('local', None, True), ('ansible.builtin.local', 'hv1.example.net', True),
    ('ssh', '127.0.0.1', True), ('ansible.builtin.ssh', 'localhost', True),
    ('ssh', NOT_HERE, False), ('paramiko_ssh', None, False), (None, None, False),
])
def test_connection_reaches_controller(transport, address, expected):
    assert locality.connection_reaches_controller(transport, address) is expected

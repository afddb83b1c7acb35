# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is the hypervisor the controller itself?  Decided from the libvirt URI and
the connection that reached the host, never from a hostname the host reports.

The reference tool compares the hostname libvirt reports with the
validating machine's: a host can report any name, and a local daemon
reports whatever the machine is called, so that comparison can call the
controller remote, or a remote host local.  Here:

* the URI names no host (``qemu:///system``, ``qemu+unix://...``) or a
  loopback name: libvirtd runs where the libvirt client runs;
* the URI names a host: local when that name resolves to an address bound on
  the controller (a socket can be bound to it here);
* where the client runs: on the controller when the validation fetches the
  report itself, or when the task's connection is ``local`` or its address is
  the controller's; else on the managed host.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from .sev.errors import UnsupportedUsage

DEFAULT_URI = 'qemu:///system'


def uri_host(uri):
    """The host a libvirt URI names, or None when it names none (local to its client)."""
    uri = uri or DEFAULT_URI
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError as exc:
        raise UnsupportedUsage('uri %s is not a libvirt URI: %s' % (uri, exc))
    if not parts.scheme:
        raise UnsupportedUsage('uri %s is not a libvirt URI (no driver, as in qemu:///system)' % uri)
    if parts.scheme.partition('+')[2] == 'unix':
        return None   # a unix socket is always on the client's machine
    return host or None


def is_loopback_name(host):
    if host == 'localhost' or host.endswith('.localhost'):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _addresses(host):
    try:
        return sorted(set(info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)))
    except (socket.gaierror, UnicodeError, OSError):
        return []


def _bound_here(address):
    """Whether ``address`` is assigned to this machine: only then can a socket bind to it."""
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:
        probe.bind((address, 0))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def is_controller_address(host):
    """Whether ``host`` (a name or an address) is this controller.  A name that
    does not resolve here is not the controller (None is returned for it, so
    callers can say so)."""
    if is_loopback_name(host):
        return True
    addresses = _addresses(host)
    if not addresses:
        return None
    return any(ipaddress.ip_address(address.split('%')[0]).is_loopback or _bound_here(address)
               for address in addresses)


def hypervisor_is_local(uri, client_on_controller):
    """(local, how): whether the libvirtd that ``uri`` reaches is the
    controller, when the libvirt client runs on the controller
    (``client_on_controller``) or on a managed host; ``how`` says why."""
    host = uri_host(uri)
    where = 'the controller' if client_on_controller else 'the managed host'
    if host is None or is_loopback_name(host):
        return client_on_controller, 'uri %s is local to its client, which runs on %s' % (uri or DEFAULT_URI, where)
    found = is_controller_address(host)
    if found is None:
        return False, 'uri %s names %s, which does not resolve on the controller' % (uri, host)
    return found, 'uri %s names %s, %s' % (uri, host, 'an address of the controller' if found
                                           else 'not an address of the controller')


def connection_reaches_controller(transport, address):
    """Whether an Ansible connection (plugin name, target address) runs its
    modules on the controller itself."""
    if transport and transport.split('.')[-1] == 'local':
        return True
    if not address:
        return False
    return bool(is_controller_address(address))

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 10: a domain vanishing mid-task (or the connection dropping) at ANY libvirt
call of the host modules ends in a clean failed result naming the call, never a
traceback.  A stand-in libvirt connection and domain count every libvirt call
(those that only read the local object too) and raise libvirt's own error at the
N-th, for every N until a run gets through."""

from __future__ import annotations

import json

import libvirt
import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.confidential.sev.plugins.action import sev_measurement_validate
from ansible_collections.confidential.sev.plugins.module_utils.hypervisor import connection
from ansible_collections.confidential.sev.plugins.modules import sev_domain, sev_launch_info, sev_secret_inject
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx

HEADER = 'AAAAAAABAgMEBQYHCAkKCwwNDg9kZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCgw=='
PAYLOAD = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v'


class Vanish:
    """Counts libvirt calls; the ``at``-th raises VIR_ERR_NO_DOMAIN (or, for the
    connection's own calls, a dropped connection)."""

    def __init__(self, at):
        self.at = at
        self.count = 0
        self.calls = []

    def __call__(self, name, connection_call=False):
        self.count += 1
        self.calls.append(name)
        if self.count == self.at:
            code, words = ((libvirt.VIR_ERR_SYSTEM_ERROR, 'End of file while reading data: Input/output error')
                           if connection_call else
                           (libvirt.VIR_ERR_NO_DOMAIN, "Domain not found: no domain with matching uuid '%s'" % lx.UUID))
            exc = libvirt.libvirtError(words)
            exc.err = (code, 10, words, 2, None, None, None, 0, 0)
            raise exc


class Domain:
    """A paused SEV guest before its first run (or shut off: ``active`` false)."""

    def __init__(self, vanish, active=True):
        self.vanish = vanish
        self.active = active

    def name(self):
        self.vanish('name')
        return 'guest1'

    def UUIDString(self):  # pylint: disable=invalid-name
        self.vanish('UUIDString')
        return lx.UUID

    def ID(self):  # pylint: disable=invalid-name
        self.vanish('ID')
        return 7 if self.active else -1

    def state(self, flags=0):
        self.vanish('state')
        return [3, 1] if self.active else [5, 1]

    def info(self):
        self.vanish('info')
        return [3 if self.active else 5, 4194304, 4194304, 2, 1]

    def isActive(self):  # pylint: disable=invalid-name
        self.vanish('isActive')
        return 1 if self.active else 0

    def XMLDesc(self, flags=0):  # pylint: disable=invalid-name
        self.vanish('XMLDesc')
        return lx.domain_xml()

    def launchSecurityInfo(self, flags=0):  # pylint: disable=invalid-name
        self.vanish('launchSecurityInfo')
        return dict(lx.LAUNCH_SECURITY)

    def setLaunchSecurityState(self, params, flags=0):  # pylint: disable=invalid-name
        self.vanish('setLaunchSecurityState')
        return 0

    def resume(self):
        self.vanish('resume')
        return 0

    def destroy(self):
        self.vanish('destroy')
        self.active = False
        return 0

    def createWithFlags(self, flags=0):  # pylint: disable=invalid-name
        self.vanish('createWithFlags')
        self.active = True
        return 0


class Connection:
    def __init__(self, vanish, dom):
        self.vanish = vanish
        self.dom = dom

    def lookupByName(self, name):  # pylint: disable=invalid-name
        self.vanish('lookupByName', connection_call=True)
        return self.dom

    def lookupByUUIDString(self, uuid):  # pylint: disable=invalid-name
        self.vanish('lookupByUUIDString', connection_call=True)
        return self.dom

    def getHostname(self):  # pylint: disable=invalid-name
        self.vanish('getHostname', connection_call=True)
        return 'hv1.example.net'

    def getCapabilities(self):  # pylint: disable=invalid-name
        self.vanish('getCapabilities', connection_call=True)
        return lx.capabilities_xml()

    def getSEVInfo(self, flags=0):  # pylint: disable=invalid-name
        self.vanish('getSEVInfo', connection_call=True)
        return dict(lx.NODE_SEV)

    def close(self):
        self.vanish('close', connection_call=True)
        return 0


class Monitor:
    vanish = None

    @classmethod
    def qemuMonitorCommand(cls, dom, command, flags):  # pylint: disable=invalid-name
        cls.vanish('qemuMonitorCommand')
        status = 'prelaunch' if dom.active else None
        if status is None:
            exc = libvirt.libvirtError('Requested operation is not valid: domain is not running')
            exc.err = (libvirt.VIR_ERR_OPERATION_INVALID, 10, 'domain is not running', 2, None, None, None, 0, 0)
            raise exc
        return json.dumps({'return': {'status': status, 'running': False}})


def install(monkeypatch, at, active=True):
    vanish = Vanish(at)
    dom = Domain(vanish, active)
    conn = Connection(vanish, dom)

    def opener(uri):
        vanish('virConnectOpen', connection_call=True)
        return conn
    monkeypatch.setattr(libvirt, 'open', opener)
    monkeypatch.setattr(libvirt, 'openReadOnly', opener)
    Monitor.vanish = vanish
    monkeypatch.setattr(connection, 'libvirt_qemu', Monitor)
    return vanish


def run_module(module, args, monkeypatch, capsys):
    monkeypatch.setattr(basic, '_ANSIBLE_ARGS', to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args})))
    monkeypatch.setattr(basic, '_ANSIBLE_PROFILE', 'legacy', raising=False)
    with pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


CASES = [
    ('sev_launch_info', sev_launch_info, {'domain': 'guest1', 'node_sev_info': True}, True),
    ('sev_launch_info node', sev_launch_info, {}, True),
    ('sev_domain paused', sev_domain, {'domain': 'guest1', 'state': 'paused'}, False),
    ('sev_domain resumed', sev_domain, {'domain': 'guest1', 'state': 'resumed', 'expect_id': 7}, True),
    ('sev_domain destroyed', sev_domain, {'domain': 'guest1', 'state': 'destroyed', 'expect_id': 7}, True),
    ('sev_secret_inject', sev_secret_inject, {'domain': 'guest1', 'header': HEADER, 'payload': PAYLOAD,
                                              'resume': True, 'expect_id': 7}, True),
]


@pytest.mark.parametrize('name, module, args, active', CASES, ids=[case[0] for case in CASES])
def test_vanishing_at_every_libvirt_call_is_a_clean_failure(name, module, args, active, monkeypatch, capsys):
    # the run with nothing vanishing: how many calls it makes, and that it works
    vanish = install(monkeypatch, at=0, active=active)
    clean = run_module(module, args, monkeypatch, capsys)
    assert clean.get('failed') is not True, clean
    total = vanish.count
    assert total >= 3, vanish.calls
    for at in range(1, total + 1):
        vanish = install(monkeypatch, at=at, active=active)
        result = run_module(module, args, monkeypatch, capsys)
        failing_call = vanish.calls[at - 1]
        if failing_call == 'close':
            # closing the connection after the work is done does not undo or fail it
            assert result.get('failed') is not True, (failing_call, result)
            continue
        assert result.get('failed') is True, (failing_call, result)
        assert result['reason'] in ('error', 'state') and result['rc'] in (5, 6), (failing_call, result)
        assert 'Traceback' not in json.dumps(result) and 'exception' not in result, (failing_call, result)
        assert 'failed:' in result['msg'] and 'vir' in result.get('libvirt_call', ''), (failing_call, result)


def test_validate_fetching_the_report_from_a_vanishing_domain(monkeypatch):
    vanish = install(monkeypatch, at=0)
    sev_measurement_validate.ActionModule._fetch_report('qemu:///system', 'guest1')  # pylint: disable=protected-access
    total = vanish.count
    for at in range(1, total + 1):
        vanish = install(monkeypatch, at=at)
        try:
            sev_measurement_validate.ActionModule._fetch_report('qemu:///system', 'guest1')  # pylint: disable=protected-access
        except connection.LibvirtFailure as exc:
            assert exc.call and exc.call.startswith('vir'), exc
        else:
            assert vanish.calls[at - 1] == 'close'

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake hypervisor host for sev_launch_batch's unit tests: the list forms of
sev_launch_info, sev_domain and sev_secret_inject (their results as the host
modules return them), over domains whose launches run on the in-process
emulated secure processor (tests/platform/sev_firmware.py), so that fresh
sessions, measurements and secret packets are the real thing.

``fail[(step, domain name)] = message`` makes that item fail (step: info, paused,
resumed, destroyed, inject); ``host_firmware[name]`` is what the host loads
instead of the guest owner's firmware (a mismatch)."""

from __future__ import annotations

import base64
import copy
import uuid as uuid_mod

from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw
from ansible_collections.confidential.sev.tests.unit.plugins.module_utils.hypervisor import libvirt_xml as lx

HOSTNAME = 'hv1.example.net'


class Domain:
    def __init__(self, name):
        self.name = name
        self.uuid = str(uuid_mod.uuid5(uuid_mod.NAMESPACE_DNS, name))
        self.id = -1
        self.state = 'shutoff'
        self.run_state = None
        self.policy = 0x33
        self.handle = None
        self.measurement = None
        self.secrets = []

    @property
    def active(self):
        return self.state != 'shutoff'


class FleetHost:
    def __init__(self, platform, firmware, names):
        self.platform = platform
        self.firmware = firmware
        self.domains = dict((name, Domain(name)) for name in names)
        self.fail = {}
        self.host_firmware = {}
        self.calls = []
        self.next_id = 1

    def lookup(self, ident):
        for dom in self.domains.values():
            if ident in (dom.name, dom.uuid):
                return dom
        return None

    def __call__(self, module_name, module_args):
        self.calls.append((module_name, copy.deepcopy(module_args)))
        handler = {'confidential.sev.sev_launch_info': self.launch_info,
                   'confidential.sev.sev_domain': self.domain,
                   'confidential.sev.sev_secret_inject': self.inject}[module_name]
        results = handler(module_args)
        failed = [item for item in results if item.get('failed')]
        if module_name == 'confidential.sev.sev_launch_info':
            # raw data only, no verdict (the controller checks every item)
            result = {'changed': False, 'results': results}
            if module_args.get('include_node'):
                result['node'] = {'hostname': HOSTNAME, 'node_sev': self.platform.node_sev_info()}
            return result
        # failed iff an item failed, rc/reason of the first failed item (hypervisor/batch.py)
        result = {'changed': any(item.get('changed') for item in results), 'results': results,
                  'failed': bool(failed), 'rc': failed[0]['rc'] if failed else 0,
                  'reason': failed[0]['reason'] if failed else 'ok',
                  'msg': '%d of %d domains failed' % (len(failed), len(results))}
        return result

    # ---- the modules ----

    def _missing(self, ident):
        return {'failed': True, 'changed': False, 'reason': 'error', 'rc': 6, 'error_kind': 'unknown_domain',
                'msg': 'domain %r not found' % ident}

    def _failure(self, step, dom):
        message = self.fail.get((step, dom.name))
        if message is None:
            return None
        return dict(self.identity(dom), failed=True, changed=False, reason='error', rc=6, error_kind='libvirt',
                    msg=message)

    def identity(self, dom):
        return {'domain': dom.name, 'uuid': dom.uuid, 'name': dom.name, 'id': dom.id, 'state': dom.state,
                'run_state': dom.run_state}

    def report(self, dom):
        xml = lx.domain_xml(name=dom.name, policy='0x%04x' % dom.policy).replace(lx.UUID, dom.uuid)
        raw = lx.raw_report(hostname=HOSTNAME, state={'shutoff': 'shutoff', 'paused': 'paused',
                                                      'running': 'running'}[dom.state], xml=xml,
                            run_state=dom.run_state)
        raw['domain'] = {'name': dom.name, 'uuid': dom.uuid, 'id': dom.id}
        if dom.active and dom.measurement is not None:
            raw['launch_security'] = {'sev-measurement': dom.measurement, 'sev-api-major': self.platform.api[0],
                                      'sev-api-minor': self.platform.api[1], 'sev-build-id': self.platform.build_id,
                                      'sev-policy': dom.policy}
        return raw

    def launch_info(self, args):
        results = []
        for ident in args['domains']:
            dom = self.lookup(ident)
            if dom is None:
                results.append(self._missing(ident))
                continue
            results.append(self._failure('info', dom) or {'changed': False, 'report': self.report(dom)})
        return results

    def domain(self, args):
        results = []
        for item in args['domains']:
            dom = self.lookup(item['domain'])
            if dom is None:
                results.append(self._missing(item['domain']))
                continue
            state = args['state']
            failure = self._failure(state, dom)
            if failure:
                results.append(failure)
                continue
            expect = item.get('expect_id')
            if state == 'paused':
                results.append(self._start(dom, item.get('launch_security')))
            elif state == 'resumed':
                if expect is not None and dom.id != expect or dom.run_state != 'prelaunch':
                    results.append(dict(self.identity(dom), failed=True, changed=False, reason='state', rc=5,
                                        error_kind='wrong_state', msg='not the launch expected'))
                    continue
                dom.state, dom.run_state = 'running', 'running'
                results.append(dict(self.identity(dom), changed=True))
            elif state == 'destroyed':
                if not dom.active or (expect is not None and dom.id != expect):
                    results.append(dict(self.identity(dom), changed=False, destroyed=False,
                                        skip_reason='other_launch', msg='left untouched'))
                    continue
                dom.state, dom.run_state, dom.id = 'shutoff', None, -1
                results.append(dict(self.identity(dom), changed=True, destroyed=True))
        return results

    def _start(self, dom, launch_security):
        if dom.active:
            return dict(self.identity(dom), failed=True, changed=False, reason='state', rc=5,
                        error_kind='wrong_state', msg='already active')
        if launch_security:
            dom.policy = launch_security['policy']
            handle = self.platform.launch_start_b64(dom.policy, launch_security['dh_cert'],
                                                    launch_security['session'])
        else:
            handle = self.platform.launch_start(dom.policy)
        self.platform.launch_update_data(handle, self.host_firmware.get(dom.name, self.firmware))
        dom.measurement = base64.b64encode(self.platform.launch_measure(handle)).decode()
        dom.handle, dom.id = handle, self.next_id
        self.next_id += 1
        dom.state, dom.run_state = 'paused', 'prelaunch'
        return dict(self.identity(dom), changed=True, launch_security_updated=bool(launch_security))

    def inject(self, args):
        results = []
        for item in args['injections']:
            dom = self.lookup(item['domain'])
            if dom is None:
                results.append(self._missing(item['domain']))
                continue
            failure = self._failure('inject', dom)
            if failure:
                results.append(failure)
                continue
            if dom.id != item.get('expect_id') or dom.run_state != 'prelaunch':
                results.append(dict(self.identity(dom), failed=True, changed=False, reason='state', rc=5,
                                    msg='not the launch expected'))
                continue
            try:
                plain = self.platform.launch_secret(dom.handle, base64.b64decode(item['header']),
                                                    base64.b64decode(item['payload']))
            except fw.FirmwareError as exc:
                results.append(dict(self.identity(dom), failed=True, changed=False, reason='error', rc=6,
                                    msg='LAUNCH_SECRET refused: %s' % exc))
                continue
            dom.secrets.append(plain)
            results.append(dict(self.identity(dom), changed=True, injected=True, resumed=False))
        return results

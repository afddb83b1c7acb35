# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 11: the batch forms of the host modules against a real libvirtd and QEMU.

One EMULATED hypervisor of this file's own (real libvirtd 9.0, real QEMU 7.2
under TCG, the emulated secure processor), reached over ssh as a remote host.

- test_batch_launch_flow: one playbook launches four SEV guests with one
  call per step - sev_launch_info (domains + include_node, before any guest
  runs: the node's PDH for the sessions), sev_session per guest (controller),
  sev_domain paused (each guest with its own fresh session), sev_launch_info,
  sev_measurement_validate per guest (controller), sev_secret_inject, guest
  memory read back, sev_domain resumed, sev_domain destroyed - each batch call
  with one item made to fail (a domain that does not exist; launch_security
  on a domain without SEV; an injection into a shut-off domain; a resume and
  a destroy with a stale expect_id).  The others must succeed, and the failing
  one must be left exactly as it was.
- test_parallel_start_measured: the same module code (sev_domain's batch
  function, in this process, over the daemon's unix socket as the module on
  the host would) starts 10 guests paused with max_parallel 1, 2, 4, 10;
  records the wall times (the "libvirt observations" section) that decide
  max_parallel's default.
"""

from __future__ import annotations

import os
import statistics
import time

import libvirt
import pytest

from harness import e2e
from harness.hypervisor import EmulatedHypervisor
from harness.playbook import module_task
from harness.sev_guest import default_policy, sev_guest_xml

from ansible_collections.confidential.sev.plugins.modules import sev_domain

E2E_PY = os.path.abspath(e2e.__file__)
GOOD = 4          # SEV guests launched in the flow
MEASURED = 10     # guests started at once in the measurement
REPEATS = 3


@pytest.fixture(scope='module')
def hv(record):
    """One emulated hypervisor for this file (slots are allocated, names may repeat)."""
    hyp = EmulatedHypervisor(name='bhv1', hostname='sev-bhv1')
    hyp.start()
    try:
        record('batch: emulated hypervisor %s start' % hyp.hostname, '%.2fs' % hyp.start_seconds)
        hyp.warm_up()
        yield hyp
    finally:
        hyp.stop()


def without_sev(xml):
    """The same guest without <launchSecurity> (a domain launch_security cannot apply to)."""
    start = xml.index('<launchSecurity')
    end = xml.index('</launchSecurity>') + len('</launchSecurity>')
    return xml[:start] + xml[end:]


def flow_tasks(names, plain, directory, firmware):
    """The batch flow; ``names`` the SEV guests, ``plain`` the domain without SEV (the failing item)."""
    policy = default_policy(False)
    good = range(len(names))
    uuid = '{{ r_start.results[%d].uuid }}'
    ident = '{{ r_start.results[%d].id }}'
    return [
        # before anything runs: every domain (and one that does not exist) and the node, in one call
        module_task('pin', 'sev_launch_info', {'domains': list(names) + [plain, 'no-such-domain'],
                                               'include_node': True}),
        # the guest owner's fresh sessions, on the controller (one task per guest, as the fleet action does)
        module_task('session', 'sev_session', {
            'node_sev': '{{ r_pin.node }}', 'cek_file': '{{ sev_launch_cek_file }}',
            'ark_file': '{{ sev_launch_ark_file }}', 'ask_file': '{{ sev_launch_ask_file }}', 'lab_root': True,
            'policy': policy, 'tek_file': '%s/{{ item }}.tek' % directory,
            'tik_file': '%s/{{ item }}.tik' % directory, 'force': True}, loop=list(names)),
        module_task('start', 'sev_domain', {'state': 'paused', 'domains': [
            {'domain': name, 'launch_security': {
                'dh_cert': '{{ r_session.results[%d].dh_cert }}' % index,
                'session': '{{ r_session.results[%d].session }}' % index,
                'policy': '{{ r_session.results[%d].policy.value }}' % index}}
            for index, name in enumerate(names)] + [
            # the failing item: launch_security on a domain without SEV (refused, nothing touched)
            {'domain': plain, 'launch_security': {
                'dh_cert': '{{ r_session.results[0].dh_cert }}', 'session': '{{ r_session.results[0].session }}',
                'policy': '{{ r_session.results[0].policy.value }}'}}]}),
        module_task('info', 'sev_launch_info', {'domains': [uuid % index for index in good] + [plain]}),
        module_task('validate', 'sev_measurement_validate', {
            'launch_info': '{{ r_info.results[item] }}', 'uri': 'qemu:///system', 'firmware': firmware,
            'tik': '%s/{{ names[item] }}.tik' % directory, 'tek': '%s/{{ names[item] }}.tek' % directory,
            'secrets': [{'guid': 'luks-key', 'path': '%s/{{ names[item] }}.key' % directory}],
            'require_policy': ['NODBG', 'NOKS'], 'replay_dir': '%s/seen' % directory},
            loop=list(good), vars={'names': list(names)}),
        module_task('inject', 'sev_secret_inject', {'max_parallel': 2, 'injections': [
            {'domain': uuid % index, 'expect_id': ident % index,
             'header': '{{ r_validate.results[%d].secret_header }}' % index,
             'payload': '{{ r_validate.results[%d].secret_payload }}' % index} for index in good] + [
            # the failing item: a shut-off domain (a well-formed packet, never injected)
            {'domain': plain, 'header': '{{ r_validate.results[0].secret_header }}',
             'payload': '{{ r_validate.results[0].secret_payload }}'}]}),
        {'name': 'read the secret areas from guest memory, before resume', 'delegate_to': 'localhost',
         'ansible.builtin.command': {'argv': [
             '{{ ansible_playbook_python }}', E2E_PY, 'pmemsave', '--uri', '{{ e2e_uri }}',
             '--domain', '{{ r_start.results[item].uuid }}', '--gpa', str(e2e.SECRET_AREA_GPA),
             '--size', str(e2e.SECRET_AREA_SIZE), '--out', '%s/area-{{ item }}.bin' % directory]},
         'loop': list(good), 'register': 'r_memory', 'changed_when': False},
        # the last guest is resumed with a stale expect_id: refused, still before its first run
        module_task('resume', 'sev_domain', {'state': 'resumed', 'max_parallel': 4, 'domains': [
            {'domain': uuid % index, 'expect_id': ident % index} for index in good[:-1]] + [
            {'domain': uuid % good[-1], 'expect_id': '{{ r_start.results[%d].id | int + 1000 }}' % good[-1]}]}),
        module_task('after', 'sev_launch_info', {'domains': [uuid % index for index in good]}),
        # destroy by each launch's ID; one stale expect_id (left untouched, no failure), and the shut-off one
        module_task('destroy', 'sev_domain', {'state': 'destroyed', 'domains': [
            {'domain': uuid % index, 'expect_id': ident % index} for index in good[1:]] + [
            {'domain': uuid % 0, 'expect_id': '{{ r_start.results[0].id | int + 1000 }}'},
            {'domain': plain}]}),
        module_task('cleanup', 'sev_domain', {'state': 'destroyed', 'domains': [{'domain': uuid % 0}]}),
    ]


def test_batch_launch_flow(hv, ovmf, tmp_path, record):
    names = [e2e.unique('batch-sev%d' % index) for index in range(GOOD)]
    plain = e2e.unique('batch-plain')
    directory = tmp_path / 'owner'
    directory.mkdir(mode=0o700)
    keys = {}
    for name in names:
        keys[name] = os.urandom(32)
        e2e.write_private(directory / (name + '.key'), keys[name])
    guests = e2e.Guests()
    try:
        for name in names:
            guests.define(hv, sev_guest_xml(name, ovmf), name)
        guests.define(hv, without_sev(sev_guest_xml(plain, ovmf)), plain)
        plain_xml_before = guests.lookup(hv, plain).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        host_vars = {hv.hostname: dict(e2e.lab_root_vars(hv), e2e_uri=hv.uri_ssh)}
        results, seconds, output = e2e.run_tasks(tmp_path, [hv], flow_tasks(names, plain, str(directory), ovmf),
                                                 host_vars)
        record('batch flow: %d SEV guests + 1 failing item per call, one playbook' % GOOD, '%.1fs' % seconds)
        res = results[hv.hostname]
        plain_dom = guests.lookup(hv, plain)
        plain_xml_after = plain_dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        check_flow(hv, res, names, plain, keys, str(directory))
        # the failing item was never touched: still shut off, definition unchanged
        assert plain_dom.isActive() == 0 and plain_xml_after == plain_xml_before
        assert not e2e.records_of(hv, plain)
        for form in [key.hex() for key in keys.values()]:
            assert form not in output
    finally:
        guests.cleanup()


def items(result, count):
    assert isinstance(result.get('results'), list) and len(result['results']) == count, result
    return result['results']


def check_flow(hv, res, names, plain, keys, directory):
    good = len(names)
    # pin: every domain plus the node in one call; the unknown one fails alone
    pin = res['pin']
    assert pin['failed'] is True and pin['msg'].startswith('1 of %d domains failed: no-such-domain: ' % (good + 2))
    pinned = items(pin, good + 2)
    assert [item['failed'] for item in pinned] == [False] * (good + 1) + [True]
    assert pinned[-1]['error_kind'] == 'unknown_domain' and pinned[-1]['rc'] == 6
    assert all(item['state'] == 'shutoff' and item['id'] == -1 for item in pinned[:-1])
    assert pin['node']['hostname'] == hv.hostname and pin['node']['node_sev']['pdh'] == hv.node_sev()['pdh']
    # start: four started paused with their own session, the domain without SEV refused and untouched
    start = res['start']
    assert (start['failed'], start['changed'], start['reason'], start['rc']) == (True, True, 'config', 4), start
    started = items(start, good + 1)
    assert [item['failed'] for item in started] == [False] * good + [True]
    for name, item in zip(names, started):
        assert (item['name'], item['state'], item['run_state'], item['launch_security_updated']) == (
            name, 'paused', 'prelaunch', True), item
        assert (item['rc'], item['reason'], item['requested']) == (0, 'ok', name)
    assert len(set(item['id'] for item in started[:good])) == good
    assert "has no single <launchSecurity type='sev'>" in started[-1]['msg'] and started[-1]['state'] == 'shutoff'
    assert start['msg'].startswith('1 of %d domains failed: %s: ' % (good + 1, plain))
    # info: the four prelaunch reports checked on the controller, the plain one shut off
    info = res['info']
    assert info['failed'] is False and info['rc'] == 0, info['msg']
    reports = items(info, good + 1)
    for item, begun in zip(reports[:good], started[:good]):
        assert (item['uuid'], item['id'], item['prelaunch']) == (begun['uuid'], begun['id'], True)
        assert item['launch_security']['measurement']
    assert reports[-1]['state'] == 'shutoff'
    # validate (per guest, on the controller)
    for index, result in enumerate(res['validate']['results']):
        assert (result['valid'], result['rc']) == (True, 0), (names[index], result)
    # inject: four injected, the shut-off domain refused (wrong state), nothing injected there
    inject = res['inject']
    assert (inject['failed'], inject['reason'], inject['rc'], inject['changed']) == (True, 'state', 5, True)
    injected = items(inject, good + 1)
    assert [(item['failed'], item['injected']) for item in injected] == [(False, True)] * good + [(True, False)]
    assert injected[-1]['error_kind'] == 'wrong_state'
    for index, name in enumerate(names):
        recs = e2e.records_of(hv, name)
        assert len(recs) == 1 and len(recs[0]['injections']) == 1, recs
        injection = recs[0]['injections'][0]
        assert (injection['accepted'], injection['gpa']) == (True, e2e.SECRET_AREA_GPA)
        with open(os.path.join(directory, 'area-%d.bin' % index), 'rb') as f:
            assert e2e.parse_secret_table(f.read()) == {e2e.LUKS_KEY_GUID: keys[name]}
    # resume: three resumed by their ID, the stale expect_id refused and still before its first run
    resume = res['resume']
    assert (resume['failed'], resume['reason'], resume['rc']) == (True, 'state', 5)
    resumed = items(resume, good)
    assert [item['failed'] for item in resumed] == [False] * (good - 1) + [True]
    assert 'expect_id' in resumed[-1]['msg'] and resumed[-1]['error_kind'] == 'wrong_state'
    after = items(res['after'], good)
    assert [item['run_state'] for item in after] == ['running'] * (good - 1) + ['prelaunch']
    assert [item['id'] for item in after] == [item['id'] for item in started[:good]]
    assert [e2e.records_of(hv, name)[0]['finished'] for name in names] == [True] * (good - 1) + [False]
    # destroy: by each launch's ID; the stale one left running (no failure), the shut-off one skipped
    destroy = res['destroy']
    assert (destroy['failed'], destroy['rc'], destroy['reason']) == (False, 0, 'ok'), destroy['msg']
    destroyed = items(destroy, good + 1)
    assert [item['destroyed'] for item in destroyed] == [True] * (good - 1) + [False, False]
    assert [item['skip_reason'] for item in destroyed[-2:]] == ['other_launch', 'not_active']
    assert destroyed[-2]['state'] == 'running'
    assert res['cleanup']['results'][0]['destroyed'] is True


def start_all(uri, names, max_parallel):
    """sev_domain's batch function, as the module runs it on the host; (seconds, task, results)."""
    params = {'uri': uri, 'state': 'paused', 'max_parallel': max_parallel,
              'domains': [{'domain': name, 'expect_id': None, 'launch_security': None} for name in names]}
    t0 = time.monotonic()
    task, results = sev_domain.run_batch(params, check_mode=False)
    return time.monotonic() - t0, task, results


def destroy_all(uri, names):
    params = {'uri': uri, 'state': 'destroyed', 'max_parallel': MEASURED,
              'domains': [{'domain': name, 'expect_id': None, 'launch_security': None} for name in names]}
    task, _results = sev_domain.run_batch(params, check_mode=False)
    assert task['failed'] is False, task['msg']


def test_parallel_start_measured(hv, ovmf, record):
    """10 SEV guests started paused in one call, with 1, 2, 4 and 10 threads (median of 3 runs each)."""
    names = [e2e.unique('batch-par%d' % index) for index in range(MEASURED)]
    uri = hv.uri_unix
    guests = e2e.Guests()
    timings = {}
    try:
        for name in names:
            guests.define(hv, sev_guest_xml(name, ovmf), name)
        for _repeat in range(REPEATS):
            for max_parallel in (1, 2, 4, MEASURED):
                seconds, task, results = start_all(uri, names, max_parallel)
                assert task['failed'] is False, task['msg']
                assert [item['name'] for item in results] == names
                assert all(item['run_state'] == 'prelaunch' for item in results)
                assert len(set(item['id'] for item in results)) == MEASURED
                timings.setdefault(max_parallel, []).append(seconds)
                destroy_all(uri, names)
    finally:
        guests.cleanup()
    medians = dict((key, statistics.median(values)) for key, values in timings.items())
    for max_parallel, values in sorted(timings.items()):
        record('batch: start %d guests paused, max_parallel %d' % (MEASURED, max_parallel),
               'median %.2fs (%s)' % (medians[max_parallel], ', '.join('%.2f' % value for value in values)))
    assert all(value > 0 for value in medians.values())

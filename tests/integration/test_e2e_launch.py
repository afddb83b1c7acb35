# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End to end, module by module: a whole SEV / SEV-ES launch through real ansible-playbook runs.

Against the three EMULATED hypervisors (real libvirtd 9.0, real QEMU 7.2 under
TCG, the emulated secure processor of tests/platform), reached over ssh as
remote hosts; the controller (this process) is none of them.  One playbook
runs on all three hosts at once, each launching its own guest, with the
collection's modules in the order the role uses them:

  sev_launch_info (node only) -> sev_session (fresh, chain verified to the
  emulated platform's lab root) -> sev_domain paused with that session ->
  sev_launch_info -> sev_measurement_validate (on the controller, from the
  trusted files) -> sev_secret_inject -> guest memory read back (pmemsave,
  before resume) -> sev_domain resumed -> sev_launch_info -> sev_domain
  destroyed (the guest's work is done; TCG guests cost CPU).

What each launch must show: the measurement validated; the LUKS key arrived
decrypted at the firmware's secret area (read back from guest memory, and the
emulator's record of one accepted injection whose secret_sha256 is the SHA-256
of the whole decrypted secret table, which is what the emulator hashes); the
guest resumed only after that; nothing secret in Ansible's output.
"""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from harness import e2e
from harness.playbook import module_task
from harness.sev_guest import default_policy, sev_guest_xml

# vCPU counts, one per hypervisor (sev-ehv1..3): the three launches of a run go in parallel.
VCPUS = (1, 2, 4)
E2E_PY = os.path.abspath(e2e.__file__)


def launch_tasks():
    """The module flow, per host; e2e_* host variables say which guest and which trusted files."""
    omit_unless = "{{ %s if %s is not none else omit }}"
    return [
        module_task('node', 'sev_launch_info', {}),
        module_task('session', 'sev_session', {
            'node_sev': '{{ r_node }}', 'cek_file': '{{ sev_launch_cek_file }}',
            'ark_file': '{{ sev_launch_ark_file }}', 'ask_file': '{{ sev_launch_ask_file }}', 'lab_root': True,
            'policy': '{{ e2e_policy }}', 'tek_file': '{{ e2e_dir }}/tek', 'tik_file': '{{ e2e_dir }}/tik',
            'dh_cert_file': '{{ e2e_dir }}/godh.b64', 'session_file': '{{ e2e_dir }}/session.b64',
            'force': True}),
        module_task('start', 'sev_domain', {
            'domain': '{{ e2e_guest }}', 'state': 'paused',
            'launch_security': {'dh_cert': '{{ r_session.dh_cert }}', 'session': '{{ r_session.session }}',
                                'policy': '{{ r_session.policy.value }}'}}),
        module_task('info', 'sev_launch_info', {'domain': '{{ r_start.uuid }}'}),
        module_task('validate', 'sev_measurement_validate', {
            'launch_info': '{{ r_info }}', 'uri': 'qemu:///system', 'firmware': '{{ e2e_firmware }}',
            'kernel': omit_unless % ('e2e_kernel', 'e2e_kernel'),
            'initrd': omit_unless % ('e2e_initrd', 'e2e_initrd'),
            'cmdline': omit_unless % ('e2e_cmdline', 'e2e_cmdline'),
            'num_cpus': "{{ e2e_vcpus if e2e_es else omit }}",
            # the vCPU model's F/M/S enter SEV-ES VMSAs only; plain SEV refuses them
            'cpu_family': '{{ %d if e2e_es else omit }}' % e2e.EPYC_FMS[0],
            'cpu_model': '{{ %d if e2e_es else omit }}' % e2e.EPYC_FMS[1],
            'cpu_stepping': '{{ %d if e2e_es else omit }}' % e2e.EPYC_FMS[2],
            'tik': '{{ e2e_dir }}/tik', 'tek': '{{ e2e_dir }}/tek',
            'secrets': [{'guid': 'luks-key', 'path': '{{ e2e_dir }}/luks.key'}],
            'require_policy': "{{ ['NODBG', 'NOKS'] + (['ES'] if e2e_es else []) }}",
            'replay_dir': '{{ e2e_dir }}/seen'}),
        module_task('inject', 'sev_secret_inject', {
            'domain': '{{ r_start.uuid }}', 'expect_id': '{{ r_start.id }}',
            'header': '{{ r_validate.secret_header }}', 'payload': '{{ r_validate.secret_payload }}'}),
        {'name': 'read the secret area from guest memory, before resume', 'delegate_to': 'localhost',
         'ansible.builtin.command': {'argv': [
             '{{ ansible_playbook_python }}', E2E_PY, 'pmemsave', '--uri', '{{ e2e_uri }}',
             '--domain', '{{ r_start.uuid }}', '--gpa', str(e2e.SECRET_AREA_GPA),
             '--size', str(e2e.SECRET_AREA_SIZE), '--out', '{{ e2e_dir }}/secret-area.bin']},
         'register': 'r_memory', 'changed_when': False},
        module_task('before_resume', 'sev_launch_info', {'domain': '{{ r_start.uuid }}'}),
        module_task('resume', 'sev_domain', {'domain': '{{ r_start.uuid }}', 'state': 'resumed',
                                             'expect_id': '{{ r_start.id }}'}),
        module_task('after', 'sev_launch_info', {'domain': '{{ r_start.uuid }}'}),
        module_task('destroy', 'sev_domain', {'domain': '{{ r_start.uuid }}', 'state': 'destroyed',
                                              'expect_id': '{{ r_start.id }}'}),
    ]


class Launch:
    """One guest of a run: what the test set up and what it needs to check."""

    def __init__(self, hv, name, es, vcpus, directory, key, kernel=None, initrd=None, cmdline=None):
        self.hv, self.name, self.es, self.vcpus, self.dir, self.key = hv, name, es, vcpus, directory, key
        self.kernel, self.initrd, self.cmdline = kernel, initrd, cmdline
        self.policy = default_policy(es)


def run_launches(work, launches, ovmf, record, label):
    """Define each launch's guest (no session yet: the playbook sets a fresh one), run the flow on all
    their hosts at once; returns ({hostname: results}, {hostname: domain XML after}, output).
    Every guest defined here is destroyed and undefined before it returns."""
    guests = e2e.Guests()
    try:
        host_vars = {}
        for launch in launches:
            xml = sev_guest_xml(launch.name, ovmf, vcpus=launch.vcpus, es=launch.es, policy=launch.policy,
                                kernel=launch.kernel, initrd=launch.initrd, cmdline=launch.cmdline)
            guests.define(launch.hv, xml, launch.name)
            host_vars[launch.hv.hostname] = dict(
                e2e.lab_root_vars(launch.hv), e2e_guest=launch.name, e2e_dir=launch.dir, e2e_es=launch.es,
                e2e_vcpus=launch.vcpus, e2e_policy=launch.policy, e2e_firmware=ovmf, e2e_kernel=launch.kernel,
                e2e_initrd=launch.initrd, e2e_cmdline=launch.cmdline, e2e_uri=launch.hv.uri_ssh)
        hvs = [launch.hv for launch in launches]
        results, seconds, output = e2e.run_tasks(work, hvs, launch_tasks(), host_vars)
        record('e2e module flow (%s): one playbook, %d host(s) at once' % (label, len(hvs)), '%.1fs' % seconds)
        xml_after = {launch.hv.hostname: guests.lookup(launch.hv, launch.name).XMLDesc(0) for launch in launches}
        return results, xml_after, output
    finally:
        guests.cleanup()


def make_launch(tmp_path, hv, es, vcpus, **boot):
    directory = tmp_path / hv.hostname
    directory.mkdir(mode=0o700)
    key = os.urandom(32)
    e2e.write_private(directory / 'luks.key', key)
    return Launch(hv, e2e.unique('e2e-%s%d' % ('es' if es else 'sev', vcpus)), es, vcpus, str(directory), key,
                  **boot)


def check_launch(launch, res, xml_after):
    """Everything one successful launch must show; returns the emulator's record."""
    hv = launch.hv
    for task in ('node', 'session', 'start', 'info', 'validate', 'inject', 'before_resume', 'resume', 'after',
                 'destroy'):
        assert not res[task].get('failed'), '%s on %s: %s' % (task, hv.hostname, res[task])
    session, start, info, validate = res['session'], res['start'], res['info'], res['validate']
    # the chain was verified up to the emulated platform's lab root, and the result says so
    assert session['user_supplied_root'] is True and session['changed'] is True
    # started paused before anything ran, with the fresh session set in its definition first
    assert (start['changed'], start['state'], start['run_state'], start['launch_security_updated']) == \
        (True, 'paused', 'prelaunch', True), start
    assert start['id'] > 0 and start['name'] == launch.name
    assert info['id'] == start['id'] and info['run_state'] == 'prelaunch' and info['uuid'] == start['uuid']
    assert session['dh_cert'] in xml_after and session['session'] in xml_after
    recs = e2e.records_of(hv, launch.name)
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec['launch_start']['ok'] is True and rec['domain_uuid'] == start['uuid']
    assert (rec['sev_es'], rec['num_cpus'], rec['policy']) == (launch.es, launch.vcpus, launch.policy)
    assert rec['cpu_signature'] == list(e2e.EPYC_FMS)
    # the controller recomputed what the platform measured, and the host reported it honestly
    assert (validate['valid'], validate['reason'], validate['rc']) == (True, 'ok', 0), validate
    assert validate['launch_digest'] == rec['digest']
    assert validate['computed_measurement'] == rec['measurement'] == rec['measurement_reported']
    assert validate['replay']['mnonce'] == rec['mnonce']
    if launch.kernel:
        assert rec['kernel_hashes'] is True
        for what, path in (('kernel', launch.kernel), ('initrd', launch.initrd)):
            with open(path, 'rb') as f:
                assert rec[what + '_sha256'] == validate['digests'][what] == hashlib.sha256(f.read()).hexdigest()
        assert rec['cmdline_sha256'] == validate['digests']['cmdline']
    else:
        assert rec['kernel_hashes'] is False
    # one injection, accepted before resume, at the firmware's secret area
    assert res['inject']['changed'] is True
    assert len(rec['injections']) == 1, rec['injections']
    injection = rec['injections'][0]
    expected = (True, False, e2e.SECRET_AREA_GPA)
    assert (injection['accepted'], injection['after_finish'], injection['gpa']) == expected
    # read back from the guest's side before resume: the decrypted secret table with the LUKS key
    with open(os.path.join(launch.dir, 'secret-area.bin'), 'rb') as f:
        area = f.read()
    assert hashlib.sha256(area[:injection['length']]).hexdigest() == injection['secret_sha256']
    assert e2e.parse_secret_table(area) == {e2e.LUKS_KEY_GUID: launch.key}
    assert res['before_resume']['run_state'] == 'prelaunch'
    # then, and only then, it ran: the same launch (same ID, same QEMU)
    assert res['resume']['changed'] is True and res['after']['id'] == start['id']
    assert res['after']['run_state'] == 'running', res['after']
    assert rec['finished'] is True  # LAUNCH_FINISH: the emulator saw the first cont
    # destroyed at the end by the launch's ID (the guest's work is done)
    assert res['destroy']['destroyed'] is True
    return rec


def check_output_has_no_secret(output, launch):
    for form in (launch.key.hex(), base64.b64encode(launch.key).decode('ascii')):
        assert form not in output


# ---------------------------------------------------------------- tests ----

@pytest.mark.parametrize('es', [False, True], ids=['sev', 'sev-es'])
def test_matching_launch_delivers_the_luks_key_decrypted(emulated_hypervisors, ovmf, tmp_path, es, record):
    """SEV / SEV-ES with 1, 2 and 4 vCPUs (one per hypervisor, in one playbook): validated, key in
    guest memory before resume, one accepted injection in the platform's record, then resumed."""
    launches = [make_launch(tmp_path, hv, es, vcpus) for hv, vcpus in zip(emulated_hypervisors, VCPUS)]
    results, xml_after, output = run_launches(tmp_path, launches, ovmf, record, 'SEV-ES' if es else 'SEV')
    for launch in launches:
        rec = check_launch(launch, results[launch.hv.hostname], xml_after[launch.hv.hostname])
        check_output_has_no_secret(output, launch)
        record('e2e %s %d vCPU on %s' % ('SEV-ES' if es else 'SEV', launch.vcpus, launch.hv.hostname),
               'digest %s..., mnonce %s' % (rec['digest'][:16], rec['mnonce']))


def test_measured_direct_boot(emulated_hypervisors, ovmf, tmp_path, record):
    """kernel/initrd/cmdline with kernelHashes='yes' (SEV-ES, 2 vCPUs): the same flow validates and delivers."""
    hv = emulated_hypervisors[1]
    boot = {'kernel': e2e.stand_in_bzimage(str(tmp_path / 'vmlinuz')),
            'initrd': e2e.random_file(str(tmp_path / 'initrd.img'), 64 * 1024),
            'cmdline': 'console=ttyS0 root=/dev/mapper/root ro'}
    launch = make_launch(tmp_path, hv, True, 2, **boot)
    results, xml_after, output = run_launches(tmp_path, [launch], ovmf, record, 'SEV-ES direct boot')
    check_launch(launch, results[hv.hostname], xml_after[hv.hostname])
    check_output_has_no_secret(output, launch)
    assert "kernelHashes='yes'" in xml_after[hv.hostname]

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Emulated SEV hypervisors: real libvirtd and QEMU, the emulated platform (tests/platform).

Three hosts at once (sev-ehv1..3), reached over ssh like real ones; the guest
owner's side (session, secret packet) is the collection's engine, the
platform's side the independent emulator: a launch only works if both agree.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time

import libvirt
import pytest
from lxml import etree

from ansible_collections.confidential.sev.plugins.module_utils.sev.certs import parse_sev_cert
from ansible_collections.confidential.sev.plugins.module_utils.sev.launch_digest import compute_launch_digest
from ansible_collections.confidential.sev.plugins.module_utils.sev.measurement import compute_measure
from ansible_collections.confidential.sev.plugins.module_utils.sev.secrets import SecretTable, build_secret_packet
from ansible_collections.confidential.sev.plugins.module_utils.sev.session import create_session

from harness import e2e
from harness.hypervisor import DEFAULT_QEMU, EmulatedHypervisor
from harness.libvirtd import REGISTRY_DIR, processes_in_mntns, proc_starttime
from harness.sev_guest import default_policy, patched_ovmf, sev_guest_xml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HYPERVISOR_SH = os.path.join(REPO, 'scripts', 'hypervisor.sh')
# AmdSev's secret area, which patched_ovmf writes into the footer
SECRET_AREA_GPA, SECRET_AREA_SIZE = 0x810000, 0xc00
PAUSED = libvirt.VIR_DOMAIN_PAUSED
RUNNING = libvirt.VIR_DOMAIN_RUNNING


@pytest.fixture(scope='session')
def ovmf(tmp_path_factory):
    return patched_ovmf(str(tmp_path_factory.mktemp('sev-firmware') / 'OVMF_CODE.sev.fd'))


def session_for(conn, policy):
    """A fresh guest-owner session for the platform behind conn (its PDH from getSEVInfo)."""
    pdh = parse_sev_cert(base64.b64decode(conn.getSEVInfo()['pdh']), 'PDH')
    return create_session(pdh, policy)


def b64(data):
    return base64.b64encode(data).decode('ascii')


def unique(prefix):
    return '%s-%s' % (prefix, os.urandom(3).hex())


def alive(pid):
    """pid exists and is not a zombie (a daemonised sshd is reaped by init a moment later)."""
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii', errors='replace') as f:
            return f.read().rpartition(')')[2].split()[0] not in ('Z', 'X')
    except (OSError, IndexError):
        return False


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


class Guest:
    """An SEV guest started paused on one hypervisor; destroyed and undefined at exit."""

    def __init__(self, conn, name, xml):
        self.conn, self.name, self.xml = conn, name, xml
        self.dom = None

    def __enter__(self):
        return self

    def start_paused(self):
        self.dom = self.conn.defineXML(self.xml)
        self.dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        return self.dom

    def __exit__(self, *exc):
        try:
            dom = self.conn.lookupByName(self.name)
        except libvirt.libvirtError:
            return
        if dom.isActive():
            dom.destroy()
        dom.undefine()


def launch_record(hv, name):
    found = [r for r in hv.launches() if r.get('domain_name') == name]
    assert found, 'the emulator has no launch record of %s: %s' % (name, hv.launches())
    return found[-1]


# -------------------------------------------------------------- the hosts ----

def test_three_hypervisors_are_separate_hosts(emulated_hypervisors, record):
    hvs = emulated_hypervisors
    assert [hv.hostname for hv in hvs] == ['sev-ehv1', 'sev-ehv2', 'sev-ehv3']
    assert len({hv.addr for hv in hvs}) == 3 and len({hv.slot for hv in hvs}) == 3
    me = socket.gethostname()
    for hv in hvs:
        # over ssh, like a real host: its name, its daemon
        assert hv.ssh('hostname').stdout.strip() == hv.hostname != me
        conn = libvirt.open(hv.uri_ssh)
        try:
            assert conn.getHostname() == hv.hostname
        finally:
            conn.close()
        for ns in ('net', 'uts', 'mnt'):
            assert os.readlink('/proc/%d/ns/%s' % (hv.proc.pid, ns)) != os.readlink('/proc/self/ns/' + ns)
    assert len({os.readlink('/proc/%d/ns/net' % hv.proc.pid) for hv in hvs}) == 3
    # the platforms are three: three PDHs
    assert len({hv.node_sev()['pdh'] for hv in hvs}) == 3
    record('emulated hypervisors', ', '.join('%s %s' % (hv.hostname, hv.addr) for hv in hvs))


def test_namespace_has_dev_sev_and_the_emulator_as_default_qemu(emulated_hv):
    hv = emulated_hv
    assert not os.path.exists('/dev/sev'), 'this machine has no /dev/sev; the harness must not make one'
    out = hv.ssh("stat -c '%F %t:%T' /dev/sev").stdout.strip()
    assert out == 'character special file 1:3'
    # /dev/kvm and the sub-mounts are there too
    assert hv.ssh('test', '-c', '/dev/kvm', '-a', '-d', '/dev/pts', '-a', '-c', '/dev/null').returncode == 0
    with open(DEFAULT_QEMU, 'rb') as f:
        real_sha = hashlib.sha256(f.read()).hexdigest()
    with open(hv.launcher, 'rb') as f:
        launcher_sha = hashlib.sha256(f.read()).hexdigest()
    inside = dict(reversed(line.split()) for line in hv.ssh('sha256sum', DEFAULT_QEMU, hv.real_qemu)
                  .stdout.splitlines())
    assert inside[DEFAULT_QEMU] == launcher_sha != real_sha
    assert inside[hv.real_qemu] == real_sha
    # outside, the bind target is the empty file it was made as
    assert os.path.getsize(hv.real_qemu) == 0
    with open(hv.path('etc', 'qemu.conf'), encoding='utf-8') as f:
        conf = f.read()
    for line in ('user = "root"', 'group = "root"', 'namespaces = [ ]'):
        assert line in conf.splitlines()
    # the capability cache is the run directory's
    assert os.listdir(hv.path('cache', 'qemu', 'capabilities'))


def test_node_sev_info_is_the_emulated_platform(emulated_hypervisors, record):
    for hv in emulated_hypervisors:
        expected = hv.node_sev()
        conn = libvirt.open(hv.uri_ssh)
        try:
            info = conn.getSEVInfo()
        finally:
            conn.close()
        for key in ('pdh', 'cert-chain', 'cpu0-id'):
            assert info[key] == expected[key], key
        assert info['cbitpos'] == 47 and info['reduced-phys-bits'] == 1
        with open(os.path.join(hv.export_dir, 'pdh.cert'), 'rb') as f:
            assert base64.b64decode(info['pdh']) == f.read()
        with open(os.path.join(hv.export_dir, 'cert_chain.bin'), 'rb') as f:
            assert base64.b64decode(info['cert-chain']) == f.read()
        virsh = subprocess.run(['virsh', '-c', hv.uri_ssh, 'nodesevinfo'], capture_output=True, text=True,
                               timeout=60, check=True).stdout
        fields = dict(re.split(r'\s*:\s*', line.strip(), maxsplit=1) for line in virsh.splitlines() if ':' in line)
        assert fields['pdh'] == expected['pdh'] and fields['cpu0-id'] == expected['cpu0-id']
    record('virsh nodesevinfo (sev-ehv3)', ', '.join(sorted(fields)))


# ------------------------------------------------------------- launches ----

@pytest.mark.parametrize('es,vcpus', [(False, 1), (True, 2)], ids=['sev', 'sev-es'])
def test_launch_measure_inject_resume(emulated_hv, ovmf, es, vcpus, record):
    hv = emulated_hv
    conn = libvirt.open(hv.uri_ssh)
    policy = default_policy(es)
    session = session_for(conn, policy)
    name = unique('sev-es' if es else 'sev')
    xml = sev_guest_xml(name, ovmf, vcpus=vcpus, es=es, policy=policy,
                        dh_cert=b64(session.godh), session=b64(session.session))
    t0 = time.monotonic()
    try:
        with Guest(conn, name, xml) as guest:
            dom = guest.start_paused()
            assert dom.state()[0] == PAUSED
            started = time.monotonic() - t0
            info = dom.launchSecurityInfo()
            blob = base64.b64decode(info['sev-measurement'])
            assert len(blob) == 48
            rec = launch_record(hv, name)
            assert rec['launch_start']['ok'] is True
            assert rec['sev_es'] is es and rec['num_cpus'] == vcpus and rec['policy'] == policy
            assert rec['domain_uuid'] == dom.UUIDString()
            # the emulator's record and libvirt's answer agree ...
            assert base64.b64decode(rec['measurement']) == blob
            assert base64.b64decode(rec['measurement_reported']) == blob
            assert rec['mnonce'] == blob[32:].hex()
            with open(ovmf, 'rb') as f:
                assert rec['firmware_sha256'] == hashlib.sha256(f.read()).hexdigest()
            # ... and the MAC is keyed with the TIK of our session (the platform unwrapped it)
            args = (info['sev-api-major'], info['sev-api-minor'], info['sev-build-id'], info['sev-policy'])
            assert args[3] == policy
            assert compute_measure(session.keys.tik, *args, bytes.fromhex(rec['digest']), blob[32:]) == blob[:32]
            if not es:
                # plain SEV without a kernel: the digest is the firmware's, as the engine computes it
                assert compute_launch_digest(ovmf).digest == bytes.fromhex(rec['digest'])

            table = SecretTable()
            table.add('luks-key', os.urandom(32))
            plaintext = table.build()
            header, payload = build_secret_packet(session.keys, blob[:32], plaintext)
            dom.setLaunchSecurityState({
                libvirt.VIR_DOMAIN_LAUNCH_SECURITY_SEV_SECRET_HEADER: b64(header),
                libvirt.VIR_DOMAIN_LAUNCH_SECURITY_SEV_SECRET: b64(payload)}, 0)
            # the guest's memory at the secret area holds the decrypted table
            assert hv.read_guest_memory(dom, SECRET_AREA_GPA, len(plaintext)) == plaintext
            rec = launch_record(hv, name)
            assert [i['accepted'] for i in rec['injections']] == [True]
            assert rec['injections'][0]['gpa'] == SECRET_AREA_GPA
            assert rec['finished'] is False

            dom.resume()
            assert dom.state()[0] == RUNNING
            assert wait_until(lambda: launch_record(hv, name)['finished'])
            record('%s launch (%d vCPU): start paused / measure..resume' % ('SEV-ES' if es else 'SEV', vcpus),
                   '%.2fs / %.2fs' % (started, time.monotonic() - t0))
    finally:
        conn.close()


def test_session_for_another_platform_fails_with_bad_measurement(emulated_hypervisors, ovmf, record):
    hv, other = emulated_hypervisors[0], emulated_hypervisors[1]
    conn, other_conn = libvirt.open(hv.uri_ssh), libvirt.open(other.uri_ssh)
    try:
        policy = default_policy()
        session = session_for(other_conn, policy)  # made for sev-ehv2's PDH
        name = unique('sev-wrong')
        xml = sev_guest_xml(name, ovmf, policy=policy, dh_cert=b64(session.godh), session=b64(session.session))
        with Guest(conn, name, xml) as guest:
            with pytest.raises(libvirt.libvirtError) as info:
                guest.start_paused()
            record('start with a session for another PDH', info.value.get_error_message())
            assert 'Bad measurement' in info.value.get_error_message()
            assert not conn.lookupByName(name).isActive()
            assert name not in [conn.lookupByID(i).name() for i in conn.listDomainsID()]
            rec = launch_record(hv, name)
            assert rec['launch_start']['ok'] is False and rec['launch_start']['fw_error'] == 11
            assert rec['qemu_pid'] is None or wait_until(lambda: not alive(rec['qemu_pid']), 10)
    finally:
        conn.close()
        other_conn.close()


def test_guest_xml_shape(ovmf):
    """What sev_guest_xml writes (the launches above show libvirt accepts and boots it)."""
    plain = etree.fromstring(sev_guest_xml('g', ovmf))
    assert plain.get('type') == 'qemu'
    assert plain.find('os/type').get('machine') == 'q35'
    loader = plain.find('os/loader')
    assert (loader.get('type'), loader.get('readonly'), loader.get('stateless'), loader.text) == \
        ('pflash', 'yes', 'yes', ovmf)
    assert plain.find('os/nvram') is None
    assert plain.find('cpu/model').text == 'EPYC' and plain.find('cpu/model').get('fallback') == 'forbid'
    sec = plain.find('launchSecurity')
    assert sec.get('type') == 'sev' and sec.get('kernelHashes') is None
    assert (sec.findtext('cbitpos'), sec.findtext('reducedPhysBits'), sec.findtext('policy')) == ('47', '1', '0x0003')
    assert plain.findtext('memory') == '256' and plain.findtext('vcpu') == '1'
    es = etree.fromstring(sev_guest_xml('g', ovmf, vcpus=2, es=True, kernel='/k', initrd='/i', cmdline='c',
                                        dh_cert='RA==', session='Uw=='))
    assert es.find('launchSecurity').get('kernelHashes') == 'yes'
    assert es.findtext('launchSecurity/policy') == '0x0007' and es.findtext('vcpu') == '2'
    assert (es.findtext('launchSecurity/dhCert'), es.findtext('launchSecurity/session')) == ('RA==', 'Uw==')
    assert (es.findtext('os/kernel'), es.findtext('os/initrd'), es.findtext('os/cmdline')) == ('/k', '/i', 'c')
    with pytest.raises(ValueError, match='vcpus'):
        sev_guest_xml('g', ovmf, vcpus=0)
    with pytest.raises(ValueError, match='need a kernel'):
        sev_guest_xml('g', ovmf, initrd='/i')


# ------------------------------------------------------ hypervisor.sh ----

def hypervisor_sh(*args, check=True):
    res = subprocess.run(['bash', HYPERVISOR_SH] + list(args), capture_output=True, text=True, timeout=180,
                         check=False)
    if check and res.returncode != 0:
        raise AssertionError('hypervisor.sh %s: exit %d\n%s%s' % (' '.join(args), res.returncode,
                                                                  res.stdout, res.stderr))
    return res


def test_hypervisor_sh_start_status_stop_leaves_nothing(tmp_path, ovmf, record):
    """start twice (at once, then again) = one instance; a guest runs on it; stop twice = ok; nothing is left."""
    state = str(tmp_path / 'hv-state')
    name = 'sev-shtest'
    t0 = time.monotonic()
    # two starts at once end with one instance
    starts = [subprocess.Popen(['bash', HYPERVISOR_SH, 'start', name, '--state-dir', state],  # pylint: disable=consider-using-with
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for dummy in range(2)]
    outputs = [p.communicate(timeout=180) for p in starts]
    started = time.monotonic() - t0
    stopped = False
    try:
        assert [p.returncode for p in starts] == [0, 0], outputs
        first = json.loads(outputs[0][0])
        assert json.loads(outputs[1][0]) == first
        again = json.loads(hypervisor_sh('start', name, '--state-dir', state).stdout)
        assert again == first  # the same instance, the same status
        status = hypervisor_sh('status', name, '--state-dir', state)
        assert json.loads(status.stdout) == first
        for key in ('hostname', 'addr', 'uris', 'ansible_host_vars', 'state_dir', 'export_dir', 'inventory'):
            assert first[key], key
        assert first['hostname'] == name and first['running'] is True
        with open(os.path.join(state, name + '.pid'), encoding='ascii') as f:
            holder = int(f.read())
        assert holder == first['holder_pid'] and proc_starttime(holder) == first['holder_starttime']

        # what to check afterwards, by the ids the instance recorded
        rundir = first['rundir']
        record_path = os.path.join(REGISTRY_DIR, os.path.basename(rundir) + '.json')
        with open(record_path, encoding='utf-8') as f:
            rec = json.load(f)
        assert rec['rundir'] == rundir and rec['pid'] == first['pid']

        # a host like the others: ssh, SEV info, a paused SEV guest (so a QEMU runs at stop)
        conn = libvirt.open(first['uris']['ssh'])
        try:
            assert conn.getHostname() == name
            with open(os.path.join(first['export_dir'], 'node_sev.json'), encoding='utf-8') as f:
                assert conn.getSEVInfo()['pdh'] == json.load(f)['pdh']
            session = session_for(conn, default_policy())
            xml = sev_guest_xml('sev-shguest', ovmf, dh_cert=b64(session.godh), session=b64(session.session))
            conn.defineXML(xml).createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        finally:
            conn.close()
        pids = processes_in_mntns(rec['mntns'], rundir)
        assert len(pids) >= 3 and first['pid'] in pids  # libvirtd, sshd, QEMU

        t1 = time.monotonic()
        stop = hypervisor_sh('stop', name, '--state-dir', state)
        stopped = True
        record('hypervisor.sh start / stop (with a paused SEV guest)',
               '%.2fs / %.2fs' % (started, time.monotonic() - t1))
        assert 'stopped' in stop.stderr
        assert 'was not running' in hypervisor_sh('stop', name, '--state-dir', state).stderr
        assert hypervisor_sh('status', name, '--state-dir', state, check=False).returncode == 3

        assert not alive(holder)
        assert not any(alive(p) for p in pids)
        assert not processes_in_mntns(rec['mntns'], rundir)
        assert not os.path.exists(rundir) and not os.path.exists(record_path)
        assert rec['veth_ifindex'] not in _ifindexes()
        with open('/proc/self/mountinfo', encoding='utf-8') as f:
            assert rundir not in f.read()
        assert not os.path.exists('/dev/sev')
        # the platform (its PDH) stays for the next start; --purge removes it and the log
        assert sorted(os.listdir(state)) == [name + '.log', name + '.platform']
        hypervisor_sh('stop', name, '--state-dir', state, '--purge')
        assert os.listdir(state) == []
    finally:
        if not stopped:
            hypervisor_sh('stop', name, '--state-dir', state, check=False)


def _ifindexes():
    found = set()
    for link in os.listdir('/sys/class/net'):
        with open('/sys/class/net/%s/ifindex' % link, encoding='ascii') as f:
            found.add(int(f.read()))
    return found


def test_stopping_an_emulated_hypervisor_leaves_nothing(record):
    """The pytest-side class: stop() removes all it recorded (also a kept state_dir stays)."""
    hv = EmulatedHypervisor(name='ehvstop', hostname='sev-ehvstop', emulate=False)
    hv.start()
    try:
        rundir, mntns, ifindex, record_path = hv.rundir, hv.mntns, _ifindex_of(hv.veth), hv.record_path
        pids = hv.pids()
        assert hv.proc.pid in pids and len(pids) >= 2  # libvirtd, sshd
        assert hv.ssh('test', '-c', '/dev/sev').returncode == 0
    finally:
        hv.stop()
    assert not any(alive(p) for p in pids)
    assert not processes_in_mntns(mntns, rundir)
    assert ifindex not in _ifindexes()
    assert not os.path.exists(rundir) and not os.path.exists(record_path)
    assert not os.path.exists('/dev/sev')
    record('emulated hypervisor (pass-through) start+stop', 'ok')


def _ifindex_of(link):
    with open('/sys/class/net/%s/ifindex' % link, encoding='ascii') as f:
        return int(f.read())


def test_hypervisor_sh_stop_sweeps_an_instance_whose_holder_was_killed(tmp_path, record):
    """SIGKILL of the holder drops its locks; stop then removes exactly that instance, by its record."""
    state = str(tmp_path / 'hv-state')
    name = 'sev-shkill'
    status = json.loads(hypervisor_sh('start', name, '--state-dir', state, '--passthrough').stdout)
    rundir = status['rundir']
    record_path = os.path.join(REGISTRY_DIR, os.path.basename(rundir) + '.json')
    with open(record_path, encoding='utf-8') as f:
        rec = json.load(f)
    pids = processes_in_mntns(rec['mntns'], rundir)
    try:
        os.kill(status['holder_pid'], signal.SIGKILL)
        assert wait_until(lambda: not alive(status['holder_pid']), 10)
        # the instance outlives its holder until somebody sweeps it
        assert alive(status['pid'])
        assert hypervisor_sh('status', name, '--state-dir', state, check=False).returncode == 3
    finally:
        stop = hypervisor_sh('stop', name, '--state-dir', state)
    record('hypervisor.sh stop after SIGKILL of the holder', stop.stderr.strip().replace('\n', '; '))
    assert 'was not running' in stop.stderr and 'run directory ' + rundir in stop.stderr
    assert not any(alive(p) for p in pids)
    assert not os.path.exists(rundir) and not os.path.exists(record_path)
    assert rec['veth_ifindex'] not in _ifindexes()
    assert os.listdir(state) == [name + '.log']  # pass-through: no platform state


def test_direct_boot_kernel_hashes_are_measured(emulated_hypervisors, ovmf, tmp_path, record):
    """kernelHashes='yes': the record's digest is what the engine computes from firmware, kernel, initrd, cmdline."""
    hv = emulated_hypervisors[2]
    kernel = e2e.stand_in_bzimage(str(tmp_path / 'vmlinuz'))
    initrd = str(tmp_path / 'initrd.img')
    with open(initrd, 'wb') as f:
        f.write(os.urandom(64 * 1024))
    cmdline = 'console=ttyS0 root=/dev/mapper/root ro'
    conn = libvirt.open(hv.uri_ssh)
    try:
        policy = default_policy()
        session = session_for(conn, policy)
        name = unique('sev-kernel')
        xml = sev_guest_xml(name, ovmf, policy=policy, dh_cert=b64(session.godh), session=b64(session.session),
                            kernel=kernel, initrd=initrd, cmdline=cmdline)
        with Guest(conn, name, xml) as guest:
            dom = guest.start_paused()
            info = dom.launchSecurityInfo()
            blob = base64.b64decode(info['sev-measurement'])
            rec = launch_record(hv, name)
            assert rec['kernel_hashes'] is True
            with open(kernel, 'rb') as f:
                assert rec['kernel_sha256'] == hashlib.sha256(f.read()).hexdigest()
            expected = compute_launch_digest(ovmf, kernel, initrd, cmdline.encode()).digest
            assert bytes.fromhex(rec['digest']) == expected
            args = (info['sev-api-major'], info['sev-api-minor'], info['sev-build-id'], info['sev-policy'])
            assert args == (1, 55, 21, policy)  # EmulatedHypervisor's api='1.55', build_id=21
            assert compute_measure(session.keys.tik, *args, expected, blob[32:]) == blob[:32]
            record('SEV direct boot with kernel hashes: digest', rec['digest'])
    finally:
        conn.close()


def test_faults_reach_the_platform_through_libvirt(emulated_hypervisors, ovmf, record):
    """set_faults/clear_faults: a refused injection is a libvirt error; a cleared fault is gone."""
    hv = emulated_hypervisors[1]
    conn = libvirt.open(hv.uri_ssh)
    name = unique('sev-fault')
    try:
        policy = default_policy()
        session = session_for(conn, policy)
        xml = sev_guest_xml(name, ovmf, policy=policy, dh_cert=b64(session.godh), session=b64(session.session))
        hv.set_faults({name: {'inject_refused': True}})
        with Guest(conn, name, xml) as guest:
            dom = guest.start_paused()
            blob = base64.b64decode(dom.launchSecurityInfo()['sev-measurement'])
            table = SecretTable()
            table.add('luks-key', os.urandom(32))
            header, payload = build_secret_packet(session.keys, blob[:32], table.build())
            params = {libvirt.VIR_DOMAIN_LAUNCH_SECURITY_SEV_SECRET_HEADER: b64(header),
                      libvirt.VIR_DOMAIN_LAUNCH_SECURITY_SEV_SECRET: b64(payload)}
            with pytest.raises(libvirt.libvirtError) as info:
                dom.setLaunchSecurityState(params, 0)
            record('setLaunchSecurityState under the inject_refused fault', info.value.get_error_message())
            rec = launch_record(hv, name)
            assert rec['faults_applied'] == ['inject_refused']
            assert [i['accepted'] for i in rec['injections']] == [False]
            # nothing reached the secret area
            assert hv.read_guest_memory(dom, SECRET_AREA_GPA, 16) != table.build()[:16]
            hv.clear_faults()
            dom.setLaunchSecurityState(params, 0)
            assert [i['accepted'] for i in launch_record(hv, name)['injections']] == [False, True]
    finally:
        hv.clear_faults()
        conn.close()

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The EMULATED platform's reading and rewriting of libvirt 9.0's QEMU command lines, its records and faults."""

from __future__ import annotations

import ast
import json
import os
import stat

import pytest

from ansible_collections.confidential.sev.tests.platform import emulator_records as records
from ansible_collections.confidential.sev.tests.platform import qemu_args as qa
from ansible_collections.confidential.sev.tests.platform import qemu_emulator as emu
from ansible_collections.confidential.sev.tests.platform import qmp_proxy

SEV_OBJECT = ('{"qom-type":"sev-guest","id":"lsec0","cbitpos":47,"reduced-phys-bits":1,"policy":7,'
              '"dh-cert-file":"/var/lib/libvirt/qemu/domain-1-g,1/dh_cert.base64",'
              '"session-file":"/var/lib/libvirt/qemu/domain-1-g,1/session.base64","kernel-hashes":true}')
# A domain command line as libvirt 9.0 writes it (trimmed to what matters, order kept).
LIBVIRT_ARGV = [
    '-name', 'guest=g,,1,debug-threads=on', '-S',
    '-object', '{"qom-type":"secret","id":"masterKey0","format":"raw","file":"/var/lib/libvirt/qemu/m.aes"}',
    '-blockdev', '{"driver":"file","filename":"/fw/OVMF_CODE.fd","node-name":"libvirt-pflash0-storage",'
                 '"auto-read-only":true,"discard":"unmap"}',
    '-blockdev', '{"node-name":"libvirt-pflash0-format","read-only":true,"driver":"raw",'
                 '"file":"libvirt-pflash0-storage"}',
    '-machine', 'pc-q35-7.2,usb=off,dump-guest-core=off,memory-backend=pc.ram,confidential-guest-support=lsec0,'
                'pflash0=libvirt-pflash0-format',
    '-accel', 'tcg', '-cpu', 'EPYC-Rome,x2apic=on', '-m', '4096',
    '-object', '{"qom-type":"memory-backend-ram","id":"pc.ram","size":4294967296}',
    '-overcommit', 'mem-lock=off', '-smp', '4,sockets=4,cores=1,threads=1',
    '-uuid', '0523360a-7403-45c5-9d82-1882ff4106ab', '-display', 'none', '-no-user-config', '-nodefaults',
    '-chardev', 'socket,id=charmonitor,fd=24,server=on,wait=off',
    '-mon', 'chardev=charmonitor,id=monitor,mode=control', '-rtc', 'base=utc', '-no-shutdown',
    '-kernel', '/boot/vmlinuz', '-initrd', '/boot/initrd.img', '-append', 'console=ttyS0 quiet',
    '-object', SEV_OBJECT,
    '-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny', '-msg', 'timestamp=on']
PROBE_ARGV = ['-S', '-no-user-config', '-nodefaults', '-nographic', '-machine', 'none,accel=kvm:tcg',
              '-qmp', 'unix:/var/lib/libvirt/qemu/qmp-x/qmp.monitor,server=on,wait=off',
              '-pidfile', '/var/lib/libvirt/qemu/qmp-x/qmp.pid', '-daemonize']


def test_opts_escaping_round_trip():
    assert qa.split_opts('guest=g,,1,debug-threads=on') == ['guest=g,1', 'debug-threads=on']
    assert qa.join_opts(['guest=g,1', 'x']) == 'guest=g,,1,x'
    assert qa.parse_opts('sev-guest,id=s,policy=0x5', implied='qom-type')[0] == ('qom-type', 'sev-guest')


def test_reads_a_libvirt_domain_command_line():
    command = qa.QemuCommand(LIBVIRT_ARGV)
    assert (command.name, command.uuid, command.paused) == ('g,1', '0523360a-7403-45c5-9d82-1882ff4106ab', True)
    assert command.firmware == '/fw/OVMF_CODE.fd' and command.machine_type == 'pc-q35-7.2'
    assert (command.kernel, command.initrd, command.cmdline) == ('/boot/vmlinuz', '/boot/initrd.img',
                                                                 'console=ttyS0 quiet')
    assert (command.cpu, command.num_cpus(), command.ram_size()) == ('EPYC-Rome,x2apic=on', 4, 4 << 30)
    assert command.monitor() == ('fd', 24, 'charmonitor')
    sev = command.sev_settings()
    assert (sev['policy'], sev['cbitpos'], sev['reduced_phys_bits'], sev['kernel_hashes']) == (7, 47, 1, True)
    assert sev['dh_cert_file'].endswith('g,1/dh_cert.base64')


def test_rewrite_for_the_real_qemu():
    command = qa.QemuCommand(LIBVIRT_ARGV)
    out = command.rewritten(7, '/state/mem/launch-3.ram')
    text = ' '.join(out)
    assert 'sev-guest' not in text and 'confidential-guest-support' not in text
    assert out[out.index('-machine') + 1] == ('pc-q35-7.2,usb=off,dump-guest-core=off,memory-backend=pc.ram,'
                                              'pflash0=libvirt-pflash0-format')
    memory = [json.loads(out[i + 1]) for i, arg in enumerate(out) if arg == '-object' and 'pc.ram' in out[i + 1]]
    assert memory == [{'qom-type': 'memory-backend-file', 'id': 'pc.ram', 'size': 4 << 30,
                       'mem-path': '/state/mem/launch-3.ram', 'share': True}]
    assert out[out.index('-chardev') + 1] == 'socket,id=charmonitor,fd=7,server=on,wait=off'
    assert 'fd=24' not in text
    assert out[out.index('-name') + 1] == 'guest=g,,1,debug-threads=on'  # untouched options kept verbatim
    assert [out[i + 1] for i, arg in enumerate(out) if arg == '-L'] == list(qa.DATA_DIRS)
    # Everything else is kept in order.
    kept = [arg for arg in LIBVIRT_ARGV if arg not in (SEV_OBJECT,)]
    assert [arg for arg in out if arg in kept and arg.startswith('-')][:12] == \
        [arg for arg in kept if arg.startswith('-')][:12]


def test_rewrite_adds_a_shared_backend_when_there_is_none():
    command = qa.QemuCommand(['-machine', 'q35,confidential-guest-support=s', '-m', '256',
                              '-object', 'sev-guest,id=s,cbitpos=47,reduced-phys-bits=1,policy=0x1',
                              '-qmp', 'unix:/tmp/x.sock,server=on,wait=off'])
    assert command.sev_settings()['policy'] == 1 and command.ram_size() == 256 << 20
    out = command.rewritten(9, '/m/ram')
    assert out[out.index('-machine') + 1] == 'q35,memory-backend=pc.ram'
    assert json.loads(out[out.index('-object') + 1])['mem-path'] == '/m/ram'
    assert out[out.index('-chardev') + 1] == 'socket,id=sev-emulator-qmp,fd=9,server=on,wait=off'
    assert out[out.index('-mon') + 1] == 'chardev=sev-emulator-qmp,mode=control'


def test_probe_command_line():
    command = qa.QemuCommand(PROBE_ARGV)
    assert command.daemonize and command.pidfile == '/var/lib/libvirt/qemu/qmp-x/qmp.pid'
    assert command.monitor() == ('path', '/var/lib/libvirt/qemu/qmp-x/qmp.monitor', None)
    out = command.rewritten(5, None)
    assert '-qmp' not in out and 'socket,id=sev-emulator-qmp,fd=5,server=on,wait=off' in out
    assert out[out.index('-machine') + 1] == 'none,accel=kvm:tcg' and '-daemonize' in out


@pytest.mark.parametrize('argv', [['-bios', '/fw/OVMF.fd'],
                                  ['-drive', 'file=/fw/OVMF.fd,if=pflash,format=raw,unit=0,readonly=on']])
def test_firmware_as_rom_or_pflash_drive(argv):
    assert qa.QemuCommand(argv + ['-drive', 'file=/vars.fd,if=pflash,format=raw,unit=1']).firmware == '/fw/OVMF.fd'


@pytest.mark.parametrize('smp, count', [(None, 1), ('2', 2), ('cpus=3,sockets=3', 3), ('sockets=2,cores=2', 4)])
def test_vcpu_count(smp, count):
    assert qa.QemuCommand(['-smp', smp] if smp else []).num_cpus() == count


def test_ram_offsets():
    assert qa.ram_offset('pc-q35-7.2', 256 << 20, 0x810000, 64) == 0x810000
    assert qa.ram_offset('pc-q35-7.2', 256 << 20, (256 << 20) - 8, 16) is None
    assert qa.ram_offset('pc-q35-7.2', 4 << 30, 0x100000000, 16) == 0x80000000  # above 4 GiB after 2 GiB low
    assert qa.ram_offset('pc-i440fx-7.2', 4 << 30, 0x100000000, 16) == 0xc0000000
    assert qa.ram_offset('pc-q35-7.2', 4 << 30, 0x90000000, 16) is None  # the PCI hole


def test_lenient_base64_like_glib():
    assert qmp_proxy.lenient_b64decode('aGVs\nbG8=') == b'hello'
    assert qmp_proxy.lenient_b64decode('!!!') == b''


def test_messages_split_across_reads():
    stream = qmp_proxy.MessageStream()
    assert stream.feed(b'{"execute": "a", "id": "\xc3') == []
    messages = stream.feed(b'\xa9"}\r\n{"return": {}}\r\n{"x"')
    assert [message for message, raw in messages] == [{'execute': 'a', 'id': '\u00e9'}, {'return': {}}]
    assert messages[0][1].endswith(b'\r\n')


# ---- records and faults -------------------------------------------------------------------------------

def test_records_sorted_and_atomic(tmp_path):
    state = str(tmp_path)
    assert records.load_launches(state) == []
    seqs = [records.next_seq(state) for dummy in range(3)]
    assert seqs == [1, 2, 3]
    for seq in reversed(seqs):
        records.save_launch(state, {'seq': seq, 'domain_name': 'd%d' % seq})
    assert [rec['seq'] for rec in records.load_launches(state)] == [1, 2, 3]
    assert stat.S_IMODE(os.stat(records.record_path(state, 1)).st_mode) == 0o600
    assert not [name for name in os.listdir(records.records_dir(state)) if name.endswith('.tmp')]


def test_faults_by_domain_then_star(tmp_path):
    state = str(tmp_path)
    assert records.active_faults(state, 'a') == set()
    records.set_faults(state, {'a': {'measure_fails': True, 'inject_refused': False}, '*': {'replay_measurement': True}})
    assert records.active_faults(state, 'a') == {'measure_fails'}
    assert records.active_faults(state, 'b') == {'replay_measurement'}
    records.clear_faults(state)
    assert records.active_faults(state, 'b') == set()
    with pytest.raises(ValueError, match='unknown fault'):
        records.set_faults(state, {'a': {'measure_fail': True}})
    (tmp_path / 'faults.json').write_text('{broken')
    with pytest.raises(ValueError, match='faults.json is not valid JSON'):
        records.active_faults(state, 'a')


def test_init_is_idempotent_and_exports(tmp_path):
    state = str(tmp_path / 'state')
    platform, created = emu.init_state(state, (1, 51), 3)
    assert created and platform.api == (1, 51)
    exported = {name: (tmp_path / 'state' / 'export' / name).read_bytes() for name in emu.EXPORT_FILES}
    again, created = emu.init_state(state, (1, 55), 21)
    assert not created and again.api == (1, 51) and again.pdh_cert == platform.pdh_cert
    assert exported == {name: (tmp_path / 'state' / 'export' / name).read_bytes() for name in emu.EXPORT_FILES}
    node = json.loads(exported['node_sev.json'])
    assert sorted(node) == sorted(emu.NODE_SEV_KEYS) and node['cbitpos'] == 47 and node['reduced-phys-bits'] == 1
    assert len(exported['cert_chain.bin']) == 3 * 2084 and exported['pdh.cert'] == platform.pdh_cert
    for name in os.listdir(os.path.join(state, 'platform')):
        assert stat.S_IMODE(os.stat(os.path.join(state, 'platform', name)).st_mode) == 0o600
    launcher = emu.write_launcher(state, '/usr/bin/qemu-system-x86_64', str(tmp_path / 'qemu'))
    text = (tmp_path / 'qemu').read_text()
    assert os.access(launcher, os.X_OK) and 'EMULATED' in text and 'PYTHONPATH=' in text
    assert ' run --state %s --real-qemu /usr/bin/qemu-system-x86_64 -- "$@"' % os.path.abspath(state) in text


def test_the_platform_imports_nothing_from_plugins():
    """A mistake shared with the guest owner's side must not be able to pass the end-to-end tests."""
    here = os.path.dirname(os.path.abspath(__file__))
    checked = 0
    for name in sorted(os.listdir(here)):
        if not name.endswith('.py'):
            continue
        with open(os.path.join(here, name), encoding='utf-8') as stream:
            tree = ast.parse(stream.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or '']
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            assert not [module for module in modules if 'plugins' in module.split('.')], (name, modules)
        checked += 1
    assert checked >= 10

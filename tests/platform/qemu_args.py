# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and rewriting the QEMU command line libvirt 9.0 builds, for the EMULATED SEV platform.

What is read: the ``sev-guest`` object (JSON or key=value), the machine, the firmware
(``-blockdev`` node ``libvirt-pflash0-storage``, ``-drive if=pflash,unit=0`` or ``-bios``),
``-kernel/-initrd/-append``, ``-smp``, ``-cpu``, ``-m`` and the ``pc.ram`` backend,
``-name``/``-uuid``, the QMP monitor (``-chardev socket,...,fd=N|path=P`` with ``-mon
...,mode=control``, or ``-qmp unix:P,...``), ``-S``, ``-daemonize``, ``-pidfile``.

What the real QEMU gets instead: no ``sev-guest`` object and no ``confidential-guest-support``
(a QEMU without SEV refuses both); guest RAM as a shared file under the emulator's state (so a
secret written there is what the guest sees); its monitor on the emulator's own socket fd;
``-L`` data directories for a relocated binary.
"""

from __future__ import annotations

import json

DATA_DIRS = ('/usr/share/qemu', '/usr/share/seabios', '/usr/lib/ipxe/qemu')
MODULE_DIR = '/usr/lib/x86_64-linux-gnu/qemu'
MEMORY_ID = 'pc.ram'


class ArgsError(Exception):
    """The command line cannot be read as a QEMU command line."""


# ---- QemuOpts ("key=value,key=value" with ",," as an escaped comma) -------------------------------

def split_opts(text):
    """'a,b=c,,d' -> ['a', 'b=c,d']."""
    parts, current, index = [], [], 0
    while index < len(text):
        char = text[index]
        if char == ',':
            if text[index + 1:index + 2] == ',':
                current.append(',')
                index += 2
                continue
            parts.append(''.join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append(''.join(current))
    return parts


def join_opts(parts):
    return ','.join(part.replace(',', ',,') for part in parts)


def parse_opts(text, implied=None):
    """An ordered list of (key, value) pairs; a first bare word gets the key ``implied``."""
    pairs = []
    for position, part in enumerate(split_opts(text)):
        if '=' in part:
            key, value = part.split('=', 1)
        elif position == 0 and implied:
            key, value = implied, part
        else:
            key, value = part, 'on'
        pairs.append((key, value))
    return pairs


def object_props(value):
    """The properties of an ``-object``/``-blockdev`` value, JSON or QemuOpts."""
    if value.lstrip().startswith('{'):
        try:
            props = json.loads(value)
        except ValueError as exc:
            raise ArgsError('not JSON: %s (%s)' % (value[:80], exc))
        if not isinstance(props, dict):
            raise ArgsError('not a JSON object: %s' % value[:80])
        return props
    return dict(parse_opts(value, implied='qom-type'))


def to_bool(value):
    if isinstance(value, bool):
        return value
    return str(value).lower() in ('on', 'yes', 'true', '1')


def to_int(value):
    if isinstance(value, int):
        return value
    return int(str(value), 0)


def parse_size(text):
    """QEMU sizes: bytes, or a number with a k/M/G/T suffix; ``-m`` alone means MiB."""
    text = str(text).strip()
    units = {'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40}
    if text and text[-1].lower() in units:
        return int(float(text[:-1]) * units[text[-1].lower()])
    return int(text)


# ---- reading ---------------------------------------------------------------------------------------

# Options that take a value (the rest of QEMU's options used by libvirt take none).
_NO_VALUE = frozenset(('-S', '-no-user-config', '-nodefaults', '-nographic', '-daemonize', '-no-shutdown',
                       '-no-hpet', '-no-acpi', '-enable-kvm', '-no-reboot', '-snapshot', '-enable-fips',
                       '-version', '-help', '-h', '-preconfig', '-full-screen', '-no-fd-bootchk',
                       '-nodefconfig', '-no-kvm', '-no-kvm-pit-reinjection', '-win2k-hack', '-old-param',
                       '-only-migratable', '-semihosting', '-alt-grab', '-ctrl-grab', '-no-frame', '-no-quit',
                       '-s', '-singlestep', '-usb'))


def tokens(argv):
    """[(option, value or None, index)] in order; options may be written with -- as well."""
    result, index = [], 0
    while index < len(argv):
        arg = argv[index]
        if arg.startswith('--') and len(arg) > 2:
            option = arg[1:]
        else:
            option = arg
        if option.startswith('-') and option not in _NO_VALUE and index + 1 < len(argv):
            result.append((option, argv[index + 1], index))
            index += 2
        else:
            result.append((option, None, index))
            index += 1
    return result


class QemuCommand:
    """A parsed QEMU command line (what the emulator needs of it)."""

    def __init__(self, argv):
        self.argv = list(argv)
        self.tokens = tokens(self.argv)
        self.sev = None
        self.sev_index = None
        self.machine_index = None
        self.machine = []
        self.memory_index = None
        self.memory = None
        self.firmware = None
        self.kernel = self.initrd = self.cmdline = None
        self.cpu = None
        self.smp = None
        self.ram_option = None
        self.name = self.uuid = None
        self.paused = False
        self.daemonize = False
        self.pidfile = None
        self.data_dirs = []
        self.chardevs = {}
        self.control_monitor = None
        self.qmp_index = None
        self.qmp_path = None
        for option, value, index in self.tokens:
            self._read(option, value, index)

    def _read(self, option, value, index):
        if option == '-S':
            self.paused = True
        elif option == '-daemonize':
            self.daemonize = True
        elif value is None:
            return
        elif option == '-object':
            props = object_props(value)
            if props.get('qom-type') == 'sev-guest':
                self.sev, self.sev_index = props, index
            elif props.get('id') == MEMORY_ID and str(props.get('qom-type', '')).startswith('memory-backend'):
                self.memory, self.memory_index = props, index
        elif option in ('-machine', '-M'):
            self.machine, self.machine_index = parse_opts(value, implied='type'), index
        elif option == '-blockdev':
            props = object_props(value)
            if props.get('node-name') == 'libvirt-pflash0-storage':
                self.firmware = props.get('filename')
        elif option == '-drive':
            props = dict(parse_opts(value))
            if props.get('if') == 'pflash' and props.get('unit', '0') == '0' and 'file' in props:
                self.firmware = props['file']
        elif option == '-bios':
            self.firmware = value
        elif option == '-kernel':
            self.kernel = value
        elif option == '-initrd':
            self.initrd = value
        elif option == '-append':
            self.cmdline = value
        elif option == '-cpu':
            self.cpu = value
        elif option == '-smp':
            self.smp = value
        elif option == '-m':
            self.ram_option = value
        elif option == '-name':
            self.name = dict(parse_opts(value, implied='guest')).get('guest')
        elif option == '-uuid':
            self.uuid = value
        elif option == '-pidfile':
            self.pidfile = value
        elif option == '-L':
            self.data_dirs.append(value)
        elif option == '-chardev':
            props = parse_opts(value, implied='backend')
            self.chardevs[dict(props).get('id')] = (index, props)
        elif option == '-mon':
            props = dict(parse_opts(value, implied='chardev'))
            if props.get('mode') == 'control':
                self.control_monitor = props.get('chardev')
        elif option == '-qmp':
            self.qmp_index = index
            address = split_opts(value)[0]
            if address.startswith('unix:'):
                self.qmp_path = address[len('unix:'):]

    # -- what the launch model needs --

    @property
    def machine_type(self):
        return dict(self.machine).get('type', '')

    def num_cpus(self):
        if not self.smp:
            return 1
        props = dict(parse_opts(self.smp, implied='cpus'))
        if 'cpus' in props:
            return int(props['cpus'])
        count = 1
        for key in ('sockets', 'dies', 'clusters', 'cores', 'threads'):
            count *= int(props.get(key, 1))
        return count

    def ram_size(self):
        if self.memory and 'size' in self.memory:
            return parse_size(self.memory['size'])
        if self.ram_option:
            props = dict(parse_opts(self.ram_option, implied='size'))
            size = props.get('size', '128')
            return parse_size(size if size[-1:].isalpha() else size + 'M')
        return 128 << 20

    def monitor(self):
        """('fd', N, chardev id) or ('path', P, chardev id or None), or None without a QMP monitor."""
        if self.control_monitor in self.chardevs:
            dummy, props = self.chardevs[self.control_monitor]
            values = dict(props)
            if values.get('backend') == 'socket':
                if 'fd' in values:
                    return ('fd', int(values['fd']), self.control_monitor)
                if 'path' in values:
                    return ('path', values['path'], self.control_monitor)
        if self.qmp_path:
            return ('path', self.qmp_path, None)
        return None

    def sev_settings(self):
        """Policy, cbitpos, reduced-phys-bits, kernel-hashes and the session files of the sev-guest object."""
        sev = self.sev
        return {
            'id': sev.get('id'),
            'policy': to_int(sev.get('policy', 1)),
            'cbitpos': to_int(sev['cbitpos']) if 'cbitpos' in sev else 0,
            'reduced_phys_bits': to_int(sev['reduced-phys-bits']) if 'reduced-phys-bits' in sev else 0,
            'kernel_hashes': to_bool(sev.get('kernel-hashes', False)),
            'dh_cert_file': sev.get('dh-cert-file'),
            'session_file': sev.get('session-file'),
        }

    # -- what the real QEMU gets --

    def rewritten(self, backend_fd, mem_path=None, add_data_dirs=True):
        """The argv for the real QEMU: without the sev-guest object and confidential-guest-support,
        the monitor on ``backend_fd`` (a listening socket), pc.ram as a shared file at ``mem_path``."""
        out = []
        replaced_monitor = False
        monitor = self.monitor()
        monitor_index = self.chardevs[monitor[2]][0] if monitor and monitor[2] else self.qmp_index
        need_memory = mem_path is not None and self.memory is None
        for option, value, index in self.tokens:
            if index == self.sev_index:
                continue
            if index == self.machine_index:
                kept = [(key, val) for key, val in self.machine
                        if key not in ('confidential-guest-support', 'memory-encryption')]
                if need_memory and not any(key == 'memory-backend' for key, dummy in kept):
                    kept.append(('memory-backend', MEMORY_ID))
                out += [option, join_opts([val if key == 'type' else '%s=%s' % (key, val) for key, val in kept])]
                continue
            if index == self.memory_index and mem_path is not None:
                props = {'qom-type': 'memory-backend-file', 'id': MEMORY_ID, 'size': self.ram_size(),
                         'mem-path': mem_path, 'share': True}
                for key in ('prealloc', 'dump', 'merge', 'host-nodes', 'policy'):
                    if key in self.memory:
                        props[key] = self.memory[key]
                out += [option, json.dumps(props)]
                continue
            if index == monitor_index and monitor is not None:
                chardev_id = monitor[2] or 'sev-emulator-qmp'
                out += ['-chardev', 'socket,id=%s,fd=%d,server=on,wait=off' % (chardev_id, backend_fd)]
                if monitor[2] is None:
                    out += ['-mon', 'chardev=%s,mode=control' % chardev_id]
                replaced_monitor = True
                continue
            out.append(self.argv[index])
            if value is not None:
                out.append(value)
        if need_memory:
            if self.machine_index is None:
                out += ['-machine', 'memory-backend=%s' % MEMORY_ID]
            out += ['-object', json.dumps({'qom-type': 'memory-backend-file', 'id': MEMORY_ID,
                                           'size': self.ram_size(), 'mem-path': mem_path, 'share': True})]
        if monitor is not None and not replaced_monitor:
            raise ArgsError('the QMP monitor could not be rewritten')
        if add_data_dirs:
            for directory in DATA_DIRS:
                if directory not in self.data_dirs:
                    out += ['-L', directory]
        return out


# ---- guest physical address -> offset in the pc.ram backend -------------------------------------

def ram_offset(machine_type, ram_size, gpa, length):
    """Offset into the main RAM backend of ``gpa``, or None when [gpa, gpa+length) is not all RAM.

    pc/q35 map RAM below 4 GiB up to a machine-dependent limit and the rest from 4 GiB up
    (QEMU 7.2 pc_q35_init / pc_init1 without gigabyte alignment tweaks for q35)."""
    if 'q35' in machine_type:
        lowmem = 0x80000000 if ram_size >= 0xb0000000 else 0xb0000000
    else:
        lowmem = 0xe0000000
        if ram_size >= lowmem:
            lowmem = 0xc0000000
    below = min(ram_size, lowmem)
    above = ram_size - below
    if gpa + length <= below:
        return gpa
    if gpa >= 1 << 32 and gpa + length <= (1 << 32) + above:
        return below + gpa - (1 << 32)
    return None

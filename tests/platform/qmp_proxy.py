# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The QMP proxy of the EMULATED SEV platform (no hardware): libvirt's monitor on one side,
the real QEMU's monitor on the other.

It answers ``query-sev-capabilities`` always, and for an SEV launch ``query-sev``,
``query-sev-launch-measure`` and ``sev-inject-launch-secret`` from the emulated firmware, with
QEMU 7.2's replies and error texts; it watches ``cont`` (and the RESUME event) for LAUNCH_FINISH;
everything else, file descriptors passed with SCM_RIGHTS included, goes to the real QEMU and back
unchanged, one whole JSON message at a time.
"""

from __future__ import annotations

import array
import base64
import binascii
import hashlib
import json
import os
import select
import signal
import socket
import time

from . import emulator_records as records
from . import qemu_args
from . import sev_firmware as fw

# QEMU 7.2's texts for firmware status codes (target/i386/sev.c, sev_fw_errlist).
FW_ERROR_TEXT = {
    0x01: 'Platform state is invalid', 0x02: 'Guest state is invalid', 0x03: 'Platform configuration is invalid',
    0x04: 'Buffer too small', 0x05: 'Platform is already owned', 0x06: 'Certificate is invalid',
    0x07: 'Policy is not allowed', 0x08: 'Guest is not active', 0x09: 'Invalid address', 0x0a: 'Bad signature',
    0x0b: 'Bad measurement', 0x15: 'Feature not supported',
}
SEV_STATES = {'launch-update': 1, 'launch-secret': 2, 'running': 3}
# What a failed KVM_MEMORY_ENCRYPT_OP returns to QEMU (-EIO when the firmware refused).
IOCTL_RET = -5
MAX_FDS = 16


def fw_error_text(code):
    return FW_ERROR_TEXT.get(code, 'unknown error')


def lenient_b64decode(text):
    """GLib's g_base64_decode: characters outside the alphabet are skipped, never an error."""
    cleaned = ''.join(char for char in str(text) if char.isalnum() or char in '+/')
    cleaned = cleaned[:len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
    try:
        return base64.b64decode(cleaned + '=' * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        return b''


class QmpError(Exception):
    """A QMP GenericError reply."""

    def __init__(self, desc):
        self.desc = desc
        super().__init__(desc)


class Log:
    """Lines to STATE/logs/emulator.log, every one marked EMULATED."""

    def __init__(self, state):
        self.path = os.path.join(state, 'logs', 'emulator.log')
        os.makedirs(os.path.dirname(self.path), exist_ok=True)

    def __call__(self, text):
        line = '%s pid=%d EMULATED SEV platform: %s\n' % (
            time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), os.getpid(), text)
        with open(self.path, 'a', encoding='utf-8') as stream:
            stream.write(line)


class Launch:
    """One SEV launch as the emulated firmware and QEMU 7.2 see it after LAUNCH_MEASURE."""

    def __init__(self, state, platform, handle, record, plan, command, mem_path, log):
        self.state = state
        self.platform = platform
        self.handle = handle
        self.record = record
        self.plan = plan
        self.command = command
        self.mem_path = mem_path
        self.log = log
        self.finished = False
        self.pending_kill = False
        self.cont_ids = set()

    def save(self):
        records.save_launch(self.state, self.record)

    def faults(self):
        try:
            return records.active_faults(self.state, self.record['domain_name'])
        except ValueError as exc:
            self.log('faults: %s; applying none' % exc)
            return set()

    def applied(self, name):
        self.record['faults_applied'].append(name)
        self.log('fault %s applied to launch %d (%s)' % (name, self.record['seq'], self.record['domain_name']))

    # -- QMP commands --

    def query_sev(self):
        return {'enabled': True, 'api-major': self.platform.api[0], 'api-minor': self.platform.api[1],
                'build-id': self.platform.build_id, 'policy': self.record['policy'],
                'state': 'running' if self.finished else 'launch-secret', 'handle': self.handle}

    def query_measure(self):
        faults = self.faults()
        if 'measure_fails' in faults:
            self.applied('measure_fails')
            self.save()
            raise QmpError('SEV launch measurement is not available')
        reported = self.record['measurement']
        if 'replay_measurement' in faults:
            earlier = self._earlier_measurement()
            if earlier is not None:
                reported = earlier
                self.applied('replay_measurement')
        self.record['measurement_reported'] = reported
        self.save()
        return {'data': reported}

    def _earlier_measurement(self):
        seq, name = self.record['seq'], self.record['domain_name']
        earlier = [rec for rec in records.load_launches(self.state)
                   if rec['seq'] < seq and rec.get('measurement') and rec['measurement'] != self.record['measurement']]
        same = [rec for rec in earlier if rec.get('domain_name') == name]
        chosen = (same or earlier)
        return chosen[-1]['measurement'] if chosen else None

    def inject(self, arguments):
        """sev-inject-launch-secret in QEMU 7.2's order of checks."""
        entry = {'accepted': False, 'error': None, 'gpa': None, 'length': None, 'secret_sha256': None,
                 'after_finish': self.finished}
        self.record['injections'].append(entry)
        try:
            self._inject(arguments, entry)
        except QmpError as exc:
            entry['error'] = exc.desc
            self.log('sev-inject-launch-secret refused for launch %d: %s' % (self.record['seq'], exc.desc))
            raise
        finally:
            self.save()
        return {}

    def _inject(self, arguments, entry):
        for name in ('packet-header', 'secret'):
            if name not in arguments:
                raise QmpError("Parameter '%s' is missing" % name)
            if not isinstance(arguments[name], str):
                raise QmpError("Invalid parameter type for '%s', expected: string" % name)
        if 'gpa' in arguments:
            gpa = arguments['gpa']
            if not isinstance(gpa, int) or isinstance(gpa, bool) or gpa < 0:
                raise QmpError("Invalid parameter type for 'gpa', expected: integer")
        else:
            area = self.plan.firmware.secret_area
            if area is None:
                raise QmpError('SEV: no secret area found in OVMF, gpa must be specified.')
            gpa = area[0]
        entry['gpa'] = gpa
        if self.finished:
            raise QmpError('SEV: Not in correct state. (LSECRET) %x' % SEV_STATES['running'])
        header = lenient_b64decode(arguments['packet-header'])
        if not header:
            raise QmpError('SEV: Failed to decode sequence header')
        payload = lenient_b64decode(arguments['secret'])
        if not payload:
            raise QmpError('SEV: Failed to decode data')
        entry['length'] = len(payload)
        offset = qemu_args.ram_offset(self.command.machine_type, self.command.ram_size(), gpa, len(payload))
        if offset is None:
            raise QmpError('SEV: Failed to calculate guest address: No memory is mapped at address 0x%x' % gpa)
        if 'inject_refused' in self.faults():
            self.applied('inject_refused')
            raise QmpError("SEV: failed to inject secret ret=%d fw_error=%d '%s'"
                           % (IOCTL_RET, fw.BAD_MEASUREMENT, fw_error_text(fw.BAD_MEASUREMENT)))
        try:
            plaintext = self.platform.launch_secret(self.handle, header, payload)
        except fw.FirmwareError as exc:
            self.log('LAUNCH_SECRET refused: %s' % exc)
            raise QmpError("SEV: failed to inject secret ret=%d fw_error=%d '%s'"
                           % (IOCTL_RET, exc.code, fw_error_text(exc.code)))
        handle = os.open(self.mem_path, os.O_WRONLY)
        try:
            written = os.pwrite(handle, plaintext, offset)
        finally:
            os.close(handle)
        if written != len(plaintext):
            raise QmpError('SEV: failed to inject secret: short write to guest memory')
        entry.update(accepted=True, secret_sha256=hashlib.sha256(plaintext).hexdigest())
        self.log('LAUNCH_SECRET accepted for launch %d: %d bytes at gpa 0x%x' % (self.record['seq'], len(payload), gpa))
        if 'crash_after_inject' in self.faults():
            self.applied('crash_after_inject')
            self.pending_kill = True

    def finish(self, why):
        if self.finished:
            return
        try:
            self.platform.launch_finish(self.handle)
        except fw.FirmwareError as exc:
            self.log('LAUNCH_FINISH: %s' % exc)
        self.finished = True
        self.record['finished'] = True
        self.log('LAUNCH_FINISH for launch %d (%s)' % (self.record['seq'], why))
        self.save()


class MessageStream:
    """Splits a byte stream into whole JSON messages (QMP frames them only by their syntax)."""

    def __init__(self):
        self.buffer = ''
        self.raw = b''
        self.decoder = json.JSONDecoder()

    def feed(self, data):
        self.raw += data
        try:
            text = self.raw.decode('utf-8')
            self.raw = b''
        except UnicodeDecodeError as exc:
            # A multi-byte character split across reads: keep the tail for the next read.
            text = self.raw[:exc.start].decode('utf-8')
            self.raw = self.raw[exc.start:]
        self.buffer += text
        messages = []
        while True:
            stripped = self.buffer.lstrip()
            if not stripped:
                self.buffer = ''
                break
            try:
                value, end = self.decoder.raw_decode(stripped)
            except ValueError:
                if len(stripped) > 1 << 24:
                    raise
                self.buffer = stripped
                break
            text_of = stripped[:end]
            rest = stripped[end:]
            # QEMU ends each message with CRLF; keep it with the message.
            trailer = ''
            while rest[:1] in ('\r', '\n') and rest:
                trailer += rest[0]
                rest = rest[1:]
            messages.append((value, (text_of + trailer).encode('utf-8')))
            self.buffer = rest
        return messages


def recv_with_fds(sock):
    fds = array.array('i')
    data, ancillary, dummy, dummy = sock.recvmsg(1 << 16, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - (len(payload) % fds.itemsize)])
    return data, list(fds)


def send_all(sock, data, fds=()):
    if fds:
        sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))])
        data = data[sent:]
    if data:
        sock.sendall(data)


class Proxy:
    """Serves libvirt's monitor connections one at a time, each on a fresh connection to QEMU."""

    def __init__(self, listener, backend_address, node_sev, launch, log, qemu_pid, pidfile=None):
        self.listener = listener
        self.backend_address = backend_address
        self.node_sev = node_sev
        self.launch = launch
        self.log = log
        self.qemu_pid = qemu_pid
        self.pidfile = pidfile
        self.pidfd = os.pidfd_open(qemu_pid)

    def _follow_daemon(self):
        """The watched process exited; with -daemonize, QEMU lives on under the pid in its pidfile."""
        os.close(self.pidfd)
        self.pidfd = None
        if not self.pidfile:
            return False
        try:
            with open(self.pidfile, encoding='ascii') as stream:
                pid = int(stream.read().strip())
            if pid == self.qemu_pid:
                return False
            self.pidfd = os.pidfd_open(pid)
        except (OSError, ValueError):
            return False
        self.log('following daemonized QEMU pid %d' % pid)
        self.qemu_pid, self.pidfile = pid, None
        return True

    def serve(self):
        while True:
            ready, dummy, dummy = select.select([self.listener, self.pidfd], [], [])
            if self.pidfd in ready:
                if not self._follow_daemon():
                    return
                continue
            try:
                client, dummy = self.listener.accept()
            except OSError:
                continue
            try:
                if not self._session(client):
                    return
            finally:
                client.close()

    def _connect_backend(self):
        backend = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        backend.connect(self.backend_address)
        return backend

    def _session(self, client):
        """Relay one client connection; False when QEMU is gone."""
        try:
            backend = self._connect_backend()
        except OSError as exc:
            self.log('cannot reach the real QEMU monitor: %s' % exc)
            return False
        from_client, from_qemu = MessageStream(), MessageStream()
        pending_fds = []
        try:
            while True:
                ready, dummy, dummy = select.select([client, backend, self.pidfd], [], [])
                if self.pidfd in ready:
                    if not self._follow_daemon():
                        return False
                if backend in ready:
                    data = backend.recv(1 << 16)
                    if not data:
                        return True
                    for message, raw in from_qemu.feed(data):
                        self._watch_qemu(message)
                        client.sendall(raw)
                if client in ready:
                    data, fds = recv_with_fds(client)
                    pending_fds += fds
                    if not data:
                        return True
                    for message, raw in from_client.feed(data):
                        reply = self._local(message)
                        if reply is None:
                            self._watch_client(message)
                            send_all(backend, raw, pending_fds)
                        else:
                            client.sendall((json.dumps(reply) + '\r\n').encode('utf-8'))
                        for fd in pending_fds:
                            os.close(fd)
                        pending_fds = []
                        if self.launch is not None and self.launch.pending_kill:
                            self._crash()
        finally:
            for fd in pending_fds:
                os.close(fd)
            backend.close()

    def _crash(self):
        self.launch.pending_kill = False
        self.log('crash fault: SIGKILL to QEMU pid %d after an accepted injection' % self.qemu_pid)
        os.kill(self.qemu_pid, signal.SIGKILL)

    def _local(self, message):
        """A reply for the commands the emulated platform answers, None for QEMU's own."""
        if not isinstance(message, dict):
            return None
        command = message.get('execute')
        arguments = message.get('arguments') or {}
        handler = None
        if command == 'query-sev-capabilities':
            handler = self._capabilities
        elif self.launch is not None and command == 'query-sev':
            handler = self.launch.query_sev
        elif self.launch is not None and command == 'query-sev-launch-measure':
            handler = self.launch.query_measure
        elif self.launch is not None and command == 'sev-inject-launch-secret':
            def handler():
                return self.launch.inject(arguments)
        if handler is None:
            return None
        try:
            reply = {'return': handler()}
        except QmpError as exc:
            reply = {'error': {'class': 'GenericError', 'desc': exc.desc}}
        if 'id' in message:
            reply['id'] = message['id']
        return reply

    def _capabilities(self):
        return dict((key, self.node_sev[key]) for key in ('pdh', 'cert-chain', 'cpu0-id', 'cbitpos',
                                                          'reduced-phys-bits'))

    def _watch_client(self, message):
        if self.launch is not None and isinstance(message, dict) and message.get('execute') == 'cont':
            self.launch.cont_ids.add(json.dumps(message.get('id')))

    def _watch_qemu(self, message):
        if self.launch is None or not isinstance(message, dict):
            return
        if message.get('event') == 'RESUME':
            self.launch.finish('RESUME event')
        elif 'return' in message and json.dumps(message.get('id')) in self.launch.cont_ids:
            self.launch.finish('cont')

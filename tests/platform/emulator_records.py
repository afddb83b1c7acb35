# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Records and fault settings of the EMULATED SEV platform (no hardware).

``STATE/records/launch-<seq>.json``: one per SEV launch, rewritten atomically at each stage.
``STATE/faults.json``: ``{"<domain name>" or "*": {"measure_fails": true, "inject_refused": true,
"crash_after_inject": true, "replay_measurement": true}}``, read at each event.
"""

from __future__ import annotations

import fcntl
import json
import os

FAULT_NAMES = ('measure_fails', 'inject_refused', 'crash_after_inject', 'replay_measurement')
RECORD_FIELDS = (
    'seq', 'domain_name', 'domain_uuid', 'qemu_pid', 'policy', 'sev_es', 'num_cpus', 'cpu_model',
    'cpu_signature', 'firmware_path', 'firmware_sha256', 'kernel_hashes', 'kernel_sha256', 'initrd_sha256',
    'cmdline_sha256', 'launch_start', 'digest', 'mnonce', 'measurement', 'measurement_reported', 'finished',
    'injections', 'faults_applied')


def records_dir(state):
    return os.path.join(state, 'records')


def write_json_atomic(path, data, mode=0o600):
    """Write ``data`` as JSON next to ``path`` and rename it over: readers see old or new, never half."""
    tmp = '%s.%d.tmp' % (path, os.getpid())
    handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(handle, 'w', encoding='utf-8') as stream:
        json.dump(data, stream, indent=1, sort_keys=True)
        stream.write('\n')
    os.replace(tmp, path)


def next_seq(state):
    """The next launch sequence number (also the emulated guest handle), under a file lock."""
    directory = records_dir(state)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, '.seq'), 'a+', encoding='ascii') as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        stream.seek(0)
        text = stream.read().strip()
        seq = int(text) + 1 if text else 1
        stream.seek(0)
        stream.truncate()
        stream.write('%d\n' % seq)
        stream.flush()
        os.fsync(stream.fileno())
    return seq


def record_path(state, seq):
    return os.path.join(records_dir(state), 'launch-%d.json' % seq)


def save_launch(state, record):
    write_json_atomic(record_path(state, record['seq']), record)


def load_launches(state):
    """Every launch record under ``STATE/records``, sorted by seq."""
    directory = records_dir(state)
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        if name.startswith('launch-') and name.endswith('.json'):
            with open(os.path.join(directory, name), encoding='utf-8') as stream:
                found.append(json.load(stream))
    return sorted(found, key=lambda record: record['seq'])


def set_faults(state, mapping):
    """Replace ``STATE/faults.json`` with ``mapping`` ({domain name or '*': {fault: bool}})."""
    if not isinstance(mapping, dict):
        raise ValueError('faults: expected a mapping of domain name or "*" to fault settings')
    for target, settings in mapping.items():
        if not isinstance(settings, dict):
            raise ValueError('faults for %r: expected a mapping of fault names to booleans' % (target,))
        unknown = sorted(set(settings) - set(FAULT_NAMES))
        if unknown:
            raise ValueError('faults for %r: unknown fault(s) %s (known: %s)'
                             % (target, ', '.join(unknown), ', '.join(FAULT_NAMES)))
    write_json_atomic(os.path.join(state, 'faults.json'), mapping, mode=0o644)


def clear_faults(state):
    try:
        os.unlink(os.path.join(state, 'faults.json'))
    except FileNotFoundError:
        pass


def active_faults(state, domain_name):
    """The set of faults switched on for ``domain_name`` (its own entry, else '*')."""
    try:
        with open(os.path.join(state, 'faults.json'), encoding='utf-8') as stream:
            mapping = json.load(stream)
    except FileNotFoundError:
        return set()
    except ValueError:
        # A half-edited or broken file must not silently disable a requested fault.
        raise ValueError('%s/faults.json is not valid JSON' % state)
    settings = mapping.get(domain_name, mapping.get('*', {})) if isinstance(mapping, dict) else {}
    return set(name for name in FAULT_NAMES if settings.get(name) is True)

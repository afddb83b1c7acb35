# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's memory of launches: per-launch records and the measurements it has seen.

Layout of a state directory (0700 directories, 0600 files)::

  STATE_DIR/
    seen/<tik_sha256>/<mnonce hex>.json        one per validated measurement (replay refusal)
    hosts/<host>/<domain uuid>/current.json    the record of the latest launch started
    hosts/<host>/<domain uuid>/launches/<launch id>/
        record.json                            that launch's record
        tek tik godh.b64 session.b64           its fresh session (sev_session writes them)

A seen file is created with O_EXCL: two runs can never both claim one
measurement, and a measurement claimed once is refused forever after (a
replay).  Records are rewritten atomically.  Nothing here is secret except
the session files (the TIK appears only as a SHA-256 digest, of a random
128-bit key).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import errno
import hashlib
import json
import os
import re
import secrets as random_source
import stat
import uuid as uuid_mod

from .sev.errors import InsecureUsage, UnsupportedUsage
from .sev.files import MAX_SMALL_FILE
from .sev.outputs import write_output

RECORD_VERSION = 1
STAGES = ('started', 'validated', 'injected', 'resumed')
VALIDATED_STAGES = ('validated', 'injected', 'resumed')
LAUNCH_ID = re.compile(r'^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$')
SESSION_FILES = {'tek': 'tek', 'tik': 'tik', 'dh_cert': 'godh.b64', 'session': 'session.b64'}
MEASUREMENT_SIZE = 48
TIK_DIGEST_LABEL = b'confidential.sev TIK digest\0'


class ReplayError(InsecureUsage):
    """A measurement this controller has validated before."""


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# ---- paths -----------------------------------------------------------------------------------

NAME_MAX = 255


def _component(value, what):
    """A path component from an inventory host name: safe characters kept, others %XX."""
    if not isinstance(value, str) or not value:
        raise UnsupportedUsage('%s must be a non-empty string' % what)
    safe = ''.join(char if (char.isascii() and (char.isalnum() or char in '-_.@')) else
                   ''.join('%%%02X' % byte for byte in char.encode('utf-8')) for char in value)
    if safe in ('.', '..'):
        safe = safe.replace('.', '%2E')
    # one directory name: the file system takes at most NAME_MAX (255) bytes
    # (a DNS name has at most 253 characters)
    if len(safe) > NAME_MAX:
        raise UnsupportedUsage('%s is %d characters long, %d once escaped for a directory name, more than the %d '
                               'a directory name may have' % (what, len(value), len(safe), NAME_MAX))
    return safe


def canonical_uuid(value, what='domain_uuid'):
    try:
        return str(uuid_mod.UUID(str(value)))
    except (ValueError, TypeError):
        raise UnsupportedUsage('%s: %r is not a UUID' % (what, value))


def check_state_dir(path, create, what='state_dir'):
    """The state directory, created 0700 when ``create``; refused when others can
    read it (it holds session keys).  Returns whether it exists."""
    if not os.path.isabs(path):
        raise UnsupportedUsage('%s: %s is not an absolute path' % (what, path))
    if not os.path.lexists(path):
        if not create:
            return False
        try:
            os.makedirs(path, mode=0o700)
        except FileExistsError:
            # Another fork (one per guest or host) created it between the check and here:
            # the checks below apply to it as to any existing directory.
            pass
        except OSError as exc:
            raise UnsupportedUsage('%s: cannot create %s: %s' % (what, path, exc.strerror or exc))
    info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsupportedUsage('%s: %s is not a directory' % (what, path))
    if info.st_mode & 0o077:
        raise UnsupportedUsage('%s: %s is mode %04o; it holds launch keys and records: make it 0700 '
                               '(chmod 700)' % (what, path, stat.S_IMODE(info.st_mode)))
    return True


def _private_dirs(path):
    """mkdir -p with 0700 for every directory it creates."""
    if not os.path.isdir(path):
        _private_dirs(os.path.dirname(path))
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass


def domain_dir(state_dir, host, domain_uuid):
    return os.path.join(state_dir, 'hosts', _component(host, 'host'), canonical_uuid(domain_uuid))


def launch_dir(state_dir, host, domain_uuid, launch_id):
    if not isinstance(launch_id, str) or not LAUNCH_ID.match(launch_id):
        raise UnsupportedUsage('launch_id: %r is not a launch id from state=prepare' % (launch_id,))
    return os.path.join(domain_dir(state_dir, host, domain_uuid), 'launches', launch_id)


def new_launch_id():
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    return '%s-%s' % (stamp, random_source.token_hex(4))


def session_paths(directory):
    return dict((key, os.path.join(directory, name)) for key, name in SESSION_FILES.items())


# ---- records -----------------------------------------------------------------------------------

def _read_json(path, what):
    # Never through a symlink, never a FIFO (which would hang) or a device: only a regular file.
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_NOFOLLOW', 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsupportedUsage('%s: %s is a symbolic link, not a regular file' % (what, path))
        raise UnsupportedUsage('%s: cannot read %s: %s' % (what, path, exc.strerror or exc))
    if not stat.S_ISREG(os.fstat(handle).st_mode):
        os.close(handle)
        raise UnsupportedUsage('%s: %s is not a regular file' % (what, path))
    with os.fdopen(handle, 'rb') as stream:
        try:
            data = stream.read(MAX_SMALL_FILE + 1)
        except OSError as exc:
            raise UnsupportedUsage('%s: cannot read %s: %s' % (what, path, exc.strerror or exc))
    try:
        value = json.loads(data.decode('utf-8'))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        # Fail closed: a record that cannot be read vouches for nothing.
        raise UnsupportedUsage('%s: %s is not a launch record (damaged?); move it away to continue' % (what, path))
    return value


def _write_json(path, value):
    # 0600, atomic, never through a symlink or over a device (sev/outputs.py)
    write_output(path, (json.dumps(value, indent=1, sort_keys=True) + '\n').encode('utf-8'), option='launch record')


def current_record(state_dir, host, domain_uuid):
    """The record of the latest launch started for (host, domain), or None."""
    return _read_json(os.path.join(domain_dir(state_dir, host, domain_uuid), 'current.json'), 'launch record')


def prepare_launch(state_dir, host, domain_uuid, create):
    """A new launch id and its directory (created 0700 unless ``create`` is false)."""
    launch_id = new_launch_id()
    directory = launch_dir(state_dir, host, domain_uuid, launch_id)
    if create:
        _private_dirs(directory)
    return launch_id, directory


def update_record(state_dir, host, domain_uuid, launch_id, stage, fields, create):
    """Write stage ``stage`` (or 'failed') of launch ``launch_id``: its
    record.json and the domain's current.json.  Returns the record."""
    directory = launch_dir(state_dir, host, domain_uuid, launch_id)
    path = os.path.join(directory, 'record.json')
    record = _read_json(path, 'launch record') if os.path.isdir(directory) else None
    if record is None:
        if stage != 'started':
            raise UnsupportedUsage('launch %s has no record yet: the first stage written is "started"' % launch_id)
        record = {'version': RECORD_VERSION, 'host': host, 'domain_uuid': canonical_uuid(domain_uuid),
                  'launch_id': launch_id, 'stage': None, 'stage_times': {}, 'failed': None}
    if stage == 'failed':
        record['failed'] = dict(fields, at=now())
    else:
        if record.get('failed'):
            raise UnsupportedUsage('launch %s has failed; a failed launch reaches no later stage' % launch_id)
        reached = record.get('stage')
        if reached is not None and STAGES.index(stage) < STAGES.index(reached):
            raise UnsupportedUsage('launch %s is already %s; it cannot go back to %s' % (launch_id, reached, stage))
        record.update(dict((key, value) for key, value in fields.items() if value is not None))
        record['stage'] = stage
        record['stage_times'][stage] = now()
    if create:
        _private_dirs(directory)
        _write_json(path, record)
        _write_json(os.path.join(domain_dir(state_dir, host, domain_uuid), 'current.json'), record)
    return record


# ---- measurements seen -------------------------------------------------------------------------

def measurement_bytes(measurement, what='measurement'):
    try:
        raw = base64.b64decode(measurement, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raw = b''
    if len(raw) != MEASUREMENT_SIZE:
        raise UnsupportedUsage('%s is not base64 of %d bytes (HMAC || mnonce)' % (what, MEASUREMENT_SIZE))
    return raw


def tik_digest(tik):
    return hashlib.sha256(TIK_DIGEST_LABEL + bytes(tik)).hexdigest()


def claim_measurement(seen_dir, tik, measurement, context, check_mode=False):
    """Record (TIK digest, mnonce) of a validated measurement; ReplayError when
    it was recorded before.  Returns {tik_sha256, mnonce, record}."""
    raw = measurement_bytes(measurement)
    digest, mnonce = tik_digest(tik), raw[32:].hex()
    directory = os.path.join(seen_dir, digest)
    path = os.path.join(directory, mnonce + '.json')
    entry = {'version': RECORD_VERSION, 'tik_sha256': digest, 'mnonce': mnonce,
             'measurement': base64.b64encode(raw).decode('ascii'), 'validated_at': now(),
             'context': context or {}}
    if check_mode:
        if os.path.lexists(path):
            raise _replay(path, entry)
        return {'tik_sha256': digest, 'mnonce': mnonce, 'record': path}
    _private_dirs(directory)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0), 0o600)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise _replay(path, entry)
        raise UnsupportedUsage('replay_dir: cannot record the measurement in %s: %s' % (path, exc.strerror or exc))
    with os.fdopen(handle, 'w', encoding='utf-8') as stream:
        stream.write(json.dumps(entry, indent=1, sort_keys=True) + '\n')
        stream.flush()
        os.fsync(stream.fileno())
    return {'tik_sha256': digest, 'mnonce': mnonce, 'record': path}


def _replay(path, entry):
    try:
        before = _read_json(path, 'seen measurement') or {}
    except UnsupportedUsage:
        before = {}
    context = before.get('context') or {}
    where = ', '.join('%s %s' % (key, context[key]) for key in sorted(context) if context[key] is not None)
    return ReplayError('replay: this measurement (mnonce %s under this TIK) was already validated by this '
                       'controller at %s%s; a host that reports a measurement seen before may be replaying an '
                       'earlier launch, so it proves nothing about this one (%s)'
                       % (entry['mnonce'], before.get('validated_at', 'an earlier time'),
                          ' (%s)' % where if where else '', path))


# ---- what a run does with an active domain -------------------------------------------------------

def _reported(reported):
    """(active, state, id, run_state, measurement) from a registered sev_launch_info result."""
    if not isinstance(reported, dict):
        raise UnsupportedUsage('reported must be the registered result of sev_launch_info')
    domain = reported.get('domain') if isinstance(reported.get('domain'), dict) else {}
    dom_id = reported.get('id', domain.get('id'))
    launch = reported.get('launch_security') if isinstance(reported.get('launch_security'), dict) else {}
    active = reported.get('active')
    if not isinstance(active, bool) or (dom_id is not None and not isinstance(dom_id, int)):
        raise UnsupportedUsage('reported: active or id missing or of the wrong type; pass the registered result '
                               'of sev_launch_info')
    return active, reported.get('state'), dom_id, reported.get('run_state'), launch.get('measurement')


def plan_launch(reported, record, if_active='fail', resume=True):
    """(plan, why): what a run does with the domain the host reports.

    plan is 'launch' (shut off), 'ok' (this controller validated the launch the
    host reports now: untouched), 'resume' (validated, not resumed, still
    before its first run), 'relaunch' (destroy, then launch) or 'fail'
    (untouched).
    """
    active, state, dom_id, run_state, measurement = _reported(reported)
    if not active:
        return 'launch', 'the domain is %s' % state
    ours, differs = False, 'this controller has no record of a launch of it'
    if record is not None:
        if record.get('failed'):
            differs = 'its last launch by this controller (%s) failed' % record.get('launch_id')
        elif record.get('stage') not in VALIDATED_STAGES:
            differs = 'its last launch by this controller (%s) was never validated' % record.get('launch_id')
        elif record.get('domain_id') != dom_id:
            differs = ('the host reports domain ID %s, this controller validated the launch with ID %s'
                       % (dom_id, record.get('domain_id')))
        elif not measurement or measurement != record.get('measurement'):
            differs = 'the host reports another measurement than the one this controller validated'
        else:
            ours = True
    if ours:
        if record.get('secret_count') and record['stage'] == 'validated':
            return 'fail', ('launch %s was validated but its secrets were never injected; it is left untouched '
                            '(destroy it to launch again)' % record['launch_id'])
        if record['stage'] == 'resumed' or not resume:
            return 'ok', ('this controller validated the launch the host reports now (launch %s, ID %s, stage %s); '
                          'left untouched (not a re-attestation: this believes the host\'s report)'
                          % (record['launch_id'], dom_id, record['stage']))
        if run_state == 'prelaunch':
            return 'resume', ('launch %s was validated (stage %s) and is still before its first run '
                              '(run_state prelaunch): resuming it' % (record['launch_id'], record['stage']))
        return 'fail', ('launch %s was validated but not resumed, and it is no longer provably before its first '
                        'run (state %s, run_state %s): left untouched' % (record['launch_id'], state, run_state))
    if if_active == 'relaunch':
        return 'relaunch', 'the domain is %s and %s: destroying it and launching it again' % (state, differs)
    return 'fail', ('the domain is %s and %s: left untouched (sev_launch_if_active: relaunch destroys and '
                    'relaunches it)' % (state, differs))

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-task timings of a play, as JSON, for benchmarks/fleet.py (not part of the collection).

Enabled by fleet.py with ANSIBLE_CALLBACK_PLUGINS=benchmarks/callback_plugins and
ANSIBLE_CALLBACKS_ENABLED=fleet_timing; writes FLEET_TIMING_OUT at the end of the
play: one entry per (host, task run) with the action, start/end (time.monotonic()),
the status, and from results that carry them the ``digest_cache`` statistics and
the number of per-item ``results``/``outcomes``.  No result values are written
(secrets never reach this file).
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: fleet_timing
type: aggregate
short_description: per-task timings for benchmarks/fleet.py
description: Writes one JSON entry per host and task run to the file named by FLEET_TIMING_OUT.
requirements: [enabled in ANSIBLE_CALLBACKS_ENABLED]
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'fleet_timing'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._starts = {}
        self._entries = []
        self._t0 = time.monotonic()

    def v2_playbook_on_start(self, playbook):
        self._t0 = time.monotonic()

    def v2_runner_on_start(self, host, task):
        self._starts[(host.get_name(), task._uuid)] = time.monotonic()

    def _done(self, result, status):
        end = time.monotonic()
        host = result._host.get_name()
        task = result._task
        start = self._starts.pop((host, task._uuid), None)
        res = result._result if isinstance(result._result, dict) else {}
        entry = {'host': host, 'task': task.get_name(), 'action': task.action, 'status': status,
                 'start': start, 'end': end}
        cache = res.get('digest_cache')
        if isinstance(cache, dict):
            entry['digest_cache'] = {k: cache.get(k) for k in ('hits', 'misses', 'hashed_bytes')}
        for key in ('results', 'outcomes'):
            if isinstance(res.get(key), list):
                entry['n_' + key] = len(res[key])
                caches = [item.get('digest_cache') for item in res[key]
                          if isinstance(item, dict) and isinstance(item.get('digest_cache'), dict)]
                if caches and 'digest_cache' not in entry:
                    entry['item_digest_cache'] = [{k: c.get(k) for k in ('hits', 'misses', 'hashed_bytes')}
                                                  for c in caches]
        self._entries.append(entry)

    def v2_runner_on_ok(self, result):
        self._done(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._done(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._done(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._done(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get('FLEET_TIMING_OUT')
        if not path:
            return
        with open(path, 'w', encoding='utf-8') as f:
            json.dump({'t0': self._t0, 'end': time.monotonic(), 'entries': self._entries}, f)

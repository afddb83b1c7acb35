# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one hostile case under a watchdog and measure it.

Each case runs in a forked child of the test process (same code, same imports,
measured in-process there with tracemalloc and a monotonic timer), so that a
case reading /dev/zero or waiting on a FIFO is killed at its deadline and fails
instead of hanging the suite, and one that allocates without bound hits an
address-space limit instead of the machine.  The child sends back the result
dict, or the traceback of anything that escaped the code under test.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import time
import traceback
import tracemalloc

TIME_LIMIT = 10.0                     # seconds per case
MEMORY_LIMIT = 100 * 1024 * 1024      # bytes per case, over the baseline case's peak
# A runaway allocation stops here (MemoryError) rather than swapping the machine;
# far above MEMORY_LIMIT so that the measured peak, not this, fails the case.
ADDRESS_SPACE_HEADROOM = 2 * 1024 * 1024 * 1024
GRACE = 5.0                           # the watchdog kills the child this long after TIME_LIMIT


class Outcome:
    """What one case did: ``result`` (the task result dict) or ``error``
    (a traceback, 'hang', or 'died'), ``seconds`` and ``peak`` (bytes)."""

    def __init__(self, result=None, error=None, seconds=None, peak=None):
        self.result = result
        self.error = error
        self.seconds = seconds
        self.peak = peak

    def __repr__(self):
        return 'Outcome(error=%r, seconds=%r, peak=%r, result=%r)' % (
            self.error, self.seconds, self.peak, self.result)


def _vm_size():
    with open('/proc/self/statm') as stream:
        return int(stream.read().split()[0]) * os.sysconf('SC_PAGE_SIZE')


def _status_kib(field):
    with open('/proc/self/status') as stream:
        for line in stream:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise LookupError(field)


def _reset_rss_peak():
    """Reset VmHWM (Linux >= 4.0): the peak RSS then counts from here."""
    with open('/proc/self/clear_refs', 'w') as stream:
        stream.write('5')


def _child(function, prepare, write_fd):
    payload = {}
    try:
        limit = _vm_size() + ADDRESS_SPACE_HEADROOM
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        prepared = prepare() if prepare is not None else None
        # Python allocations (tracemalloc) and everything else, libxml2 included (peak RSS).
        _reset_rss_peak()
        rss_before = _status_kib('VmRSS')
        tracemalloc.start()
        start_current = tracemalloc.get_traced_memory()[0]
        started = time.monotonic()
        try:
            result = function(prepared) if prepare is not None else function()
            payload['result'] = result
        except BaseException:  # pylint: disable=broad-except
            # Anything escaping the code under test is the finding: send it back.
            payload['error'] = traceback.format_exc()
        payload['seconds'] = time.monotonic() - started
        python_peak = tracemalloc.get_traced_memory()[1] - start_current
        tracemalloc.stop()
        payload['peak'] = max(python_peak, (_status_kib('VmHWM') - rss_before) * 1024)
        data = json.dumps(payload, default=repr).encode()
    except BaseException:  # pylint: disable=broad-except
        data = json.dumps({'error': 'could not report: ' + traceback.format_exc()}).encode()
    view = memoryview(data)
    while view:
        written = os.write(write_fd, view)
        view = view[written:]
    os.close(write_fd)


def run_case(function, prepare=None, time_limit=TIME_LIMIT):
    """``function()`` (``function(prepare())`` with ``prepare``, which is
    neither timed nor measured) in a forked child under a watchdog; an Outcome."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read_fd)
            _child(function, prepare, write_fd)
        finally:
            os._exit(0)  # pylint: disable=protected-access
    os.close(write_fd)
    chunks, deadline, hung = [], time.monotonic() + time_limit + GRACE, False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                hung = True
                break
            ready, dummy, dummy = select.select([read_fd], [], [], remaining)
            if ready:
                chunk = os.read(read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_fd)
        if hung:
            # Only our own child, by its pid.
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    if hung:
        return Outcome(error='hang: no answer within %.0f s (killed)' % (time_limit + GRACE),
                       seconds=time_limit + GRACE)
    if not chunks:
        return Outcome(error='died without a result')
    payload = json.loads(b''.join(chunks))
    return Outcome(result=payload.get('result'), error=payload.get('error'), seconds=payload.get('seconds'),
                   peak=payload.get('peak'))

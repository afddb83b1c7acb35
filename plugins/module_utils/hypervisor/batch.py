# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host side: one task acting on a list of domains over one libvirt connection.

Rules shared by the batch forms of sev_domain, sev_secret_inject and
sev_launch_info (issue 11):

- the input is checked whole before libvirt is touched, and a domain named
  twice (the same text, or two identifiers of the same UUID) refuses the whole
  task up front: two actions on one domain in one call would race;
- then every item runs on its own: its failure (unknown domain, wrong state,
  a libvirt error, even a bug) is that item's result and never stops or
  touches another item;
- the task fails iff an item failed; its msg lists the failed items, its
  rc/reason are the first failed item's (0/ok when none failed).

Items may run in threads (``max_parallel``): libvirt connections are
thread-safe and libvirt-python releases the GIL during calls, so libvirtd can
work on several domains at once (it has a job lock per domain, not per
connection).  Results are always returned in input order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..sev.errors import REASON_CODES, SevError, UnsupportedUsage, failure_result as errors_failure_result
from . import connection

# Measured (tests/integration/test_batch_modules.py, test_parallel_start_measured):
# 10 SEV guests started paused on an emulated 2-core host, medians of 3 runs on
# a machine shared with other work: 8.8 s with 1 thread, 6.8 s with 2, 5.8 s
# with 4, 4.5 s with 10; in the least loaded run 4 and 10 threads both took
# 2.9 s; a second run of the test: 11.6 s, 7.8 s, 5.2 s, 4.4 s.  Starting a domain is mostly waiting (QEMU's exec, its QMP handshake,
# libvirtd's bookkeeping), which overlaps well.  Default 4: about all of the
# gain, within libvirtd's default max_client_requests (5 calls of one client
# served at once, the rest queued), so one task never fills the daemon's queue.
MAX_PARALLEL = 16
DEFAULT_PARALLEL = 4
# The options every batch form adds (documented in each module).
BATCH_OPTIONS = dict(
    max_parallel=dict(type='int', default=DEFAULT_PARALLEL),
)


def check_max_parallel(value):
    if not 1 <= value <= MAX_PARALLEL:
        raise UnsupportedUsage('max_parallel must be between 1 and %d, not %d' % (MAX_PARALLEL, value))
    return value


def requested_identifiers(items, option, key=None):
    """The identifiers of ``items`` (strings, or dicts with ``key``), checked
    non-empty and distinct; errors name the option and the item."""
    if not items:
        raise UnsupportedUsage('%s must list at least one domain' % option)
    idents = []
    seen = {}
    for index, item in enumerate(items):
        ident = item[key] if key is not None else item
        ident = '' if ident is None else str(ident)
        if not ident.strip():
            raise UnsupportedUsage('%s[%d]: domain must be a name or UUID, not empty' % (option, index))
        if ident in seen:
            raise UnsupportedUsage('%s[%d] and %s[%d] both name domain %r: a domain may appear only once in one '
                                   'call' % (option, seen[ident], option, index, ident))
        seen[ident] = index
        idents.append(ident)
    return idents


def item_failure(exc, requested, known=None):
    """An item's failed result for a SevError (with what is known of the domain)."""
    result = connection.failure_result(exc)
    if known:
        result.update(known)
    result.update(requested=requested, failed=True)
    return result


def unexpected_failure(exc, requested):
    """An item's failed result for an exception that is not a SevError (a bug):
    reported as that item's error (class 6, named) so the other items go on."""
    return dict(errors_failure_result('error', 'unexpected %s: %s' % (type(exc).__name__, exc)),
                requested=requested, failed=True)


def resolve(conn, idents, option):
    """Look every identifier up: a list of (domain or None, failed item result or None).

    A lookup failure is that item's; two identifiers of one UUID refuse the
    whole task (UnsupportedUsage), before anything is touched.
    """
    found = []
    by_uuid = {}
    for index, ident in enumerate(idents):
        try:
            dom = connection.lookup_domain(conn, ident)
            uuid = connection.call("domain '%s'" % ident, 'virDomainGetUUIDString', dom.UUIDString)
        except SevError as exc:
            found.append((None, item_failure(exc, ident)))
            continue
        if uuid in by_uuid:
            raise UnsupportedUsage('%s[%d] (%r) and %s[%d] (%r) are the same domain (UUID %s): a domain may appear '
                                   'only once in one call' % (option, by_uuid[uuid], idents[by_uuid[uuid]], option,
                                                              index, ident, uuid))
        by_uuid[uuid] = index
        found.append((dom, None))
    return found


def run_items(work, items, max_parallel=DEFAULT_PARALLEL):
    """``work(item)`` for every item, in threads when max_parallel > 1; the
    results in input order.  ``work`` returns the item's result; an exception
    that escapes it becomes that item's failure, never the task's."""
    def guarded(pair):
        index, item = pair
        try:
            return work(item)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # isolation: a bug fails one item
            return unexpected_failure(exc, item.get('requested', '#%d' % index) if isinstance(item, dict)
                                      else str(item))
    pairs = list(enumerate(items))
    if max_parallel <= 1 or len(pairs) <= 1:
        return [guarded(pair) for pair in pairs]
    with ThreadPoolExecutor(max_workers=min(max_parallel, len(pairs))) as pool:
        return list(pool.map(guarded, pairs))


def summary(results, what='domains'):
    """The task-level keys of a batch result: failed, changed, msg, rc, reason."""
    failed = [result for result in results if result.get('failed')]
    changed = any(result.get('changed') for result in results)
    if failed:
        first = failed[0]
        reason = first.get('reason') if first.get('reason') in REASON_CODES else 'error'
        msg = '%d of %d %s failed: %s' % (len(failed), len(results), what, '; '.join(
            '%s: %s' % (result.get('requested'), result.get('msg')) for result in failed))
        return {'failed': True, 'changed': changed, 'msg': msg, 'rc': REASON_CODES[reason], 'reason': reason}
    return {'failed': False, 'changed': changed, 'rc': 0, 'reason': 'ok',
            'msg': 'all %d %s succeeded%s' % (len(results), what, ' (changed)' if changed else ' (no change)')}

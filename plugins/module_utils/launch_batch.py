# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet launch: every guest of one hypervisor host, launched together.

The per-guest lifecycle of the role confidential.sev.sev_launch (tasks/guest.yml
and launch.yml), with every host-side step batched into one call of a
host-side module for all guests (pin, start paused, read the reports, inject,
resume, destroy), and every controller-side step done here, in this process,
through the same functions the controller-side action plugins use (records,
sessions, validation with one shared digest cache).

Ansible-free: the action plugin passes ``call_host(module, args)`` (one module
run on the hypervisor host, its raw result) and the file helpers.

Fail closed per guest: a guest whose step fails leaves the batch; the launch
this run started for it, and only that one (UUID and expect_id), is destroyed
at the end, and its record says why.  Another guest's outcome never depends
on it.  The hypervisor host is not trusted: each of its items is checked on
its own and only ever decides its own guest's fate; it only ever receives the
public session (dhCert, session, policy) and the encrypted secret packet.
"""

from __future__ import annotations

import os
import time

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from . import launch_record as store
from . import launch_record_options, session_options, validate_options
from .hypervisor.host_results import check_launch_batch
from .launch_batch_options import GUEST_RULES, GUEST_SPEC, SECRET_SETTINGS, SETTINGS_SPEC
from .sev.errors import REASON_CODES, SevError, UnsupportedUsage

# The role's task names (tasks/guest.yml, launch.yml): an outcome's failed_task
# names the same step whichever way the guest was launched.
CHECK_TASK = 'Check this guest\'s entry'
PIN_TASK = 'Pin the domain (its name or UUID resolved once; its UUID from here on)'
PLAN_TASK = 'Decide what to do with it, from the controller\'s record'
PLAN_FAIL_TASK = 'Leave an active launch this controller did not validate untouched'
NEEDS_TASK = 'Check what a launch needs (in check mode too)'
PREDESTROY_TASK = 'Destroy the active launch before relaunching (that launch only, by its ID)'
PREPARE_TASK = 'Prepare this launch\'s directory on the controller'
NODE_TASK = 'Read the node\'s SEV certificates (PDH, chain, chip id)'
SESSION_TASK = 'Verify the platform\'s chain and make this launch\'s fresh session'
START_TASK = 'Start the domain paused, before anything runs in it (with this launch\'s session)'
START_RECORD_TASK = 'Record that this launch started'
READ_TASK = 'Read its launch state from the hypervisor (checked on the controller)'
REPORT_CHECK_TASK = 'Check that the host reports the launch this run started, before its first run'
VALIDATE_TASK = 'Validate the measurement on the controller, from the files the guest owner trusts'
VALIDATED_RECORD_TASK = 'Record the validated measurement'
INJECT_TASK = 'Inject the secrets into this launch, still before its first run'
INJECT_RECORD_TASK = 'Record that the secrets were injected'
RESUME_TASK = 'Let the validated launch run (this launch only; resume never starts a domain)'
RESUME_RECORD_TASK = 'Record that the launch resumed'
RESUME_EARLIER_TASK = 'Resume the launch validated earlier (still before its first run; this launch only)'
UNEXPECTED_TASK = 'sev_launch_batch'
INFO_MODULE = 'confidential.sev.sev_launch_info'

# What a failed host item may claim as its class; anything else is 'error'.
# A failed item never carries a success or verdict reason (ok, mismatch, valid).
HOST_FAILURE_REASONS = ('unsupported', 'config', 'state', 'error')
MAX_HOST_MESSAGE = 2000
MAX_DOMAIN_ID = (1 << 31) - 1

# Validation options taken from a guest's settings as they are.
VALIDATE_SETTINGS = ('firmware', 'kernel', 'initrd', 'firmware_sha256', 'kernel_sha256', 'initrd_sha256', 'cmdline', 'cmdline_b64', 'num_cpus', 'vmsa_cpu0',
                     'vmsa_cpu1', 'cpu_family', 'cpu_model', 'cpu_stepping', 'vmsa_variant', 'vmsa_sev_features',
                     'secrets', 'secret_address', 'require_policy', 'min_api_version', 'min_build_id',
                     'diagnose_firmware', 'uri', 'allow_local')
SESSION_SETTINGS = ('cek_file', 'ark_file', 'ask_file', 'lab_root', 'generation', 'cpu0_id', 'min_pdh_api_version',
                    'policy')
# Result keys of a validation that never leave this module (the packet goes to the host only).
PRIVATE_VALIDATION_KEYS = ('secret_header', 'secret_payload')


class StepFailed(Exception):
    """One guest's step failed: (reason, message)."""

    def __init__(self, reason, message, **extra):
        super(StepFailed, self).__init__(message)
        self.reason = reason if reason in REASON_CODES and reason != 'ok' else 'error'
        self.message = message
        self.extra = extra


def bounded(message, limit=MAX_HOST_MESSAGE):
    if not isinstance(message, str):
        return 'no message'
    if len(message) > limit:
        return message[:limit] + '... (%d characters cut)' % (len(message) - limit)
    return message


def host_item_failure(what, item):
    """StepFailed for a failed (or missing, or malformed) host item: the host's
    class only when it is one a host-side failure may have, its message bounded."""
    if not isinstance(item, dict):
        return StepFailed('error', '%s: the host returned no result for this guest' % what)
    claimed = item.get('reason')
    reason = claimed if isinstance(claimed, str) and claimed in HOST_FAILURE_REASONS else 'error'
    extra = {}
    kind = item.get('error_kind')
    if isinstance(kind, str) and len(kind) <= 40:
        extra['error_kind'] = kind
    return StepFailed(reason, '%s failed on the host: %s' % (what, bounded(item.get('msg'))), **extra)


def _is_id(value):
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_DOMAIN_ID


class Guest:
    """One guest's progress through the batch."""

    def __init__(self, index, entry):
        self.index = index
        self.entry = entry
        self.domain = entry.get('domain') if isinstance(entry, dict) else None
        self.settings = None
        self.uuid = None
        self.pinned = None
        self.plan = None
        self.why = None
        self.record = None
        self.launch_id = None
        self.files = None
        self.fresh = None
        self.session = None
        self.started_id = None
        self.started = False
        self.start_recorded = False
        self.report = None
        self.validation = None
        self.packet = None
        self.injected = False
        self.inject_recorded = False
        self.resumed = False
        self.predestroyed = False
        self.destroyed = False
        self.destroy_msg = None
        self.destroy_failed = False
        self.failure = None
        self.warnings = []

    @property
    def live(self):
        return self.failure is None

    @property
    def label(self):
        return self.domain if isinstance(self.domain, str) and self.domain else 'guests[%d]' % self.index

    def fail(self, task, reason, message, **extra):
        if self.failure is None:
            reason = reason if reason in REASON_CODES and reason != 'ok' else 'error'
            self.failure = dict(task=task, reason=reason, rc=REASON_CODES[reason], msg=message, **extra)


class LaunchBatch:
    """One host's guests.  ``call_host(module_name, args)`` runs a host-side
    module on the hypervisor host (its raw result); ``read_file(path, what)``,
    ``read_output(path, what)``, ``find(path, what)`` and ``resolve_path(path,
    what)`` are the controller's file helpers (see plugin_utils/controller_action.py);
    ``local`` is (whether the hypervisor is the controller, why) for a URI, from
    ``local_for(uri)``; ``check_entry(entry)`` refuses (SevError) a raw entry
    of ``guests`` before its options are converted."""

    def __init__(self, params, host, call_host, read_file, read_output, find, resolve_path, local_for,
                 controller_hostname=None, check_mode=False, digest_cache=None, check_entry=None):
        self.params = params
        self.host = host
        self.call_host = call_host
        self.read_file = read_file
        self.read_output = read_output
        self.find = find
        self.resolve_path = resolve_path
        self.local_for = local_for
        self.controller_hostname = controller_hostname
        self.check_mode = check_mode
        self.digest_cache = digest_cache
        self.check_entry = check_entry
        self.guests = [Guest(index, entry) for index, entry in enumerate(params['guests'] or [])]
        self.nodes = {}
        self.whole = {}
        # seconds per step, for the fleet benchmark's split (host calls vs controller work)
        self.timings = {}
        self.warnings = []

    # ---- helpers ------------------------------------------------------------------------------

    def _live(self, predicate=None):
        return [guest for guest in self.guests if guest.live and (predicate is None or predicate(guest))]

    def _per_guest(self, guests, task, action):
        """Run ``action(guest)`` for each guest; any failure fails that guest only."""
        for guest in guests:
            if not guest.live:
                continue
            try:
                action(guest)
            except StepFailed as exc:
                guest.fail(task, exc.reason, exc.message, **exc.extra)
            except SevError as exc:
                guest.fail(task, exc.reason, str(exc))
            except Exception as exc:  # pylint: disable=broad-except
                # never a traceback, never a value: the class and message of the error only
                guest.fail(task, 'error', 'unexpected error: %s: %s' % (type(exc).__name__, bounded(str(exc), 500)))

    def _host_call(self, module, list_option, guests, items, common=None):
        """One host call per libvirt URI for ``guests`` (``items`` in the same
        order).  Returns [(guest, item, failure)] in the guests' order: ``item``
        the host's result for that guest (also when it failed: it may say what
        was done), ``failure`` a StepFailed when the call failed as a whole or
        the item failed, else None.  ``self.whole[uri]`` keeps each call's result."""
        what = module.split('.')[-1]
        groups = {}
        for guest, item in zip(guests, items):
            groups.setdefault(guest.settings['uri'], []).append((guest, item))
        found = {}
        for uri, members in groups.items():
            args = dict(common or {}, uri=uri)
            if self.params.get('max_parallel') is not None:
                args['max_parallel'] = self.params['max_parallel']
            if callable(args.get('include_node')):
                args['include_node'] = args['include_node']([guest for guest, dummy in members])
            args[list_option] = [item for dummy, item in members]
            try:
                result = self.call_host(module, args)
            except Exception as exc:  # pylint: disable=broad-except
                result = {'failed': True, 'msg': 'the module could not be run: %s: %s'
                          % (type(exc).__name__, bounded(str(exc), 500))}
            checked = module == INFO_MODULE
            if checked:
                # every report checked on the controller, item by item, as the sev_launch_info task does
                result = check_launch_batch(result, args[list_option], bool(args.get('include_node')))
            self.whole[(module, uri)] = result
            results = result.get('results') if isinstance(result, dict) else None
            if not isinstance(results, list) or len(results) != len(members):
                failure = host_item_failure(what, result if isinstance(result, dict) else None)
                if isinstance(results, list):
                    failure = StepFailed('error', '%s: the host returned %d results for %d guests'
                                         % (what, len(results), len(members)))
                for guest, dummy in members:
                    found[id(guest)] = (guest, None, failure)
                continue
            for (guest, dummy), item in zip(members, results):
                failure = None
                if checked and isinstance(item, dict) and item.get('failed'):
                    # already the controller's own failure (class and message checked, bounded)
                    failure = StepFailed(item.get('reason'), bounded(item.get('msg')), **dict(
                        (key, item[key]) for key in ('error_kind',) if isinstance(item.get(key), str)))
                elif not isinstance(item, dict) or item.get('failed') or item.get('skipped'):
                    failure = host_item_failure(what, item)
                found[id(guest)] = (guest, item if isinstance(item, dict) else None, failure)
        return [found[id(guest)] for guest in guests]

    def _batch(self, module, list_option, guests, items, task, common=None):
        """_host_call, failing the guests whose item failed; [(guest, item)] of those that succeeded."""
        done = []
        for guest, item, failure in self._host_call(module, list_option, guests, items, common):
            if failure is not None:
                guest.fail(task, failure.reason, failure.message, **failure.extra)
            else:
                done.append((guest, item))
        return done

    def _record(self, guest, state, **fields):
        """sev_launch_record's step for this guest (raises StepFailed)."""
        params = dict((key, None) for key in launch_record_options.ARGUMENT_SPEC)
        params.update(state_dir=guest.settings['state_dir'], host=self.host, domain_uuid=guest.uuid, state=state,
                      if_active=guest.settings['if_active'], resume=guest.settings['resume'])
        params.update(fields)
        result = launch_record_options.run_record(params, check_mode=self.check_mode)
        if result.get('failed'):
            raise StepFailed(result.get('reason'), result.get('msg'))
        return result

    def _check_uuid(self, guest, item, what):
        uuid = item.get('uuid')
        if not isinstance(uuid, str) or store.canonical_uuid(uuid, '%s uuid' % what) != guest.uuid:
            raise StepFailed('error', '%s: the host answered about domain %.60r, not %s' % (what, uuid, guest.uuid))

    # ---- steps --------------------------------------------------------------------------------

    def check_entries(self):
        seen = {}

        def check(guest):
            entry = guest.entry
            if not isinstance(entry, dict):
                raise StepFailed('unsupported', 'guests[%d] is not a mapping with domain and overrides'
                                 % guest.index)
            unknown = sorted(str(key) for key in entry if key not in GUEST_SPEC)
            if unknown:
                raise StepFailed('unsupported', 'guests[%d]: unknown keys %s; an entry has domain (a name or UUID) '
                                 'and overrides named like the role variables without the sev_launch_ prefix'
                                 % (guest.index, ', '.join(unknown)))
            domain = entry.get('domain')
            if isinstance(domain, int) and not isinstance(domain, bool):
                domain = str(domain)
            if not isinstance(domain, str) or not domain.strip():
                raise StepFailed('unsupported', 'guests[%d]: domain (a name or UUID) is missing or empty'
                                 % guest.index)
            guest.domain = domain
            if self.check_entry is not None:
                # integers in ASCII digits, no NUL in a path, before any conversion (SevError)
                self.check_entry(entry)
            if domain in seen:
                raise StepFailed('unsupported', 'guests[%d]: domain %s is listed twice (also guests[%d]); each '
                                 'guest is launched once' % (guest.index, domain, seen[domain]))
            seen[domain] = guest.index
            merged = dict((name, self.params.get(name)) for name in SETTINGS_SPEC)
            merged.update((key, value) for key, value in entry.items() if key != 'domain')
            # a null is no value (the rules count keys that are present)
            merged = dict((key, value) for key, value in merged.items() if value is not None)
            validated = ArgumentSpecValidator(SETTINGS_SPEC, **GUEST_RULES).validate(merged)
            if validated.error_messages:
                # the messages name options; a secret option's value is never in them
                raise StepFailed('unsupported', 'guests[%d] (%s): %s'
                                 % (guest.index, domain, '; '.join(validated.error_messages)))
            settings = dict(validated.validated_parameters)
            settings['state_dir'] = os.path.expanduser(settings['state_dir'])
            if not os.path.isabs(settings['state_dir']):
                raise StepFailed('unsupported', 'state_dir must be an absolute path')
            guest.settings = settings
        self._per_guest(self.guests, CHECK_TASK, check)

    def pin(self):
        """One sev_launch_info call: every domain resolved (UUID, ID, state), plus the node's SEV data
        when a fresh session will be needed (not in check mode: no session is made then)."""
        guests = self._live()

        def include_node(members):
            return not self.check_mode and any(self._fresh(guest) for guest in members)
        done = self._batch(INFO_MODULE, 'domains', guests, [g.domain for g in guests],
                           PIN_TASK, {'include_node': include_node})
        for (module, uri), result in self.whole.items():
            if module == INFO_MODULE and include_node(
                    [guest for guest in guests if guest.settings['uri'] == uri]):
                self.nodes[uri] = self._node(result)
        seen = {}

        def keep(guest, item):
            info = dict(item, changed=False)
            guest.pinned = info
            guest.uuid = store.canonical_uuid(info['uuid'], 'the pinned uuid')
            if guest.uuid in seen:
                raise StepFailed('unsupported', 'domain %s is the same domain (%s) as %s, listed before'
                                 % (guest.domain, guest.uuid, seen[guest.uuid]))
            seen[guest.uuid] = guest.domain
        for guest, item in done:
            self._per_guest([guest], PIN_TASK, lambda g, item=item: keep(g, item))

    @staticmethod
    def _node(result):
        """(node, None): the node's SEV data from the pin call, checked by check_launch_batch; or
        (None, why): every guest needing a fresh session then fails at its session step."""
        node = result.get('node') if isinstance(result, dict) else None
        if isinstance(node, dict) and isinstance(node.get('node_sev'), dict):
            return dict(node, changed=False), None
        why = result.get('msg') if isinstance(result, dict) else None
        return None, 'the host returned no usable node SEV data (%s)' % bounded(why, 500)

    @staticmethod
    def _fresh(guest):
        settings = guest.settings
        return settings['tik'] is None and settings['tek'] is None and settings['tk'] is None

    def decide(self):
        def plan(guest):
            result = self._record(guest, 'query', reported=guest.pinned)
            guest.plan, guest.why, guest.record = result['plan'], result['why'], result.get('record')
            if guest.plan == 'fail':
                raise StepFailed('state', guest.why)
        self._per_guest(self._live(), PLAN_TASK, plan)
        for guest in self.guests:
            if guest.failure and guest.plan == 'fail':
                guest.failure['task'] = PLAN_FAIL_TASK

        def needs(guest):
            settings = guest.settings
            guest.fresh = self._fresh(guest)
            missing = []
            if settings['firmware'] is None:
                missing.append('firmware')
            if guest.fresh and settings['policy'] is None:
                missing.append('policy')
            if guest.fresh and settings['cek_file'] is None:
                missing.append('cek_file')
            if missing:
                raise StepFailed('unsupported', 'a launch needs %s: a launch needs firmware; a fresh session per '
                                 'launch (the default, without tik/tek or tk) also needs policy (the guest '
                                 'policy, an integer) and cek_file (the chip\'s CEK from AMD\'s key server, per '
                                 'host: see the role\'s README)' % ', '.join(missing))
        self._per_guest(self._live(lambda g: g.plan in ('launch', 'relaunch')), NEEDS_TASK, needs)

    def predestroy(self):
        guests = self._live(lambda g: g.plan == 'relaunch')
        done = self._batch('confidential.sev.sev_domain', 'domains', guests,
                           [{'domain': g.uuid, 'expect_id': g.pinned['id']} for g in guests], PREDESTROY_TASK,
                           {'state': 'destroyed'})

        def check(guest, item):
            self._check_uuid(guest, item, 'sev_domain')
            if item.get('destroyed') is not True:
                raise StepFailed('state', 'the active launch (domain ID %s) was not destroyed: %s'
                                 % (guest.pinned['id'], bounded(item.get('msg') or item.get('skip_reason'))))
            guest.predestroyed = True
        for guest, item in done:
            self._per_guest([guest], PREDESTROY_TASK, lambda g, item=item: check(g, item))

    def prepare(self):
        def prepare(guest):
            result = self._record(guest, 'prepare')
            guest.launch_id, guest.files = result['launch_id'], result['files']
        self._per_guest(self._live(lambda g: g.plan in ('launch', 'relaunch')), PREPARE_TASK, prepare)

    def sessions(self):
        def session(guest):
            node, why = self.nodes.get(guest.settings['uri']) or (None, 'the host returned no node SEV data')
            if node is None:
                raise StepFailed('unsupported', why)
            settings = guest.settings
            args = dict((name, settings[name]) for name in SESSION_SETTINGS)
            args.update(node_sev=node, tek_file=guest.files['tek'], tik_file=guest.files['tik'],
                        dh_cert_file=guest.files['dh_cert'], session_file=guest.files['session'], force=True)
            args = dict((key, value) for key, value in args.items() if value is not None)
            params = _normalised(session_options.ARGUMENT_SPEC, session_options.VALIDATION_RULES, args)
            result = session_options.run_session(params, self.read_file, read_output=self.read_output,
                                                 check_mode=False, resolve_input=self.find)
            if result.get('failed'):
                raise StepFailed(result.get('reason'), result.get('msg'))
            guest.warnings.extend(result.get('warnings') or [])
            guest.session = {'dh_cert': result['dh_cert'], 'session': result['session'],
                             'policy': result['policy']['value']}
        self._per_guest(self._live(lambda g: g.plan in ('launch', 'relaunch') and g.fresh), SESSION_TASK, session)

    def start(self):
        guests = self._live(lambda g: g.plan in ('launch', 'relaunch'))
        items = []
        for guest in guests:
            item = {'domain': guest.uuid}
            if guest.fresh:
                item['launch_security'] = guest.session
            items.append(item)
        calls = self._host_call('confidential.sev.sev_domain', 'domains', guests, items, {'state': 'paused'})
        for guest, item, failure in calls:
            # Started by this run (to destroy on failure) when the host says it changed it to an active
            # launch, failed or not: a start that half-failed is still destroyed (by its ID).
            if item is not None and item.get('changed') is True and _is_id(item.get('id')):
                guest.started_id, guest.started = item['id'], True
            if failure is not None:
                guest.fail(START_TASK, failure.reason, failure.message, **failure.extra)
        results = dict((id(guest), item) for guest, item, dummy in calls)

        def check(guest):
            item = results[id(guest)]
            self._check_uuid(guest, item, 'sev_domain')
            if not _is_id(item.get('id')):
                raise StepFailed('error', 'sev_domain: the host returned no domain ID for the started launch')
            guest.started_id = item['id']
            self._record(guest, 'started', launch_id=guest.launch_id, domain_id=guest.started_id,
                         domain_name=item.get('name') if isinstance(item.get('name'), str) else None,
                         uri=guest.settings['uri'], session='fresh' if guest.fresh else 'premade',
                         secret_count=len(guest.settings['secrets'] or []))
            guest.start_recorded = True
        self._per_guest(self._live(lambda g: g in guests), START_RECORD_TASK, check)

    def read_reports(self):
        guests = self._live(lambda g: g.started_id is not None and g.plan in ('launch', 'relaunch'))
        done = self._batch(INFO_MODULE, 'domains', guests, [g.uuid for g in guests],
                           READ_TASK, {'include_node': False})

        def check(guest, item):
            info = dict(item, changed=False)
            if store.canonical_uuid(info['uuid'], 'reported uuid') != guest.uuid:
                raise StepFailed('error', 'the host reported domain %s, not %s' % (info['uuid'], guest.uuid))
            guest.report = info
        for guest, item in done:
            self._per_guest([guest], READ_TASK, lambda g, item=item: check(g, item))

        def prelaunch(guest):
            info = guest.report
            if info['id'] != guest.started_id or info['run_state'] != 'prelaunch':
                raise StepFailed('state', 'the host reports domain ID %s in run state %s, not the launch this run '
                                 'started (ID %s) before its first run'
                                 % (info['id'], info['run_state'], guest.started_id))
        self._per_guest(self._live(lambda g: g.report is not None), REPORT_CHECK_TASK, prelaunch)

    def validate(self):
        def validate(guest):
            settings = guest.settings
            args = dict((name, settings[name]) for name in VALIDATE_SETTINGS)
            if guest.fresh:
                args.update(tik=guest.files['tik'], tek=guest.files['tek'])
            else:
                args.update(tik=settings['tik'], tek=settings['tek'], tk=settings['tk'])
            args.update(launch_info=guest.report, replay_dir=os.path.join(settings['state_dir'], 'seen'),
                        replay_context={'host': self.host, 'domain_uuid': guest.uuid,
                                        'domain_id': guest.started_id, 'launch_id': guest.launch_id})
            args = dict((key, value) for key, value in args.items() if value is not None)
            params = _normalised(validate_options.ARGUMENT_SPEC, validate_options.VALIDATION_RULES, args)
            kwargs = {}
            if self.digest_cache is not None:
                kwargs['digest_cache'] = self.digest_cache
            result = validate_options.run_validation(
                params, self.read_file, resolve_path=self.resolve_path, controller_hostname=self.controller_hostname,
                local=self.local_for(settings['uri']), check_mode=False, **kwargs)
            guest.warnings.extend(result.get('warnings') or [])
            if result.get('failed') or not result.get('valid'):
                extra = {'replayed': True} if result.get('replayed') else {}
                raise StepFailed(result.get('reason'), result.get('msg') or 'the measurement did not validate',
                                 **extra)
            guest.packet = (result.get('secret_header'), result.get('secret_payload'))
            guest.validation = dict((key, value) for key, value in result.items()
                                    if key not in PRIVATE_VALIDATION_KEYS)
        self._per_guest(self._live(lambda g: g.report is not None), VALIDATE_TASK, validate)

        def record(guest):
            self._record(guest, 'validated', launch_id=guest.launch_id, measurement=guest.report['measurement'],
                         replay=guest.validation.get('replay'))
        self._per_guest(self._live(lambda g: g.validation is not None), VALIDATED_RECORD_TASK, record)

    def inject(self):
        guests = self._live(lambda g: g.validation is not None and g.settings['secrets'])
        for guest in guests:
            if not guest.packet[0] or not guest.packet[1]:
                guest.fail(INJECT_TASK, 'error', 'the validation made no secret packet')
        guests = [guest for guest in guests if guest.live]
        items = []
        for guest in guests:
            item = {'domain': guest.uuid, 'expect_id': guest.started_id, 'header': guest.packet[0],
                    'payload': guest.packet[1]}
            if guest.settings['secret_address'] is not None:
                item['address'] = guest.settings['secret_address']
            items.append(item)
        calls = self._host_call('confidential.sev.sev_secret_inject', 'injections', guests, items)
        for guest, item, failure in calls:
            if item is not None and item.get('injected') is True:
                # the platform took the secret, even if a later step of the item failed
                guest.injected = True
            if failure is not None:
                guest.fail(INJECT_TASK, failure.reason, failure.message, **failure.extra)
            elif item.get('injected') is not True:
                guest.fail(INJECT_TASK, 'error', 'sev_secret_inject: the host did not say the secrets were injected')
        for guest in guests:
            guest.packet = None

        def record(guest):
            self._record(guest, 'injected', launch_id=guest.launch_id)
            guest.inject_recorded = True
        self._per_guest(self._live(lambda g: g.injected), INJECT_RECORD_TASK, record)

    def resume(self):
        new = self._live(lambda g: g.validation is not None and g.settings['resume'])
        earlier = self._live(lambda g: g.plan == 'resume')
        guests = new + earlier
        items = [{'domain': g.uuid, 'expect_id': g.started_id if g in new else g.record['domain_id']}
                 for g in guests]
        done = self._batch('confidential.sev.sev_domain', 'domains', guests, items, RESUME_TASK,
                           {'state': 'resumed'})
        for guest in earlier:
            if guest.failure and guest.failure['task'] == RESUME_TASK:
                guest.failure['task'] = RESUME_EARLIER_TASK

        def record(guest, item):
            self._check_uuid(guest, item, 'sev_domain')
            guest.resumed = True
            launch_id = guest.launch_id if guest in new else guest.record['launch_id']
            self._record(guest, 'resumed', launch_id=launch_id)
        for guest, item in done:
            self._per_guest([guest], RESUME_RECORD_TASK, lambda g, item=item: record(g, item))

    def destroy_failed(self):
        """The launches this run started whose guest failed, by UUID and expect_id, in one call;
        then each failure recorded."""
        guests = [g for g in self.guests if g.failure is not None and g.started and g.started_id is not None]
        calls = self._host_call('confidential.sev.sev_domain', 'domains', guests,
                                [{'domain': g.uuid, 'expect_id': g.started_id} for g in guests],
                                {'state': 'destroyed'})
        for guest, item, failure in calls:
            if failure is None and item.get('destroyed') is True:
                guest.destroyed = True
            elif failure is not None:
                guest.destroy_failed = True
                guest.destroy_msg = failure.message
            else:
                guest.destroy_msg = bounded(item.get('msg') or item.get('skip_reason') or 'not destroyed')
        for guest in self.guests:
            if guest.failure is None or self.check_mode:
                continue
            if guest.injected and guest.start_recorded and not guest.inject_recorded:
                try:
                    self._record(guest, 'injected', launch_id=guest.launch_id)
                except (StepFailed, SevError):
                    pass
            if guest.start_recorded:
                failure = guest.failure
                try:
                    self._record(guest, 'failed', launch_id=guest.launch_id,
                                 reason='%s: %s' % (failure['task'], failure['msg']), destroyed=guest.destroyed)
                except (StepFailed, SevError) as exc:
                    failure['record_msg'] = 'the failure could not be recorded: %s' % getattr(exc, 'message', exc)

    # ---- the run ------------------------------------------------------------------------------

    def run(self):
        """Every step, then the outcomes.  Whatever happens, the launches this run started for
        guests that failed are destroyed before it returns."""
        steps = [self.check_entries, self.pin, self.decide]
        if not self.check_mode:
            steps += [self.predestroy, self.prepare, self.sessions, self.start, self.read_reports, self.validate,
                      self.inject, self.resume]
        try:
            for step in steps:
                began = time.monotonic()
                step()
                self.timings[step.__name__] = round(time.monotonic() - began, 3)
        except Exception as exc:  # pylint: disable=broad-except
            # a step that failed outside a guest's own work: every guest still on its way fails
            for guest in self.guests:
                if guest.live and not self._finished(guest):
                    guest.fail(UNEXPECTED_TASK, 'error', 'unexpected error: %s: %s'
                               % (type(exc).__name__, bounded(str(exc), 500)))
        finally:
            if not self.check_mode:
                began = time.monotonic()
                self.destroy_failed()
                self.timings['destroy_failed'] = round(time.monotonic() - began, 3)
        return [self.outcome(guest) for guest in self.guests]

    def _finished(self, guest):
        if guest.plan == 'ok':
            return True
        if guest.plan == 'resume':
            return guest.resumed
        return guest.validation is not None and (not guest.settings['secrets'] or guest.inject_recorded) and (
            guest.resumed or not guest.settings['resume'])

    # ---- outcomes -----------------------------------------------------------------------------

    def outcome(self, guest):
        settings = guest.settings or {}
        launch_id = guest.launch_id
        if launch_id is None and isinstance(guest.record, dict):
            launch_id = guest.record.get('launch_id')
        pinned_id = guest.pinned['id'] if guest.pinned else None
        result = {
            'domain': guest.domain if guest.domain is not None else guest.label,
            'uuid': guest.uuid, 'plan': guest.plan, 'check_mode': bool(self.check_mode),
            'launch_id': launch_id,
            'domain_id': guest.started_id if guest.started_id is not None else pinned_id,
            'warnings': list(dict.fromkeys(guest.warnings)),
        }
        if guest.failure is None:
            plan = guest.plan
            if self.check_mode:
                msg = 'would %s: %s' % (plan, guest.why)
            elif plan == 'ok':
                msg = guest.why
            elif plan == 'resume':
                msg = 'resumed launch %s, validated earlier' % launch_id
            else:
                msg = '%s: launch %s (domain ID %s) validated, %d secret(s) injected, %s' % (
                    'relaunched' if plan == 'relaunch' else 'launched', launch_id, guest.started_id,
                    len(settings.get('secrets') or []),
                    'resumed' if settings.get('resume') else
                    'left paused before its first run (sev_launch_resume: false)')
            result.update(changed=plan != 'ok', failed=False, reason='ok', rc=0,
                          destroyed=bool(guest.predestroyed), msg=msg)
            return result
        failure = guest.failure
        msg = '%s failed (reason %s, rc %s): %s' % (failure['task'], failure['reason'], failure['rc'], failure['msg'])
        if guest.started:
            if guest.destroyed:
                msg += '; the launch this run started (domain ID %s) was destroyed' % guest.started_id
            elif guest.destroy_failed:
                msg += ('; destroying the launch this run started (domain ID %s) failed too: %s'
                        % (guest.started_id, guest.destroy_msg))
            else:
                msg += ('; the launch this run started (domain ID %s) was not destroyed: %s'
                        % (guest.started_id, guest.destroy_msg or ''))
        else:
            msg += '; nothing was started or destroyed'
        if guest.injected:
            msg += '; the secret(s) had been delivered to this validated launch (injected) before it failed'
        if failure.get('record_msg'):
            msg += '; %s' % failure['record_msg']
        result.update(changed=bool(guest.started or guest.predestroyed), failed=True, reason=failure['reason'],
                      rc=failure['rc'], destroyed=bool(guest.destroyed or guest.predestroyed),
                      failed_task=failure['task'], destroy_msg=guest.destroy_msg, msg=msg)
        for key in ('error_kind', 'replayed'):
            if key in failure:
                result[key] = failure[key]
        return result


def _normalised(spec, rules, args):
    """Options checked and completed with their defaults, as an action plugin's
    validate_argument_spec does; a usage error names the options only."""
    validated = ArgumentSpecValidator(spec, **rules).validate(args)
    if validated.error_messages:
        raise UnsupportedUsage('; '.join(validated.error_messages))
    params = dict(validated.validated_parameters)
    return params


def summary(outcomes):
    """Task-level fields from the outcomes: changed, failed, msg, reason, rc."""
    failed = [outcome for outcome in outcomes if outcome['failed']]
    result = {'changed': any(outcome['changed'] for outcome in outcomes), 'outcomes': outcomes,
              'failed_count': len(failed)}
    if failed:
        result.update(failed=True, reason=failed[0]['reason'], rc=failed[0]['rc'],
                      msg='%d of %d guests failed: %s' % (len(failed), len(outcomes), '; '.join(
                          '%s: %s' % (outcome['domain'], outcome['msg']) for outcome in failed)))
    else:
        result.update(reason='ok', rc=0, msg='%d guest(s): %s' % (len(outcomes), ', '.join(
            '%s %s' % (outcome['domain'], outcome['plan']) for outcome in outcomes) or 'none'))
    return result


__all__ = ['LaunchBatch', 'summary', 'SECRET_SETTINGS']

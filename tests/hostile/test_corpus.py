# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hostile-input corpus (issue 10, item 3), in-process through the controller-side action plugins.

Each case of corpus.CASES runs its driver's plugin through the action test
harness (a real DataLoader, the plugin's own run()) in a forked child under a
watchdog (runner.py), and is asserted on its declared class, the message
naming the input, no key or secret in the result, and its time and memory.
"""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from ansible_collections.confidential.sev.plugins.action import (
    sev_launch_info, sev_launch_record, sev_measurement_validate, sev_reference_measurement, sev_session,
)
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import REASON_CODES, SevError, failure_result
from ansible_collections.confidential.sev.plugins.modules import sev_secret_inject
from ansible_collections.confidential.sev.tests.hostile import corpus, runner
from ansible_collections.confidential.sev.tests.unit.plugins.action import action_harness

PLUGINS = {
    'validate': (sev_measurement_validate, 'confidential.sev.sev_measurement_validate'),
    'session': (sev_session, 'confidential.sev.sev_session'),
    'reference': (sev_reference_measurement, 'confidential.sev.sev_reference_measurement'),
    'record': (sev_launch_record, 'confidential.sev.sev_launch_record'),
    'launch_info': (sev_launch_info, 'confidential.sev.sev_launch_info'),
}
BASELINES = {'validate': 'baseline/validate', 'session': 'session/baseline', 'reference': 'reference/baseline',
             'record': 'record/baseline', 'launch_info': 'host-report/baseline', 'packet': 'packet/baseline'}
CASES = dict((case.id, case) for case in corpus.CASES)


def prepare(case, root):
    """The case's files and arguments (not measured): (plugin, name, args, root)."""
    env = corpus.Env(root)
    plugin, name = PLUGINS.get(case.driver, (None, case.driver))
    built = case.build(env)
    if case.driver == 'launch_info':
        module_result = built.pop('__module_result__', None) if isinstance(built, dict) else None
        if module_result is None:
            module_result = {'changed': False, 'report': built}

        def fake_module(self, module_name=None, module_args=None, task_vars=None, **kwargs):
            del self, module_args, task_vars, kwargs
            assert module_name == name
            return module_result
        # Only in the forked child: the host's module result is injected.
        plugin.ActionModule._execute_module = fake_module
        args = dict(case.task_args)
    else:
        args = built
    args = dict((key, value) for key, value in args.items() if value is not None)
    return plugin, name, args, root


def check_packet(header=None, payload=None):
    """sev_secret_inject's check of the LAUNCH_SECRET packet, as its module maps a refusal."""
    try:
        sev_secret_inject.check_packet(header, payload)
    except SevError as exc:
        return failure_result(exc.reason, str(exc))
    return {'changed': False, 'rc': 0, 'reason': 'ok'}


def execute(prepared):
    """Run a prepared case in this process; the plugin's result dict."""
    plugin, name, args, root = prepared
    if plugin is None:
        return check_packet(**args)
    return action_harness.Harness(plugin, name, root).run(**args)


_BASELINE_PEAKS = {}


def baseline_peak(driver, tmp_path_factory):
    if driver not in _BASELINE_PEAKS:
        case = CASES[BASELINES[driver]]
        root = tmp_path_factory.mktemp('baseline')
        outcome = runner.run_case(execute, lambda: prepare(case, root))
        assert outcome.error is None and outcome.result.get('rc', 0) == 0, outcome
        _BASELINE_PEAKS[driver] = outcome.peak
    return _BASELINE_PEAKS[driver]


def secret_forms(value):
    forms = {value, value.hex().encode(), value.hex().upper().encode()}
    for shift in range(3):
        encoded = base64.b64encode(b'\0' * shift + value)[4 * ((shift + 2) // 3):]
        # the part of the encoding that depends on value alone, at each alignment
        forms.add(encoded[:-4] if len(encoded) > 8 else encoded)
    return forms


# What ansible-core 2.19 itself adds to a failed task's registered result (no traceback in it).
ANSIBLE_PLACEHOLDER = '(traceback unavailable)'


def problems(case, outcome, peak_limit, through_ansible=False):
    """Everything wrong with one outcome, as text (empty when the case passes)."""
    found = []
    if outcome.error is not None:
        return ['no result: %s' % outcome.error.strip().splitlines()[-1] if '\n' in outcome.error else outcome.error,
                outcome.error]
    result = outcome.result
    rc, reason, msg = result.get('rc'), result.get('reason'), str(result.get('msg', ''))
    if case.driver in ('session', 'reference', 'record', 'launch_info', 'packet') and rc is None:
        rc = 1 if result.get('failed') else 0   # a plain success carries no rc
    expected = corpus.EXPECTED_RCS[case.expect]
    if rc not in expected:
        found.append('rc %r (reason %r), expected %s %s: %s' % (rc, reason, case.expect, sorted(expected), msg[:300]))
    if rc not in (None, 0) and reason is not None and REASON_CODES.get(reason) != rc:
        found.append('reason %r does not go with rc %r' % (reason, rc))
    if bool(result.get('failed')) != (rc != 0):
        found.append('failed=%r with rc %r' % (result.get('failed'), rc))
    exception = result.get('exception')
    if through_ansible and exception == ANSIBLE_PLACEHOLDER:
        exception = None
    if exception is not None or 'Traceback' in msg or 'unexpected error' in msg:
        found.append('traceback/unexpected error: %s' % msg[:300])
    if rc in (2, 3, 4) and case.expect in (corpus.REFUSAL, corpus.HARMLESS) and case.words:
        if not any(word.lower() in msg.lower() for word in case.words):
            found.append('message names none of %s: %s' % (list(case.words), msg[:300]))
    text = json.dumps(result, default=repr).encode('utf-8', 'surrogatepass')
    for value in corpus.SECRETS:
        for form in secret_forms(value):
            if form and form in text:
                found.append('secret material in the result (%d-byte form)' % len(form))
                break
    if outcome.seconds is not None and outcome.seconds > runner.TIME_LIMIT:
        found.append('took %.1f s (limit %.0f s)' % (outcome.seconds, runner.TIME_LIMIT))
    if outcome.peak is not None and outcome.peak > peak_limit:
        found.append('peak %.1f MB over the limit %.1f MB' % (outcome.peak / 1e6, peak_limit / 1e6))
    return found


@pytest.fixture(scope='module')
def lab_platform():
    """Made once, before any fork: its keys are what every session case's child reuses."""
    return corpus.Lab.platform()


@pytest.mark.parametrize('case_id', sorted(CASES))
def test_case(case_id, tmp_path, tmp_path_factory, lab_platform):
    del lab_platform
    case = CASES[case_id]
    limit = baseline_peak(case.driver, tmp_path_factory) + runner.MEMORY_LIMIT
    outcome = runner.run_case(execute, lambda: prepare(case, tmp_path))
    found = problems(case, outcome, limit)
    for node in tmp_path.rglob('dev-*'):
        if not stat.S_ISCHR(os.lstat(node).st_mode):
            found.append('the device %s was replaced by a %s' % (node.name, 'file' if node.is_file() else 'non-device'))
    assert not found, '%s: %s' % (case_id, '; '.join(found[:3]))


def test_corpus_size_and_coverage():
    """At least 300 cases, every driver and category present, every class declared."""
    assert len(corpus.CASES) >= 300
    assert set(case.driver for case in corpus.CASES) == set(PLUGINS) | {'packet'}
    assert set(case.expect for case in corpus.CASES) == set(corpus.EXPECTED_RCS)
    categories = set(case.category for case in corpus.CASES)
    assert categories >= {'integer', 'key', 'vmsa', 'base64', 'cmdline', 'guid', 'secret', 'ovmf', 'path',
                          'host-report', 'cert', 'session', 'reference', 'record', 'policy', 'packet'}

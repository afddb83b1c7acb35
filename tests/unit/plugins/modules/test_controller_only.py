# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller-only modules, run without their action plugins (as on a
managed host), refuse after checking their arguments, and never do the work."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.confidential.sev.plugins.modules import (
    sev_launch_record, sev_measurement_validate, sev_reference_measurement, sev_session,
)

CASES = [
    (sev_measurement_validate, {'measurement': 'AAAA', 'tik': '/k', 'tek': '/k'}),
    (sev_session, {'policy': 3, 'tk_file': '/k'}),
    (sev_reference_measurement, {'firmware': ['/f'], 'dest': '/d'}),
    (sev_launch_record, {'state_dir': '/s', 'host': 'h', 'domain_uuid': 'u', 'state': 'prepare'}),
]


def run_module(module, args, monkeypatch, capsys):
    monkeypatch.setattr(basic, '_ANSIBLE_ARGS', to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args})))
    monkeypatch.setattr(basic, '_ANSIBLE_PROFILE', 'legacy', raising=False)
    with pytest.raises(SystemExit) as info:
        module.main()
    return info.value.code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize('module, args', CASES, ids=lambda value: getattr(value, '__name__', '').split('.')[-1])
def test_refuses_on_a_managed_host(module, args, monkeypatch, capsys):
    code, result = run_module(module, args, monkeypatch, capsys)
    name = module.__name__.split('.')[-1]
    assert code == 1
    assert result['failed'] is True
    assert (result['reason'], result['rc']) == ('unsupported', 2)
    assert result['msg'] == ('confidential.sev.%s runs on the controller through its action plugin; it cannot be '
                             'executed on a managed host' % name)


def test_arguments_are_still_checked(monkeypatch, capsys):
    code, result = run_module(sev_measurement_validate, {'bogus': 1, 'tk': '/k'}, monkeypatch, capsys)
    assert code == 1 and result['failed'] is True
    assert 'bogus' in result['msg'] and 'through its action plugin' not in result['msg']

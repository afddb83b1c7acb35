# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 12: complete return docs on every module — a sample on every return
value (nested ones too), a ``contains:`` on every dict (or list of dicts), and
the one result shape ``msg``, ``rc``, ``reason`` documented as always returned."""

from __future__ import annotations

import importlib
import pathlib

import pytest
import yaml

MODULES = sorted(path.stem for path in
                 (pathlib.Path(__file__).resolve().parents[2] / 'plugins' / 'modules').glob('sev_*.py'))


def returns(name):
    module = importlib.import_module('ansible_collections.confidential.sev.plugins.modules.' + name)
    return yaml.safe_load(module.RETURN) or {}


def walk(entries, prefix=''):
    for key, entry in (entries or {}).items():
        yield prefix + key, entry
        yield from walk(entry.get('contains'), prefix + key + '.')


def test_every_module_is_found():
    assert len(MODULES) >= 8 and 'sev_launch_batch' in MODULES and 'sev_domain' in MODULES


@pytest.mark.parametrize('name', MODULES)
def test_every_return_has_a_sample_and_every_dict_its_contents(name):
    missing_sample = [key for key, entry in walk(returns(name)) if 'sample' not in entry]
    bare_dicts = [key for key, entry in walk(returns(name))
                  if (entry.get('type') == 'dict' or entry.get('elements') == 'dict') and not entry.get('contains')]
    assert (missing_sample, bare_dicts) == ([], []), name


@pytest.mark.parametrize('name', MODULES)
def test_msg_rc_reason_are_always_returned(name):
    documented = returns(name)
    for key in ('msg', 'rc', 'reason'):
        assert key in documented, '%s: %s is not documented' % (name, key)
        assert str(documented[key].get('returned', '')).startswith('always'), (name, key, documented[key])

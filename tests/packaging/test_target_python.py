# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Target Python >= 3.7 (tests/config.yml), checked by compilation only.

The host-side modules and every module_utils file run on the hypervisor host.
Only Python 3.11 exists here, so each is parsed with the Python 3.7 grammar
(ast.parse feature_version=(3, 7): no walrus, positional-only parameters,
match, parenthesized context managers, except*...). Library calls newer than
3.7 are not caught by this; the modules are run on 3.11 only.
"""

from __future__ import annotations

import ast
import pathlib

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
TARGET = (3, 7)
FILES = sorted(list((REPO / 'plugins' / 'modules').glob('*.py'))
               + list((REPO / 'plugins' / 'module_utils').rglob('*.py')))


def test_config_declares_the_target_pythons():
    config = yaml.safe_load((REPO / 'tests' / 'config.yml').read_text())
    assert config['modules']['python_requires'] == '>=%d.%d' % TARGET


def test_there_are_files_to_check():
    assert len(FILES) > 20


@pytest.mark.parametrize('path', FILES, ids=[str(p.relative_to(REPO)) for p in FILES])
def test_parses_with_the_oldest_target_grammar(path):
    source = path.read_text(encoding='utf-8')
    try:
        ast.parse(source, filename=str(path), feature_version=TARGET)
    except SyntaxError as exc:
        pytest.fail('%s does not parse as Python %d.%d (tests/config.yml: python_requires): line %s: %s'
                    % (path.relative_to(REPO), TARGET[0], TARGET[1], exc.lineno, exc.msg))


def test_the_check_catches_newer_syntax():
    """feature_version really refuses 3.8+ syntax (a walrus), so a pass means something."""
    with pytest.raises(SyntaxError):
        ast.parse('if (n := 1):\n    pass\n', feature_version=TARGET)

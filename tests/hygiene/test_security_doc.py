# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/security.md: every claim's test exists (``path::test``; ``::test`` continues the last path)."""

from __future__ import annotations

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(REPO, 'docs', 'security.md')


def citations():
    with open(DOC, encoding='utf-8') as f:
        text = f.read()
    last, found = None, []
    for item in re.findall(r'`([^`\s]*::[^`\s]+)`', text):
        if item == 'path::test':
            continue   # the notation, explained in the introduction
        if item.startswith('::'):
            path, name = last, item[2:]
        else:
            path, name = item.split('::', 1)
            last = path
        found.append((path, name))
    return found


def test_every_cited_test_exists():
    cited = citations()
    assert len(cited) > 80, len(cited)
    missing = []
    for path, name in cited:
        full = os.path.join(REPO, path)
        if not os.path.isfile(full):
            missing.append('%s (no such file)' % path)
            continue
        with open(full, encoding='utf-8') as f:
            if not re.search(r'^\s*def %s\(' % re.escape(name), f.read(), re.M):
                missing.append('%s::%s' % (path, name))
    assert missing == [], missing


def test_cited_files_without_a_test_name_exist():
    with open(DOC, encoding='utf-8') as f:
        text = f.read()
    for path in re.findall(r'`(tests/[^`\s:]+\.py)`', text):
        assert os.path.isfile(os.path.join(REPO, path)), path

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The docsite's guides (docs/docsite/rst/, reStructuredText for antsibull-docs) are what scripts/docsite.sh
makes from docs/*.md, the source the other tests cite: an edit of a Markdown guide without re-running the
script fails here (the fix: ``bash scripts/docsite.sh`` and commit docs/docsite)."""

from __future__ import annotations

import os
import subprocess

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCSITE = os.path.join(REPO, 'docs', 'docsite')


def test_docsite_rst_in_sync_with_markdown():
    proc = subprocess.run(['bash', os.path.join(REPO, 'scripts', 'docsite.sh'), '--check'], cwd=REPO,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_markdown_guide_reaches_the_docsite():
    with open(os.path.join(DOCSITE, 'extra-docs.yml'), encoding='utf-8') as f:
        extra = yaml.safe_load(f)
    listed = [name for section in extra['sections'] for name in section['toctree']]
    guides = sorted(name[:-3] for name in os.listdir(os.path.join(REPO, 'docs')) if name.endswith('.md'))
    assert sorted(listed) == guides
    for name in listed:
        with open(os.path.join(DOCSITE, 'rst', name + '.rst'), encoding='utf-8') as f:
            first = f.readline()
        # the label antsibull-docs requires, so that :ref: and the docsite's index find the guide
        assert first == '.. _ansible_collections.confidential.sev.docsite.%s:\n' % name.replace('-', '_'), name

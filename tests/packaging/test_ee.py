# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution environment checks of scripts/ee.sh (ansible-builder introspect and create).

No container daemon exists here, so `ansible-builder build` is not run: introspect and
create are the ceiling.  The first run installs ansible-builder into build/venvs/builder
(from the registry; never into .venv).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EE_SH = os.path.join(REPO, 'scripts', 'ee.sh')


@pytest.fixture(scope='module')
def ee_run():
    res = subprocess.run(['bash', EE_SH, '--keep'], capture_output=True, text=True, timeout=900, check=False)
    match = re.search(r'keeping (\S+)', res.stderr)
    yield res, match.group(1) if match else None
    if match:
        shutil.rmtree(match.group(1), ignore_errors=True)


def test_ee_checks_pass(ee_run):
    res, work = ee_run
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert work and os.path.isdir(work)
    assert 'FAIL' not in res.stdout and 'OK: all execution environment checks passed' in res.stdout
    for line in ('PASS  introspect lists cryptography', 'PASS  introspect lists lxml',
                 'PASS  introspect lists libvirt-python', 'PASS  introspect lists system package libvirt-dev',
                 'PASS  introspect lists system package libvirt-devel',
                 "PASS  local variant: _build/requirements.txt is the collection's requirements.txt",
                 'PASS  execution-environment.yml: it names [\'confidential.sev\']'):
        assert line in res.stdout, res.stdout


def test_ee_check_fails_without_the_meta_file(ee_run):
    """The checker is not a rubber stamp: an installed collection without meta/execution-environment.yml
    (and so without declared requirements for introspect) fails it, naming what is missing."""
    res, work = ee_run
    assert res.returncode == 0, res.stdout[-4000:]
    installed = os.path.join(work, 'collections', 'ansible_collections', 'confidential', 'sev')
    for name in ('meta/execution-environment.yml', 'requirements.txt', 'bindep.txt'):
        os.unlink(os.path.join(installed, name))
    tarball = [os.path.join(work, 'dist', n) for n in os.listdir(os.path.join(work, 'dist'))][0]
    for sub in ('context-galaxy', 'context-local', 'local-ee'):
        shutil.rmtree(os.path.join(work, sub), ignore_errors=True)
    bad = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'ee_check.py'),
                          '--builder', os.path.join(REPO, 'build', 'venvs', 'builder', 'bin', 'ansible-builder'),
                          '--repo', REPO, '--work', work, '--tarball', tarball],
                         capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 1, bad.stdout
    assert 'FAIL  the built tarball ships meta/execution-environment.yml' in bad.stdout
    assert 'FAIL  introspect lists libvirt-python' in bad.stdout

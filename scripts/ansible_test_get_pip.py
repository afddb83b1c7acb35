#!/usr/bin/env python
# Copyright: confidential.sev contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline replacement for ansible-test's get-pip bootstrap script.

``ansible-test ... --venv`` creates each virtual environment without pip and
then runs ``~/.ansible/test/cache/get_pip_<version>.py`` (downloading it first
when it is missing, which this machine cannot do). scripts/sanity.sh copies
this file to that path. ansible-test runs it via runpy with arguments such as::

    --disable-pip-version-check pip==24.2 --no-setuptools --no-wheel

It bootstraps pip with the interpreter's own ``ensurepip`` (no network), then
installs the pip version that ansible-test asked for from the package index.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

# Options understood by the real get-pip.py but not by "pip install".
GET_PIP_OPTIONS = ('--no-setuptools', '--no-wheel', '--no-pip')
MARKER = 'confidential.sev offline get-pip bootstrap'


def _has_module(env: dict[str, str], name: str) -> bool:
    """Return True if a fresh interpreter can find the given top-level module."""
    code = 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(%r) else 1)' % name
    return subprocess.call([sys.executable, '-c', code], env=env) == 0


def main() -> int:
    """Bootstrap pip, then install what ansible-test requested."""
    argv = sys.argv[1:]
    pip_args = [arg for arg in argv if arg not in GET_PIP_OPTIONS]

    env = dict(os.environ)
    env.pop('PIP_CONFIG_FILE', None)
    env.pop('GET_PIP', None)
    env.setdefault('PIP_ROOT_USER_ACTION', 'ignore')

    had_setuptools = importlib.util.find_spec('setuptools') is not None

    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'], env=env)

    if any(not arg.startswith('-') for arg in pip_args):
        subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + pip_args, env=env)

    # ensurepip before Python 3.12 also installs setuptools; honour --no-setuptools.
    if '--no-setuptools' in argv and not had_setuptools and _has_module(env, 'setuptools'):
        subprocess.check_call([sys.executable, '-m', 'pip', 'uninstall', '--yes', '--quiet', 'setuptools'], env=env)

    return 0


if __name__ == '__main__':
    sys.exit(main())

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every YAML example a user copies passes ``ansible-playbook --syntax-check`` with only ansible-core and this
collection: each ```yaml block of README.md and of the role's README, and each module's EXAMPLES.

A block that is a list of plays (its items have ``hosts``) is checked as it is; a list of tasks is wrapped in
one play; a mapping is an inventory (``ansible-inventory`` must parse it and find hosts) or the role's
variables.  --syntax-check resolves every module name, so an example using a module that is not in
ansible-core or this collection (community.libvirt, say) fails here.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest
import yaml

BIN = os.path.dirname(sys.executable)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.pathsep.join(os.path.abspath(path) for path in
                              (os.environ.get('ANSIBLE_COLLECTIONS_PATH') or os.path.join(REPO, 'build')).split(os.pathsep))
DOCS = ('README.md', os.path.join('roles', 'sev_launch', 'README.md'))
BLOCK = re.compile(r'^```ya?ml[ \t]*\n(.*?)^```[ \t]*$', re.M | re.S)


def _blocks():
    found = []
    for doc in DOCS:
        path = os.path.join(REPO, doc)
        if not os.path.exists(path):
            continue
        with open(path, encoding='utf-8') as f:
            text = f.read()
        for match in BLOCK.finditer(text):
            line = text.count('\n', 0, match.start()) + 1
            found.append(pytest.param(match.group(1), id='%s:%d' % (doc, line)))
    return found


def _examples():
    found = []
    modules = os.path.join(REPO, 'plugins', 'modules')
    for name in sorted(os.listdir(modules)):
        if not name.endswith('.py') or name.startswith('_'):
            continue
        with open(os.path.join(modules, name), encoding='utf-8') as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id == 'EXAMPLES'):
                found.append(pytest.param(node.value.value, id=name[:-3]))
    return found


def _env(tmp_path):
    config = tmp_path / 'ansible.cfg'
    config.write_text('[defaults]\n', encoding='utf-8')
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env.update(ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR='1',
               ANSIBLE_HOME=str(tmp_path / 'home'), ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'),
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
               # --syntax-check must not find a collection installed elsewhere on this machine
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='0')
    return env


def _syntax_check(text, tmp_path):
    data = yaml.safe_load(text)
    if isinstance(data, dict) and set(data) == {'collections'}:
        # a requirements.yml for ansible-galaxy: each entry names a collection
        assert all(isinstance(item, dict) and re.fullmatch(r'[a-z0-9_]+\.[a-z0-9_]+', item.get('name', ''))
                   for item in data['collections']), data
        return
    if isinstance(data, dict):
        if any(isinstance(value, dict) and ('hosts' in value or 'children' in value) for value in data.values()):
            inventory = tmp_path / 'inventory.yml'
            inventory.write_text(text, encoding='utf-8')
            proc = subprocess.run([os.path.join(BIN, 'ansible-inventory'), '-i', str(inventory), '--list'],
                                  cwd=str(tmp_path), env=_env(tmp_path), capture_output=True, text=True,
                                  timeout=120, check=False)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert '[WARNING]' not in proc.stderr, proc.stderr
            return
        # variables (group_vars, role variables): a play that only sets them
        data = [{'name': 'vars', 'hosts': 'localhost', 'gather_facts': False, 'vars': data, 'tasks': []}]
    assert isinstance(data, list) and data, 'an example must be a list of plays or tasks, or a mapping'
    if not all(isinstance(item, dict) and ('hosts' in item or 'import_playbook' in item) for item in data):
        data = [{'name': 'example', 'hosts': 'localhost', 'gather_facts': False, 'tasks': data}]
    playbook = tmp_path / 'example.yml'
    playbook.write_text(yaml.safe_dump(data, sort_keys=False), encoding='utf-8')
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '--syntax-check', '-i', 'localhost,',
                           str(playbook)], cwd=str(tmp_path), env=_env(tmp_path), capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize('text', _blocks())
def test_readme_yaml_block(text, tmp_path):
    _syntax_check(text, tmp_path)


@pytest.mark.parametrize('text', _examples())
def test_module_examples(text, tmp_path):
    _syntax_check(text, tmp_path)


def test_examples_found():
    # the extraction itself: the README has examples and every module has EXAMPLES
    assert len(_blocks()) >= 3
    modules = [name for name in os.listdir(os.path.join(REPO, 'plugins', 'modules')) if name.endswith('.py')]
    assert len(_examples()) == len(modules)


def test_syntax_check_catches_a_foreign_module(tmp_path):
    # the check is not vacuous: a module outside ansible-core and this collection fails it
    with pytest.raises(AssertionError, match='community.libvirt.virt'):
        _syntax_check('- community.libvirt.virt: {name: guest1, state: running}\n', tmp_path)

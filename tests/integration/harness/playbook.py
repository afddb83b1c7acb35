# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real ``ansible-playbook`` runs against the harness's daemons, results as JSON.

Every module task registers ``r_<name>`` and has ``ignore_errors: true``; a
last task (run on the controller) writes all registered results to
``results.json`` with ``copy`` + ``to_json``, so tests read exactly what a
playbook would see, failed tasks included.  Helper tasks (``domstate_task``)
do not ignore errors: if one fails the playbook fails and the test shows
ansible's output.

Everything ansible writes goes to the work directory: ``ANSIBLE_HOME``, the
local and remote temporary directories (the "remote" host shares ``/tmp``
with this machine, not ``/root``), and the ssh control sockets (the
harness's inventory puts them in the run directory).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
COLLECTIONS_PATH = os.path.join(REPO, 'build')
BIN_DIR = os.path.dirname(sys.executable)
RESULTS = 'results.json'


def module_task(name, module, args, check_mode=None, **extra):
    """A task running ``confidential.sev.<module>`` that registers ``r_<name>``."""
    task = {'name': name, 'confidential.sev.' + module: args, 'register': 'r_' + name,
            'ignore_errors': True}
    if check_mode is not None:
        task['check_mode'] = check_mode
    task.update(extra)
    return task


def domstate_task(name, uri, domain):
    """``virsh domstate --reason`` on the controller, through ``uri`` (the
    daemon's unix socket): an observation independent of the modules."""
    return {'name': name, 'ansible.builtin.command': {'argv': ['virsh', '-q', '-c', uri, 'domstate', '--reason',
                                                               domain]},
            'register': 'r_' + name, 'changed_when': False, 'delegate_to': 'localhost'}


def local_inventory(path):
    """localhost, connection local, modules run with this test run's python."""
    with open(path, 'w', encoding='utf-8') as f:
        json.dump({'all': {'hosts': {'localhost': {'ansible_connection': 'local',
                                                   'ansible_python_interpreter': sys.executable}}}}, f, indent=2)
    return path


class PlaybookRun:
    """One finished run: ``results`` {task name: registered result}, output, timing."""

    def __init__(self, results, proc, seconds, path):
        self.results = results
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.seconds = seconds
        self.path = path
        self.facts = {}  # what the fixture knew (domain names, ...), for the tests

    def __getitem__(self, name):
        return self.results[name]

    def domstate(self, name):
        """The stdout of a domstate_task, e.g. 'paused (user)'."""
        return self.results[name]['stdout'].strip()


def run_playbook(work, hosts, tasks, inventory, play_vars=None, timeout=300):
    """Write a playbook of ``tasks`` for ``hosts`` into ``work`` and run it.

    Returns a PlaybookRun; raises AssertionError with ansible's output when
    ansible-playbook exits non-zero (only helper tasks can make it fail).
    """
    work = str(work)
    for sub in ('home', 'tmp', 'remote-tmp'):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    registered = [task['register'] for task in tasks if 'register' in task]
    twice = sorted(set(reg for reg in registered if registered.count(reg) > 1))
    if twice:
        raise ValueError('tasks register the same variable more than once: %s' % ', '.join(twice))
    dump = {'name': 'write results', 'delegate_to': 'localhost', 'ansible.builtin.copy': {
        'content': '{{ {%s} | to_json }}' % ', '.join("'%s': %s" % (reg[2:], reg) for reg in registered),
        'dest': os.path.join(work, RESULTS), 'mode': '0600'}}
    play = {'name': os.path.basename(work), 'hosts': hosts, 'gather_facts': False,
            'vars': dict(play_vars or {}), 'tasks': list(tasks) + [dump]}
    path = os.path.join(work, 'playbook.yml')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump([play], f, indent=1)
    if os.path.exists(os.path.join(work, RESULTS)):
        os.unlink(os.path.join(work, RESULTS))
    env = _env(work)
    env.update(ANSIBLE_HOME=os.path.join(work, 'home'), ANSIBLE_LOCAL_TEMP=os.path.join(work, 'tmp'),
               ANSIBLE_REMOTE_TEMP=os.path.join(work, 'remote-tmp'),
               # one ssh round trip per task instead of mkdir/put/chmod/run/rm
               ANSIBLE_PIPELINING='True', ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_HOST_KEY_CHECKING='True',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    t0 = time.monotonic()
    proc = subprocess.run([os.path.join(BIN_DIR, 'ansible-playbook'), '-i', inventory, path],
                          cwd=work, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.monotonic() - t0
    if proc.returncode != 0 or not os.path.exists(os.path.join(work, RESULTS)):
        raise AssertionError('ansible-playbook %s exited %d\n%s\n%s'
                             % (path, proc.returncode, proc.stdout[-20000:], proc.stderr[-5000:]))
    with open(os.path.join(work, RESULTS), encoding='utf-8') as f:
        results = json.load(f)
    return PlaybookRun(results, proc, seconds, path)


def ansible_doc(plugin, work, timeout=120):
    """``ansible-doc <plugin>`` without colours, run in ``work``: CompletedProcess."""
    env = _env(str(work))
    env.update(ANSIBLE_PAGER='cat', PAGER='cat')
    return subprocess.run([os.path.join(BIN_DIR, 'ansible-doc'), plugin], cwd=str(work), env=env,
                          capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def _env(work):
    """Environment for ansible CLIs: this collection, an empty ansible.cfg, no colours."""
    config = os.path.join(work, 'ansible.cfg')
    if not os.path.exists(config):
        with open(config, 'w', encoding='utf-8') as f:
            f.write('# empty: no ansible.cfg of the machine or the user applies\n[defaults]\n')
    env = dict(os.environ)
    # the collection comes from ANSIBLE_COLLECTIONS_PATH, through ansible's loader
    env.pop('PYTHONPATH', None)
    env.update(ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_CONFIG=config, ANSIBLE_NOCOLOR='1')
    return env

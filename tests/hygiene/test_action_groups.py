# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""meta/runtime.yml's action group: ``module_defaults: group/confidential.sev.libvirt: {uri: ...}`` reaches
every host-side module, through a real ansible-playbook run that needs no libvirtd.

The default URI is libvirt's built-in test driver (``test:///default``), which runs inside the client and
has one domain named ``test`` with no SEV.  A module that got that URI finds the domain and then fails at
the first QEMU-only call (``virDomainQemuMonitorCommand``, not supported by the test driver, libvirt code
3).  Without the default it would open ``qemu:///system`` instead: no domain ``test``, or no daemon at all
(libvirt code 38), never that call.  A URI given on the task wins over the group's default.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
import yaml

BIN = os.path.dirname(sys.executable)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.pathsep.join(os.path.abspath(path) for path in
                              (os.environ.get('ANSIBLE_COLLECTIONS_PATH') or os.path.join(REPO, 'build')).split(os.pathsep))
HOST_MODULES = ('sev_domain', 'sev_launch_info', 'sev_secret_inject')
# a controller-side action whose uri is the hypervisor's, passed to the host-side modules it calls
GROUP = HOST_MODULES + ('sev_launch_batch',)
HEADER = base64.b64encode(bytes(52)).decode()   # well-formed sizes, so the module gets as far as libvirt
PAYLOAD = base64.b64encode(bytes(32)).decode()

PLAYBOOK = """
- name: module_defaults through the action group
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/confidential.sev.libvirt:
      uri: test:///default
  tasks:
    - name: Launch info with the group's URI
      confidential.sev.sev_launch_info: {{domain: test}}
      register: info
      ignore_errors: true
    - name: Domain with the group's URI (check mode)
      confidential.sev.sev_domain: {{domain: test, state: paused}}
      check_mode: true
      register: dom
      ignore_errors: true
    - name: Inject with the group's URI (check mode)
      confidential.sev.sev_secret_inject: {{domain: test, header: "{header}", payload: "{payload}"}}
      check_mode: true
      register: inj
      ignore_errors: true
    - name: The fleet launch with the group's URI (check mode pins the guests, then stops)
      confidential.sev.sev_launch_batch:
        state_dir: "{state_dir}"
        policy: 3
        firmware: "{firmware}"
        guests: [{{domain: test}}]
      check_mode: true
      register: batch
      ignore_errors: true
    - name: A URI on the task wins over the group's default
      confidential.sev.sev_domain: {{domain: test, state: paused, uri: "nosuchdriver:///h6"}}
      check_mode: true
      register: task_uri
      ignore_errors: true
    - name: Save the results
      ansible.builtin.copy:
        content: "{{{{ {{'sev_launch_info': info, 'sev_domain': dom, 'sev_secret_inject': inj,
                    'sev_launch_batch': batch, 'task_uri': task_uri}} | to_json }}}}"
        dest: "{out}"
        mode: "0600"
"""


def _run(tmp_path):
    out = tmp_path / 'results.json'
    playbook = tmp_path / 'play.yml'
    firmware = tmp_path / 'firmware.fd'   # never read: the run stops at the pin, before validation
    firmware.write_bytes(bytes(4096))
    playbook.write_text(PLAYBOOK.format(header=HEADER, payload=PAYLOAD, out=out, state_dir=tmp_path / 'state',
                                        firmware=firmware), encoding='utf-8')
    config = tmp_path / 'ansible.cfg'
    config.write_text('[defaults]\n', encoding='utf-8')
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    env.update(ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR='1',
               ANSIBLE_HOME=str(tmp_path / 'home'), ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'),
               ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_LOCALHOST_WARNING='0',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='0', ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', str(playbook)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text(encoding='utf-8'))


def test_runtime_group_lists_the_host_side_modules():
    with open(os.path.join(REPO, 'meta', 'runtime.yml'), encoding='utf-8') as f:
        runtime = yaml.safe_load(f)
    assert sorted(runtime['action_groups']['libvirt']) == sorted(GROUP)
    # controller modules whose uri means something else stay out (see the comment in meta/runtime.yml)
    assert 'sev_measurement_validate' not in runtime['action_groups']['libvirt']


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    """One playbook run for the tests below."""
    return _run(tmp_path_factory.mktemp('action_groups'))


def test_group_module_defaults_reach_every_host_module(results):
    for module in HOST_MODULES:
        result = results[module]
        # found the test driver's domain 'test', then stopped at the first QEMU-only call
        assert result['failed'] is True, (module, result)
        assert result['changed'] is False, (module, result)
        assert result.get('libvirt_call') == 'virDomainQemuMonitorCommand', (module, result)
        assert result.get('libvirt_code') == 3, (module, result)   # VIR_ERR_NO_SUPPORT
        assert "domain 'test'" in result['msg'], (module, result)
        assert result['reason'] == 'error' and result['rc'] == 6, (module, result)


def test_group_module_defaults_reach_the_fleet_launch(results):
    result = results['sev_launch_batch']
    assert result['failed'] is True and result['changed'] is False, result
    (outcome,) = result['outcomes']
    # its host-side pin used the group's URI: the test driver's domain 'test', then its first QEMU-only call
    assert "domain 'test': virDomainQemuMonitorCommand failed" in outcome['msg'], outcome
    assert outcome['destroyed'] is False and outcome['launch_id'] is None, outcome


def test_task_uri_overrides_group_default(results):
    result = results['task_uri']
    assert result['failed'] is True, result
    assert result.get('libvirt_call') == 'virConnectOpen', result
    assert 'nosuchdriver:///h6' in result['msg'], result

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sev_launch role against real daemons: a launch that does not validate
ends with the domain destroyed and the play failed with the reason.

No SEV here, so every launch fails validation (locally: the connection is
local, rc 3; remotely: the domain has no SEV launch security, rc 4); the
positive path needs the emulated platform of a later issue.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess

import libvirt
import pytest

from ansible_collections.confidential.sev.tests.integration.harness.domain import minimal_domain_xml
from ansible_collections.confidential.sev.tests.integration.harness.playbook import BIN_DIR, _env, local_inventory

SHUTOFF_DESTROYED = (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED)


@pytest.mark.parametrize('kind, reason, rc, words', [
    ('local', 'insecure', 3, 'same as this controller'),
    ('remote', 'config', 4, 'not configured with SEV launch security'),
])
def test_a_launch_that_does_not_validate_is_destroyed(request, tmp_path, kind, reason, rc, words):
    daemon = request.getfixturevalue('libvirtd_' + kind)
    conn = libvirt.open(daemon.uri_unix)
    name = 'sevrole-%s-%s' % (kind, secrets.token_hex(3))
    dom = conn.defineXML(minimal_domain_xml(name))
    try:
        for file_name, size in (('firmware.fd', 4096), ('guest.tik', 16), ('guest.tek', 16)):
            (tmp_path / file_name).write_bytes(secrets.token_bytes(size))
        if kind == 'local':
            inventory, hosts, uri = local_inventory(str(tmp_path / 'inventory.json')), 'localhost', daemon.uri_unix
            assert socket.gethostname()  # the controller's own name is what libvirt reports here
        else:
            inventory = daemon.write_inventory(str(tmp_path / 'inventory.json'))
            hosts, uri = daemon.hostname, 'qemu:///system'
        play = [{'name': 'launch', 'hosts': hosts, 'gather_facts': False, 'roles': [{
            'role': 'confidential.sev.sev_launch', 'sev_launch_domain': name, 'sev_launch_uri': uri,
            'sev_launch_firmware': str(tmp_path / 'firmware.fd'), 'sev_launch_tik': str(tmp_path / 'guest.tik'),
            'sev_launch_tek': str(tmp_path / 'guest.tek')}]}]
        (tmp_path / 'site.yml').write_text(json.dumps(play))
        env = _env(str(tmp_path))
        env.update(ANSIBLE_HOME=str(tmp_path / 'home'), ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'),
                   ANSIBLE_REMOTE_TEMP=str(tmp_path / 'remote-tmp'), ANSIBLE_PIPELINING='True')
        proc = subprocess.run([os.path.join(BIN_DIR, 'ansible-playbook'), '-i', inventory, 'site.yml'],
                              cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output
        # It was started paused, then destroyed by the rescue: libvirt says why it is off.
        assert 'Start the domain paused' in output and 'changed: [' in output, output
        assert '%s was destroyed: Validate the measurement' % name in output, output
        assert '(reason %s, rc %d)' % (reason, rc) in output, output
        assert words in output, output
        assert tuple(dom.state()) == SHUTOFF_DESTROYED
    finally:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
        conn.close()

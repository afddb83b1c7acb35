# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret hygiene of the role and of the demo, on the EMULATED hypervisors.

The role runs at -vvvv with ANSIBLE_LOG_PATH, once per result-printing
callback (oneline for --check, default plus the tree callback for the launch,
minimal for the re-run), on three hypervisors at once: a good guest with a
fresh session, a guest with a pre-made session whose TIK, TEK and LUKS key
are Vault-encrypted, a wrong trusted firmware (mismatch) and a refused
injection.  The demo (``bash scripts/demo.sh``) runs as the README runs it.

Every byte of stdout, stderr, the log, the tree files, the controller's
files (work directories, owner's directory, role state directory), the
hypervisors' run directories (libvirt and QEMU logs, domain XML, emulator
records) and every file written under the test's directories or /tmp while
the runs happened (fanotify: deleted temporary files too, e.g. a Vault
plaintext) is searched for the TIK, TEK, each secret and the Vault password
(raw, hex, repr, base64 at three alignments): zero hits outside the intended
0600 key and secret files.  Excluded: the EMULATED platform's own key store
(it stands in for the secure processor's firmware) and guest memory (the
injected secret is there by design).  The role's state directory must be
0700 directories and 0600 files.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import subprocess
import sys


from ansible_collections.confidential.sev.plugins.module_utils.session_options import SESSION_SIZE
from ansible_collections.confidential.sev.plugins.module_utils.sev.certs import SEV_CERT_SIZE
from harness import e2e
from harness.sev_guest import default_policy, patched_ovmf, sev_guest_xml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'hygiene'))
# pylint: disable-next=wrong-import-position
import secret_scan  # noqa: E402

SEV_POLICY = default_policy(False)
DEBIAN_OVMF = '/usr/share/OVMF/OVMF_CODE.fd'
VALIDATE_TASK = 'Validate the measurement on the controller, from the files the guest owner trusts'
INJECT_TASK = 'Inject the secrets into this launch, still before its first run'
PUBLIC_SESSION_FILES = ('godh.b64', 'session.b64')


def _public_session_text(data):
    """True for the text of a dhCert (base64 of a 2084-byte GODH) or of a session blob: public by design."""
    try:
        decoded = base64.b64decode(data.strip(), validate=True)
    except ValueError:
        return False
    return len(decoded) in (SEV_CERT_SIZE, SESSION_SIZE)


def _vault(password_file, source, dest, env):
    subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-vault'), 'encrypt',
                    '--vault-password-file', password_file, '--output', dest, source],
                   check=True, capture_output=True, env=env)
    os.chmod(dest, 0o600)
    return dest


def _run_role(work, hvs, play_vars, host_vars, callback, vault_password_file, check=False):
    """The role (as e2e.start_role writes it) at -vvvv, logging to a file, with one result-printing callback."""
    work = str(work)
    env = {'ANSIBLE_LOG_PATH': os.path.join(work, 'ansible.log')}
    if callback == 'tree':
        env.update(ANSIBLE_CALLBACKS_ENABLED='ansible.builtin.tree',
                   ANSIBLE_CALLBACK_TREE_DIR=os.path.join(work, 'tree'))
    else:
        env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.' + callback
    extra_args = ['-vvvv', '--vault-password-file', vault_password_file] + (['--check'] if check else [])
    started = e2e.start_role(work, hvs, play_vars, host_vars, extra_args=extra_args, env=env)
    run = e2e.finish_role(started, hvs, timeout=600)
    for stream, text in (('stdout', run.stdout), ('stderr', run.stderr)):
        with open(os.path.join(work, stream), 'w', encoding='utf-8') as f:
            f.write(text)
    return run


def test_role_leaks_no_key_or_secret_anywhere(emulated_hypervisors, tmp_path, guests, record):
    hv1, hv2, hv3 = emulated_hypervisors
    owner_dir = tmp_path / 'owner'
    owner_dir.mkdir(mode=0o700)
    ovmf = patched_ovmf(str(owner_dir / 'OVMF_CODE.sev.fd'))
    # a trusted firmware one byte away from the one the guests run: a mismatch at validation
    other_ovmf = e2e.one_byte_off(ovmf, owner_dir / 'OVMF_CODE.other.fd')
    luks = os.urandom(32)
    vault_luks = os.urandom(32)
    vault_password = b'vault-' + os.urandom(12).hex().encode()
    luks_file = e2e.write_private(owner_dir / 'luks.key', luks)
    vault_luks_plain = e2e.write_private(owner_dir / 'luks2.key', vault_luks)
    password_file = e2e.write_private(owner_dir / 'vault-password', vault_password + b'\n')
    premade = e2e.premade_session(hv2.node_sev()['pdh'], SEV_POLICY, str(owner_dir), 'premade')
    with open(premade['tik'], 'rb') as f:
        premade_tik = f.read()
    with open(premade['tek'], 'rb') as f:
        premade_tek = f.read()
    env = e2e.ansible_env(str(tmp_path))
    vaulted = {name: _vault(password_file, path, str(owner_dir / (name + '.vault')), env)
               for name, path in (('tik', premade['tik']), ('tek', premade['tek']), ('luks2', vault_luks_plain))}
    state_dir = str(owner_dir / 'state')
    names = {label: e2e.unique('hyg-' + label) for label in ('good', 'firmware', 'generic', 'vault', 'refused')}
    for hv, label, kwargs in ((hv1, 'good', {}), (hv1, 'firmware', {}), (hv1, 'generic', {}),
                              (hv2, 'vault', {'dh_cert': premade['dh_cert'], 'session': premade['session']}),
                              (hv3, 'refused', {})):
        guests.define(hv, sev_guest_xml(names[label], ovmf, **kwargs), names[label])
    play_vars = {'sev_launch_state_dir': state_dir, 'sev_launch_policy': SEV_POLICY, 'sev_launch_firmware': ovmf,
                 'sev_launch_secrets': [{'guid': 'luks-key', 'path': luks_file}]}
    lists = {hv1.hostname: [{'domain': names['good']}, {'domain': names['firmware'], 'firmware': other_ovmf},
                            {'domain': names['generic'], 'firmware': DEBIAN_OVMF}],
             hv2.hostname: [{'domain': names['vault'], 'tik': vaulted['tik'], 'tek': vaulted['tek'],
                             'secrets': [{'guid': 'luks-key', 'path': vaulted['luks2']}]}],
             hv3.hostname: [{'domain': names['refused']}]}
    host_vars = {hv.hostname: dict(e2e.lab_root_vars(hv), sev_launch_guests=lists[hv.hostname])
                 for hv in (hv1, hv2, hv3)}
    hvs = [hv1, hv2, hv3]

    hv3.set_faults({names['refused']: {'inject_refused': True}})
    try:
        with secret_scan.FileCapture([str(tmp_path), '/tmp']) as capture:
            check = _run_role(tmp_path / 'check', hvs, play_vars, host_vars, 'oneline', password_file, check=True)
            launch = _run_role(tmp_path / 'launch', hvs, play_vars, host_vars, 'tree', password_file)
            # the re-run (ok, untouched) on the two guests that launched: the failed ones would only launch again
            rerun_vars = {hv.hostname: dict(host_vars[hv.hostname], sev_launch_guests=[
                guest for guest in lists[hv.hostname] if guest['domain'] in (names['good'], names['vault'])])
                for hv in (hv1, hv2)}
            rerun = _run_role(tmp_path / 'rerun', [hv1, hv2], play_vars, rerun_vars, 'minimal', password_file)
    finally:
        hv3.clear_faults()
    record('hygiene: role --check / launch / re-run at -vvvv', '%.1fs / %.1fs / %.1fs'
           % (check.seconds, launch.seconds, rerun.seconds))

    # the runs took the paths the scan is about
    assert check.rc == 0 and check.outcome(hv1.hostname, names['good'])['plan'] == 'launch', check.output[-6000:]
    assert launch.rc != 0
    assert launch.outcome(hv1.hostname, names['good'])['failed'] is False, (
        launch.outcome(hv1.hostname, names['good']), launch.output[-3000:])
    assert launch.outcome(hv2.hostname, names['vault'])['failed'] is False, launch.output[-6000:]
    mismatch = launch.outcome(hv1.hostname, names['firmware'])
    assert (mismatch['reason'], mismatch['failed_task']) == ('mismatch', VALIDATE_TASK), mismatch
    # secrets for a firmware without a secret area: refused (config), not sent
    generic = launch.outcome(hv1.hostname, names['generic'])
    assert (generic['reason'], generic['failed_task']) == ('config', VALIDATE_TASK), generic
    assert launch.outcome(hv3.hostname, names['refused'])['failed_task'] == INJECT_TASK
    assert rerun.rc == 0 and rerun.outcome(hv1.hostname, names['good'])['plan'] == 'ok', rerun.output[-6000:]
    assert rerun.outcome(hv2.hostname, names['vault'])['plan'] == 'ok'
    assert os.listdir(os.path.join(str(tmp_path / 'launch'), 'tree')), 'the tree callback wrote nothing'
    assert [rec['injections'][0]['accepted'] for rec in e2e.records_of(hv2, names['vault'])] == [True]

    # the secrets: the owner's, and the fresh sessions' keys the role made (its intended 0600 outputs)
    secrets = {'luks': luks, 'luks (vault)': vault_luks, 'vault password': vault_password,
               'premade tik': premade_tik, 'premade tek': premade_tek}
    allowed = [luks_file, vault_luks_plain, password_file, premade['tik'], premade['tek']]
    for path in glob.glob(os.path.join(state_dir, 'hosts', '*', '*', 'launches', '*', 't[ei]k')):
        with open(path, 'rb') as f:
            secrets[os.path.relpath(path, state_dir)] = f.read()
        allowed.append(path)
    assert len(secrets) >= 5 + 2 * 4, sorted(secrets)  # good, firmware, generic, refused: a fresh session each
    needle_map = secret_scan.all_needles(secrets)

    hits, files, size = secret_scan.scan_tree(str(tmp_path), needle_map, allowed=allowed)
    for hv in hvs:
        hv_hits, hv_files, hv_size = secret_scan.scan_tree(hv.rundir, needle_map)
        hits, files, size = hits + hv_hits, files + hv_files, size + hv_size
    captured_hits, captured = capture.scan(needle_map, allowed=allowed)
    record('hygiene: role scan', '%d files, %d bytes, %d files captured while written' % (files, size, captured))
    assert files > 100 and captured > 20 and not capture.overflowed, (files, captured, capture.overflowed)
    assert hits + captured_hits == [], '\n'.join(hits + captured_hits)
    # 0700 directories, 0600 files; the dhCert and session (public: the host gets them in the domain XML)
    # are written 0644 by sev_session, inside the 0700 directories
    assert secret_scan.check_private_modes(state_dir, public_names=PUBLIC_SESSION_FILES) == []


def test_demo_leaks_no_key_or_secret_anywhere(tmp_path, record):
    """``bash scripts/demo.sh`` as the README runs it; its files are removed at its end, so they are read
    as they are written (fanotify), the key store of its EMULATED platform and guest memory excepted."""
    repo = e2e.REPO
    with secret_scan.FileCapture(['/tmp', str(tmp_path)]) as capture:
        proc = subprocess.run(['bash', os.path.join(repo, 'scripts', 'demo.sh')], cwd=repo, capture_output=True,
                              timeout=900, check=False, env=dict(os.environ, TMPDIR='/tmp'))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:].decode(errors='replace')
    demo_dirs = {path.split(os.sep)[2] for path in capture.captured if path.startswith('/tmp/sev-demo.')}
    assert len(demo_dirs) == 1, demo_dirs
    demo = os.path.join('/tmp', demo_dirs.pop())
    assert demo.encode() in output  # the demo says where its files are
    assert not os.path.exists(demo)  # and removes them

    def last(path):
        return capture.captured[path][-1][1]
    secrets = {'luks': last(os.path.join(demo, 'luks.key'))}
    allowed = [os.path.join(demo, 'luks.key')]
    # the fresh sessions' TIK and TEK: the 16-byte files of each launch directory of the role's state
    # (captured under their final name, or under the temporary name they were written as before the rename)
    launches = os.path.join(demo, 'state', 'hosts')
    key_files = [p for p, versions in capture.captured.items()
                 if p.startswith(launches + os.sep) and os.sep + 'launches' + os.sep in p
                 and len(versions[-1][1]) == 16]
    assert len({last(p) for p in key_files}) >= 4, key_files  # the launch and the mistake: a fresh session each
    for path in key_files:
        secrets[os.path.relpath(path, demo)] = last(path)
        allowed.append(path)
    needle_map = secret_scan.all_needles(secrets)
    output_hits = secret_scan.scan_bytes(output, needle_map, 'demo output')
    captured_hits, captured = capture.scan(needle_map, allowed=allowed)
    record('hygiene: demo', '%d bytes of output, %d files captured while written' % (len(output), captured))
    assert captured > 50 and not capture.overflowed, (captured, capture.overflowed)
    assert output_hits + captured_hits == [], '\n'.join(output_hits + captured_hits)
    # the controller's state directory: every file 0600 when written
    state_files = {p: mode for p, mode in capture.modes.items() if p.startswith(os.path.join(demo, 'state') + os.sep)}
    # the public dhCert and session (base64 of a GODH certificate or of a session blob), under their names or
    # under the temporary names they were written as before the rename
    public = {p for p in state_files if all(_public_session_text(data) for _inode, data in capture.captured[p])}
    wrong = {p: oct(m) for p, m in state_files.items() if m != 0o600 and not (m == 0o644 and p in public)}
    assert state_files and not wrong, json.dumps(wrong, indent=1)

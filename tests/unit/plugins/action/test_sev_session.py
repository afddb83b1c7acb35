# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sev_session action plugin, driven two ways:

* run() directly, with a real DataLoader (Ansible Vault too) and a minimal Task
  mock; sessions round-trip through the emulated platform, whose TEST roots are
  injected in place of AMD's pinned ones for those tests only;
* one ansible-playbook run against localhost with a real Rome chain and AMD's
  pinned roots (nothing injected): files, modes, idempotency, check mode, a
  tampered chain, the kds_cek_url filter, state absent.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import re
import stat
import subprocess
import sys

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret

from ansible_collections.confidential.sev.tests.unit.plugins.action import action_harness
from ansible_collections.confidential.sev.plugins.action import sev_session as plugin
from ansible_collections.confidential.sev.plugins.module_utils import session_options
from ansible_collections.confidential.sev.plugins.module_utils.sev import certs, chain
from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw

DATA = pathlib.Path(__file__).resolve().parents[3] / 'data' / 'amd-certs'
BIN = pathlib.Path(sys.executable).parent
VAULT_PASSWORD = b'unit-test vault password'


def real(name):
    return (DATA / 'sev-chains' / 'rome' / ('%s.cert' % name)).read_bytes()


def b64(data):
    return base64.b64encode(data).decode()


@pytest.fixture(scope='module')
def platform():
    return fw.EmulatedPlatform(api=(1, 55), build_id=21)


@pytest.fixture
def injected(platform, monkeypatch):
    """TEST roots in place of AMD's pinned ones, for this test only."""
    ark = certs.parse_amd_cert(platform.roots.ark_cert, 'ARK')[0]
    ask = certs.parse_amd_cert(platform.roots.ask_cert, 'ASK')[0]
    monkeypatch.setattr(chain, 'pinned_roots', lambda: [('genoa', ark, ask)])
    return platform


@pytest.fixture
def basedir(tmp_path, platform):
    (tmp_path / 'files').mkdir()
    (tmp_path / 'files' / 'cek.cert').write_bytes(platform.kds_cek())
    (tmp_path / 'keys').mkdir()
    return tmp_path


class Harness(action_harness.Harness):
    def __init__(self, basedir, vault=False):
        secrets = [('default', VaultSecret(VAULT_PASSWORD))] if vault else None
        super().__init__(plugin, 'confidential.sev.sev_session', basedir, secrets)


def args_for(platform, **kwargs):
    info = platform.node_sev_info()
    node = {'pdh': info['pdh'], 'cert_chain': info['cert-chain'], 'cpu0_id': info['cpu0-id'],
            'cbitpos': 51, 'reduced_phys_bits': 1, 'max_guests': 15, 'max_es_guests': 494}
    args = dict(node_sev={'changed': False, 'node_sev': node}, cek_file='cek.cert', policy=0x7,
                tek_file='keys/guest.tek', tik_file='keys/guest.tik',
                dh_cert_file='keys/guest.godh.b64', session_file='keys/guest.session.b64')
    args.update(kwargs)
    return args


def assert_no_keys(result, *paths):
    text = json.dumps(result)
    for path in paths:
        key = pathlib.Path(path).read_bytes()
        assert key.hex() not in text and b64(key) not in text


# ---- in-process ------------------------------------------------------------------------------

def test_round_trip_with_relative_paths(platform, basedir, injected):
    harness = Harness(basedir)
    result = harness.run(**args_for(platform))
    assert result['changed'] is True and (result['reason'], result['rc']) == ('ok', 0), result
    assert result['chain']['generation'] == 'genoa' and result['policy']['flags'] == ['NODBG', 'NOKS', 'ES']
    keys = basedir / 'keys'
    handle = platform.launch_start_b64(0x7, (keys / 'guest.godh.b64').read_text(),
                                       (keys / 'guest.session.b64').read_text())
    guest = platform.guests[handle]
    assert guest.tek == (keys / 'guest.tek').read_bytes() and guest.tik == (keys / 'guest.tik').read_bytes()
    assert stat.S_IMODE(os.stat(keys / 'guest.tik').st_mode) == 0o600
    assert stat.S_IMODE(os.stat(keys / 'guest.tek').st_mode) == 0o600
    assert result['files']['tik'] == str(keys / 'guest.tik')
    assert_no_keys(result, keys / 'guest.tek', keys / 'guest.tik')
    assert harness.connection.method_calls == []   # the host is never contacted
    again = harness.run(**args_for(platform))
    assert again['changed'] is False and again['session'] == result['session']


@pytest.mark.parametrize('text', ['7', ' 7 '])
def test_policy_given_as_decimal_text_is_its_integer(platform, basedir, injected, text):
    result = Harness(basedir).run(**args_for(platform, policy=text))
    assert (result['reason'], result['rc']) == ('ok', 0), result
    assert result['policy']['value'] == 7 and result['policy']['flags'] == ['NODBG', 'NOKS', 'ES']


@pytest.mark.parametrize('text', ['0x7', '0X7', '0o7', '0b111', '7.0', '\u0667', 'seven'])
def test_policy_text_that_is_no_decimal_integer_is_refused_naming_it(platform, basedir, injected, text):
    """Quoted hex is refused with a message that says how to write it (unquoted), never misread."""
    result = Harness(basedir).run(**args_for(platform, policy=text))
    assert (result['reason'], result['rc']) == ('unsupported', 2), result
    assert result['msg'].startswith('policy: ') and 'decimal digits' in result['msg'], result['msg']
    assert 'unquoted' in result['msg']


def test_existing_vault_encrypted_keys_are_read(platform, basedir, injected):
    harness = Harness(basedir, vault=True)
    first = harness.run(**args_for(platform))
    vault = VaultLib([('default', VaultSecret(VAULT_PASSWORD))])
    for name in ('guest.tek', 'guest.tik'):
        path = basedir / 'keys' / name
        path.write_bytes(vault.encrypt(path.read_bytes()))
    encrypted_cek = basedir / 'files' / 'cek.vault'
    encrypted_cek.write_bytes(vault.encrypt(platform.kds_cek()))
    again = harness.run(**args_for(platform, cek_file='cek.vault'))
    assert again['changed'] is False and again['session'] == first['session'], again
    changed_policy = harness.run(**args_for(platform, policy=0x3))
    assert changed_policy['failed'] is True and changed_policy['reason'] == 'unsupported'


def test_check_mode(platform, basedir, injected):
    result = Harness(basedir).run(check_mode=True, **args_for(platform))
    assert result['changed'] is True and 'session' not in result
    assert list((basedir / 'keys').iterdir()) == []


def test_state_absent(platform, basedir, injected):
    harness = Harness(basedir)
    harness.run(**args_for(platform))
    absent = dict(state='absent', tek_file='keys/guest.tek', tik_file='keys/guest.tik',
                  dh_cert_file='keys/guest.godh.b64', session_file='keys/guest.session.b64')
    assert harness.run(check_mode=True, **absent)['changed'] is True
    assert len(list((basedir / 'keys').iterdir())) == 4
    result = harness.run(**absent)
    assert result['changed'] is True and len(result['removed']) == 4
    assert list((basedir / 'keys').iterdir()) == []
    assert harness.run(**absent)['changed'] is False


@pytest.mark.parametrize('change, match', [
    (dict(pdh='AAAA'), 'mutually exclusive'),
    (dict(tek_file=None), 'tik_file|tek_file'),
    (dict(policy=None), 'policy'),
    (dict(generation='zen'), 'generation'),
    (dict(bogus=1), 'Unsupported parameters'),
    (dict(dh_cert_file=None), 'session_file'),
])
def test_argument_errors(platform, basedir, change, match):
    args = args_for(platform)
    for key, value in change.items():
        if value is None:
            args.pop(key)
        else:
            args[key] = value
    result = Harness(basedir).run(**args)
    assert result['failed'] is True and (result['reason'], result['rc']) == ('unsupported', 2)
    assert re.search(match, result['msg']), result['msg']


def test_refusals_carry_reason_and_rc(platform, basedir):
    """Not injected: the TEST roots are refused (insecure, 3); nothing is written."""
    result = Harness(basedir).run(**args_for(platform))
    assert result['failed'] is True and (result['reason'], result['rc']) == ('insecure', 3)
    assert 'CEK: no pinned AMD signing key (ASK) signed it' in result['msg']
    result = Harness(basedir).run(**args_for(platform, cek_file='missing.cert'))
    assert (result['reason'], result['rc']) == ('unsupported', 2) and 'cek_file' in result['msg']
    assert list((basedir / 'keys').iterdir()) == []


def test_missing_cryptography(platform, basedir, monkeypatch):
    monkeypatch.setattr(plugin, 'HAS_CRYPTOGRAPHY', False)
    result = Harness(basedir).run(**args_for(platform))
    assert result['failed'] is True and result['reason'] == 'unsupported'
    assert 'cryptography' in result['msg'] and 'on the controller' in result['msg']


def test_unexpected_errors_fail_closed(platform, basedir, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError('boom')
    monkeypatch.setattr(plugin, 'run_session', broken)
    result = Harness(basedir).run(**args_for(platform))
    assert result['failed'] is True and (result['reason'], result['rc']) == ('error', 6)
    assert 'RuntimeError: boom' in result['msg'] and 'Traceback' not in result['msg']


def test_module_and_action_share_the_argument_spec():
    from ansible_collections.confidential.sev.plugins.modules import sev_session as module
    assert module.ARGUMENT_SPEC is session_options.ARGUMENT_SPEC


# ---- end to end: ansible-playbook, real Rome chain, pinned roots -------------------------------

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    hv:
      changed: false
      node_sev:
        pdh: "%(pdh)s"
        cert_chain: "%(chain)s"
        cpu0_id: "%(cpu0_id)s"
        cbitpos: 47
        reduced_phys_bits: 1
    session_args: &session_args
      node_sev: "{{ hv }}"
      cek_file: rome-cek.cert
      policy: 0x30010003
      min_pdh_api_version: "0.22"
      tek_file: out/guest.tek
      tik_file: out/guest.tik
      tk_file: out/guest.tk
      dh_cert_file: out/guest.godh.b64
      session_file: out/guest.session.b64
  tasks:
    - name: Check mode first
      confidential.sev.sev_session: *session_args
      check_mode: true
      register: checked

    - name: Make the session
      confidential.sev.sev_session: *session_args
      register: made

    - name: Again
      confidential.sev.sev_session: *session_args
      register: again

    - name: Forced
      confidential.sev.sev_session:
        <<: *session_args
        force: true
      register: forced

    - name: Keep the last keys aside, for the test to look for them in the output
      ansible.builtin.copy:
        src: out/guest.tk
        dest: "{{ playbook_dir }}/kept.tk"
        remote_src: true
        mode: "0600"

    - name: A tampered chain
      confidential.sev.sev_session:
        <<: *session_args
        node_sev: {pdh: "%(pdh)s", cert_chain: "%(tampered_chain)s"}
      register: tampered
      ignore_errors: true

    - name: The key server URL
      ansible.builtin.set_fact:
        url: "{{ hv.node_sev.cpu0_id | confidential.sev.kds_cek_url }}"
        url_from_result: "{{ hv | confidential.sev.kds_cek_url }}"

    - name: Save the results
      ansible.builtin.copy:
        content: "{{ {'checked': checked, 'made': made, 'again': again, 'forced': forced, 'tampered': tampered,
                      'url': url, 'url_from_result': url_from_result} | to_json }}"
        dest: "{{ playbook_dir }}/results.json"
        mode: "0600"

    - name: Remove the keys
      confidential.sev.sev_session:
        state: absent
        tek_file: out/guest.tek
        tik_file: out/guest.tik
        tk_file: out/guest.tk
        dh_cert_file: out/guest.godh.b64
        session_file: out/guest.session.b64
      register: removed

    - name: Save
      ansible.builtin.copy:
        content: "{{ removed | to_json }}"
        dest: "{{ playbook_dir }}/removed.json"
        mode: "0600"
"""


def collections_root():
    for entry in sys.path:
        if entry and os.path.isdir(os.path.join(entry, 'ansible_collections', 'confidential', 'sev')):
            return os.path.abspath(entry)
    pytest.fail('confidential.sev is not importable from sys.path')


CPU0_ID = bytes(range(64))


@pytest.fixture(scope='module')
def playbook_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('playbook')
    (root / 'out').mkdir()
    (root / 'rome-cek.cert').write_bytes(real('cek'))
    chain_raw = real('pek') + real('oca') + real('cek')
    tampered = bytearray(chain_raw)
    tampered[2084 + 0x41c + 9] ^= 1       # the OCA's self-signature
    (root / 'site.yml').write_text(PLAYBOOK % {
        'pdh': b64(real('pdh')), 'chain': b64(chain_raw), 'tampered_chain': b64(bytes(tampered)),
        'cpu0_id': b64(CPU0_ID)})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_root(), ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0',
               ANSIBLE_LOCAL_TEMP=str(root / 'tmp'), ANSIBLE_CONFIG=str(root / 'none.cfg'))
    process = subprocess.run(  # pylint: disable=subprocess-run-check
        [str(BIN / 'ansible-playbook'), '-i', 'localhost,', 'site.yml', '-v'],
        cwd=str(root), env=env, capture_output=True, text=True, timeout=300)
    return root, process


def test_playbook_end_to_end(playbook_run):
    root, process = playbook_run
    output = process.stdout + process.stderr
    assert process.returncode == 0, output
    assert 'Traceback' not in output
    results = json.loads((root / 'results.json').read_text())

    checked = results['checked']
    assert checked['changed'] is True and 'session' not in checked
    made, again, forced = results['made'], results['again'], results['forced']
    assert made['changed'] is True and made['chain']['generation'] == 'rome'
    assert made['cpu0_id'] == CPU0_ID.hex()
    assert made['kds_cek_url'] == 'https://kdsintf.amd.com/cek/id/' + CPU0_ID.hex()
    assert again['changed'] is False and again['session'] == made['session'] and again['dh_cert'] == made['dh_cert']
    assert forced['changed'] is True and forced['session'] != made['session']
    assert results['url'] == results['url_from_result'] == made['kds_cek_url']

    tampered = results['tampered']
    assert tampered['failed'] is True and (tampered['reason'], tampered['rc']) == ('insecure', 3)
    assert 'OCA signed by OCA (itself): the signature does not verify' in tampered['msg']

    removed = json.loads((root / 'removed.json').read_text())
    assert removed['changed'] is True and len(removed['removed']) == 5
    assert list((root / 'out').iterdir()) == []


def test_playbook_keys_never_shown(playbook_run):
    """The last session's keys (kept aside before state=absent) appear nowhere in the output."""
    root, process = playbook_run
    tk = (root / 'kept.tk').read_bytes()
    assert len(tk) == 32
    outputs = process.stdout + process.stderr + (root / 'results.json').read_text()
    for key in (tk[:16], tk[16:], tk):
        assert key.hex() not in outputs and key.hex().upper() not in outputs and b64(key) not in outputs
    results = json.loads((root / 'results.json').read_text())
    for run in ('made', 'again', 'forced'):
        assert not {'tek', 'tik', 'tk', 'keys'} & set(results[run])


# ---- lab roots: an emulated platform's own ARK/ASK, trusted explicitly ------------------------

def lab_files(basedir, platform, ark=None, ask=None):
    (basedir / 'files' / 'lab_ark.cert').write_bytes(ark or platform.roots.ark_cert)
    (basedir / 'files' / 'lab_ask.cert').write_bytes(ask or platform.roots.ask_cert)
    return dict(ark_file='lab_ark.cert', ask_file='lab_ask.cert')


def test_lab_root_verifies_the_emulated_chain_and_says_so_loudly(platform, basedir):
    """Nothing injected: the TEST roots are trusted only because lab_root says so."""
    result = Harness(basedir).run(**args_for(platform, lab_root=True, **lab_files(basedir, platform)))
    assert (result['reason'], result['rc'], result['changed']) == ('ok', 0, True), result
    assert result['user_supplied_root'] is True and result['chain']['user_supplied_root'] is True
    assert result['chain']['generation'] == 'lab'
    assert 'USER-SUPPLIED ROOT' in result['chain']['anchors'] and "not AMD's" in result['chain']['anchors']
    assert any('USER-SUPPLIED root' in warning for warning in result['warnings']), result
    keys = basedir / 'keys'
    handle = platform.launch_start_b64(0x7, (keys / 'guest.godh.b64').read_text(),
                                       (keys / 'guest.session.b64').read_text())
    assert platform.guests[handle].tik == (keys / 'guest.tik').read_bytes()


def test_without_lab_root_the_same_files_are_refused(platform, basedir):
    """Production default unchanged: ark_file/ask_file must still be AMD's pinned roots."""
    result = Harness(basedir).run(**args_for(platform, **lab_files(basedir, platform)))
    assert (result['failed'], result['reason'], result['rc']) == (True, 'insecure', 3), result
    assert "ARK: not one of AMD's pinned root keys" in result['msg']
    assert not (basedir / 'keys' / 'guest.tik').exists()


def test_pinned_chain_reports_no_user_supplied_root(platform, basedir, injected):
    result = Harness(basedir).run(**args_for(platform))
    assert result['user_supplied_root'] is False and result['chain']['user_supplied_root'] is False
    assert not any('USER-SUPPLIED' in warning for warning in result.get('warnings', []))


def test_lab_root_of_another_platform_is_refused(platform, basedir):
    other = fw.TestRoots()
    files = lab_files(basedir, platform, ark=other.ark_cert, ask=other.ask_cert)
    result = Harness(basedir).run(**args_for(platform, lab_root=True, **files))
    assert (result['failed'], result['reason'], result['rc']) == (True, 'insecure', 3), result
    assert 'CEK signed by ASK' in result['msg'], result['msg']
    assert not (basedir / 'keys' / 'guest.tik').exists()


def test_lab_ask_not_certified_by_the_lab_ark_is_refused(platform, basedir):
    other = fw.TestRoots()
    files = lab_files(basedir, platform, ark=other.ark_cert)
    result = Harness(basedir).run(**args_for(platform, lab_root=True, **files))
    assert (result['failed'], result['reason'], result['rc']) == (True, 'insecure', 3), result
    assert result['msg'].startswith('ASK certified by ARK (lab)'), result['msg']


@pytest.mark.parametrize('extra, words', [
    ({}, 'lab_root needs ark_file and ask_file'),
    ({'generation': 'rome', 'ark_file': 'lab_ark.cert', 'ask_file': 'lab_ask.cert'},
     'generation names AMD'),
])
def test_lab_root_usage_errors(platform, basedir, extra, words):
    lab_files(basedir, platform)
    result = Harness(basedir).run(**args_for(platform, lab_root=True, **extra))
    assert (result['failed'], result['reason'], result['rc']) == (True, 'unsupported', 2), result
    assert words in result['msg']

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_session's options to result, without Ansible: inputs in every form, the CEK,
the pins, refusals with reason and rc, and the files (0600 keys, idempotency, force,
check mode, state absent).

Real Naples/Rome chains verify against AMD's pinned roots; sessions whose keys must
be unwrapped are made for the emulated platform, whose TEST roots are injected in
place of the pinned ones (``injected`` fixture) and are otherwise refused.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import stat
import struct

import pytest

from ansible_collections.confidential.sev.plugins.module_utils import session_options as so
from ansible_collections.confidential.sev.plugins.module_utils.sev import chain, certs
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import read_small_file
from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw

DATA = pathlib.Path(__file__).resolve().parents[3] / 'data' / 'amd-certs'


def real(generation, name):
    return (DATA / 'sev-chains' / generation / ('%s.cert' % name)).read_bytes()


def b64(data):
    return base64.b64encode(data).decode()


def read_input(path, what):
    return read_small_file(path, what)


def run(check_mode=False, **params):
    params.setdefault('state', 'present')
    params.setdefault('force', False)
    return so.run_session(params, read_input, check_mode=check_mode)


def assert_failed(result, reason, rc, match):
    assert result['failed'] is True and result['changed'] is False, result
    assert (result['reason'], result['rc']) == (reason, rc), result
    assert match in result['msg'], result['msg']


@pytest.fixture(scope='module')
def platform():
    return fw.EmulatedPlatform(api=(1, 55), build_id=21)


@pytest.fixture
def injected(platform, monkeypatch):
    """The emulated platform's TEST roots stand in for AMD's pinned roots, for this test only."""
    ark = certs.parse_amd_cert(platform.roots.ark_cert, 'ARK')[0]
    ask = certs.parse_amd_cert(platform.roots.ask_cert, 'ASK')[0]
    monkeypatch.setattr(chain, 'pinned_roots', lambda: [('milan', ark, ask)])
    return platform


@pytest.fixture
def files(tmp_path, platform):
    """Inputs on disk: real Rome and the emulated platform's, and an output directory."""
    (tmp_path / 'out').mkdir()
    for generation in ('rome', 'naples'):
        (tmp_path / ('%s-cek.cert' % generation)).write_bytes(real(generation, 'cek'))
        (tmp_path / ('%s-pdh.cert' % generation)).write_bytes(real(generation, 'pdh'))
        (tmp_path / ('%s-chain.bin' % generation)).write_bytes(
            real(generation, 'pek') + real(generation, 'oca') + real(generation, 'cek'))
    (tmp_path / 'emu-cek.cert').write_bytes(platform.kds_cek())
    return tmp_path


def emulated_node_sev(platform):
    """sev_launch_info's node_sev for the emulated platform (as launch_report parses it)."""
    info = platform.node_sev_info()
    return {'pdh': info['pdh'], 'cert_chain': info['cert-chain'], 'cpu0_id': info['cpu0-id'], 'cbitpos': 51,
            'reduced_phys_bits': 1, 'max_guests': 15, 'max_es_guests': info['max-es-guests']}


def rome_args(files, **kwargs):
    args = dict(pdh=b64(real('rome', 'pdh')),
                cert_chain=b64(real('rome', 'pek') + real('rome', 'oca') + real('rome', 'cek')),
                cek_file=str(files / 'rome-cek.cert'), policy=0x1, tk_file=str(files / 'out' / 'tk'))
    args.update(kwargs)
    return args


def emu_args(platform, files, **kwargs):
    args = dict(node_sev=emulated_node_sev(platform), cek_file=str(files / 'emu-cek.cert'), policy=0x1,
                tek_file=str(files / 'out' / 'tek'), tik_file=str(files / 'out' / 'tik'),
                dh_cert_file=str(files / 'out' / 'godh.b64'), session_file=str(files / 'out' / 'session.b64'))
    args.update(kwargs)
    return args


def launch(platform, result, policy):
    """LAUNCH_START on the emulated platform with what sev_session returned; the guest."""
    return platform.guests[platform.launch_start_b64(policy, result['dh_cert'], result['session'])]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ---- inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize('generation', ['naples', 'rome'])
def test_real_chains_from_strings_and_files(files, generation):
    chain_b64 = b64(real(generation, 'pek') + real(generation, 'oca') + real(generation, 'cek'))
    for inputs in (dict(pdh=b64(real(generation, 'pdh')), cert_chain=chain_b64),
                   dict(pdh_file=str(files / ('%s-pdh.cert' % generation)),
                        cert_chain_file=str(files / ('%s-chain.bin' % generation))),
                   dict(node_sev={'pdh': b64(real(generation, 'pdh')), 'cert_chain': chain_b64, 'cpu0_id': None})):
        result = run(cek_file=str(files / ('%s-cek.cert' % generation)), policy=0x3,
                     tk_file=str(files / 'out' / 'tk'), **inputs)
        assert result.get('failed') is None, result
        assert result['chain']['generation'] == generation and result['chain']['anchors'] == 'pinned'
        assert result['changed'] is True and (result['reason'], result['rc']) == ('ok', 0)
        assert len(base64.b64decode(result['dh_cert'])) == 2084 and len(base64.b64decode(result['session'])) == 128
        assert result['policy']['flags'] == ['NODBG', 'NOKS']


def test_node_sev_as_the_whole_registered_result_and_libvirt_names(platform, files, injected):
    node = emulated_node_sev(platform)
    for value in ({'changed': False, 'node_sev': node, 'state': 'paused'},
                  platform.node_sev_info()):
        result = run(**emu_args(platform, files, node_sev=value))
        assert result['chain']['generation'] == 'milan', result
        assert result['cpu0_id'] == platform.get_id().hex()
        assert result['kds_cek_url'] == platform.kds_url()
    assert_failed(run(**emu_args(platform, files, node_sev={'node_sev': None, 'changed': False})),
                  'unsupported', 2, 'run sev_launch_info with node_sev_info: true')
    assert_failed(run(**emu_args(platform, files, node_sev=dict(node, pdh=None))), 'unsupported', 2,
                  'node_sev: the host reported no pdh')
    assert_failed(run(**emu_args(platform, files, node_sev=dict(node, pdh=5))), 'unsupported', 2,
                  'node_sev.pdh must be a base64 string')
    assert_failed(run(**emu_args(platform, files, node_sev=dict(node, cert_chain='%%%'))), 'unsupported', 2,
                  'node_sev.cert_chain is not valid base64')
    assert_failed(run(**emu_args(platform, files, node_sev=dict(node, cpu0_id='AAAA'))), 'unsupported', 2,
                  'node_sev.cpu0_id must be the 64-byte chip id')


def test_base64_text_files(files):
    (files / 'pdh.b64').write_text(b64(real('rome', 'pdh')) + '\n')
    chain_b64 = b64(real('rome', 'pek') + real('rome', 'oca') + real('rome', 'cek'))
    assert len(chain_b64) == 8336   # the size of a raw sevctl export: told apart by the first bytes
    (files / 'chain.b64').write_text(chain_b64[:4000] + '\n' + chain_b64[4000:] + '\n')
    (files / 'cek.b64').write_text(b64(real('rome', 'cek')))
    result = run(**rome_args(files, pdh=None, cert_chain=None, pdh_file=str(files / 'pdh.b64'),
                             cert_chain_file=str(files / 'chain.b64'), cek_file=str(files / 'cek.b64')))
    assert result['chain']['generation'] == 'rome', result


def test_sevctl_export(files):
    export = real('rome', 'pdh') + real('rome', 'pek') + real('rome', 'oca') + real('rome', 'cek')
    (files / 'export.cert').write_bytes(export)
    result = run(**rome_args(files, pdh=None, cert_chain=None, cert_chain_file=str(files / 'export.cert')))
    assert result['chain']['generation'] == 'rome', result
    result = run(**rome_args(files, pdh=None, cert_chain=b64(export)))
    assert result['chain']['generation'] == 'rome', result
    assert_failed(run(**rome_args(files, cert_chain=None, cert_chain_file=str(files / 'export.cert'))),
                  'unsupported', 2, 'do not give a PDH separately')
    full = export + (DATA / 'sev-builtin' / 'rome' / 'ask.cert').read_bytes() + (
        DATA / 'sev-builtin' / 'rome' / 'ark.cert').read_bytes()
    (files / 'full.cert').write_bytes(full)
    assert_failed(run(**rome_args(files, pdh=None, cert_chain=None, cert_chain_file=str(files / 'full.cert'))),
                  'unsupported', 2, 'cert_chain_file: 11536 bytes, expected 6252 or 8336')
    assert_failed(run(**rome_args(files, pdh=None, cert_chain=b64(full))), 'unsupported', 2,
                  'sevctl export --full')


@pytest.mark.parametrize('change, match', [
    (dict(pdh=None), 'pdh (or pdh_file) is required'),
    (dict(cert_chain=None), "the platform's certificates are needed"),
    (dict(pdh=b64(bytes(2083))), 'PDH: an SEV certificate is 2084 bytes, got 2083'),
    (dict(pdh='AAAA'), 'PDH: an SEV certificate is 2084 bytes, got 3'),
    (dict(cert_chain=b64(bytes(6251))), 'cert_chain must be 6252 bytes'),
    (dict(cert_chain='****'), 'cert_chain is not valid base64'),
    (dict(policy=0x41), 'reserved bits'),
    (dict(policy=None), 'policy is required'),
    (dict(min_pdh_api_version='0'), 'min_pdh_api_version must look like MAJOR.MINOR'),
    (dict(cpu0_id='zz'), 'cpu0_id must be the 64-byte chip id'),
    (dict(generation='zen'), 'generation must be one of'),
    (dict(tk_file=None), 'tk_file or tek_file and tik_file are required'),
])
def test_usage_errors(files, change, match):
    assert_failed(run(**rome_args(files, **change)), 'unsupported', 2, match)


def test_input_file_errors(files):
    assert_failed(run(**rome_args(files, pdh=None, pdh_file=str(files / 'missing'))), 'unsupported', 2,
                  'pdh_file: cannot ')
    (files / 'short').write_bytes(b'\x01\0\0\0' + bytes(100))
    assert_failed(run(**rome_args(files, pdh=None, pdh_file=str(files / 'short'))), 'unsupported', 2,
                  'pdh_file: 104 bytes, expected 2084 raw bytes or base64 text of them')
    assert_failed(run(**rome_args(files, cek_file=str(files / 'short'))), 'unsupported', 2, 'cek_file: 104 bytes')
    assert_failed(run(**rome_args(files, tk_file=str(files / 'nowhere' / 'tk'))), 'unsupported', 2,
                  'tk_file: the directory')


# ---- the CEK -----------------------------------------------------------------------------------

def test_cek_file_is_required_and_says_where_to_get_it(platform, files, injected):
    assert_failed(run(**emu_args(platform, files, cek_file=None)), 'unsupported', 2,
                  'cek_file is required: the CEK in the host\'s chain is an unsigned placeholder. Fetch the '
                  'chip\'s CEK, signed by AMD, from ' + platform.kds_url())
    assert_failed(run(**rome_args(files, cek_file=None)), 'unsupported', 2,
                  'https://kdsintf.amd.com/cek/id/<hex of cpu0-id>')


def test_the_hosts_placeholder_cek_is_refused(platform, files, injected):
    (files / 'placeholder.cert').write_bytes(platform.pdh_cert_export()[1][4168:])
    result = run(**emu_args(platform, files, cek_file=str(files / 'placeholder.cert')))
    assert_failed(result, 'insecure', 3, 'CEK: cek_file holds an unsigned CEK, like the placeholder in the '
                                         'host\'s exported chain')
    assert platform.kds_url() in result['msg']


def test_the_cek_of_another_chip_is_refused(platform, files, injected):
    other = fw.EmulatedPlatform(roots=platform.roots)
    (files / 'other-cek.cert').write_bytes(other.kds_cek())
    assert_failed(run(**emu_args(platform, files, cek_file=str(files / 'other-cek.cert'))), 'insecure', 3,
                  'CEK: cek_file is not the CEK of the chip whose chain the host reports')
    # With a host chain that carries the signed CEK (real data), the PEK's signature decides.
    assert_failed(run(**rome_args(files, cek_file=str(files / 'naples-cek.cert'))), 'insecure', 3,
                  'CEK: cek_file is not the CEK of the chip')


def test_a_cek_that_is_not_a_cek(files):
    assert_failed(run(**rome_args(files, cek_file=str(files / 'rome-pdh.cert'))), 'insecure', 3,
                  'CEK: key usage is PDH, expected CEK')


# ---- trust anchors --------------------------------------------------------------------------------

def test_test_roots_are_never_trusted(platform, files):
    """Without injection: the emulated platform's chain is refused, with or without its ARK/ASK files."""
    assert_failed(run(**emu_args(platform, files)), 'insecure', 3,
                  'CEK: no pinned AMD signing key (ASK) signed it')
    (files / 'ark.cert').write_bytes(platform.roots.ark_cert)
    (files / 'ask.cert').write_bytes(platform.roots.ask_cert)
    assert_failed(run(**emu_args(platform, files, ark_file=str(files / 'ark.cert'),
                                 ask_file=str(files / 'ask.cert'))),
                  'insecure', 3, "ARK: not one of AMD's pinned root keys")
    assert not any((files / 'out').iterdir())


def test_ark_and_ask_files_equal_to_the_pinned_ones(files):
    ark, ask = (DATA / 'sev-builtin' / 'rome' / 'ark.cert'), (DATA / 'sev-builtin' / 'rome' / 'ask.cert')
    result = run(**rome_args(files, ark_file=str(ark), ask_file=str(ask)))
    assert result['chain']['anchors'] == 'ark_file/ask_file, equal to the pinned ones', result
    (files / 'ask_ark_rome.cert').write_bytes(ask.read_bytes() + ark.read_bytes())
    assert_failed(run(**rome_args(files, ark_file=str(ark), ask_file=str(files / 'ask_ark_rome.cert'))),
                  'unsupported', 2, 'ask_file: 1600 bytes after the ASK certificate')
    tampered = bytearray(ark.read_bytes())
    tampered[-1] ^= 1
    (files / 'bad-ark.cert').write_bytes(bytes(tampered))
    assert_failed(run(**rome_args(files, ark_file=str(files / 'bad-ark.cert'), ask_file=str(ask))),
                  'insecure', 3, 'ARK signed by ARK: the signature does not verify')


def test_generation(files):
    assert run(**rome_args(files, generation='rome'))['chain']['generation'] == 'rome'
    assert_failed(run(**rome_args(files, generation='naples')), 'insecure', 3,
                  'CEK: no pinned AMD signing key (ASK) signed it')


def test_an_unloadable_rsa_key_is_malformed_input(files):
    oca = bytearray(real('rome', 'oca'))
    struct.pack_into('<II', oca, 0x0c, 0x001, 2048)            # typed RSA-SHA256, 2048 bits
    oca[0x14:0x214] = (2).to_bytes(512, 'little')               # exponent 2: cryptography refuses the key
    oca[0x214:0x414] = ((1 << 2047) | 1).to_bytes(512, 'little')
    chain_b64 = b64(real('rome', 'pek') + bytes(oca) + real('rome', 'cek'))
    assert_failed(run(**rome_args(files, cert_chain=chain_b64)), 'unsupported', 2,
                  'OCA: its RSA public key is malformed')


def test_a_tampered_link_names_it(files):
    pek = bytearray(real('rome', 'pek'))
    pek[0x624 + 3] ^= 1
    chain_b64 = b64(bytes(pek) + real('rome', 'oca') + real('rome', 'cek'))
    result = run(**rome_args(files, cert_chain=chain_b64))
    assert_failed(result, 'insecure', 3, 'PEK signed by CEK: the signature does not verify')
    assert not (files / 'out' / 'tk').exists()


# ---- pins ------------------------------------------------------------------------------------------

def test_cpu0_id(platform, files, injected):
    chip = platform.get_id()
    for form in (chip.hex(), chip.hex().upper(), b64(chip), ' '.join(chip.hex()[i:i + 32] for i in range(0, 128, 32))):
        assert run(**emu_args(platform, files, cpu0_id=form)).get('failed') is None
    other = bytes(64)
    result = run(**emu_args(platform, files, cpu0_id=other.hex()))
    assert_failed(result, 'insecure', 3, 'cpu0_id: the host reports chip %s, expected %s' % (chip.hex(), other.hex()))
    assert_failed(run(**rome_args(files, cpu0_id=chip.hex())), 'unsupported', 2,
                  'cpu0_id: the host reported no chip id to compare it with')
    node = dict(emulated_node_sev(platform), cpu0_id=None)
    assert_failed(run(**emu_args(platform, files, node_sev=node, cpu0_id=chip.hex())), 'unsupported', 2,
                  'the host reported no chip id')


def test_min_pdh_api_version(files):
    assert run(**rome_args(files, min_pdh_api_version='0.22')).get('failed') is None
    assert_failed(run(**rome_args(files, min_pdh_api_version='0.23')), 'insecure', 3,
                  'PDH: made by firmware API 0.22, older than min_pdh_api_version 0.23')
    assert_failed(run(**rome_args(files, min_pdh_api_version='1.0')), 'insecure', 3, 'older than')


def test_warnings(platform, files, injected):
    result = run(**emu_args(platform, files, policy=(0x02 << 16) | 0x1))
    assert 'POLICY_FAILURE' in result['warnings'][0]
    no_es = fw.EmulatedPlatform(roots=platform.roots, es=False)
    (files / 'no-es-cek.cert').write_bytes(no_es.kds_cek())
    result = run(**emu_args(no_es, files, policy=0x5, cek_file=str(files / 'no-es-cek.cert'), force=True))
    assert 'max_es_guests 0' in result['warnings'][0]
    assert 'warnings' not in run(**emu_args(platform, files, force=True))


# ---- round trips through the emulated platform, and the files ----------------------------------------

@pytest.mark.parametrize('policy', [0x1, 0x7, (0x01 << 16) | (0x30 << 24) | 0x3])
def test_round_trip(platform, files, injected, policy):
    result = run(**emu_args(platform, files, policy=policy, tk_file=str(files / 'out' / 'tk')))
    assert result['changed'] is True and result['policy']['value'] == policy, result
    out = files / 'out'
    tek, tik = (out / 'tek').read_bytes(), (out / 'tik').read_bytes()
    assert (out / 'tk').read_bytes() == tek + tik and len(tek) == len(tik) == 16
    guest = launch(platform, result, policy)
    assert (guest.tek, guest.tik) == (tek, tik)
    for name in ('tek', 'tik', 'tk'):
        assert mode(out / name) == 0o600
    for name in ('godh.b64', 'session.b64'):
        assert mode(out / name) == 0o644
    assert (out / 'godh.b64').read_text() == result['dh_cert'] and (out / 'session.b64').read_text() == result['session']
    text = json.dumps(result)
    for key in (tek, tik):
        assert key.hex() not in text and b64(key) not in text and b64(tek + tik) not in text
    with pytest.raises(fw.FirmwareError) as info:
        launch(platform, result, policy ^ 0x2)
    assert info.value.code == fw.BAD_MEASUREMENT


def test_a_session_for_another_pdh(platform, files, injected):
    result = run(**emu_args(platform, files))
    other = fw.EmulatedPlatform(roots=platform.roots)
    with pytest.raises(fw.FirmwareError) as info:
        launch(other, result, 0x1)
    assert info.value.code == fw.BAD_MEASUREMENT


def test_idempotency_and_force(platform, files, injected):
    out = files / 'out'
    first = run(**emu_args(platform, files))
    keys = (out / 'tek').read_bytes(), (out / 'tik').read_bytes()
    again = run(**emu_args(platform, files))
    assert again['changed'] is False
    assert (again['dh_cert'], again['session']) == (first['dh_cert'], first['session'])
    assert ((out / 'tek').read_bytes(), (out / 'tik').read_bytes()) == keys
    forced = run(**emu_args(platform, files, force=True))
    assert forced['changed'] is True
    assert forced['dh_cert'] != first['dh_cert'] and forced['session'] != first['session']
    new_keys = (out / 'tek').read_bytes(), (out / 'tik').read_bytes()
    assert new_keys[0] != keys[0] and new_keys[1] != keys[1]
    assert (launch(platform, forced, 0x1).tek, launch(platform, forced, 0x1).tik) == new_keys
    # A missing output file: a new session.
    (out / 'session.b64').unlink()
    assert run(**emu_args(platform, files))['changed'] is True
    # Check mode with everything in place: no change, the existing session returned.
    kept = run(check_mode=True, **emu_args(platform, files))
    assert kept['changed'] is False and kept['session'] == (out / 'session.b64').read_text()


def test_without_dh_cert_and_session_files_every_run_is_new(platform, files, injected):
    args = emu_args(platform, files, dh_cert_file=None, session_file=None)
    first, second = run(**args), run(**args)
    assert first['changed'] is second['changed'] is True
    assert first['session'] != second['session']
    assert launch(platform, second, 0x1).tik == (files / 'out' / 'tik').read_bytes()


def test_existing_files_that_do_not_fit(platform, files, injected):
    out = files / 'out'
    run(**emu_args(platform, files))
    assert_failed(run(**emu_args(platform, files, policy=0x3)), 'unsupported', 2,
                  'the existing session was not made with the existing TIK for policy 0x00000003')
    original = (out / 'tik').read_bytes()
    (out / 'tik').write_bytes(original[:15])
    assert_failed(run(**emu_args(platform, files)), 'unsupported', 2, 'tik_file: 15 bytes, a session key file has 16')
    (out / 'tik').write_bytes(bytes(16))
    assert_failed(run(**emu_args(platform, files)), 'unsupported', 2, 'all zeros')
    (out / 'tik').write_bytes(original)
    (out / 'session.b64').write_text('not base64')
    assert_failed(run(**emu_args(platform, files)), 'unsupported', 2, 'session_file: not base64 of 128 bytes')
    (out / 'session.b64').write_text(b64(bytes(128)))
    assert_failed(run(**emu_args(platform, files)), 'unsupported', 2, 'the existing session was not made')
    (out / 'tk').write_bytes(bytes(range(32)))
    assert_failed(run(**emu_args(platform, files, tk_file=str(out / 'tk'))), 'unsupported', 2,
                  'tk_file and tek_file/tik_file hold different keys')
    assert 'force: true makes a new session' in run(**emu_args(platform, files))['msg']
    assert run(**emu_args(platform, files, force=True))['changed'] is True
    assert run(**emu_args(platform, files))['changed'] is False


def test_check_mode_writes_nothing(platform, files, injected):
    result = run(check_mode=True, **emu_args(platform, files, tk_file=str(files / 'out' / 'tk')))
    assert result['changed'] is True and result['chain']['generation'] == 'milan'
    assert 'dh_cert' not in result and 'session' not in result
    assert not any((files / 'out').iterdir())
    assert_failed(run(check_mode=True, **emu_args(platform, files, policy=0x80)), 'unsupported', 2, 'reserved')
    assert_failed(run(check_mode=True, **emu_args(platform, files, min_pdh_api_version='9.9')), 'insecure', 3,
                  'PDH: made by firmware API 1.55, older than min_pdh_api_version 9.9')


def test_state_absent(platform, files, injected):
    out = files / 'out'
    args = emu_args(platform, files, tk_file=str(out / 'tk'))
    run(**args)
    (out / 'unrelated').write_bytes(b'x')
    absent = dict(args)
    absent.update(state='absent', node_sev=None, cek_file=None, policy=None)
    checked = run(check_mode=True, **absent)
    assert checked['changed'] is True and len(checked['removed']) == 5
    assert len(list(out.iterdir())) == 6
    removed = run(**absent)
    assert removed['changed'] is True and sorted(removed['removed']) == sorted(
        str(out / name) for name in ('tek', 'tik', 'tk', 'godh.b64', 'session.b64'))
    assert [path.name for path in out.iterdir()] == ['unrelated']
    again = run(**absent)
    assert again['changed'] is False and again['removed'] == []
    assert run(check_mode=True, **absent)['changed'] is False


# ---- helpers -----------------------------------------------------------------------------------

def test_chip_id_and_url():
    chip = bytes(range(64))
    assert so.chip_id(chip.hex()) == so.chip_id(b64(chip)) == so.chip_id(chip.hex().upper()) == chip
    assert so.kds_cek_url(chip) == 'https://kdsintf.amd.com/cek/id/' + chip.hex()
    for bad in ('', 'AAAA', chip.hex()[:-2], b64(chip + b'x'), 'g' * 128, 5, None):
        with pytest.raises(so.UnsupportedUsage):
            so.chip_id(bad)


def test_certificate_bytes():
    raw = real('rome', 'pdh')
    assert so.certificate_bytes(raw, 'x', (2084,)) == raw
    assert so.certificate_bytes(b64(raw).encode() + b'\r\n', 'x', (2084,)) == raw
    for bad in (raw[:-1], b'\xff' * 2084, b'', b64(raw[:-1]).encode()):
        with pytest.raises(so.UnsupportedUsage):
            so.certificate_bytes(bad, 'x', (2084,))

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform chain, root to PDH: real chains verify, and a tampered link in each
position fails with an error naming that link.

Real Naples and Rome chains with AMD's pinned roots show most failures; links that
need a validly re-signed certificate (a PDH with the wrong usage but a good PEK
signature, a PDH point off the curve) use the emulated platform, whose TEST roots
are injected in place of the pinned ones (they are never accepted otherwise:
see test_test_roots_are_not_pinned).
"""

from __future__ import annotations

import base64
import pathlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.confidential.sev.plugins.module_utils.sev import amd_roots, certs, chain
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import UnsupportedUsage
from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw

DATA = pathlib.Path(__file__).resolve().parents[3] / 'data' / 'amd-certs'


def raw_sev(generation, name):
    return (DATA / 'sev-chains' / generation / ('%s.cert' % name)).read_bytes()


def raw_amd(generation, name):
    return (DATA / 'sev-builtin' / generation / ('%s.cert' % name)).read_bytes()


def real_chain(generation, **changes):
    """{name: SevCert or AmdCert} of a real chain, with ``changes`` (name -> function on a bytearray)."""
    found = {}
    for name in ('pdh', 'pek', 'oca', 'cek', 'ark', 'ask'):
        data = bytearray(raw_sev(generation, name) if name in ('pdh', 'pek', 'oca', 'cek') else raw_amd(generation, name))
        if name in changes:
            changes[name](data)
        if name in ('ark', 'ask'):
            found[name] = certs.parse_amd_cert(bytes(data), name.upper())[0]
        else:
            found[name] = certs.parse_sev_cert(bytes(data), name.upper())
    return found


def verify(found, anchors=False, generation=None):
    kwargs = dict(ark=found['ark'], ask=found['ask']) if anchors else {}
    return chain.verify_platform_chain(found['pdh'], found['pek'], found['oca'], found['cek'],
                                       generation=generation, **kwargs)


def flip(offset):
    def change(data):
        data[offset] ^= 1
    return change


def put(offset, fmt, *values):
    def change(data):
        struct.pack_into(fmt, data, offset, *values)
    return change


def empty_slots(data):
    for offset in (0x414, 0x61c):
        data[offset:offset + 520] = struct.pack('<II', 0x1000, 0) + bytes(512)


# ---- real chains ----------------------------------------------------------------------------

@pytest.mark.parametrize('generation, ask_bits', [('naples', 2048), ('rome', 4096)])
def test_real_chains_verify(generation, ask_bits):
    summary = verify(real_chain(generation))
    assert summary['generation'] == generation
    assert summary['pdh']['usage'] == 'PDH' and summary['cek']['usage'] == 'CEK'
    assert verify(real_chain(generation), generation=generation)['generation'] == generation
    assert verify(real_chain(generation), anchors=True)['generation'] == generation
    assert real_chain(generation)['ask'].mod_bits == ask_bits


def test_wrong_generation_is_refused():
    with pytest.raises(certs.CertificateError, match=r"^CEK: no pinned AMD signing key \(ASK\) signed it.*"
                                                     r"CEK signed by ASK \(milan\)"):
        verify(real_chain('rome'), generation='milan')
    with pytest.raises(UnsupportedUsage, match='generation must be one of'):
        verify(real_chain('rome'), generation='zen')


@pytest.mark.parametrize('generation', amd_roots.GENERATIONS)
def test_every_pinned_pair_verifies(generation):
    ark = certs.parse_amd_cert(raw_amd(generation, 'ark'), 'ARK')[0]
    ask = certs.parse_amd_cert(raw_amd(generation, 'ask'), 'ASK')[0]
    assert chain.verify_amd_roots(ark, ask) == generation
    assert [root[0] for root in chain.pinned_roots()] == list(amd_roots.GENERATIONS)


def test_split_platform_chain():
    data = raw_sev('rome', 'pek') + raw_sev('rome', 'oca') + raw_sev('rome', 'cek')
    assert [cert.name for cert in chain.split_platform_chain(data)] == ['PEK', 'OCA', 'CEK']
    with pytest.raises(UnsupportedUsage, match='cert_chain must be 6252 bytes'):
        chain.split_platform_chain(data[:-1])
    assert chain.decode_b64(base64.b64encode(data).decode(), 'x') == data
    with pytest.raises(UnsupportedUsage, match='cert_chain is not valid base64'):
        chain.decode_b64('not base64!', 'cert_chain')


# ---- each link, tampered --------------------------------------------------------------------

REAL_TAMPERING = [
    # (what, changes, anchors given, error)
    ('ARK self-signature', dict(ark=flip(-5)), True, r'^ARK signed by ARK: the signature does not verify$'),
    ('ARK not self-certified', dict(ark=flip(20)), True, r'^ARK \(rome\): not a self-certified root key$'),
    ('ARK of another key', dict(ark=flip(300)), True, r"^ARK: not one of AMD's pinned root keys"),
    ('ASK certifying id', dict(ask=flip(21)), True,
     r'^ASK certified by ARK \(rome\): its certifying id does not name that ARK$'),
    ('ASK usage', dict(ask=put(36, '<I', 0)), True, r'^ASK: key usage 0x0, expected 0x13$'),
    ('ASK signature', dict(ask=flip(-7)), True, r'^ASK signed by ARK: the signature does not verify$'),
    ('ASK key', dict(ask=flip(500)), True, r'^ASK signed by ARK: the signature does not verify$'),
    ('CEK signature', dict(cek=flip(0x41c + 3)), False,
     r"^CEK: no pinned AMD signing key \(ASK\) signed it.*CEK signed by ASK \(rome\): the signature does not verify"),
    ('CEK body', dict(cek=flip(0x04)), False, r'^CEK: no pinned AMD signing key \(ASK\) signed it'),
    ('CEK signature, anchors given', dict(cek=flip(0x41c + 3)), True,
     r'^CEK signed by ASK: the signature does not verify$'),
    ('unsigned placeholder CEK', dict(cek=empty_slots), False,
     r"not the unsigned one from the host\?.*no signature slot for ASK"),
    ('CEK usage', dict(cek=put(8, '<I', 0x1002)), False, r'^CEK: key usage is PEK, expected CEK$'),
    ('OCA self-signature', dict(oca=flip(0x41c + 80)), False,
     r'^OCA signed by OCA \(itself\): the signature does not verify$'),
    ('OCA body', dict(oca=flip(0x06)), False, r'^OCA signed by OCA \(itself\): the signature does not verify$'),
    ('OCA usage', dict(oca=put(8, '<I', 0x1002)), False, r'^OCA: key usage is PEK, expected OCA$'),
    ('PEK by OCA', dict(pek=flip(0x41c + 10)), False, r'^PEK signed by OCA: the signature does not verify$'),
    ('PEK by CEK', dict(pek=flip(0x624 + 10)), False, r'^PEK signed by CEK: the signature does not verify$'),
    ('PEK without a CEK slot', dict(pek=put(0x61c, '<II', 0x1000, 0)), False,
     r'^PEK signed by CEK: no signature slot for CEK \(usage 0x1004, algorithm 0x2\)$'),
    ('PEK body', dict(pek=flip(0x05)), False, r'^PEK signed by OCA: the signature does not verify$'),
    ('PEK usage', dict(pek=put(8, '<I', 0x1003)), False, r'^PEK: key usage is PDH, expected PEK$'),
    ('PDH by PEK', dict(pdh=flip(0x41c + 100)), False, r'^PDH signed by PEK: the signature does not verify$'),
    ('PDH body', dict(pdh=flip(0x05)), False, r'^PDH signed by PEK: the signature does not verify$'),
    # The PEK's signature is checked before the PDH's point (an off-curve, validly signed
    # PDH is in test_resigned_pdh).
    ('PDH point', dict(pdh=flip(0x60)), False, r'^PDH signed by PEK: the signature does not verify$'),
    ('OCA point', dict(oca=flip(0x20)), False, r'^OCA: its public key is not a point on P-384$'),
    ('PDH usage', dict(pdh=put(8, '<I', 0x1002)), False, r'^PDH: key usage is PEK, expected PDH$'),
    ('PDH algorithm', dict(pdh=put(12, '<I', 0x103)), False, r'^PDH: key algorithm 0x103, expected ECDH-SHA256$'),
    ('PDH as ECDSA key', dict(pdh=put(12, '<I', 0x002)), False, r'^PDH: key algorithm 0x2, expected ECDH-SHA256$'),
]


@pytest.mark.parametrize('what, changes, anchors, error', REAL_TAMPERING, ids=[case[0] for case in REAL_TAMPERING])
def test_real_chain_tampered(what, changes, anchors, error):
    del what
    with pytest.raises(certs.CertificateError, match=error):
        verify(real_chain('rome', **changes), anchors=anchors)


def test_mixed_generations():
    """Naples PDH under a Rome chain, a Naples CEK with Rome's certificates."""
    rome, naples = real_chain('rome'), real_chain('naples')
    with pytest.raises(certs.CertificateError, match='^PDH signed by PEK: the signature does not verify$'):
        verify(dict(rome, pdh=naples['pdh']))
    with pytest.raises(certs.CertificateError, match='^PEK signed by CEK: the signature does not verify$'):
        verify(dict(rome, cek=naples['cek']))
    with pytest.raises(certs.CertificateError, match=r'^CEK signed by ASK: no signature slot for ASK '
                                                     r'\(usage 0x13, algorithm 0x101\)$'):
        verify(dict(rome, cek=naples['cek']), anchors=True)


# ---- the root must be pinned ------------------------------------------------------------------

@pytest.fixture(scope='module')
def platform():
    return fw.EmulatedPlatform(roots=fw.TestRoots(4096))


def emulated(platform, pdh=None, pek=None):
    pdh_raw, chain_raw = platform.pdh_cert_export()
    found = dict(zip(('pek', 'oca', 'placeholder'), chain.split_platform_chain(chain_raw)))
    found['pdh'] = certs.parse_sev_cert(pdh or pdh_raw, 'PDH')
    if pek is not None:
        found['pek'] = certs.parse_sev_cert(pek, 'PEK')
    found['cek'] = certs.parse_sev_cert(platform.kds_cek(), 'CEK')
    found['ark'] = certs.parse_amd_cert(platform.roots.ark_cert, 'ARK')[0]
    found['ask'] = certs.parse_amd_cert(platform.roots.ask_cert, 'ASK')[0]
    return found


def test_test_roots_are_not_pinned(platform):
    found = emulated(platform)
    with pytest.raises(certs.CertificateError, match=r"^ARK: not one of AMD's pinned root keys \(naples, rome, "
                                                     r"milan, genoa, turin\)$"):
        verify(found, anchors=True)
    with pytest.raises(certs.CertificateError, match=r'^CEK: no pinned AMD signing key \(ASK\) signed it'):
        verify(found)
    with pytest.raises(certs.CertificateError, match="^ARK: not one of AMD's pinned root keys"):
        chain.verify_amd_roots(found['ark'], found['ask'])


@pytest.fixture
def injected(platform, monkeypatch):
    """The emulated platform's TEST roots in place of AMD's pinned ones, for this test only."""
    found = emulated(platform)
    monkeypatch.setattr(chain, 'pinned_roots', lambda: [('rome', found['ark'], found['ask'])])
    return found


def test_emulated_chain_verifies_with_injected_roots(platform, injected):
    assert verify(injected)['generation'] == 'rome'
    assert verify(injected, anchors=True)['generation'] == 'rome'
    assert chain.verify_amd_roots(injected['ark'], injected['ask'],
                                  roots=[('test', injected['ark'], injected['ask'])]) == 'test'
    with pytest.raises(certs.CertificateError, match=r'^CEK: no pinned AMD signing key .*not the unsigned one'):
        verify(dict(injected, cek=injected['placeholder']))


def test_an_ask_signed_by_the_ark_but_not_pinned(platform, injected):
    """A second ASK, certified and signed by the (injected) ARK, is still not the pinned ASK."""
    # Any other key of the same size will do: here the ARK's own, under another key id.
    key = platform.roots.ark_key
    raw = fw.amd_cert(bytes(range(16)), platform.roots.ark_id, 0x13, key.public_key(), platform.roots.ark_key)
    ask = certs.parse_amd_cert(raw, 'ASK')[0]
    certs.verify_amd_signed_by(ask, injected['ark'])
    with pytest.raises(certs.CertificateError, match=r'^ASK \(rome\): signed by the ARK but not the pinned ASK$'):
        chain.verify_amd_roots(injected['ark'], ask)


def resigned_pdh(platform, **fields):
    """A PDH certificate, correctly signed by the platform's PEK, with ``fields`` changed."""
    numbers = platform.pdh_key.public_key().public_numbers()
    cert = fw.ecc_cert(fields.get('usage', 0x1003), fields.get('algo', 0x003), numbers, platform.api)
    if 'qy' in fields:
        cert[0x5c:0x5c + 72] = fields['qy'].to_bytes(72, 'little')
    if 'curve' in fields:
        struct.pack_into('<I', cert, 0x10, fields['curve'])
    return bytes(fw.sign_ecdsa(cert, 0, 0x1002, platform.pek_key))


@pytest.mark.parametrize('fields, error', [
    (dict(qy=1), r'^PDH: its public key is not a point on P-384$'),
    (dict(usage=0x1002), r'^PDH: key usage is PEK, expected PDH$'),
    (dict(usage=0x1001, algo=0x002), r'^PDH: key usage is OCA, expected PDH$'),
    (dict(algo=0x103), r'^PDH: key algorithm 0x103, expected ECDH-SHA256$'),
    (dict(algo=0x002), r'^PDH: key algorithm 0x2, expected ECDH-SHA256$'),
])
def test_resigned_pdh(platform, injected, fields, error):
    pdh = resigned_pdh(platform, **fields)
    pek = injected['pek']
    certs.verify_signed_by(certs.parse_sev_cert(pdh, 'PDH'), 0x1002, 0x002, pek.public_key(), 'PEK')
    with pytest.raises(certs.CertificateError, match=error):
        verify(dict(injected, pdh=certs.parse_sev_cert(pdh, 'PDH')))


def test_pdh_on_another_curve_is_refused(platform, injected):
    """A P-256 point in a PEK-signed PDH: every signature holds, but the chain refuses the curve."""
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    cert = fw.ecc_cert(0x1003, 0x003, p256, platform.api)
    struct.pack_into('<I', cert, 0x10, 1)
    pdh = certs.parse_sev_cert(bytes(fw.sign_ecdsa(cert, 0, 0x1002, platform.pek_key)), 'PDH')
    with pytest.raises(certs.CertificateError, match='^PDH: the key is not on P-384'):
        verify(dict(injected, pdh=pdh))


def test_another_chips_pek_and_cek(platform, injected):
    other = fw.EmulatedPlatform(roots=platform.roots)
    other_found = emulated(other)
    with pytest.raises(certs.CertificateError, match='^PEK signed by CEK: the signature does not verify$'):
        verify(dict(injected, cek=other_found['cek']))
    with pytest.raises(certs.CertificateError, match='^PEK signed by OCA: the signature does not verify$'):
        verify(dict(injected, pek=other_found['pek']))
    with pytest.raises(certs.CertificateError, match='^OCA signed by OCA'):
        verify(dict(injected, oca=certs.parse_sev_cert(bytes(fw.sign_ecdsa(
            bytearray(injected['oca'].raw), 0, 0x1001, other.oca_key)), 'OCA')))
    with pytest.raises(certs.CertificateError, match='^PDH signed by PEK: the signature does not verify$'):
        verify(dict(injected, pdh=other_found['pdh']))

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SEV and AMD certificates: parsing, keys, and single signature links.

Real certificates (tests/data/amd-certs: AMD's ARK/ASK of five generations,
Naples and Rome chains exported from machines) and self-made ones from the
emulated platform (tests/platform), whose test keys sign links the real data
cannot show failing one at a time.
"""

from __future__ import annotations

import pathlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.confidential.sev.plugins.module_utils.sev import amd_roots, certs
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import InsecureUsage, UnsupportedUsage
from ansible_collections.confidential.sev.tests.platform import sev_firmware as fw

DATA = pathlib.Path(__file__).resolve().parents[3] / 'data' / 'amd-certs'
GENERATIONS = ('naples', 'rome', 'milan', 'genoa', 'turin')
ARK_IDS = {'naples': '1bb987c359494606b174945601c9ea5b', 'rome': 'e6002122fb58419399d15fee7b131351',
           'milan': '94c38e4177d0479292a7ae671d083fb6', 'genoa': '9f9d4a8fe761456599f6946c4c010f3a',
           'turin': 'd05c3a8bde484904b49552422ceb3942'}


def sev(generation, name):
    return certs.parse_sev_cert((DATA / 'sev-chains' / generation / ('%s.cert' % name)).read_bytes(), name.upper())


def amd(generation, name):
    data = (DATA / 'sev-builtin' / generation / ('%s.cert' % name)).read_bytes()
    cert, end = certs.parse_amd_cert(data, name.upper())
    assert end == len(data)
    return cert


def tampered(cert, offset, xor=1):
    raw = bytearray(cert.raw)
    raw[offset] ^= xor
    return certs.parse_sev_cert(bytes(raw), cert.name)


@pytest.fixture(scope='module')
def platform():
    return fw.EmulatedPlatform()


# ---- SEV certificates ----------------------------------------------------------------------

@pytest.mark.parametrize('generation, api_minor, cek_algo', [('naples', 16, 0x001), ('rome', 22, 0x101)])
def test_real_chain_fields(generation, api_minor, cek_algo):
    """The doc's table of real-world values."""
    expected = {'pdh': (0x1003, 0x003, [(0x1002, 0x002), (0x1000, 0)]),
                'pek': (0x1002, 0x002, [(0x1001, 0x002), (0x1004, 0x002)]),
                'oca': (0x1001, 0x002, [(0x1001, 0x002), (0x1000, 0)]),
                'cek': (0x1004, 0x002, [(0x13, cek_algo), (0x1000, 0)])}
    for name, (usage, algo, slots) in expected.items():
        cert = sev(generation, name)
        assert (cert.version, cert.usage, cert.algo) == (1, usage, algo)
        assert [(slot[0], slot[1]) for slot in cert.signatures] == slots
        assert cert.api_major == 0 and cert.api_minor == (14 if name == 'cek' else api_minor)
        assert len(cert.body) == 1044
        assert isinstance(cert.public_key().curve, ec.SECP384R1)
    assert sev(generation, 'pdh').describe() == {'usage': 'PDH', 'algo': 'ECDH-SHA256', 'api_major': 0,
                                                 'api_minor': api_minor}


@pytest.mark.parametrize('size', [0, 2083, 2085, 4168])
def test_sev_cert_size(size):
    with pytest.raises(UnsupportedUsage, match='PDH: an SEV certificate is 2084 bytes, got %d' % size):
        certs.parse_sev_cert(bytes(size), 'PDH')


def test_sev_cert_version():
    raw = bytearray(sev('rome', 'pdh').raw)
    raw[0] = 2
    with pytest.raises(UnsupportedUsage, match='PDH: certificate version 2, expected 1'):
        certs.parse_sev_cert(bytes(raw), 'PDH')


@pytest.mark.parametrize('offset', [0x14, 0x14 + 47, 0x5c, 0x5c + 71])
def test_point_off_the_curve(offset):
    with pytest.raises(certs.CertificateError, match='PDH: its public key is not a point on P-384'):
        tampered(sev('rome', 'pdh'), offset).public_key()


def test_unknown_curve_and_algorithm():
    raw = bytearray(sev('rome', 'pdh').raw)
    raw[0x10] = 3
    with pytest.raises(UnsupportedUsage, match='unknown ECC curve 3'):
        certs.parse_sev_cert(bytes(raw), 'PDH').public_key()
    raw = bytearray(sev('rome', 'pdh').raw)
    struct.pack_into('<I', raw, 0x0c, 0x55)
    with pytest.raises(UnsupportedUsage, match='unknown key algorithm 0x55'):
        certs.parse_sev_cert(bytes(raw), 'PDH').public_key()


def test_certificate_error_is_insecure():
    assert issubclass(certs.CertificateError, InsecureUsage)
    assert certs.CertificateError('x').reason == 'insecure' and certs.CertificateError('x').rc == 3


@pytest.mark.parametrize('generation', ['naples', 'rome'])
def test_real_links_verify(generation):
    pdh, pek, oca, cek = (sev(generation, name) for name in ('pdh', 'pek', 'oca', 'cek'))
    certs.verify_signed_by(pdh, 0x1002, pek.algo, pek.public_key(), 'PEK')
    certs.verify_signed_by(pek, 0x1001, oca.algo, oca.public_key(), 'OCA')
    certs.verify_signed_by(pek, 0x1004, cek.algo, cek.public_key(), 'CEK')
    certs.verify_signed_by(oca, 0x1001, oca.algo, oca.public_key(), 'OCA')
    ask = amd(generation, 'ask')
    certs.verify_signed_by(cek, 0x13, ask.algo, ask.public_key(), 'ASK')


def test_slot_order_does_not_matter():
    pek, oca, cek = sev('rome', 'pek'), sev('rome', 'oca'), sev('rome', 'cek')
    raw = bytearray(pek.raw)
    raw[0x414:0x61c], raw[0x61c:0x824] = pek.raw[0x61c:0x824], pek.raw[0x414:0x61c]
    swapped = certs.parse_sev_cert(bytes(raw), 'PEK')
    certs.verify_signed_by(swapped, 0x1001, oca.algo, oca.public_key(), 'OCA')
    certs.verify_signed_by(swapped, 0x1004, cek.algo, cek.public_key(), 'CEK')


def test_a_bad_signature_names_the_link():
    pdh, pek = sev('rome', 'pdh'), sev('rome', 'pek')
    with pytest.raises(certs.CertificateError, match='^PDH signed by PEK: the signature does not verify$'):
        certs.verify_signed_by(tampered(pdh, 0x41c + 5), 0x1002, pek.algo, pek.public_key(), 'PEK')
    with pytest.raises(certs.CertificateError, match='^PDH signed by PEK: the signature does not verify$'):
        certs.verify_signed_by(tampered(pdh, 0x100), 0x1002, pek.algo, pek.public_key(), 'PEK')
    with pytest.raises(certs.CertificateError, match=r'^PDH signed by OCA: no signature slot for OCA \(usage '
                                                     r'0x1001, algorithm 0x2\)$'):
        certs.verify_signed_by(pdh, 0x1001, 0x002, pek.public_key(), 'OCA')
    with pytest.raises(certs.CertificateError, match='PDH signed by PEK: the signature does not verify'):
        certs.verify_signed_by(pdh, 0x1002, 0x002, sev('naples', 'pek').public_key(), 'PEK')


def test_self_made_links(platform):
    pdh, chain = platform.pdh_cert_export()
    pdh = certs.parse_sev_cert(pdh, 'PDH')
    pek = certs.parse_sev_cert(chain[:2084], 'PEK')
    cek = certs.parse_sev_cert(platform.kds_cek(), 'CEK')
    certs.verify_signed_by(pdh, 0x1002, 0x002, pek.public_key(), 'PEK')
    certs.verify_signed_by(pek, 0x1004, 0x002, cek.public_key(), 'CEK')
    ask = certs.parse_amd_cert(platform.roots.ask_cert, 'ASK')[0]
    certs.verify_signed_by(cek, 0x13, ask.algo, ask.public_key(), 'ASK')
    placeholder = certs.parse_sev_cert(chain[4168:], 'CEK')
    with pytest.raises(certs.CertificateError, match='CEK signed by ASK: no signature slot'):
        certs.verify_signed_by(placeholder, 0x13, ask.algo, ask.public_key(), 'ASK')
    other = fw.EmulatedPlatform(roots=platform.roots)
    with pytest.raises(certs.CertificateError, match='PEK signed by CEK: the signature does not verify'):
        certs.verify_signed_by(pek, 0x1004, 0x002, certs.parse_sev_cert(other.kds_cek(), 'CEK').public_key(), 'CEK')


def test_usage_and_algorithm_expectations():
    pdh = sev('rome', 'pdh')
    certs.expect_usage(pdh, 'PDH', ('ECDH-SHA256',))
    with pytest.raises(certs.CertificateError, match='PDH: key usage is PDH, expected PEK'):
        certs.expect_usage(pdh, 'PEK')
    with pytest.raises(certs.CertificateError, match='PDH: key algorithm 0x3, expected ECDSA-SHA256'):
        certs.expect_usage(pdh, 'PDH', ('ECDSA-SHA256',))


# ---- AMD certificates ----------------------------------------------------------------------

@pytest.mark.parametrize('generation', GENERATIONS)
def test_pinned_roots_verify(generation):
    """All five generations: the pinned ARK signs itself and the ASK; they equal tests/data's copies."""
    ark, ask = amd(generation, 'ark'), amd(generation, 'ask')
    pinned_ark, pinned_ask = amd_roots.root_certs(generation)
    assert pinned_ark == ark.raw and pinned_ask == ask.raw
    bits = 2048 if generation == 'naples' else 4096
    assert len(ark.raw) == len(ask.raw) == {2048: 832, 4096: 1600}[bits]
    assert ark.mod_bits == ask.mod_bits == bits and ark.exponent == ask.exponent == 65537
    assert ark.key_id.hex() == ARK_IDS[generation] == ark.certifying_id.hex() == ask.certifying_id.hex()
    assert (ark.key_usage, ask.key_usage) == (0x00, 0x13)
    assert ask.algo == (0x001 if bits == 2048 else 0x101)
    certs.verify_amd_signed_by(ark, ark)
    certs.verify_amd_signed_by(ask, ark)
    assert amd_roots.GENERATIONS == GENERATIONS


def test_roots_of_another_generation_do_not_verify():
    with pytest.raises(certs.CertificateError, match='^ASK signed by ARK: the signature does not verify$'):
        certs.verify_amd_signed_by(amd('milan', 'ask'), amd('rome', 'ark'))
    with pytest.raises(certs.CertificateError, match='ASK signed by ARK'):
        certs.verify_amd_signed_by(amd('rome', 'ask'), amd('naples', 'ark'))


@pytest.mark.parametrize('offset', [-1, -300, 70, 4])
def test_tampered_amd_cert(offset):
    raw = bytearray((DATA / 'sev-builtin' / 'rome' / 'ask.cert').read_bytes())
    raw[offset] ^= 1
    ask = certs.parse_amd_cert(bytes(raw), 'ASK')[0]
    with pytest.raises(certs.CertificateError, match='ASK signed by ARK: the signature does not verify'):
        certs.verify_amd_signed_by(ask, amd('rome', 'ark'))


def test_amd_cert_sizes():
    ark = (DATA / 'sev-builtin' / 'naples' / 'ark.cert').read_bytes()
    with pytest.raises(UnsupportedUsage, match='ARK: 576 bytes, an AMD certificate of this key size needs 832'):
        certs.parse_amd_cert(ark[:576], 'ARK')   # the truncated early Naples download
    with pytest.raises(UnsupportedUsage, match='shorter than an AMD certificate header'):
        certs.parse_amd_cert(ark[:63], 'ARK')
    bad = bytearray(ark)
    struct.pack_into('<I', bad, 60, 1024)
    with pytest.raises(UnsupportedUsage, match='key sizes 2048/1024 bits'):
        certs.parse_amd_cert(bytes(bad), 'ARK')
    bad = bytearray(ark)
    bad[0] = 2
    with pytest.raises(UnsupportedUsage, match='ARK: certificate version 2'):
        certs.parse_amd_cert(bytes(bad), 'ARK')
    # AMD's ask_ark_<product>.cert: ASK then ARK.
    both = (DATA / 'sev-builtin' / 'rome' / 'ask.cert').read_bytes() + (DATA / 'sev-builtin' / 'rome' / 'ark.cert').read_bytes()
    ask, offset = certs.parse_amd_cert(both, 'ASK')
    ark2, end = certs.parse_amd_cert(both, 'ARK', offset)
    assert end == len(both) and ark2.same_key(amd('rome', 'ark')) and ask.same_key(amd('rome', 'ask'))


@pytest.mark.parametrize('bits', [2048, 4096])
def test_self_made_amd_roots(bits):
    roots = fw.TestRoots(bits)
    ark = certs.parse_amd_cert(roots.ark_cert, 'ARK')[0]
    ask = certs.parse_amd_cert(roots.ask_cert, 'ASK')[0]
    certs.verify_amd_signed_by(ark, ark)
    certs.verify_amd_signed_by(ask, ark)
    with pytest.raises(certs.CertificateError, match='^ASK signed by ASK: the signature does not verify$'):
        certs.verify_amd_signed_by(ask, ask)
    assert not ark.same_key(amd('rome' if bits == 4096 else 'naples', 'ark'))

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is the platform's PDH key really a genuine AMD secure processor's?

Every link is checked, root first:
  ARK   equal to a pinned ARK (full key), self-signed
  ASK   certified by that ARK (certifying id, usage, signature)
  CEK   signed by the ASK (the CEK as AMD's key server issues it for the chip:
        the CEK in the host's exported chain is an unsigned placeholder)
  OCA   self-signed
  PEK   signed by the OCA and by the CEK
  PDH   signed by the PEK; an ECDH key
Errors name the link that failed.
"""

from __future__ import annotations

import base64
import binascii

from . import amd_roots
from .certs import (
    SEV_CERT_SIZE, USAGE, CertificateError, expect_usage, parse_amd_cert, parse_sev_cert,
    verify_amd_signed_by, verify_signed_by,
)
from .errors import UnsupportedUsage

PLATFORM_CHAIN_SIZE = 3 * SEV_CERT_SIZE   # PEK || OCA || CEK, as PDH_CERT_EXPORT gives it


def decode_b64(text, name):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise UnsupportedUsage('%s is not valid base64' % name)


def split_platform_chain(data):
    """PEK, OCA, CEK from the 6252-byte cert-chain libvirt's getSEVInfo reports."""
    if len(data) != PLATFORM_CHAIN_SIZE:
        raise UnsupportedUsage('cert_chain must be %d bytes (PEK, OCA, CEK), got %d'
                               % (PLATFORM_CHAIN_SIZE, len(data)))
    return [parse_sev_cert(data[i * SEV_CERT_SIZE:(i + 1) * SEV_CERT_SIZE], name)
            for i, name in enumerate(('PEK', 'OCA', 'CEK'))]


def pinned_roots():
    """[(generation, ARK, ASK)] from the collection's pinned anchors."""
    roots = []
    for generation in amd_roots.GENERATIONS:
        ark_bytes, ask_bytes = amd_roots.root_certs(generation)
        roots.append((generation, parse_amd_cert(ark_bytes, 'ARK (%s)' % generation)[0],
                      parse_amd_cert(ask_bytes, 'ASK (%s)' % generation)[0]))
    return roots


def verify_amd_roots(ark, ask, roots=None):
    """The generation whose pinned ARK equals ``ark``, after checking ARK and ASK."""
    roots = pinned_roots() if roots is None else roots
    for generation, pinned_ark, pinned_ask in roots:
        if ark.same_key(pinned_ark):
            break
    else:
        raise CertificateError('ARK: not one of AMD\'s pinned root keys (%s)' % ', '.join(root[0] for root in roots)
                               if roots else 'ARK: no pinned AMD root key to compare with')
    if ark.certifying_id != ark.key_id or ark.key_usage != USAGE['ARK']:
        raise CertificateError('ARK (%s): not a self-certified root key' % generation)
    verify_amd_signed_by(ark, ark)
    if ask.certifying_id != ark.key_id:
        raise CertificateError('ASK certified by ARK (%s): its certifying id does not name that ARK' % generation)
    if ask.key_usage != USAGE['ASK']:
        raise CertificateError('ASK: key usage 0x%x, expected 0x13' % ask.key_usage)
    verify_amd_signed_by(ask, ark)
    if not ask.same_key(pinned_ask):
        raise CertificateError('ASK (%s): signed by the ARK but not the pinned ASK' % generation)
    return generation


LAB_GENERATION = 'lab'


def verify_platform_chain(pdh, pek, oca, cek, ark=None, ask=None, generation=None, lab_root=False):
    """Verify PDH <- PEK <- (OCA, CEK <- ASK <- ARK).  SevCert/AmdCert arguments.

    Without ``ark``/``ask`` the pinned anchors are tried (the one whose ASK
    signed the CEK names the generation); ``generation`` restricts them.
    With ``lab_root`` the given ``ark``/``ask`` are the anchor themselves (an
    emulated or lab platform's root, which AMD did not sign): every link is
    still checked, but the chain proves only what that root's owner vouches
    for; the summary's generation is 'lab' and user_supplied_root is true.
    Returns a summary dict.
    """
    if lab_root:
        if ark is None or ask is None:
            raise UnsupportedUsage('a lab root needs both its ARK and its ASK')
        if generation is not None:
            raise UnsupportedUsage('generation names AMD\'s pinned roots; it does not apply to a lab root')
        roots = [(LAB_GENERATION, ark, ask)]
    else:
        roots = pinned_roots()
    if generation is not None:
        roots = [root for root in roots if root[0] == generation]
        if not roots:
            raise UnsupportedUsage('generation must be one of %s' % ', '.join(amd_roots.GENERATIONS))
    expect_usage(cek, 'CEK')
    if ark is not None or ask is not None:
        if ark is None or ask is None:
            raise UnsupportedUsage('ark and ask go together')
        found = verify_amd_roots(ark, ask, roots)
        verify_signed_by(cek, USAGE['ASK'], ask.algo, ask.public_key(), 'ASK')
    else:
        found, failures = None, []
        for name, root_ark, root_ask in roots:
            try:
                verify_signed_by(cek, USAGE['ASK'], root_ask.algo, root_ask.public_key(), 'ASK (%s)' % name)
            except CertificateError as exc:
                failures.append(str(exc))
                continue
            verify_amd_roots(root_ark, root_ask, roots)
            found = name
            break
        if found is None:
            raise CertificateError('CEK: no pinned AMD signing key (ASK) signed it; is it the CEK from AMD\'s key '
                                   'server for this chip, and not the unsigned one from the host? (%s)'
                                   % '; '.join(failures))
    expect_usage(oca, 'OCA')
    verify_signed_by(oca, USAGE['OCA'], oca.algo, oca.public_key(), 'OCA (itself)')
    expect_usage(pek, 'PEK')
    verify_signed_by(pek, USAGE['OCA'], oca.algo, oca.public_key(), 'OCA')
    verify_signed_by(pek, USAGE['CEK'], cek.algo, cek.public_key(), 'CEK')
    expect_usage(pdh, 'PDH', ('ECDH-SHA256',))
    verify_signed_by(pdh, USAGE['PEK'], pek.algo, pek.public_key(), 'PEK')
    if pdh.public_key().curve.name != 'secp384r1':   # also: a point on the curve
        raise CertificateError('PDH: the key is not on P-384, the only curve SEV firmware uses')
    return {'generation': found, 'user_supplied_root': bool(lab_root), 'pdh': pdh.describe(), 'pek': pek.describe(), 'oca': oca.describe(),
            'cek': cek.describe()}

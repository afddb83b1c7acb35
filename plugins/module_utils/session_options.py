# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sev_session's options, and the step from options to a verified launch session.

Ansible-free, so that the action plugin, the module's documentation checks and
the tests go through the same code.  Runs on the controller: the host only
supplies data to check (its PDH and certificate chain); trust anchors come from
the collection's pins, the chip's signed CEK from a file the guest owner fetched
from AMD's key server.  TEK and TIK are written to files, never returned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
import struct

from .sev import amd_roots, chain as chain_mod, policy as policy_mod, session as session_mod
from .sev.certs import (
    SEV_CERT_SIZE, USAGE, CertificateError, expect_usage, parse_amd_cert, parse_sev_cert,
)
from .sev.errors import InsecureUsage, SevError, UnsupportedUsage, failure_result
from .sev.files import read_small_file
from .sev.keys import KEY_SIZE, SessionKeys
from .sev.outputs import PRIVATE_MODE, PUBLIC_MODE, Output, check_outputs, write_outputs as write_output_files

KDS_CEK_URL = 'https://kdsintf.amd.com/cek/id/%s'
CHIP_ID_SIZE = 64
SESSION_SIZE = session_mod.SESSION_SIZE

ARGUMENT_SPEC = dict(
    node_sev=dict(type='dict'),
    pdh=dict(type='str'),
    cert_chain=dict(type='str'),
    pdh_file=dict(type='path'),
    cert_chain_file=dict(type='path'),
    cek_file=dict(type='path'),
    generation=dict(type='str', choices=list(amd_roots.GENERATIONS)),
    ark_file=dict(type='path'),
    ask_file=dict(type='path'),
    lab_root=dict(type='bool', default=False),
    cpu0_id=dict(type='str'),
    min_pdh_api_version=dict(type='str'),
    policy=dict(type='int'),
    tek_file=dict(type='path', no_log=True),
    tik_file=dict(type='path', no_log=True),
    tk_file=dict(type='path', no_log=True),
    dh_cert_file=dict(type='path'),
    session_file=dict(type='path'),
    force=dict(type='bool', default=False),
    state=dict(type='str', default='present', choices=['absent', 'present']),
)

MUTUALLY_EXCLUSIVE = [
    ('node_sev', 'pdh'), ('node_sev', 'pdh_file'), ('pdh', 'pdh_file'),
    ('node_sev', 'cert_chain'), ('node_sev', 'cert_chain_file'), ('cert_chain', 'cert_chain_file'),
]
REQUIRED_TOGETHER = [('tik_file', 'tek_file'), ('ark_file', 'ask_file'), ('dh_cert_file', 'session_file')]
REQUIRED_ONE_OF = [('tk_file', 'tik_file')]
REQUIRED_IF = [('state', 'present', ('policy',))]
VALIDATION_RULES = dict(mutually_exclusive=MUTUALLY_EXCLUSIVE, required_together=REQUIRED_TOGETHER,
                        required_one_of=REQUIRED_ONE_OF, required_if=REQUIRED_IF)

KEY_OUTPUTS = ('tek_file', 'tik_file', 'tk_file')
PUBLIC_OUTPUTS = ('dh_cert_file', 'session_file')
OUTPUTS = KEY_OUTPUTS + PUBLIC_OUTPUTS
INPUTS = ('pdh_file', 'cert_chain_file', 'cek_file', 'ark_file', 'ask_file')

RAW_MAGIC = struct.pack('<I', 1)   # an SEV certificate starts with version 1
SEVCTL_EXPORT_SIZE = 4 * SEV_CERT_SIZE
SEVCTL_FULL_SIZES = (SEVCTL_EXPORT_SIZE + 2 * 832, SEVCTL_EXPORT_SIZE + 2 * 1600)


LAB_ANCHORS = 'USER-SUPPLIED ROOT (lab_root: ark_file/ask_file), not AMD\'s'
LAB_WARNING = ('the platform chain ends at a USER-SUPPLIED root (lab_root: true with ark_file/ask_file), not at '
               'AMD\'s: it proves only that the PDH belongs to a platform that root vouches for (a lab or '
               'emulated platform), not that it is a genuine AMD secure processor')


def failure(reason, message, extra=None):
    """A failed-task result with the reference tool's exit code for ``reason``."""
    return failure_result(reason, message, **(extra or {}))


# ---- decoding what the host and the files give ------------------------------------------

def _b64(text, name):
    if not isinstance(text, str):
        raise UnsupportedUsage('%s must be a base64 string, got %s' % (name, type(text).__name__))
    return chain_mod.decode_b64(''.join(text.split()), name)


def certificate_bytes(data, name, sizes):
    """Raw certificate bytes of one of ``sizes``, from raw bytes or base64 text of them.

    Raw SEV certificates start with version 1 (bytes 01 00 00 00, not base64
    text), so e.g. an 8336-byte file is told apart from the base64 of 6252 bytes.
    """
    if len(data) in sizes and data[:4] == RAW_MAGIC:
        return bytes(data)
    try:
        text = data.decode('ascii')
    except UnicodeDecodeError:
        text = None
    decoded = None
    if text is not None and text.strip():
        try:
            decoded = base64.b64decode(''.join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            decoded = None
    if decoded is not None and len(decoded) in sizes:
        return decoded
    raise UnsupportedUsage('%s: %d bytes, expected %s raw bytes or base64 text of them'
                           % (name, len(data), ' or '.join(str(size) for size in sizes)))


def chip_id(value, name='cpu0_id'):
    """The 64-byte chip id from hex (128 digits) or base64 (as libvirt reports cpu0-id)."""
    if not isinstance(value, str):
        raise UnsupportedUsage('%s must be a string (hex or base64), got %s' % (name, type(value).__name__))
    compact = ''.join(value.split())
    if len(compact) == 2 * CHIP_ID_SIZE:
        try:
            return bytes.fromhex(compact)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or len(raw) != CHIP_ID_SIZE:
        raise UnsupportedUsage('%s must be the %d-byte chip id as %d hex digits or base64, got %d characters'
                               % (name, CHIP_ID_SIZE, 2 * CHIP_ID_SIZE, len(compact)))
    return raw


def kds_cek_url(chip):
    """AMD's key server URL of the CEK for a 64-byte chip id."""
    return KDS_CEK_URL % chip.hex()


def node_sev_fields(value):
    """(pdh, cert_chain, cpu0_id) strings from ``node_sev``: sev_launch_info's node_sev
    dict or the whole registered result (libvirt's hyphenated key names work too)."""
    if isinstance(value, dict) and 'node_sev' in value and 'pdh' not in value:
        value = value['node_sev']
        if value is None:
            raise UnsupportedUsage('node_sev: the registered sev_launch_info result has no node_sev; '
                                   'run sev_launch_info with node_sev_info: true')
    if not isinstance(value, dict):
        raise UnsupportedUsage('node_sev must be the node_sev dict of a registered sev_launch_info result '
                               '(or the whole result)')

    def field(*names):
        for key in names:
            if value.get(key) is not None:
                return value[key]
        return None
    pdh, cert_chain = field('pdh'), field('cert_chain', 'cert-chain')
    if pdh is None or cert_chain is None:
        raise UnsupportedUsage('node_sev: the host reported no %s' % ('pdh' if pdh is None else 'cert_chain'))
    return pdh, cert_chain, field('cpu0_id', 'cpu0-id')


def platform_certificates(params, read_input):
    """The host's PDH, PEK, OCA and (placeholder) CEK as SevCerts, and the chip id it reports."""
    reported_id = None
    pdh_raw = chain_raw = None
    if params.get('node_sev') is not None:
        pdh_text, chain_text, id_text = node_sev_fields(params['node_sev'])
        pdh_raw = _b64(pdh_text, 'node_sev.pdh')
        chain_raw = _b64(chain_text, 'node_sev.cert_chain')
        if id_text is not None:
            reported_id = chip_id(id_text, 'node_sev.cpu0_id')
    else:
        if params.get('pdh') is not None:
            pdh_raw = _b64(params['pdh'], 'pdh')
        elif params.get('pdh_file') is not None:
            pdh_raw = certificate_bytes(read_input(params['pdh_file'], 'pdh_file'), 'pdh_file', (SEV_CERT_SIZE,))
        if params.get('cert_chain') is not None:
            chain_raw = _b64(params['cert_chain'], 'cert_chain')
        elif params.get('cert_chain_file') is not None:
            chain_raw = certificate_bytes(read_input(params['cert_chain_file'], 'cert_chain_file'),
                                          'cert_chain_file', (chain_mod.PLATFORM_CHAIN_SIZE, SEVCTL_EXPORT_SIZE))
        else:
            raise UnsupportedUsage('the platform\'s certificates are needed: node_sev (from sev_launch_info with '
                                   'node_sev_info: true), pdh and cert_chain, or pdh_file and cert_chain_file')
    if len(chain_raw) == SEVCTL_EXPORT_SIZE:
        # sevctl export: PDH || PEK || OCA || CEK.
        if pdh_raw is not None:
            raise UnsupportedUsage('the certificate chain holds PDH, PEK, OCA and CEK (sevctl export); '
                                   'do not give a PDH separately')
        pdh_raw, chain_raw = chain_raw[:SEV_CERT_SIZE], chain_raw[SEV_CERT_SIZE:]
    elif len(chain_raw) in SEVCTL_FULL_SIZES:
        raise UnsupportedUsage('the certificate chain has an ASK and ARK appended (sevctl export --full): '
                               'give only PDH, PEK, OCA and CEK; trust anchors come from the collection')
    if pdh_raw is None:
        raise UnsupportedUsage('pdh (or pdh_file) is required with a chain of PEK, OCA and CEK')
    pdh = parse_sev_cert(pdh_raw, 'PDH')
    pek, oca, host_cek = chain_mod.split_platform_chain(chain_raw)
    return pdh, pek, oca, host_cek, reported_id


def _unsigned(cert):
    """No signature in either slot (the host's placeholder CEK has both empty)."""
    return not any(algo != 0 and any(area) for dummy, algo, area in cert.signatures)


def _ecc_fields(cert):
    """Curve and coordinates as stored, for comparing two certificates' keys."""
    return (struct.unpack_from('<I', cert.raw, 0x10)[0], int.from_bytes(cert.raw[0x14:0x5c], 'little'),
            int.from_bytes(cert.raw[0x5c:0xa4], 'little'))


def signed_cek(params, read_input, host_cek, chip):
    """The chip's CEK as AMD's key server signed it, from cek_file."""
    where = kds_cek_url(chip) if chip is not None else KDS_CEK_URL % '<hex of cpu0-id>'
    if params.get('cek_file') is None:
        raise UnsupportedUsage('cek_file is required: the CEK in the host\'s chain is an unsigned placeholder. '
                               'Fetch the chip\'s CEK, signed by AMD, from %s' % where)
    cek = parse_sev_cert(certificate_bytes(read_input(params['cek_file'], 'cek_file'), 'cek_file',
                                           (SEV_CERT_SIZE,)), 'CEK')
    expect_usage(cek, 'CEK')
    if _unsigned(cek):
        raise CertificateError('CEK: cek_file holds an unsigned CEK, like the placeholder in the host\'s exported '
                               'chain, which proves nothing; use the CEK signed by AMD from %s' % where)
    if host_cek.usage == USAGE['CEK'] and _ecc_fields(host_cek) != _ecc_fields(cek):
        raise CertificateError('CEK: cek_file is not the CEK of the chip whose chain the host reports (the keys '
                               'differ); fetch the one for this chip from %s' % where)
    return cek


def anchors(params, read_input):
    """(ARK, ASK) from ark_file/ask_file, or (None, None) for the pinned ones."""
    if params.get('ark_file') is None:
        return None, None
    found = []
    for option, name in (('ark_file', 'ARK'), ('ask_file', 'ASK')):
        data = read_input(params[option], option)
        cert, end = parse_amd_cert(data, name)
        if end != len(data):
            raise UnsupportedUsage('%s: %d bytes after the %s certificate; give one certificate per file '
                                   '(AMD\'s ask_ark_<product>.cert holds the ASK, then the ARK)'
                                   % (option, len(data) - end, name))
        found.append(cert)
    return found[0], found[1]


def verify_platform(params, read_input):
    """Check every link from the pinned AMD root to the PDH; (pdh, summary, reported chip id)."""
    pdh, pek, oca, host_cek, reported_id = platform_certificates(params, read_input)
    expected_id = None
    if params.get('cpu0_id') is not None:
        expected_id = chip_id(params['cpu0_id'])
        if reported_id is None:
            raise UnsupportedUsage('cpu0_id: the host reported no chip id to compare it with (node_sev from '
                                   'libvirt 8.4 or later has cpu0_id; pdh and cert_chain carry none)')
        if not hmac.compare_digest(reported_id, expected_id):
            raise InsecureUsage('cpu0_id: the host reports chip %s, expected %s: this PDH may belong to another '
                                'machine' % (reported_id.hex(), expected_id.hex()))
    minimum = None
    if params.get('min_pdh_api_version') is not None:
        minimum = policy_mod.parse_api_version(params['min_pdh_api_version'], 'min_pdh_api_version')
    cek = signed_cek(params, read_input, host_cek, expected_id or reported_id)
    ark, ask = anchors(params, read_input)
    lab = bool(params.get('lab_root'))
    if lab and ark is None:
        raise UnsupportedUsage('lab_root needs ark_file and ask_file: the lab or emulated platform\'s own ARK '
                               'and ASK to trust')
    summary = chain_mod.verify_platform_chain(pdh, pek, oca, cek, ark=ark, ask=ask,
                                              generation=params.get('generation'), lab_root=lab)
    if lab:
        summary['anchors'] = LAB_ANCHORS
    else:
        summary['anchors'] = 'ark_file/ask_file, equal to the pinned ones' if ark is not None else 'pinned'
    if minimum is not None and (pdh.api_major, pdh.api_minor) < minimum:
        raise InsecureUsage('PDH: made by firmware API %d.%d, older than min_pdh_api_version %d.%d'
                            % ((pdh.api_major, pdh.api_minor) + minimum))
    return pdh, summary, reported_id


# ---- outputs ---------------------------------------------------------------------------------

def _existing_session(params, read_output, policy, pdh):
    """(dh_cert, session) base64 from existing files, after checking they belong together, to
    this policy (the policy MAC under the existing TIK) and to THIS platform's PDH (the GODH and
    the whole session derived again from the existing keys and the PDH, see sev/session.py);
    UnsupportedUsage or InsecureUsage otherwise."""
    advice = ('; force: true makes a new session (a guest launched with the old one can then no longer '
              'be attested)')

    def key_file(option, size):
        data = read_output(params[option], option)
        if len(data) != size:
            raise UnsupportedUsage('%s: %d bytes, a session key file has %d%s' % (option, len(data), size, advice))
        return data
    tek = tik = None
    if params.get('tk_file') is not None:
        both = key_file('tk_file', 2 * KEY_SIZE)
        tek, tik = both[:KEY_SIZE], both[KEY_SIZE:]
    if params.get('tik_file') is not None:
        split = key_file('tek_file', KEY_SIZE), key_file('tik_file', KEY_SIZE)
        if tik is not None and not (hmac.compare_digest(split[0], tek) and hmac.compare_digest(split[1], tik)):
            raise UnsupportedUsage('tk_file and tek_file/tik_file hold different keys%s' % advice)
        tek, tik = split
    if not any(tik) or not any(tek):
        raise UnsupportedUsage('the existing TEK or TIK is all zeros%s' % advice)
    texts = []
    for option, size in (('dh_cert_file', SEV_CERT_SIZE), ('session_file', SESSION_SIZE)):
        data = read_output(params[option], option)
        try:
            raw = base64.b64decode(''.join(data.decode('ascii').split()), validate=True)
        except (UnicodeDecodeError, binascii.Error, ValueError):
            raw = b''
        if len(raw) != size:
            raise UnsupportedUsage('%s: not base64 of %d bytes%s' % (option, size, advice))
        texts.append(base64.b64encode(raw).decode('ascii'))
    godh_raw = base64.b64decode(texts[0])
    godh = parse_sev_cert(godh_raw, 'dh_cert_file')
    if godh.usage != USAGE['PDH']:
        raise UnsupportedUsage('dh_cert_file: not a guest owner DH certificate%s' % advice)
    session = base64.b64decode(texts[1])
    expected = hmac.new(tik, struct.pack('<I', policy), hashlib.sha256).digest()
    if not hmac.compare_digest(session[96:128], expected):
        raise UnsupportedUsage('the existing session was not made with the existing TIK for policy 0x%08x '
                               '(made for another policy, or the files come from different sessions)%s'
                               % (policy, advice))
    godh_ok, session_ok = session_mod.session_matches(pdh, SessionKeys(tek=tek, tik=tik), policy, godh_raw, session)
    if not godh_ok:
        raise InsecureUsage('the existing session was not made for this platform\'s PDH with the existing keys '
                            '(made for another platform, whose PDH changed since (sevctl reset), by another tool, '
                            'or by a release before sessions were bound to their PDH): LAUNCH_START would refuse '
                            'it, or a platform other than the verified one could read the keys%s' % advice)
    if not session_ok:
        raise InsecureUsage('the existing session does not wrap the existing TEK and TIK for this platform\'s PDH '
                            '(the session file was changed or comes from another session)%s' % advice)
    return texts[0], texts[1]


def output_list(params, new_session=None):
    """The requested outputs as sev/outputs.Output objects (with data for ``new_session``):
    keys 0600, the public GODH and session 0644."""
    data = {}
    if new_session is not None:
        keys = new_session.keys
        data = {'tk_file': keys.tek + keys.tik, 'tek_file': keys.tek, 'tik_file': keys.tik,
                'dh_cert_file': base64.b64encode(new_session.godh),
                'session_file': base64.b64encode(new_session.session)}
    return [Output(option, params[option], data.get(option),
                   PUBLIC_MODE if option in PUBLIC_OUTPUTS else PRIVATE_MODE)
            for option in OUTPUTS if params.get(option) is not None]


def input_list(params, resolve_input=None):
    """(option, path) of the input files, as found (``resolve_input(path, what)``); an input
    that cannot be found is left out (reading it reports that)."""
    found = []
    for option in INPUTS:
        if params.get(option) is None:
            continue
        try:
            found.append((option, resolve_input(params[option], option) if resolve_input else params[option]))
        except SevError:
            continue
    return found


def write_outputs(params, new_session, inputs=()):
    """All outputs together: each to a temporary file with its final mode, then all renamed
    (sev/outputs.py); a failure leaves none of them new."""
    write_output_files(output_list(params, new_session), inputs)


def remove_outputs(params, check_mode):
    """state=absent: the files that exist (and are removed unless in check mode).
    Only regular files are removed: never a device (/dev/null), FIFO, directory or symlink."""
    removed = []
    for option in OUTPUTS:
        path = params.get(option)
        if path is None or not os.path.lexists(path):
            continue
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise UnsupportedUsage('%s: %s is not a regular file; refused to remove it (nothing removed)'
                                   % (option, path))
    for option in OUTPUTS:
        path = params.get(option)
        if path is None or not os.path.lexists(path):
            continue
        if not check_mode:
            try:
                os.unlink(path)
            except OSError as exc:
                raise UnsupportedUsage('%s: cannot remove %s: %s' % (option, path, exc.strerror or exc))
        removed.append(path)
    return removed


def _warnings(params, policy, pdh):
    warnings = []
    if policy.min_api > (pdh.api_major, pdh.api_minor):
        warnings.append('the policy asks for firmware API %d.%d or later, and the PDH was made by API %d.%d: '
                        'unless the firmware was updated since, LAUNCH_START will fail (POLICY_FAILURE)'
                        % (policy.min_api + (pdh.api_major, pdh.api_minor)))
    node = params.get('node_sev')
    if isinstance(node, dict) and isinstance(node.get('node_sev'), dict):
        node = node['node_sev']
    if policy.es and isinstance(node, dict) and node.get('max_es_guests') == 0:
        warnings.append('the policy has SEV-ES (bit 2) and the host reports max_es_guests 0: LAUNCH_START '
                        'will fail unless the platform runs SEV-ES guests')
    return warnings


def run_session(params, read_input, read_output=None, check_mode=False, resolve_input=None):
    """Options -> result dict.  Never raises a SevError (the caller maps anything else
    to reason 'error').  Output paths are used as given (the caller resolves them).

    ``read_input(path, what)`` returns a small input file's bytes; ``read_output``
    the bytes of an existing output file (both may decrypt Ansible Vault);
    ``resolve_input(path, what)`` the path ``read_input`` reads (to refuse an
    output that is also an input), the path itself by default.
    """
    read_output = read_output or read_small_file
    try:
        if params.get('state', 'present') == 'absent':
            removed = remove_outputs(params, check_mode)
            return {'changed': bool(removed), 'removed': removed, 'reason': 'ok', 'rc': 0,
                    'msg': ('%d session file(s) %sremoved' % (len(removed), 'would be ' if check_mode else '')
                            if removed else 'no session file to remove')}
        return _present(params, read_input, read_output, check_mode, resolve_input)
    except SevError as exc:
        return failure(exc.reason, str(exc))


def _present(params, read_input, read_output, check_mode, resolve_input):
    if params.get('policy') is None:
        raise UnsupportedUsage('policy is required with state=present')
    policy = policy_mod.GuestPolicy(params['policy'])
    if params.get('tk_file') is None and params.get('tik_file') is None:
        raise UnsupportedUsage('tk_file or tek_file and tik_file are required: the keys are what '
                               'later validates the launch measurement')
    pdh, summary, reported_id = verify_platform(params, read_input)
    # Before any existing output is read or anything written: no FIFO to hang on, no device,
    # symlink or directory to replace, no path used twice or also as an input.
    inputs = input_list(params, resolve_input)
    check_outputs(output_list(params), inputs)
    result = {'changed': True, 'reason': 'ok', 'rc': 0, 'policy': policy.describe(), 'chain': summary,
              'user_supplied_root': summary['user_supplied_root'],
              'cpu0_id': None, 'kds_cek_url': None,
              'files': dict((option[:-len('_file')], params[option]) for option in OUTPUTS
                            if params.get(option) is not None)}
    if reported_id is not None:
        result.update(cpu0_id=reported_id.hex(), kds_cek_url=kds_cek_url(reported_id))
    warnings = _warnings(params, policy, pdh)
    if summary.get('user_supplied_root'):
        warnings.insert(0, LAB_WARNING)
    if warnings:
        result['warnings'] = warnings
    requested = [params[option] for option in OUTPUTS if params.get(option) is not None]
    if (not params.get('force') and params.get('dh_cert_file') is not None
            and all(os.path.exists(path) for path in requested)):
        result['dh_cert'], result['session'] = _existing_session(params, read_output, policy.value, pdh)
        result['changed'] = False
        result['msg'] = 'platform chain verified; the existing session (made for this PDH) is kept'
        return result
    new_session = session_mod.create_session(pdh, policy.value)
    result['msg'] = 'platform chain verified; a fresh session %s' % ('would be made' if check_mode else 'was made')
    if check_mode:
        # Its keys would be thrown away: a GODH and session nobody can use are not returned.
        return result
    write_outputs(params, new_session, inputs)
    result['dh_cert'] = base64.b64encode(new_session.godh).decode('ascii')
    result['session'] = base64.b64encode(new_session.session).decode('ascii')
    return result

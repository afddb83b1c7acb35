# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 10, the OVMF footer as hostile input: every single-bit flip in the
footer table, lengths past the end, zero lengths, truncation.  A malformed
footer is a usage error (rc 2) naming the firmware, never rc 6 and never an
exception; a flip the parser accepts can only be a mismatch (rc 1).  And the
verdict uses the footer of the bytes that were hashed, not of a second read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

import pytest

from ansible_collections.confidential.sev.plugins.module_utils import validate_options as vo
from ansible_collections.confidential.sev.plugins.module_utils.sev import ovmf, validation
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import FirmwareFormatError
from ansible_collections.confidential.sev.plugins.module_utils.sev.files import read_small_file
from ansible_collections.confidential.sev.tests.support import firmware as fwb

TIK = bytes.fromhex('00112233445566778899aabbccddeeff')
TEK = bytes.fromhex('ffeeddccbbaa99887766554433221100')
MNONCE = bytes(range(16))
SECRET = b'luks passphrase for the bit-flip test'
POLICY = 0x3          # NODBG | NOKS, plain SEV: the measurement covers the firmware bytes only


def reported(firmware, policy=POLICY):
    message = bytes([4, 1, 55, 21]) + struct.pack('<I', policy) + hashlib.sha256(firmware).digest() + MNONCE
    return base64.b64encode(hmac.new(TIK, message, hashlib.sha256).digest() + MNONCE).decode()


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / 'tik').write_bytes(TIK)
    (tmp_path / 'tek').write_bytes(TEK)
    (tmp_path / 'secret').write_bytes(SECRET)
    return tmp_path


def params(inputs, firmware_path, measurement, **extra):  # pylint: disable=redefined-outer-name
    values = dict((name, spec.get('default')) for name, spec in vo.ARGUMENT_SPEC.items())
    values.update(measurement=measurement, api_major=1, api_minor=55, build_id=21, policy=POLICY,
                  firmware=str(firmware_path), tik=str(inputs / 'tik'), tek=str(inputs / 'tek'),
                  secrets=[{'guid': 'luks-key', 'path': str(inputs / 'secret')}], diagnose=False,
                  secret_address=None, allow_secret_policy=[], allow_zero_keys=False)
    values.update(extra)
    return values


def run(inputs, image, **extra):  # pylint: disable=redefined-outer-name
    path = inputs / 'fw.fd'
    path.write_bytes(image)
    return vo.run_validation(params(inputs, path, reported(image), **extra), read_small_file), str(path)


def test_every_single_bit_flip_in_the_footer_table_is_rc_1_or_2_naming_the_firmware(inputs):  # pylint: disable=redefined-outer-name
    image = fwb.build_image(body_size=256)
    ok, dummy = run(inputs, image)
    assert ok['valid'] is True and ok['secret_payload']
    total = struct.unpack_from('<H', image, len(image) - 50)[0]
    start = len(image) - 32 - total
    seen = {}
    for offset in range(start, len(image) - 32):
        for bit in range(8):
            flipped = bytearray(image)
            flipped[offset] ^= 1 << bit
            # The measurement is the platform's for the flipped image: only the footer decides.
            result, path = run(inputs, bytes(flipped))
            assert result['rc'] in (0, 1, 2, 4), (offset, bit, result)
            seen[result['rc']] = seen.get(result['rc'], 0) + 1
            if result['rc'] == 2:
                assert path in result['msg'] or result['msg'].startswith('kernel'), result['msg']
            if result['rc'] == 0:
                # still a well-formed footer with a secret area that fits: the packet is built
                assert result['secret_payload']
    assert seen.get(2, 0) > 0 and 6 not in seen


@pytest.mark.parametrize('name, mutate', [
    ('total_past_the_start', lambda image: image[:-50] + struct.pack('<H', 0xffff) + image[-48:]),
    ('total_zero', lambda image: image[:-50] + struct.pack('<H', 0) + image[-48:]),
    ('total_17', lambda image: image[:-50] + struct.pack('<H', 17) + image[-48:]),
    ('entry_length_zero', lambda image: image[:-68] + struct.pack('<H', 0) + image[-66:]),
    ('entry_length_past_the_table', lambda image: image[:-68] + struct.pack('<H', 0xfff0) + image[-66:]),
    ('truncated_to_the_footer', lambda image: image[-80:]),
])
def test_malformed_footer_is_a_usage_error_rc_2(inputs, name, mutate):  # pylint: disable=redefined-outer-name
    image = mutate(fwb.build_image(body_size=0 if name.startswith('truncated') else 256))
    result, path = run(inputs, image)
    assert (result['reason'], result['rc']) == ('unsupported', 2), (name, result)
    assert path in result['msg'] and 'OVMF footer' in result['msg']
    with pytest.raises(FirmwareFormatError) as info:
        ovmf.parse_footer(image[-ovmf.MAX_TAIL_SIZE:], source=path)
    assert info.value.rc == 2


def test_the_verdict_uses_the_footer_of_the_hashed_bytes(inputs, monkeypatch):  # pylint: disable=redefined-outer-name
    """The file is swapped after a first look at its footer (which had a secret area) and
    before hashing: the bytes measured have none, so the secrets are refused."""
    with_area = fwb.build_image(body_size=256)
    without_area = fwb.build_image(body_size=256, secret_area=None)
    path = inputs / 'fw.fd'
    path.write_bytes(with_area)
    real_read_footer = validation.read_footer

    def read_then_swap(firmware):
        footer = real_read_footer(firmware)
        path.write_bytes(without_area)
        return footer
    monkeypatch.setattr(validation, 'read_footer', read_then_swap)
    result = vo.run_validation(params(inputs, path, reported(without_area)), read_small_file)
    assert (result['reason'], result['rc']) == ('config', 4), result
    assert 'no usable SEV secret area' in result['msg']
    assert 'secret_payload' not in result

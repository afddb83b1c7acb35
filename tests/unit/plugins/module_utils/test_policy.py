# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Guest policy decoding and the guest owner's platform minimums."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.confidential.sev.plugins.module_utils.sev import policy as pol
from ansible_collections.confidential.sev.plugins.module_utils.sev.errors import (
    IncorrectConfig, InsecureUsage, UnsupportedUsage,
)


def test_zero_policy():
    policy = pol.GuestPolicy(0)
    assert policy.flags == []
    assert policy.es is False
    assert policy.min_api == (0, 0)
    assert policy.describe() == {'value': 0, 'hex': '0x00000000', 'flags': [],
                                 'min_api_major': 0, 'min_api_minor': 0}


@pytest.mark.parametrize('bit, name', [(0, 'NODBG'), (1, 'NOKS'), (2, 'ES'), (3, 'NOSEND'),
                                       (4, 'DOMAIN'), (5, 'SEV')])
def test_each_flag(bit, name):
    policy = pol.GuestPolicy(1 << bit)
    assert policy.flags == [name]
    assert policy.es is (name == 'ES')


def test_all_flags_in_bit_order():
    assert pol.GuestPolicy(0x3f).flags == ['NODBG', 'NOKS', 'ES', 'NOSEND', 'DOMAIN', 'SEV']


def test_min_api_bytes():
    # bits 16-23 major, bits 24-31 minor
    policy = pol.GuestPolicy(0x18010005)
    assert policy.min_api == (1, 0x18)
    assert policy.flags == ['NODBG', 'ES']
    assert policy.es
    assert policy.describe() == {'value': 0x18010005, 'hex': '0x18010005', 'flags': ['NODBG', 'ES'],
                                 'min_api_major': 1, 'min_api_minor': 24}
    assert pol.GuestPolicy(0xffff003f).min_api == (0xff, 0xff)


@pytest.mark.parametrize('bit', range(6, 16))
def test_reserved_bits_are_refused(bit):
    with pytest.raises(UnsupportedUsage, match='reserved bits 0x%04x' % (1 << bit)) as info:
        pol.GuestPolicy(1 << bit | 0x5)
    assert info.value.rc == 2


def test_reserved_mask():
    assert pol.RESERVED_MASK == sum(1 << bit for bit in range(6, 16))


@pytest.mark.parametrize('value', [-1, 1 << 32, True, False, '5', 5.0, None])
def test_policy_must_be_a_u32(value):
    with pytest.raises(UnsupportedUsage, match='32-bit unsigned'):
        pol.GuestPolicy(value)


@pytest.mark.parametrize('value', [0, 1, 255])
def test_check_byte_accepts(value):
    assert pol.check_byte('api_major', value) == value


@pytest.mark.parametrize('value', [-1, 256, True, '1', 1.0, None])
def test_check_byte_refuses(value):
    with pytest.raises(UnsupportedUsage, match='^build_id must be an integer from 0 to 255'):
        pol.check_byte('build_id', value)


@pytest.mark.parametrize('text, expected', [
    ('0.24', (0, 24)), ('1.55', (1, 55)), ('0.0', (0, 0)), ('255.255', (255, 255)), ('00.017', (0, 17)),
])
def test_parse_api_version(text, expected):
    assert pol.parse_api_version(text) == expected


@pytest.mark.parametrize('text', [
    '', '0', '0.24.1', 'a.b', '0.', '.24', '-1.0', '0.-1', '0.24 ', ' 0.24', '1e2.0', '0x1.0',
    '256.0', '0.256', None,
])
def test_parse_api_version_refuses(text):
    with pytest.raises(UnsupportedUsage, match='min_api_version'):
        pol.parse_api_version(text)


@pytest.mark.parametrize('text', ['0.\u00b2', '\u00b9.0', '0.\u2460'])
def test_parse_api_version_refuses_non_ascii_digits_as_usage(text):
    """str.isdigit() is true for superscripts and circled digits, which int()
    cannot parse: they must still give a usage error (rc 2), not a ValueError
    (which the action plugin would report as an unexpected error, rc 6)."""
    with pytest.raises(UnsupportedUsage, match='min_api_version'):
        pol.parse_api_version(text)


# Characters that look like digits: decimal digits of any script (Nd),
# superscripts, fractions, circled digits (No), Roman numerals (Nl).
DIGITISH = st.text(alphabet=st.characters(categories=['Nd', 'No', 'Nl'], include_characters='0123456789'),
                   min_size=1, max_size=3)


@given(st.one_of(st.text(), st.builds(lambda major, minor: major + '.' + minor, DIGITISH, DIGITISH)))
def test_parse_api_version_gives_two_bytes_or_a_usage_error(text):
    try:
        major, minor = pol.parse_api_version(text)
    except UnsupportedUsage:
        return
    assert 0 <= major <= 255 and 0 <= minor <= 255


# ---- check_requirements ------------------------------------------------------

def test_requirements_met():
    policy = pol.GuestPolicy(0x18000007)      # NODBG NOKS ES, min API 0.24
    pol.check_requirements(policy, 0, 24, 15, require_flags=['NODBG', 'ES'],
                           min_api=(0, 24), min_build_id=15)
    pol.check_requirements(policy, 1, 0, 200, require_flags=[], min_api=(0, 99), min_build_id=0)


def test_missing_required_flag_is_config_error():
    with pytest.raises(IncorrectConfig, match='lacks required flag\\(s\\) NODBG, NOSEND') as info:
        pol.check_requirements(pol.GuestPolicy(0x4), 0, 24, 1, require_flags=['NODBG', 'ES', 'NOSEND'])
    assert info.value.rc == 4


def test_unknown_required_flag_is_usage_error():
    with pytest.raises(UnsupportedUsage, match='unknown flag\\(s\\) nodbg'):
        pol.check_requirements(pol.GuestPolicy(0x1), 0, 24, 1, require_flags=['nodbg'])


def test_platform_below_the_policy_minimum():
    policy = pol.GuestPolicy(0x18000000)      # the policy demands API >= 0.24
    with pytest.raises(InsecureUsage, match='API 0.23, below the 0.24') as info:
        pol.check_requirements(policy, 0, 23, 99)
    assert info.value.rc == 3
    pol.check_requirements(policy, 0, 24, 0)
    with pytest.raises(InsecureUsage):
        pol.check_requirements(pol.GuestPolicy(0x00010000), 0, 255, 0)   # min 1.0


@pytest.mark.parametrize('api, minimum, ok', [
    ((0, 23), (0, 24), False), ((0, 24), (0, 24), True), ((1, 0), (0, 24), True),
    ((0, 255), (1, 0), False), ((2, 0), (1, 55), True),
])
def test_min_api(api, minimum, ok):
    def call():
        pol.check_requirements(pol.GuestPolicy(0), api[0], api[1], 0, min_api=minimum)
    if ok:
        call()
    else:
        with pytest.raises(InsecureUsage, match='older than the required %d.%d' % minimum):
            call()


def test_min_api_accepts_a_list():
    with pytest.raises(InsecureUsage):
        pol.check_requirements(pol.GuestPolicy(0), 0, 17, 0, min_api=[0, 18])


@pytest.mark.parametrize('build_id, minimum, ok', [(14, 15, False), (15, 15, True), (16, 15, True),
                                                   (0, 0, True), (0, 1, False)])
def test_min_build_id(build_id, minimum, ok):
    def call():
        pol.check_requirements(pol.GuestPolicy(0), 0, 24, build_id, min_build_id=minimum)
    if ok:
        call()
    else:
        with pytest.raises(InsecureUsage, match='build id %d is older than the required %d'
                           % (build_id, minimum)):
            call()


@pytest.mark.parametrize('text, base, expected', [
    ('24', 0, True), (' 0x7 ', 0, True), ('-1', 10, True), ('7', 16, True), ('0x0007', 16, True),
    ('\u0662\u0664', 0, False), ('\uff11\uff15', 10, False), ('\u0667', 16, False), ('1_000', 0, False),
    ('0x', 0, False), ('', 0, False), ('\u00a07', 10, False), ('7\0', 10, False), (7, 10, False),
])
def test_integer_text_is_ascii_only(text, base, expected):
    # Python's int() reads every one of the non-ASCII forms above as a number
    assert pol.is_integer_text(text, base) is expected


def test_parse_integer_text_names_the_value():
    assert pol.parse_integer_text(' 0x1f', 'cbitpos') == 31
    with pytest.raises(UnsupportedUsage, match='build_id is not an integer'):
        pol.parse_integer_text('\u0661', 'build_id')


@pytest.mark.parametrize('text, value', [('07', 7), ('010', 10), ('0x10', 16), ('+0X1f', 31), (' -08 ', -8), ('0', 0)])
def test_integer_text_is_decimal_or_hex_never_octal(text, value):
    # int('07', 0) raises ValueError: found by tests/fuzz (a host XML <policy>07</policy>)
    assert pol.integer_from_text(text) == value
    assert pol.parse_integer_text(text, 'policy') == value

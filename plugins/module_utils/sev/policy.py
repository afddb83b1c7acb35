# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SEV guest policy (u32) and the platform minimums the guest owner asks for.

  bit 0 NODBG   debugging the guest is forbidden
  bit 1 NOKS    key sharing with other guests is forbidden
  bit 2 ES      SEV-ES: CPU state is encrypted and measured
  bit 3 NOSEND  sending the guest to another platform is forbidden
  bit 4 DOMAIN  sending is limited to the same domain
  bit 5 SEV     sending is limited to SEV platforms
  bits 6-15     reserved, must be zero (firmware refuses them)
  bits 16-23    minimum firmware API major
  bits 24-31    minimum firmware API minor

The policy, API version and build id are covered by the measurement MAC, so
requirements on them mean something only once the measurement has matched.
"""

from __future__ import annotations

import re

from .errors import IncorrectConfig, InsecureUsage, UnsupportedUsage

FLAG_BITS = {'NODBG': 0, 'NOKS': 1, 'ES': 2, 'NOSEND': 3, 'DOMAIN': 4, 'SEV': 5}
RESERVED_MASK = 0x0000ffc0
ES = 1 << FLAG_BITS['ES']


def shown(value, limit=40):
    """A value for a message, bounded: repr() of a 5,000-digit int raises, and
    a huge string would flood the log."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return 'an integer of %d bits' % value.bit_length()
    text = repr(value) if isinstance(value, (str, bytes, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= limit else text[:limit] + '... (%d characters)' % len(text)


# What an integer given as text may look like: ASCII decimal digits, or hex
# with 0x (base 0), or hex with or without 0x (base 16, libvirt's <policy>).
# Python's int() also takes digits of other scripts ('\u0662\u0664' is 24),
# full-width digits, underscores and Unicode spaces, which no SEV tool, libvirt
# or YAML writes: a value that only int() reads as a number is refused.
_INTEGER_TEXT = {
    0: re.compile(r'[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)', re.ASCII),
    10: re.compile(r'[+-]?[0-9]+', re.ASCII),
    16: re.compile(r'[+-]?(?:0[xX])?[0-9a-fA-F]+', re.ASCII),
}
_ASCII_SPACE = ' \t\r\n'


def is_integer_text(text, base=0):
    """Whether the string ``text`` (ASCII spaces around allowed) is an integer
    written in ASCII for int(text, base), base 0, 10 or 16."""
    return isinstance(text, str) and _INTEGER_TEXT[base].fullmatch(text.strip(_ASCII_SPACE)) is not None


def parse_integer_text(text, what, base=0):
    """int(text, base) for an integer written in ASCII only; anything else
    (other scripts' digits included) is refused, naming ``what``."""
    if not is_integer_text(text, base):
        raise UnsupportedUsage('%s is not an integer written in ASCII digits%s, got %s'
                               % (what, ' (or hex with 0x)' if base == 0 else '', shown(text)))
    return integer_from_text(text, base)


def integer_from_text(text, base=0):
    """int() of a string that is_integer_text() accepted.  Base 0 reads 0x-hex
    or decimal, never octal: '07' is 7 (int('07', 0) would raise)."""
    text = text.strip(_ASCII_SPACE)
    if base == 0:
        base = 16 if text.lstrip('+-')[:2] in ('0x', '0X') else 10
    return int(text, base)


def check_byte(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xff:
        raise UnsupportedUsage('%s must be an integer from 0 to 255, got %s' % (name, shown(value)))
    return value


class GuestPolicy:
    def __init__(self, value):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xffffffff:
            raise UnsupportedUsage('policy must be a 32-bit unsigned integer, got %s' % shown(value))
        if value & RESERVED_MASK:
            raise UnsupportedUsage(
                'policy 0x%08x sets reserved bits 0x%04x (bits 6-15): firmware refuses such a '
                'policy, so no genuine launch reports it' % (value, value & RESERVED_MASK))
        self.value = value

    @property
    def flags(self):
        return [name for name, bit in sorted(FLAG_BITS.items(), key=lambda item: item[1])
                if self.value & (1 << bit)]

    @property
    def es(self):
        return bool(self.value & ES)

    @property
    def min_api(self):
        return ((self.value >> 16) & 0xff, (self.value >> 24) & 0xff)

    def describe(self):
        return {'value': self.value, 'hex': '0x%08x' % self.value, 'flags': self.flags,
                'min_api_major': self.min_api[0], 'min_api_minor': self.min_api[1]}


def parse_api_version(text, name='min_api_version'):
    """'MAJOR.MINOR' -> (major, minor)."""
    parts = str(text).split('.') if isinstance(text, str) and len(text) <= 16 else []
    if len(parts) != 2 or not all(part.isascii() and part.isdigit() and len(part) <= 3 for part in parts):
        raise UnsupportedUsage('%s must look like MAJOR.MINOR (e.g. 0.24), got %s' % (name, shown(text)))
    return (check_byte(name + ' major', int(parts[0])), check_byte(name + ' minor', int(parts[1])))


def check_requirements(policy, api_major, api_minor, build_id,
                       require_flags=(), min_api=None, min_build_id=None):
    """Refuse a launch whose (authenticated) policy or platform is weaker than required."""
    unknown = [flag for flag in require_flags if flag not in FLAG_BITS]
    if unknown:
        raise UnsupportedUsage('require_policy: unknown flag(s) %s; known: %s'
                               % (', '.join(unknown), ', '.join(sorted(FLAG_BITS))))
    missing = [flag for flag in require_flags if not policy.value & (1 << FLAG_BITS[flag])]
    if missing:
        raise IncorrectConfig('the guest policy 0x%08x lacks required flag(s) %s'
                              % (policy.value, ', '.join(missing)))
    if (api_major, api_minor) < policy.min_api:
        raise InsecureUsage('the platform reports API %d.%d, below the %d.%d that the policy itself '
                            'demands: genuine firmware refuses such a launch'
                            % ((api_major, api_minor) + policy.min_api))
    if min_api is not None and (api_major, api_minor) < tuple(min_api):
        raise InsecureUsage('the platform firmware API %d.%d is older than the required %d.%d'
                            % ((api_major, api_minor) + tuple(min_api)))
    if min_build_id is not None and build_id < min_build_id:
        raise InsecureUsage('the platform firmware build id %d is older than the required %d'
                            % (build_id, min_build_id))

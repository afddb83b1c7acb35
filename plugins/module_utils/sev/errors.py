# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Failure reasons, each carrying the exit code virt-qemu-sev-validate uses for it.

Scripts and people move between the reference tool and this collection, so a
refusal here maps to the same number there: 1 mismatch, 2 unsupported usage,
3 insecure usage, 4 incorrect guest config, 5 invalid state, 6 anything else.
Messages never contain key or secret bytes.
"""

from __future__ import annotations

REASON_CODES = {
    'ok': 0,
    'mismatch': 1,
    'unsupported': 2,
    'insecure': 3,
    'config': 4,
    'state': 5,
    'error': 6,
}


def failure_result(reason, message, **extra):
    """A failed-task result carrying the reference tool's exit code for ``reason``."""
    result = {'failed': True, 'changed': False, 'reason': reason, 'rc': REASON_CODES[reason], 'msg': message}
    result.update(extra)
    return result


class SevError(Exception):
    """Base class: anything that stops a validation."""

    reason = 'error'

    @property
    def rc(self):
        return REASON_CODES[self.reason]


class MeasurementMismatch(SevError):
    reason = 'mismatch'


class UnsupportedUsage(SevError):
    """Bad, missing or contradictory input; names the input at fault."""

    reason = 'unsupported'


class InsecureUsage(SevError):
    reason = 'insecure'


class IncorrectConfig(SevError):
    reason = 'config'


class InvalidState(SevError):
    reason = 'state'


class FirmwareFormatError(SevError):
    """The firmware image is not what it claims (malformed OVMF footer table).

    Bad input from the guest owner, so a usage error (2) naming the firmware:
    the reference tool exits 6 here, but 6 is the class of our own bugs.
    """

    reason = 'unsupported'

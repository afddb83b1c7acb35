# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The launch session keys: TIK (integrity, keys every MAC) and TEK (encrypts secrets).

They come as two 16-byte files, or one 32-byte file holding TEK then TIK
(sev-tool's tmp_tk.bin).  A launch without a session is measured with zero
keys, which anyone can reproduce: an all-zero TIK proves nothing and is
refused unless the caller says ``allow_zero_keys`` (never implied by
``insecure``).  Key bytes never appear in a
message or a repr.
"""

from __future__ import annotations

from .errors import InsecureUsage, UnsupportedUsage

KEY_SIZE = 16


class SessionKeys:
    __slots__ = ('tek', 'tik')

    def __init__(self, tek, tik):
        self.tek = bytes(tek)
        self.tik = bytes(tik)

    def __repr__(self):
        return '<SessionKeys (key bytes hidden)>'

    @property
    def tik_is_zero(self):
        return not any(self.tik)

    @property
    def tek_is_zero(self):
        return not any(self.tek)


def _check_size(name, data, size):
    if len(data) != size:
        raise UnsupportedUsage('%s: expected %d bytes, got %d' % (name, size, len(data)))


def load_keys(tik=None, tek=None, tk=None, allow_zero_keys=False):
    """SessionKeys from the raw bytes of tik+tek, or of tk (TEK || TIK)."""
    if tk is not None:
        if tik is not None or tek is not None:
            raise UnsupportedUsage('tk is mutually exclusive with tik/tek')
        _check_size('tk', tk, 2 * KEY_SIZE)
        keys = SessionKeys(tek=tk[:KEY_SIZE], tik=tk[KEY_SIZE:])
    else:
        if tik is None or tek is None:
            raise UnsupportedUsage('either tk or both of tik and tek are required')
        _check_size('tik', tik, KEY_SIZE)
        _check_size('tek', tek, KEY_SIZE)
        keys = SessionKeys(tek=tek, tik=tik)
    if keys.tik_is_zero and not allow_zero_keys:
        raise InsecureUsage(
            'the TIK is all zeros: that is what a launch without a session is measured with, '
            'so anyone can forge this measurement; refused unless allow_zero_keys is set')
    return keys

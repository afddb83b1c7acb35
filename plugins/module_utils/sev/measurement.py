# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LAUNCH_MEASURE: the reported blob and the HMAC it carries.

  blob    = MEASURE (32) || MNONCE (16), reported base64
  MEASURE = HMAC-SHA256(TIK, 0x04 || api_major || api_minor || build_id ||
                        policy (u32 LE) || launch digest (32) || MNONCE)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from .errors import UnsupportedUsage

MEASUREMENT_SIZE = 48
MEASURE_SIZE = 32
CONTEXT_MEASURE = 0x04


def decode_measurement(text):
    """Strict base64 -> the 48-byte blob; anything else is a usage error."""
    if isinstance(text, bytes):
        text = text.decode('ascii', 'replace')
    try:
        blob = base64.b64decode(str(text).strip(), validate=True)
    except (binascii.Error, ValueError):
        raise UnsupportedUsage('measurement is not valid base64')
    if len(blob) != MEASUREMENT_SIZE:
        raise UnsupportedUsage('measurement must decode to %d bytes, got %d'
                               % (MEASUREMENT_SIZE, len(blob)))
    return blob


def compute_measure(tik, api_major, api_minor, build_id, policy, launch_digest, mnonce):
    """The 32-byte MEASURE the firmware computes for these inputs."""
    message = (struct.pack('<BBBBI', CONTEXT_MEASURE, api_major, api_minor, build_id, policy)
               + launch_digest + mnonce)
    return hmac.new(tik, message, hashlib.sha256).digest()


def measurement_matches(tik, blob, api_major, api_minor, build_id, policy, launch_digest):
    """(matches, computed MEASURE or None).  The comparison is constant-time.

    The computed value is returned only on a match (when it equals what the
    host reported anyway): on a mismatch it is a MAC over a nonce the host
    chose, i.e. an oracle for forgeries, so it never leaves this function.
    """
    reported, mnonce = blob[:MEASURE_SIZE], blob[MEASURE_SIZE:]
    computed = compute_measure(tik, api_major, api_minor, build_id, policy, launch_digest, mnonce)
    if hmac.compare_digest(reported, computed):
        return True, computed
    return False, None

# -*- coding: utf-8 -*-
# Copyright: contributors to confidential.sev
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NIST P-384 point arithmetic in plain Python, for the emulated platform's ECDH.

The firmware does its own point multiplication; so does this, so that the
platform side shares no ECDH code with the guest owner's side (which uses the
cryptography library).  Not constant time: a test double, never for real keys.
Curve parameters from FIPS 186-4 / SEC 2.
"""

from __future__ import annotations

P = 2 ** 384 - 2 ** 128 - 2 ** 96 + 2 ** 32 - 1
A = P - 3
B = int('b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef', 16)
N = int('ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973', 16)
GX = int('aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7', 16)
GY = int('3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f', 16)
COORD_SIZE = 48


def on_curve(x, y):
    """Whether (x, y) is an affine point of P-384 (cofactor 1: no subgroup check needed)."""
    if not (0 <= x < P and 0 <= y < P):
        return False
    return (y * y - (x * x * x + A * x + B)) % P == 0


def _double(point):
    x1, y1, z1 = point
    if y1 == 0 or z1 == 0:
        return (0, 1, 0)
    # a = -3: M = 3 (X - Z^2)(X + Z^2)
    z1_sq = z1 * z1 % P
    m = 3 * (x1 - z1_sq) * (x1 + z1_sq) % P
    y1_sq = y1 * y1 % P
    s = 4 * x1 * y1_sq % P
    x3 = (m * m - 2 * s) % P
    y3 = (m * (s - x3) - 8 * y1_sq * y1_sq) % P
    z3 = 2 * y1 * z1 % P
    return (x3, y3, z3)


def _add(p1, p2):
    if p1[2] == 0:
        return p2
    if p2[2] == 0:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1_sq, z2_sq = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2_sq % P, x2 * z1_sq % P
    s1, s2 = y1 * z2_sq * z2 % P, y2 * z1_sq * z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else (0, 1, 0)
    h, r = (u2 - u1) % P, (s2 - s1) % P
    h_sq = h * h % P
    h_cu = h_sq * h % P
    x3 = (r * r - h_cu - 2 * u1 * h_sq) % P
    y3 = (r * (u1 * h_sq - x3) - s1 * h_cu) % P
    z3 = h * z1 * z2 % P
    return (x3, y3, z3)


def multiply(scalar, x, y):
    """scalar * (x, y) as affine (x, y); None for the point at infinity."""
    result, addend = (0, 1, 0), (x, y, 1)
    while scalar:
        if scalar & 1:
            result = _add(result, addend)
        addend = _double(addend)
        scalar >>= 1
    if result[2] == 0:
        return None
    z_inv = pow(result[2], -1, P)
    z_inv_sq = z_inv * z_inv % P
    return (result[0] * z_inv_sq % P, result[1] * z_inv_sq * z_inv % P)


def ecdh_x(private_scalar, peer_x, peer_y):
    """The shared x-coordinate, an int; ValueError for an invalid peer point."""
    if not on_curve(peer_x, peer_y):
        raise ValueError('the peer point is not on P-384')
    shared = multiply(private_scalar % N, peer_x, peer_y)
    if shared is None:
        raise ValueError('the shared point is the point at infinity')
    return shared[0]

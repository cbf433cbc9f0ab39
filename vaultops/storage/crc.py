"""CRC-32 (the zlib/gzip one) of a concatenation from the CRCs of its parts.

S3's full-object checksum needs the CRC of the whole upload and every part needs its own:
combining part CRCs costs microseconds where a second pass over the data costs a core.
Arithmetic is over GF(2) polynomials modulo the reflected CRC-32 polynomial, as zlib's
crc32_combine does it.
"""

from __future__ import annotations

POLY = 0xEDB88320
_X0 = 1 << 31          # the polynomial 1 (x^0), reflected


def _multmodp(a: int, b: int) -> int:
    """a * b modulo POLY."""
    m, p = _X0, 0
    while True:
        if a & m:
            p ^= b
            if a & (m - 1) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ POLY if b & 1 else b >> 1


def _x8n(n: int) -> int:
    """x^(8n) modulo POLY: what a CRC is multiplied by when n bytes follow it."""
    p, square = _X0, _X0 >> 8  # square starts as x^8 (bit 31 - k holds x^k)
    while n:
        if n & 1:
            p = _multmodp(square, p)
        n >>= 1
        square = _multmodp(square, square)
    return p


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A+B, given crc1 = crc32(A), crc2 = crc32(B) and len2 = len(B)."""
    return _multmodp(_x8n(len2), crc1) ^ crc2

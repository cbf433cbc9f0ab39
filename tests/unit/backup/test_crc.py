from __future__ import annotations

import os
import zlib

import pytest

from vaultops.storage.crc import crc32_combine


@pytest.mark.parametrize(("n1", "n2"), [(0, 0), (0, 7), (7, 0), (1, 1), (100, 1000), (8 << 20, 3), (4097, 5 << 20)])
def test_combined_crc_equals_crc_of_the_concatenation(n1: int, n2: int) -> None:
    a, b = os.urandom(n1), os.urandom(n2)
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), n2) == zlib.crc32(a + b)


def test_combining_many_parts_in_order() -> None:
    parts = [os.urandom(n) for n in (5 << 20, 5 << 20, 123, 1)]
    crc = 0
    for p in parts:
        crc = crc32_combine(crc, zlib.crc32(p), len(p))
    assert crc == zlib.crc32(b"".join(parts))

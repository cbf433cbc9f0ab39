"""The Encryptor's output does not depend on how the plaintext is split across update() calls."""

from __future__ import annotations

import os

import pytest

from vaultops.crypto import age
from vaultops.crypto.agekeys import X25519Identity

C = age.CHUNK
KEY, NONCE = bytes(range(16)), bytes(range(16, 32))


def _payload(ct: bytes) -> bytes:
    return ct[ct.index(NONCE) + len(NONCE):]   # the header's stanza is random per Encryptor


@pytest.mark.parametrize("total", [0, 1, C - 1, C, C + 1, 2 * C, 3 * C + 5])
@pytest.mark.parametrize("splits", [[1], [C - 1], [C], [C + 1], [7, C, 1, 2 * C + 3], [3 * C + 5]])
def test_any_split_gives_the_one_shot_payload_and_decrypts(total: int, splits: list[int]) -> None:
    ident = X25519Identity.generate()
    data = os.urandom(total)
    one = age.Encryptor([ident.recipient], file_key=KEY, nonce=NONCE)
    ref = one.update(data) + one.finish()
    enc, out, pos, i = age.Encryptor([ident.recipient], file_key=KEY, nonce=NONCE), b"", 0, 0
    while pos < total:
        step = splits[i % len(splits)]
        out += enc.update(memoryview(data)[pos:pos + step]) + enc.update(b"")
        pos, i = pos + step, i + 1
    out += enc.finish()
    assert _payload(out) == _payload(ref)
    dec = age.Decryptor([ident])
    assert dec.update(out) + dec.finish() == data

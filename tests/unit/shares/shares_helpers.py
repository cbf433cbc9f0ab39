"""Helpers for the share tests (a uniquely named module: tests import it directly)."""

from __future__ import annotations

import base64

from vaultops.services.ceremony.manifest import ScryptParams
from vaultops.testing import seed

FAST = ScryptParams(n=16, r=1, p=1)  # tests only: real verifiers use DEFAULT_PARAMS


def make_raw(index: int | None = None) -> bytes:
    x = index if index is not None else seed.rng().randrange(1, 256)    # replayable: VAULTOPS_TEST_SEED
    return seed.randbytes(32) + bytes([x])


def material(raw: bytes) -> list[str]:
    """Every form the share's bytes could leak in."""
    return [base64.b64encode(raw).decode(), raw.hex(), raw.hex().upper(),
            base64.b64encode(raw[:32]).decode(), raw[:32].hex()]


def assert_no_material(message: str, raw: bytes, *extra: str, window: int = 8) -> None:
    """No 8-character piece of the share (in b64/hex, or of *extra* inputs) is in *message*."""
    for form in [*material(raw), *extra]:
        compact = "".join(form.split())
        for i in range(max(1, len(compact) - window + 1)):
            piece = compact[i:i + window]
            if len(piece) == window:
                assert piece not in message, f"share material leaked into: {message!r}"


def assert_no_words(message: str, mnemonic: str) -> None:
    """No two consecutive words of *mnemonic* appear together in *message*."""
    words = mnemonic.split()
    low = message.lower()
    for a, b in zip(words, words[1:]):
        assert f"{a} {b}" not in low, f"mnemonic words leaked into: {message!r}"

"""services/ceremony/share_lines.py: lines of shares held at once, read as `unseal --share-stdin` reads them."""

from __future__ import annotations

import random

import pytest

from vaultops.errors import ShareFormatError, ShareMismatchError, UsageError
from vaultops.services.ceremony import shares as codec
from vaultops.services.ceremony.manifest import Keyholder, Manifest, ScryptParams, make_verifier
from vaultops.services.ceremony.share_lines import read_share_lines

RNG = random.Random(3)
RAW = [RNG.randbytes(32) + bytes([i]) for i in (1, 2)]


def test_without_a_manifest_names_are_kept_and_bare_shares_are_unnamed() -> None:
    held = read_share_lines([f"zoe: {codec.encode(RAW[0], 'hex')}", "", codec.encode(RAW[1], "base64")],
                            manifest=None)
    assert held.keyholders == ["zoe", "unnamed #2"] and not held.checked
    assert [bytes(s.raw) for s in held.shares] == RAW


def test_a_bad_line_is_named_by_number_and_wipes_what_was_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import vaultops.services.ceremony.share_lines as mod

    seen: list = []
    monkeypatch.setattr(mod, "decode", lambda text: seen.append(codec.decode(text)) or seen[-1])
    good = codec.encode(RAW[0], "base64")
    with pytest.raises(ShareFormatError, match="^line 2: ") as err:
        read_share_lines([good, "academic acid acne"], manifest=None)
    assert good not in str(err.value)
    assert len(seen) == 1 and not any(seen[0].raw)  # the share already decoded was zeroed


def test_a_misspelt_mnemonic_word_is_a_format_error_with_its_line() -> None:
    words = codec.encode(RAW[0], "mnemonic").split()
    words[3] = "zzzzzz"
    with pytest.raises(ShareFormatError, match="^line 1: "):
        read_share_lines([" ".join(words)], manifest=None)


def test_with_a_manifest_a_share_must_be_its_keyholders() -> None:
    m = Manifest(cluster_id="c", threshold=1, shares=2,
                 keyholders=(Keyholder("ann", 1, make_verifier(RAW[0], params=ScryptParams(n=16, r=1, p=1))),))
    assert read_share_lines([codec.encode(RAW[0], "base64")], manifest=m).keyholders == ["ann"]
    with pytest.raises(ShareMismatchError, match="^line 1: share #2 matches no keyholder"):
        read_share_lines([codec.encode(RAW[1], "base64")], manifest=m)
    with pytest.raises(UsageError, match="no keyholder named 'bob'"):
        read_share_lines([f"bob: {codec.encode(RAW[0], 'base64')}"], manifest=m)


def test_the_same_share_twice_is_a_repeat_but_another_share_with_its_index_is_judged() -> None:
    """x-coordinates are random per key epoch: another epoch's share may carry this one's index."""
    same_index = RNG.randbytes(32) + bytes([1])
    with pytest.raises(UsageError, match="^line 2: share #1 is given twice"):
        read_share_lines([codec.encode(RAW[0], "base64"), codec.encode(RAW[0], "hex")], manifest=None)
    with pytest.raises(ShareMismatchError, match="^lines 1 and 3 hold different shares with the same index #1") as err:
        read_share_lines([codec.encode(RAW[0], "base64"), codec.encode(RAW[1], "base64"),
                          codec.encode(same_index, "base64")], manifest=None)
    assert codec.encode(same_index, "base64") not in str(err.value)
    m = Manifest(cluster_id="c", threshold=2, shares=2,
                 keyholders=(Keyholder("ann", 1, make_verifier(RAW[0], params=ScryptParams(n=16, r=1, p=1))),
                             Keyholder("bo", 2, make_verifier(RAW[1], params=ScryptParams(n=16, r=1, p=1)))))
    for lines, bad in (([same_index, RAW[0], RAW[1]], 1), ([RAW[0], RAW[1], same_index], 3)):
        with pytest.raises(ShareMismatchError, match=f"^line {bad}: "):
            read_share_lines([codec.encode(r, "base64") for r in lines], manifest=m)

"""Share codecs: round trips in every codec and strict, leak-free rejection of bad input."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Callable

import pytest
from shamir_mnemonic import generate_mnemonics
from shamir_mnemonic.wordlist import WORDLIST
from shares_helpers import assert_no_material, assert_no_words, make_raw

from vaultops.errors import ShareFormatError, ShareWordError, UsageError
from vaultops.services.ceremony import shares
from vaultops.services.ceremony.shares import Codec, Share, decode, encode


@dataclass(frozen=True)
class Ctx:
    raw: bytes
    mnemonic: str

    @property
    def b64(self) -> str:
        return base64.b64encode(self.raw).decode()

    @property
    def hex(self) -> str:
        return self.raw.hex()

    @property
    def words(self) -> list[str]:
        return self.mnemonic.split()


@pytest.fixture
def ctx(raw: bytes) -> Ctx:
    return Ctx(raw, encode(raw, "mnemonic"))


def slip39(secret: bytes, groups: list[tuple[int, int]] | None = None) -> str:
    return generate_mnemonics(1, groups or [(1, 1)], secret)[0][0]


def replace_word(words: list[str], pos: int, new: str) -> str:
    out = list(words)
    out[pos - 1] = new
    return " ".join(out)


def other_word(word: str) -> str:
    return WORDLIST[(WORDLIST.index(word) + 1) % len(WORDLIST)]


def swapped(words: list[str]) -> str:
    i = next(i for i in range(10, 30) if words[i] != words[i + 1])
    out = list(words)
    out[i], out[i + 1] = out[i + 1], out[i]
    return " ".join(out)


# -- round trips ---------------------------------------------------------------

@pytest.mark.parametrize("codec", ["base64", "hex", "mnemonic"])
@pytest.mark.parametrize("index", [1, 2, 128, 255])
def test_round_trip_every_codec(codec: str, index: int) -> None:
    raw = make_raw(index)
    text = encode(raw, codec)
    share = decode(text)
    assert share.raw == raw
    assert share.index == index
    assert share.codec is Codec(codec)


def test_encodings_have_the_documented_shape(raw: bytes) -> None:
    assert len(encode(raw, Codec.BASE64)) == shares.BASE64_CHARS
    assert encode(raw, Codec.HEX) == raw.hex()
    assert len(encode(raw, Codec.MNEMONIC).split()) == shares.MNEMONIC_WORDS


def test_mnemonic_with_passphrase_round_trips(raw: bytes) -> None:
    text = encode(raw, "mnemonic", b"correct horse")
    assert decode(text, b"correct horse").raw == raw
    assert decode(text, "correct horse").raw == raw


def test_mnemonic_with_wrong_passphrase_is_rejected_or_differs(raw: bytes) -> None:
    # SLIP-39 cannot detect a wrong passphrase; the version byte catches it 255/256 times.
    text = encode(raw, "mnemonic", b"right")
    try:
        assert decode(text, b"wrong").raw != raw
    except ShareFormatError as exc:
        assert "passphrase" in str(exc)
        assert_no_material(str(exc), raw)


def test_share_accepts_share_objects_and_bytes_alike(raw: bytes) -> None:
    share = Share(raw)
    assert encode(share, "hex") == encode(raw, "hex")
    assert Share(bytearray(raw)) == share  # type: ignore[arg-type]


@pytest.mark.parametrize("wrap", [
    lambda t: t + "\n", lambda t: "  " + t + "  \r\n", lambda t: "\t" + t + "\n\n",
])
def test_surrounding_whitespace_is_tolerated(ctx: Ctx, wrap: Callable[[str], str]) -> None:
    for text in (ctx.b64, ctx.hex, ctx.mnemonic):
        assert decode(wrap(text)).raw == ctx.raw


def test_case_is_ignored_for_hex_and_mnemonics(ctx: Ctx) -> None:
    assert decode(ctx.hex.upper()).raw == ctx.raw
    assert decode(ctx.mnemonic.upper()).raw == ctx.raw


def test_mnemonic_words_may_be_split_over_lines_and_runs_of_spaces(ctx: Ctx) -> None:
    text = " ".join(ctx.words[:10]) + "\n" + "   ".join(ctx.words[10:])
    assert decode(text).raw == ctx.raw


def test_four_letter_prefixes_are_accepted(ctx: Ctx) -> None:
    assert decode(" ".join(w[:4] for w in ctx.words)).raw == ctx.raw


def test_mnemonic_from_the_reference_library_without_extendable_flag(raw: bytes) -> None:
    text = generate_mnemonics(1, [(1, 1)], b"\x01" + raw, extendable=False)[0][0]
    assert decode(text).raw == raw


# -- Share value semantics ---------------------------------------------------

def test_repr_and_str_show_index_not_bytes(raw: bytes) -> None:
    share = decode(encode(raw, "hex"))
    for text in (repr(share), str(share), f"{share}", repr([share])):
        assert f"index={raw[-1]}" in text
        assert_no_material(text, raw)
        assert "raw" not in text


def test_share_equality_and_hash(raw: bytes) -> None:
    assert decode(encode(raw, "hex")) == decode(encode(raw, "base64"))
    assert decode(encode(raw, "hex")) != Share(make_raw(raw[-1]))
    assert len({Share(raw), Share(raw)}) == 1


@pytest.mark.parametrize("bad", [b"", b"\x01" * 32, b"\x01" * 34, b"\x01" * 32 + b"\x00"])
def test_share_constructor_validates(bad: bytes) -> None:
    with pytest.raises(ShareFormatError):
        Share(bad)


# -- malformed input ------------------------------------------------------------

CASES: list[tuple[str, Callable[[Ctx], str], str]] = [
    ("empty", lambda c: "", "empty share"),
    ("only-whitespace", lambda c: "  \n\t ", "empty share"),
    ("b64-truncated-40", lambda c: c.b64[:40], "30 bytes"),
    ("b64-one-char-missing", lambda c: c.b64[:43], "43 characters"),
    ("b64-one-char-extra", lambda c: c.b64 + "A", "45 characters"),
    ("b64-of-32-bytes", lambda c: base64.b64encode(c.raw[:32]).decode(), "32 bytes"),
    ("b64-of-34-bytes", lambda c: base64.b64encode(c.raw + b"\x01").decode(), "34 bytes"),
    ("b64-bad-char", lambda c: c.b64[:9] + "!" + c.b64[10:], "position 10"),
    ("b64-padding-inside", lambda c: c.b64[:9] + "=" + c.b64[10:], "padding"),
    ("b64-triple-padding", lambda c: c.b64[:41] + "===", "more than two"),
    ("b64-url-safe", lambda c: base64.urlsafe_b64encode(b"\xfb\xff" + c.raw[2:]).decode(),
     "looks like URL-safe"),
    ("b64-mixed-alphabets", lambda c: c.b64[:5] + "-+" + c.b64[7:], "mixes standard and URL-safe"),
    ("b64-inner-space", lambda c: c.b64[:20] + " " + c.b64[20:], "whitespace at position 21"),
    ("b64-wrapped-line", lambda c: c.b64[:22] + "\n" + c.b64[22:], "whitespace"),
    ("b64-inner-tab", lambda c: c.b64[:3] + "\t" + c.b64[3:], "whitespace"),
    ("hex-64-digits", lambda c: c.raw[:32].hex(), "64 digits"),
    ("hex-44-digits", lambda c: c.raw[:22].hex(), "44 digits"),
    ("hex-odd-digits", lambda c: c.hex[:65], "odd number"),
    ("hex-68-digits", lambda c: c.hex + "01", "68 digits"),
    ("hex-non-hex-digit", lambda c: c.hex[:29] + "g" + c.hex[30:], "character 30 is not a hex"),
    ("hex-0x-prefix", lambda c: "0x" + c.hex, "0x prefix"),
    ("hex-inner-space", lambda c: c.hex[:32] + " " + c.hex[32:], "whitespace"),
    ("hex-x-coordinate-0", lambda c: c.raw[:32].hex() + "00", "x-coordinate 0"),
    ("b64-x-coordinate-0", lambda c: base64.b64encode(c.raw[:32] + b"\0").decode(), "x-coordinate 0"),
    ("non-ascii-nbsp", lambda c: c.b64[:10] + "\u00a0" + c.b64[10:], "non-ASCII character at position 11"),
    ("non-ascii-smart-quotes", lambda c: "\u201c" + c.b64 + "\u201d", "non-ASCII character at position 1"),
    ("non-ascii-zero-width", lambda c: c.hex[:5] + "\u200b" + c.hex[5:], "non-ASCII"),
    ("non-ascii-word", lambda c: replace_word(c.words, 3, "caf\u00e9"), "non-ASCII"),
    ("control-nul", lambda c: c.b64[:7] + "\x00" + c.b64[7:], "control character at position 8"),
    ("control-escape", lambda c: "  \x1b[A" + c.hex, "control character at position 3"),
    ("control-del", lambda c: c.hex + "\x7f", "control character"),
    ("too-long", lambda c: c.b64 * 50, "far longer"),
    ("mnemonic-34-words", lambda c: " ".join(c.words[:34]), "34 words"),
    ("mnemonic-one-word", lambda c: c.words[0], "1 word;"),
    ("mnemonic-half", lambda c: " ".join(c.words[:17]), "17 words"),
    ("mnemonic-36-words", lambda c: c.mnemonic + " " + c.words[0], "extra words"),
    ("mnemonic-two-shares", lambda c: c.mnemonic + " " + c.mnemonic, "extra words"),
    ("mnemonic-unknown-word", lambda c: replace_word(c.words, 5, "qqqqx"), "word 5 is not a SLIP-39 word"),
    ("mnemonic-short-prefix", lambda c: replace_word(c.words, 7, c.words[6][:3]), "word 7 is not"),
    ("mnemonic-other-valid-word", lambda c: replace_word(c.words, 12, other_word(c.words[11])), "checksum"),
    ("mnemonic-swapped-words", lambda c: swapped(c.words), "checksum"),
    ("mnemonic-digit-in-word", lambda c: replace_word(c.words, 9, "acad3mic"), "word 9"),
    ("mixed-mnemonic-and-hex", lambda c: " ".join(c.words[:20]) + " " + c.hex, "mixed formats"),
    ("mnemonic-16-byte-secret", lambda c: slip39(c.raw[:16]), "16-byte secret"),
    ("mnemonic-32-byte-secret", lambda c: slip39(c.raw[:32]), "32-byte secret"),
    ("mnemonic-wrong-version", lambda c: slip39(b"\x02" + c.raw), "unknown version"),
    ("mnemonic-part-of-a-set", lambda c: slip39(b"\x01" + c.raw, [(2, 3)]), "part of a SLIP-39 set"),
    ("mnemonic-x-coordinate-0", lambda c: slip39(b"\x01" + c.raw[:32] + b"\0"), "x-coordinate 0"),
]


@pytest.mark.parametrize("build,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_share_is_rejected_clearly(ctx: Ctx, build: Callable[[Ctx], str],
                                             expected: str) -> None:
    text = build(ctx)
    with pytest.raises(ShareFormatError) as info:
        decode(text)
    message = str(info.value)
    assert expected in message
    assert info.value.hint, "every message says what to do next"
    assert "\n" not in message, "one line"
    assert_no_material(message, ctx.raw)
    assert_no_words(message, ctx.mnemonic)
    assert_no_words(message, text)
    assert "qqqqx" not in message and "acad3mic" not in message


def test_at_least_thirty_malformed_cases() -> None:
    assert len(CASES) >= 30


def test_leak_check_itself_catches_a_leak(raw: bytes) -> None:
    with pytest.raises(AssertionError):
        assert_no_material("bad share " + base64.b64encode(raw).decode()[5:14], raw)
    with pytest.raises(AssertionError):
        assert_no_words("near word7 word8", "word6 word7 word8 word9")


def test_unknown_word_carries_position_and_suggestions_outside_the_message(ctx: Ctx) -> None:
    with pytest.raises(ShareWordError) as info:
        decode(replace_word(ctx.words, 4, "academix"))
    assert info.value.position == 4
    assert info.value.suggestions[0] == "academic"
    assert "academ" not in str(info.value)


def test_passphrase_for_non_mnemonic_is_a_usage_error(raw: bytes) -> None:
    with pytest.raises(UsageError, match="not a mnemonic"):
        decode(encode(raw, "hex"), b"pw")
    with pytest.raises(UsageError, match="only to the mnemonic"):
        encode(raw, "hex", b"pw")


def test_non_printable_passphrase_rejected(raw: bytes) -> None:
    with pytest.raises(UsageError, match="printable ASCII"):
        encode(raw, "mnemonic", "pässword".encode())


def test_unknown_codec_rejected(raw: bytes) -> None:
    with pytest.raises(UsageError, match="unknown share codec"):
        encode(raw, "base32")


# -- word helpers ----------------------------------------------------------------

def test_complete_word() -> None:
    assert shares.complete_word("acad") == ["academic"]
    assert shares.complete_word("ACA") == ["academic"]
    assert set(shares.complete_word("ac")) == {w for w in WORDLIST if w.startswith("ac")}
    assert len(shares.complete_word("ac")) > 1
    assert shares.complete_word("") == []
    assert shares.complete_word("zz9") == []


def test_every_word_is_unique_by_its_first_four_letters() -> None:
    for word in WORDLIST:
        assert shares.resolve_word(word[:4]) == word
        assert shares.resolve_word(word) == word


def test_resolve_word_rejects_misspellings_and_short_prefixes() -> None:
    assert shares.resolve_word("academix") is None
    assert shares.resolve_word("aca") is None


def test_detect_codec(ctx: Ctx) -> None:
    assert shares.detect_codec(ctx.b64) is Codec.BASE64
    assert shares.detect_codec(ctx.hex.upper()) is Codec.HEX
    assert shares.detect_codec(ctx.mnemonic + "\n") is Codec.MNEMONIC

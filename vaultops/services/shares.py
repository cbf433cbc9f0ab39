"""Unseal-share codecs: base64, hex and a SLIP-39 mnemonic.

A Vault/OpenBao unseal share is 33 bytes: 32 key bytes followed by ONE
x-coordinate byte (1..255) -- `shamir.Split` in Vault/OpenBao appends the
x-coordinate as the last byte, and `Combine` reads it from there. The
x-coordinate identifies a share without revealing it, so it is the only part
of a share any message may name.

Mnemonic format: one single (1-of-1) SLIP-39 mnemonic of VERSION_BYTE (0x01)
followed by the 33 share bytes. SLIP-39 needs an even secret length, hence the
version byte; 34 bytes make 35 words, protected by an RS1024 checksum that
detects any error in up to 3 words. The optional passphrase is SLIP-39's own
(printable ASCII). SLIP-39 cannot tell a wrong passphrase from the right one:
a wrong one is caught by the version byte (255 times in 256) and reliably by
the keyholder manifest's verifier.

Abbreviated words: SLIP-39 words are unique by their first four letters, so
decode() accepts a word written as a prefix of at least four letters when that
prefix starts exactly one SLIP-39 word ("acad" -> "academic"). A misspelt word
("academix") is never corrected silently; it is rejected with its position,
and ShareWordError.suggestions carries the nearest words for an interactive
prompt. The checksum is always verified over the expanded words. Words may
be separated by any run of spaces, tabs or newlines; base64 and hex shares
must be one unbroken string. Surrounding whitespace is always ignored.

Error messages name positions, counts and lengths only, never the input.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import enum
import hmac
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vaultops.errors import ShareFormatError, ShareWordError, UsageError

if TYPE_CHECKING:
    import shamir_mnemonic

SHARE_BYTES = 33
VERSION_BYTE = 0x01
MNEMONIC_WORDS = 35
HEX_CHARS = 2 * SHARE_BYTES
BASE64_CHARS = 44
MIN_PREFIX = 4
MAX_INPUT_CHARS = 1024
# Doubles SLIP-39's PBKDF2 work per exponent step; 1 is the library default
# (about 8 ms per encode/decode here) and only matters with a passphrase.
ITERATION_EXPONENT = 1

_HEX = frozenset(string.hexdigits)
_B64 = frozenset(string.ascii_letters + string.digits + "+/")
_WS = " \t\r\n"
_HINT_RETYPE = "copy the share again from its original plain-text source, or retype it"


class Codec(enum.StrEnum):
    BASE64 = "base64"
    HEX = "hex"
    MNEMONIC = "mnemonic"
    RAW = "raw"  # built from bytes, e.g. an init response


@dataclass(frozen=True, eq=False)
class Share:
    """One validated unseal share. Its repr shows the x-coordinate only."""

    raw: bytes = field(repr=False)
    codec: Codec = Codec.RAW

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes):
            object.__setattr__(self, "raw", bytes(self.raw))
        _check_raw(self.raw)

    @property
    def index(self) -> int:
        """The x-coordinate (1..255): names the share without revealing it."""
        return self.raw[-1]

    def __repr__(self) -> str:
        return f"Share(index={self.index}, codec={self.codec.value})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Share):
            return NotImplemented
        return hmac.compare_digest(self.raw, other.raw)

    def __hash__(self) -> int:
        return hash(self.raw)


def encode(share: bytes | Share, codec: Codec | str, passphrase: bytes | str = b"") -> str:
    """The share as base64, hex or a 35-word SLIP-39 mnemonic (random each call)."""
    raw = share.raw if isinstance(share, Share) else Share(bytes(share)).raw
    codec = parse_codec(codec)
    pp = _passphrase(passphrase)
    if pp and codec is not Codec.MNEMONIC:
        raise UsageError("a passphrase applies only to the mnemonic codec",
                         hint="drop the passphrase or encode to a mnemonic")
    if codec is Codec.HEX:
        return raw.hex()
    if codec is Codec.BASE64:
        return base64.b64encode(raw).decode("ascii")
    if codec is Codec.MNEMONIC:
        from shamir_mnemonic import generate_mnemonics

        groups = generate_mnemonics(1, [(1, 1)], bytes([VERSION_BYTE]) + raw, pp,
                                    extendable=True, iteration_exponent=ITERATION_EXPONENT)
        return str(groups[0][0])
    raise UsageError(f"cannot encode to {codec.value}", hint="choose base64, hex or mnemonic")


def decode(text: str, passphrase: bytes | str = b"") -> Share:
    """Parse one share in any codec (autodetected); raise ShareFormatError."""
    body = _clean(text)
    codec = _detect(body)
    pp = _passphrase(passphrase)
    if pp and codec is not Codec.MNEMONIC:
        raise UsageError(f"a passphrase was given but the share is {codec.value}, not a mnemonic",
                         hint="passphrases apply only to mnemonic shares; drop the passphrase")
    if codec is Codec.MNEMONIC:
        raw = _decode_mnemonic(body.split(), pp)
    elif codec is Codec.HEX:
        raw = _decode_hex(body)
    else:
        raw = _decode_base64(body)
    return Share(raw, codec)


def parse_codec(value: Codec | str) -> Codec:
    try:
        return Codec(value)
    except ValueError:
        raise UsageError(f"unknown share codec {value!r}",
                         hint="choose base64, hex or mnemonic") from None


def detect_codec(text: str) -> Codec:
    """Mnemonic: several letters-only words; hex: only hex digits; else base64.

    Raises ShareFormatError for input no codec can hold (empty, control
    characters, mixed formats ...); the codec's own checks come in decode().
    """
    return _detect(_clean(text))


def _detect(body: str) -> Codec:
    tokens = body.split()
    if len(tokens) > 1:
        return _detect_multi(body, tokens)
    if body.isalpha() and len(body) <= 8:
        raise _truncated(1)
    if all(c in _HEX for c in body):  # a base64 share is all-hex with p ~ 1e-20
        return Codec.HEX
    if body[:2] in ("0x", "0X") and all(c in _HEX for c in body[2:]):
        raise ShareFormatError("hex share starts with a 0x prefix",
                               hint="remove the leading 0x and enter the 66 hex digits only")
    return Codec.BASE64


def complete_word(prefix: str) -> list[str]:
    """SLIP-39 words starting with *prefix* (case-insensitive), in list order."""
    from shamir_mnemonic.wordlist import WORDLIST

    p = prefix.strip().lower()
    if not p or not p.isascii() or not p.isalpha():
        return []
    return [w for w in WORDLIST if w.startswith(p)]


def resolve_word(token: str) -> str | None:
    """The SLIP-39 word *token* denotes: itself, or the one word it is a >=4-letter prefix of."""
    from shamir_mnemonic.wordlist import WORD_INDEX_MAP

    t = token.strip().lower()
    if t in WORD_INDEX_MAP:
        return t
    matches = complete_word(t) if len(t) >= MIN_PREFIX else []
    return matches[0] if len(matches) == 1 else None


def suggest_words(token: str, limit: int = 3) -> list[str]:
    """Nearest SLIP-39 words to a mistyped *token*: same 4-letter start, then similar spelling."""
    from shamir_mnemonic.wordlist import WORDLIST

    t = token.strip().lower()
    found = complete_word(t[:MIN_PREFIX]) if len(t) >= MIN_PREFIX else []
    found += difflib.get_close_matches(t, WORDLIST, n=limit, cutoff=0.6)
    if len(t) >= 3:
        found += complete_word(t[:3])
    return list(dict.fromkeys(found))[:limit]


# -- validation helpers -------------------------------------------------------

def _check_raw(raw: bytes) -> None:
    if len(raw) != SHARE_BYTES:
        hint = ("a 32-byte value lacks the x-coordinate byte: is it a recovery or master key?"
                if len(raw) == 32 else _HINT_RETYPE)
        raise ShareFormatError(f"share is {len(raw)} bytes; an unseal share is 33 bytes "
                               "(32 key bytes + 1 x-coordinate byte)", hint=hint)
    if raw[-1] == 0:
        raise ShareFormatError("share has x-coordinate 0, which Vault/OpenBao never issue",
                               hint="the share is corrupted or not an unseal share; " + _HINT_RETYPE)


def _passphrase(passphrase: bytes | str) -> bytes:
    pp = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
    if not all(32 <= c <= 126 for c in pp):
        raise UsageError("the passphrase contains characters outside printable ASCII",
                         hint="SLIP-39 passphrases may use only ASCII letters, digits, "
                              "punctuation and spaces")
    return pp


def _clean(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError("decode() takes a str")
    if len(text) > MAX_INPUT_CHARS:
        raise ShareFormatError(f"input is {len(text)} characters, far longer than any share",
                               hint="enter exactly one share")
    body = text.strip(_WS)
    if not body:
        raise ShareFormatError("empty share: nothing was entered",
                               hint="paste or type the share (one share per line)")
    offset = len(text) - len(text.lstrip(_WS))
    for pos, ch in enumerate(body, offset + 1):
        if ord(ch) > 127:
            raise ShareFormatError(
                f"share contains a non-ASCII character at position {pos} (a typographic "
                "quote, dash or non-breaking space from a document or chat?)", hint=_HINT_RETYPE)
        if (ord(ch) < 32 and ch not in _WS) or ord(ch) == 127:
            raise ShareFormatError(f"share contains a control character at position {pos}",
                                   hint=_HINT_RETYPE)
    return body


def _detect_multi(body: str, tokens: list[str]) -> Codec:
    alpha = [t.isalpha() for t in tokens]
    if all(alpha):
        return Codec.MNEMONIC
    if sum(alpha) * 2 > len(tokens):
        pos = alpha.index(False) + 1
        raise ShareFormatError(
            f"mixed formats: word {pos} of the mnemonic contains digits or symbols",
            hint="enter one share in one format: only the mnemonic words, or only base64/hex")
    pos = next(i for i, c in enumerate(body, 1) if c in _WS)
    raise ShareFormatError(f"share contains whitespace at position {pos}; a base64 or hex share "
                           "is one unbroken string",
                           hint="remove the space or line break; was a long line wrapped?")


def _decode_hex(body: str) -> bytes:
    if len(body) % 2:
        raise ShareFormatError(f"hex share has an odd number of digits ({len(body)}): "
                               "a digit is missing or extra", hint=_HINT_RETYPE)
    if len(body) != HEX_CHARS:
        raise ShareFormatError(f"hex share has {len(body)} digits ({len(body) // 2} bytes); an "
                               f"unseal share is {HEX_CHARS} hex digits (33 bytes)", hint=_HINT_RETYPE)
    return bytes.fromhex(body)


def _decode_base64(body: str) -> bytes:
    _check_base64_chars(body)
    if len(body) % 4:
        raise ShareFormatError(f"base64 share has {len(body)} characters; an unseal share is "
                               f"{BASE64_CHARS}: it is truncated or has extra characters",
                               hint=_HINT_RETYPE)
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:  # already screened; kept so nothing unexpected escapes
        raise ShareFormatError("share is not valid base64", hint=_HINT_RETYPE) from None


def _check_base64_chars(body: str) -> None:
    if len(body) == HEX_CHARS and sum(c in _HEX for c in body) >= HEX_CHARS - 2:
        pos = next(i for i, c in enumerate(body, 1) if c not in _HEX)
        raise ShareFormatError(f"mixed formats: {HEX_CHARS} characters like a hex share, but "
                               f"character {pos} is not a hex digit (0-9, a-f)", hint=_HINT_RETYPE)
    if set(body) & set("-_"):
        mixed = bool(set(body) & set("+/"))
        raise ShareFormatError(
            "share mixes standard and URL-safe base64 alphabets" if mixed
            else "share looks like URL-safe base64 (- or _); vaultops expects standard base64",
            hint=_HINT_RETYPE if mixed else "replace - with + and _ with /, or use the original")
    data = body.rstrip("=")
    if len(body) - len(data) > 2:
        raise ShareFormatError("base64 share ends in more than two '=' padding characters",
                               hint=_HINT_RETYPE)
    for pos, ch in enumerate(data, 1):
        if ch not in _B64:
            what = "padding '=' inside the share" if ch == "=" else "a character not valid in base64"
            raise ShareFormatError(f"share has {what} at position {pos}", hint=_HINT_RETYPE)


# -- mnemonic ---------------------------------------------------------------

def _truncated(count: int) -> ShareFormatError:
    return ShareFormatError(
        f"mnemonic has {count} word{'s' if count != 1 else ''}; a vaultops share mnemonic has "
        f"{MNEMONIC_WORDS}: words are missing (cut off while copying?)",
        hint="enter all 35 words on one line, separated by spaces")


def _word_indices(tokens: list[str]) -> list[int]:
    from shamir_mnemonic.wordlist import WORD_INDEX_MAP

    indices = []
    for pos, token in enumerate(tokens, 1):
        word = resolve_word(token)
        if word is None:
            raise ShareWordError(
                f"word {pos} is not a SLIP-39 word",
                hint="check its spelling against the written copy; a word may be shortened to "
                     "its first 4 letters", position=pos, suggestions=tuple(suggest_words(token)))
        indices.append(WORD_INDEX_MAP[word])
    return indices


def _checksum_ok(indices: list[int]) -> bool:
    from shamir_mnemonic import rs1024
    from shamir_mnemonic.constants import (CUSTOMIZATION_STRING_EXTENDABLE,
                                           CUSTOMIZATION_STRING_ORIG, ITERATION_EXP_LENGTH_BITS)

    extendable = bool(indices[1] >> ITERATION_EXP_LENGTH_BITS & 1)
    custom = CUSTOMIZATION_STRING_EXTENDABLE if extendable else CUSTOMIZATION_STRING_ORIG
    return bool(rs1024.verify_checksum(indices, custom))


def _parse_slip39(mnemonic: str) -> shamir_mnemonic.Share:
    from shamir_mnemonic import MnemonicError
    from shamir_mnemonic import Share as Slip39Share

    try:
        return Slip39Share.from_mnemonic(mnemonic)
    except MnemonicError:  # its messages quote words: never pass them on
        raise ShareFormatError("mnemonic is malformed (bad padding or share parameters)",
                               hint="it was not written by vaultops or is damaged; "
                                    + _HINT_RETYPE) from None


def _decode_mnemonic(tokens: list[str], passphrase: bytes) -> bytes:
    from shamir_mnemonic import MnemonicError, combine_mnemonics
    from shamir_mnemonic.wordlist import mnemonic_from_indices

    indices = _word_indices(tokens)
    valid = len(indices) >= 20 and _checksum_ok(indices)
    if len(indices) != MNEMONIC_WORDS:
        _raise_wrong_count(indices, valid)
    if not valid:
        raise ShareFormatError("mnemonic checksum does not match: a word is mistyped, swapped or "
                               "from another mnemonic",
                               hint="compare every word with the written copy, in order")
    mnemonic = mnemonic_from_indices(indices)
    slip = _parse_slip39(mnemonic)
    if (slip.group_count, slip.group_threshold, slip.member_threshold) != (1, 1, 1):
        raise ShareFormatError(
            f"mnemonic is one part of a SLIP-39 set (group needs {slip.member_threshold} parts); "
            "vaultops writes single 1-of-1 mnemonics",
            hint="use the single mnemonic vaultops produced for this unseal share")
    try:
        secret = combine_mnemonics([mnemonic], passphrase)
    except MnemonicError:
        raise ShareFormatError("mnemonic could not be decoded",
                               hint="it was not written by vaultops or is damaged") from None
    if secret[0] != VERSION_BYTE:
        raise ShareFormatError("mnemonic did not decode to a vaultops share (unknown version "
                               "byte)", hint="wrong or missing passphrase? Otherwise the mnemonic "
                                             "comes from another tool")
    return bytes(secret[1:])


def _raise_wrong_count(indices: list[int], valid: bool) -> None:
    from shamir_mnemonic.wordlist import mnemonic_from_indices

    n = len(indices)
    if valid:
        size = len(_parse_slip39(mnemonic_from_indices(indices)).value)
        raise ShareFormatError(
            f"mnemonic is a valid SLIP-39 mnemonic of a {size}-byte secret ({n} words), not a "
            f"vaultops unseal share ({MNEMONIC_WORDS} words)",
            hint="a wallet seed or another tool's backup? Use the mnemonic vaultops made")
    if n < MNEMONIC_WORDS:
        raise _truncated(n)
    raise ShareFormatError(f"mnemonic has {n} words; a vaultops share mnemonic has "
                           f"{MNEMONIC_WORDS}: there are extra words (two shares on one line?)",
                           hint="enter exactly one share's 35 words")

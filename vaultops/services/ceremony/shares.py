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

Shares in memory: a Share keeps its bytes in a bytearray that wipe() zeroes.
decode() reads a bytearray (or any bytes-like input) in place through a
memoryview and writes the share into a preallocated bytearray, so decoding a
base64 or hex share makes no immutable copy of it; a str input is first copied
into a bytearray (to_buffer) that is wiped afterwards, but the str itself is
the caller's and stays in memory until Python reuses it. b64_buffer() gives
the base64 form for sys/unseal as a bytearray. Mnemonics go through
shamir-mnemonic, which works on str words and bytes: those copies stay too.
Buffers are filled at their final size, never grown: a bytearray that grows
leaves its old, unwiped copy behind.
"""

from __future__ import annotations

import enum
import hmac
import string

from vaultops.errors import ShareFormatError, UsageError
from vaultops.services.ceremony.share_words import (HINT_RETYPE, MIN_PREFIX, MNEMONIC_WORDS, VERSION_BYTE,
                                           complete_word, decode_mnemonic, encode_mnemonic, resolve_word,
                                           suggest_words, truncated)

__all__ = ["BASE64_CHARS", "Codec", "HEX_CHARS", "MIN_PREFIX", "MNEMONIC_WORDS", "SHARE_BYTES", "Share",
           "VERSION_BYTE", "b64_buffer", "complete_word", "decode", "detect_codec", "encode", "parse_codec",
           "resolve_word", "suggest_words", "to_buffer", "wipe"]

SHARE_BYTES = 33
HEX_CHARS = 2 * SHARE_BYTES
BASE64_CHARS = 44
MAX_INPUT_CHARS = 1024

_HEX = frozenset(string.hexdigits.encode())
_B64_ALPHABET = (string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/").encode()
_B64 = frozenset(_B64_ALPHABET)
_ALPHA = frozenset(string.ascii_letters.encode())
_WS = frozenset(b" \t\r\n")
_HEX_VALUE = {c: int(chr(c), 16) for c in _HEX}
_B64_VALUE = {c: i for i, c in enumerate(_B64_ALPHABET)} | {ord("="): 0}
_EQ, _ZERO = ord("="), ord("0")


class Codec(enum.StrEnum):
    BASE64 = "base64"
    HEX = "hex"
    MNEMONIC = "mnemonic"
    RAW = "raw"  # built from bytes, e.g. an init response


class Share:
    """One validated unseal share, in a bytearray of its own that wipe() zeroes.

    Its repr shows the x-coordinate only; `index` stays readable after wipe().
    """

    __slots__ = ("_raw", "codec", "index")

    def __init__(self, raw: bytes | bytearray | memoryview, codec: Codec = Codec.RAW) -> None:
        buf = bytearray(raw)  # one allocation of the final size
        try:
            _check_raw(buf)
        except ShareFormatError:
            wipe(buf)
            raise
        self._raw = buf
        self.codec = codec
        self.index: int = buf[-1]  # the x-coordinate (1..255): names the share without revealing it

    @property
    def raw(self) -> bytearray:
        return self._raw

    def wipe(self) -> None:
        """Zero the share's bytes; the Share is of no further use (its index stays)."""
        wipe(self._raw)

    def __repr__(self) -> str:
        return f"Share(index={self.index}, codec={self.codec.value})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Share):
            return NotImplemented
        return hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash(self.index)  # equal shares have equal indexes; the bytes are never hashed


# -- secret buffers -------------------------------------------------------------

def wipe(buf: bytearray) -> None:
    """Zero *buf* in place (its size is kept, so views into it stay valid)."""
    buf[:] = bytes(len(buf))


def to_buffer(text: str) -> bytearray:
    """*text* as a bytearray of the same length, one byte per character, for decode() and wiping.

    A non-ASCII character becomes 0x80, so decode() still reports its position; no bytes or
    str copy of the text is made on the way (ord() of a character is a cached small int).
    """
    buf = bytearray(len(text))
    for i, ch in enumerate(text):
        code = ord(ch)
        buf[i] = code if code < 0x80 else 0x80
    return buf


def b64_buffer(raw: bytes | bytearray) -> bytearray:
    """Standard base64 of *raw* in a new bytearray (the form sys/unseal takes); wipe it after use."""
    out = bytearray((len(raw) + 2) // 3 * 4)
    # Every intermediate value stays below 256: Python's cached small ints, no heap objects with share bits.
    for j, i in enumerate(range(0, len(raw), 3)):
        a = raw[i]
        b = raw[i + 1] if i + 1 < len(raw) else 0
        c = raw[i + 2] if i + 2 < len(raw) else 0
        out[4 * j] = _B64_ALPHABET[a >> 2]
        out[4 * j + 1] = _B64_ALPHABET[(a & 0x03) << 4 | b >> 4]
        out[4 * j + 2] = _B64_ALPHABET[(b & 0x0F) << 2 | c >> 6] if i + 1 < len(raw) else _EQ
        out[4 * j + 3] = _B64_ALPHABET[c & 0x3F] if i + 2 < len(raw) else _EQ
    return out


def encode(share: bytes | Share, codec: Codec | str, passphrase: bytes | str = b"") -> str:
    """The share as base64, hex or a 35-word SLIP-39 mnemonic (random each call)."""
    raw = share.raw if isinstance(share, Share) else Share(share).raw
    codec = parse_codec(codec)
    pp = _passphrase(passphrase)
    if pp and codec is not Codec.MNEMONIC:
        raise UsageError("a passphrase applies only to the mnemonic codec",
                         hint="drop the passphrase or encode to a mnemonic")
    if codec is Codec.HEX:
        return raw.hex()
    if codec is Codec.BASE64:
        return b64_buffer(raw).decode("ascii")
    if codec is Codec.MNEMONIC:
        return encode_mnemonic(raw, pp)
    raise UsageError(f"cannot encode to {codec.value}", hint="choose base64, hex or mnemonic")


def decode(text: str | bytes | bytearray | memoryview, passphrase: bytes | str = b"") -> Share:
    """Parse one share in any codec (autodetected); raise ShareFormatError.

    A bytes-like input is read in place and left as it is (the caller wipes its buffer); a str is
    copied into a bytearray that is wiped before this returns. Wipe the returned Share after use.
    """
    if isinstance(text, str):
        if len(text) > MAX_INPUT_CHARS:
            raise _too_long(len(text))
        buf = to_buffer(text)
        try:
            return _decode(memoryview(buf), passphrase)
        finally:
            wipe(buf)
    if not isinstance(text, (bytes, bytearray, memoryview)):
        raise TypeError("decode() takes a str or a bytes-like object")
    return _decode(memoryview(text), passphrase)


def _decode(view: memoryview, passphrase: bytes | str) -> Share:
    start, end = _clean(view)
    body = view[start:end]
    codec = _detect(body)
    pp = _passphrase(passphrase)
    if pp and codec is not Codec.MNEMONIC:
        raise UsageError(f"a passphrase was given but the share is {codec.value}, not a mnemonic",
                         hint="passphrases apply only to mnemonic shares; drop the passphrase")
    if codec is Codec.MNEMONIC:
        raw = decode_mnemonic([bytes(t).decode("ascii") for t in _tokens(body)], pp)
    elif codec is Codec.HEX:
        raw = _decode_hex(body)
    else:
        raw = _decode_base64(body)
    try:
        return Share(raw, codec)
    finally:
        wipe(raw)


def parse_codec(value: Codec | str) -> Codec:
    try:
        return Codec(value)
    except ValueError:
        raise UsageError(f"unknown share codec {value!r}",
                         hint="choose base64, hex or mnemonic") from None


def detect_codec(text: str | bytearray) -> Codec:
    """Mnemonic: several letters-only words; hex: only hex digits; else base64.

    Raises ShareFormatError for input no codec can hold (empty, control
    characters, mixed formats ...); the codec's own checks come in decode().
    """
    if isinstance(text, bytearray):
        return _detect_view(memoryview(text))
    if len(text) > MAX_INPUT_CHARS:
        raise _too_long(len(text))
    buf = to_buffer(text)
    try:
        return _detect_view(memoryview(buf))
    finally:
        wipe(buf)


def _detect_view(view: memoryview) -> Codec:
    start, end = _clean(view)
    return _detect(view[start:end])


def _detect(body: memoryview) -> Codec:
    if any(c in _WS for c in body):
        return _detect_multi(body, _tokens(body))
    if _only(body, _ALPHA) and len(body) <= 8:
        raise truncated(1)
    if _only(body, _HEX):  # a base64 share is all-hex with p ~ 1e-20
        return Codec.HEX
    if len(body) > 2 and body[0] == _ZERO and body[1] in b"xX" and _only(body[2:], _HEX):
        raise ShareFormatError("hex share starts with a 0x prefix",
                               hint="remove the leading 0x and enter the 66 hex digits only")
    return Codec.BASE64


# -- validation helpers -------------------------------------------------------

def _check_raw(raw: bytearray) -> None:
    if len(raw) != SHARE_BYTES:
        hint = ("a 32-byte value lacks the x-coordinate byte: is it a recovery or master key?"
                if len(raw) == 32 else HINT_RETYPE)
        raise ShareFormatError(f"share is {len(raw)} bytes; an unseal share is 33 bytes "
                               "(32 key bytes + 1 x-coordinate byte)", hint=hint)
    if raw[-1] == 0:
        raise ShareFormatError("share has x-coordinate 0, which Vault/OpenBao never issue",
                               hint="the share is corrupted or not an unseal share; " + HINT_RETYPE)


def _passphrase(passphrase: bytes | str) -> bytes:
    pp = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
    if not all(32 <= c <= 126 for c in pp):
        raise UsageError("the passphrase contains characters outside printable ASCII",
                         hint="SLIP-39 passphrases may use only ASCII letters, digits, "
                              "punctuation and spaces")
    return pp


def _too_long(n: int) -> ShareFormatError:
    return ShareFormatError(f"input is {n} characters, far longer than any share", hint="enter exactly one share")


def _clean(view: memoryview) -> tuple[int, int]:
    """The bounds of the share inside surrounding whitespace, after checking every character."""
    if len(view) > MAX_INPUT_CHARS:
        raise _too_long(len(view))
    start, end = 0, len(view)
    while start < end and view[start] in _WS:
        start += 1
    while end > start and view[end - 1] in _WS:
        end -= 1
    if start == end:
        raise ShareFormatError("empty share: nothing was entered",
                               hint="paste or type the share (one share per line)")
    for pos in range(start, end):
        c = view[pos]
        if c > 127:
            raise ShareFormatError(
                f"share contains a non-ASCII character at position {pos + 1} (a typographic "
                "quote, dash or non-breaking space from a document or chat?)", hint=HINT_RETYPE)
        if (c < 32 and c not in _WS) or c == 127:
            raise ShareFormatError(f"share contains a control character at position {pos + 1}",
                                   hint=HINT_RETYPE)
    return start, end


def _only(body: memoryview, allowed: frozenset[int]) -> bool:
    return all(c in allowed for c in body)


def _tokens(body: memoryview) -> list[memoryview]:
    """Whitespace-separated words, as views into *body* (no copies)."""
    out: list[memoryview] = []
    start: int | None = None
    for i, c in enumerate(body):
        if c in _WS:
            if start is not None:
                out.append(body[start:i])
            start = None
        elif start is None:
            start = i
    if start is not None:
        out.append(body[start:])
    return out


def _detect_multi(body: memoryview, tokens: list[memoryview]) -> Codec:
    alpha = [_only(t, _ALPHA) for t in tokens]
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


def _decode_hex(body: memoryview) -> bytearray:
    if len(body) % 2:
        raise ShareFormatError(f"hex share has an odd number of digits ({len(body)}): "
                               "a digit is missing or extra", hint=HINT_RETYPE)
    if len(body) != HEX_CHARS:
        raise ShareFormatError(f"hex share has {len(body)} digits ({len(body) // 2} bytes); an "
                               f"unseal share is {HEX_CHARS} hex digits (33 bytes)", hint=HINT_RETYPE)
    out = bytearray(len(body) // 2)
    for i in range(len(out)):
        out[i] = _HEX_VALUE[body[2 * i]] << 4 | _HEX_VALUE[body[2 * i + 1]]
    return out


def _decode_base64(body: memoryview) -> bytearray:
    """Standard base64, already screened by _check_base64_chars: like b64decode(validate=True)."""
    _check_base64_chars(body)
    if len(body) % 4:
        raise ShareFormatError(f"base64 share has {len(body)} characters; an unseal share is "
                               f"{BASE64_CHARS}: it is truncated or has extra characters",
                               hint=HINT_RETYPE)
    pad = (body[-1] == _EQ) + (body[-2] == _EQ)
    out = bytearray(len(body) // 4 * 3 - pad)
    for j, i in enumerate(range(0, len(body), 4)):
        a, b, c, d = (_B64_VALUE[body[i]], _B64_VALUE[body[i + 1]], _B64_VALUE[body[i + 2]],
                      _B64_VALUE[body[i + 3]])
        at = 3 * j  # every intermediate stays below 256: cached ints, no heap copies of share bits
        out[at] = a << 2 | b >> 4
        if at + 1 < len(out):
            out[at + 1] = (b & 0x0F) << 4 | c >> 2
        if at + 2 < len(out):
            out[at + 2] = (c & 0x03) << 6 | d
    return out


def _check_base64_chars(body: memoryview) -> None:
    if len(body) == HEX_CHARS and sum(c in _HEX for c in body) >= HEX_CHARS - 2:
        pos = next(i for i, c in enumerate(body, 1) if c not in _HEX)
        raise ShareFormatError(f"mixed formats: {HEX_CHARS} characters like a hex share, but "
                               f"character {pos} is not a hex digit (0-9, a-f)", hint=HINT_RETYPE)
    if any(c in b"-_" for c in body):
        mixed = any(c in b"+/" for c in body)
        raise ShareFormatError(
            "share mixes standard and URL-safe base64 alphabets" if mixed
            else "share looks like URL-safe base64 (- or _); vaultops expects standard base64",
            hint=HINT_RETYPE if mixed else "replace - with + and _ with /, or use the original")
    end = len(body)
    while end and body[end - 1] == _EQ:
        end -= 1
    if len(body) - end > 2:
        raise ShareFormatError("base64 share ends in more than two '=' padding characters",
                               hint=HINT_RETYPE)
    for pos in range(end):
        if body[pos] not in _B64:
            what = "padding '=' inside the share" if body[pos] == _EQ else "a character not valid in base64"
            raise ShareFormatError(f"share has {what} at position {pos + 1}", hint=HINT_RETYPE)

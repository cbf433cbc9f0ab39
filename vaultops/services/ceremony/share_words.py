"""The SLIP-39 mnemonic codec of an unseal share, and the word helpers an interactive prompt uses.

One single (1-of-1) SLIP-39 mnemonic of VERSION_BYTE (0x01) followed by the
33 share bytes: SLIP-39 needs an even secret length, hence the version byte;
34 bytes make 35 words with an RS1024 checksum (see services/shares.py).

Memory: shamir-mnemonic works on str words, Python ints and bytes, none of
which can be wiped; decode_mnemonic() hands back a bytearray, but the
library's copies stay in freed memory until Python reuses it.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from vaultops.errors import ShareFormatError, ShareWordError

if TYPE_CHECKING:
    import shamir_mnemonic

VERSION_BYTE = 0x01
MNEMONIC_WORDS = 35
MIN_PREFIX = 4
# Doubles SLIP-39's PBKDF2 work per exponent step; 1 is the library default
# (about 8 ms per encode/decode here) and only matters with a passphrase.
ITERATION_EXPONENT = 1
HINT_RETYPE = "copy the share again from its original plain-text source, or retype it"
CHECKSUM_FAILED = "mnemonic checksum does not match: a word is mistyped, swapped or from another mnemonic"


def encode_mnemonic(raw: bytes | bytearray, passphrase: bytes) -> str:
    """A fresh 35-word mnemonic of the 33 share bytes (random each call)."""
    from shamir_mnemonic import generate_mnemonics

    secret = bytearray(1 + len(raw))
    secret[0], secret[1:] = VERSION_BYTE, raw
    try:
        groups = generate_mnemonics(1, [(1, 1)], bytes(secret), passphrase, extendable=True,
                                    iteration_exponent=ITERATION_EXPONENT)
    finally:
        secret[:] = bytes(len(secret))
    return str(groups[0][0])


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


def truncated(count: int) -> ShareFormatError:
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
                                    + HINT_RETYPE) from None


def decode_mnemonic(tokens: list[str], passphrase: bytes) -> bytearray:
    from shamir_mnemonic import MnemonicError, combine_mnemonics
    from shamir_mnemonic.wordlist import mnemonic_from_indices

    indices = _word_indices(tokens)
    valid = len(indices) >= 20 and _checksum_ok(indices)
    if len(indices) != MNEMONIC_WORDS:
        _raise_wrong_count(indices, valid)
    if not valid:
        raise ShareFormatError(CHECKSUM_FAILED, hint="compare every word with the written copy, in order")
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
    return bytearray(memoryview(secret)[1:])  # shamir-mnemonic's own bytes and ints stay (see top)


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
        raise truncated(n)
    raise ShareFormatError(f"mnemonic has {n} words; a vaultops share mnemonic has "
                           f"{MNEMONIC_WORDS}: there are extra words (two shares on one line?)",
                           hint="enter exactly one share's 35 words")

"""Shares in bytearrays: decode reads a buffer in place and agrees with the standard codecs on every
input, the Share and every helper buffer can be wiped, and errors read the same for str and bytes."""

from __future__ import annotations

import base64
import binascii
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shares_helpers import make_raw

from vaultops.errors import ShareFormatError
from vaultops.services.ceremony.shares import Codec, Share, b64_buffer, decode, detect_codec, encode, to_buffer, wipe

B64_CHARS = string.ascii_letters + string.digits + "+/"


@given(st.binary(min_size=0, max_size=80))
@settings(max_examples=300, deadline=None)
def test_b64_buffer_is_standard_base64(data: bytes) -> None:
    assert bytes(b64_buffer(data)) == base64.b64encode(data)


@given(st.text(alphabet=B64_CHARS, min_size=1, max_size=30).map(lambda t: t * 4),
       st.sampled_from(["", "=", "=="]))
@settings(max_examples=300, deadline=None)
def test_base64_decoding_agrees_with_the_standard_library(body: str, pad: str) -> None:
    text = body[: len(body) - len(pad)] + pad
    try:
        expected: bytes | None = base64.b64decode(text, validate=True)
    except binascii.Error:
        expected = None
    try:
        got: bytes | None = bytes(decode(bytearray(text.encode())).raw)
    except ShareFormatError:
        got = None
    if got is not None:  # vaultops may refuse more (33 bytes, x != 0), never decode differently
        assert got == expected


@given(st.binary(min_size=33, max_size=33).filter(lambda b: b[-1] != 0))
@settings(max_examples=200, deadline=None)
def test_every_codec_decodes_from_a_bytearray(raw: bytes) -> None:
    for codec in (Codec.BASE64, Codec.HEX):
        text = encode(raw, codec)
        buf = bytearray(text.encode())
        share = decode(buf)
        assert share.raw == raw and share.codec is codec
        assert buf == text.encode()  # the caller's buffer is read, not changed
        assert decode(memoryview(buf)).raw == raw


def test_a_mnemonic_decodes_from_a_bytearray_too() -> None:
    raw = make_raw(9)
    assert decode(bytearray(encode(raw, "mnemonic").encode())).raw == raw


def test_a_share_holds_its_own_bytearray_and_wipes_it() -> None:
    raw = bytearray(make_raw(42))
    share = Share(raw)
    assert isinstance(share.raw, bytearray) and share.raw is not raw and share.raw == raw
    share.wipe()
    assert share.raw == bytes(33) and share.index == 42 and raw != bytes(33)
    assert repr(share) == "Share(index=42, codec=raw)"


def test_a_refused_share_wipes_the_copy_it_made(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[bytearray] = []
    real = bytearray

    class Spy(real):  # type: ignore[misc,valid-type]
        def __init__(self, *a: object) -> None:
            super().__init__(*a)  # type: ignore[arg-type]
            made.append(self)
    monkeypatch.setattr("builtins.bytearray", Spy)
    with pytest.raises(ShareFormatError, match="x-coordinate 0"):
        Share(b"\x11" * 32 + b"\x00")
    assert made and all(not any(b) for b in made)


def test_to_buffer_keeps_positions_for_every_character() -> None:
    assert to_buffer("ab\u2019c") == bytearray(b"ab\x80c")
    with pytest.raises(ShareFormatError, match="non-ASCII character at position 3"):
        decode("ab\u2019" + "A" * 41)
    with pytest.raises(ShareFormatError, match="non-ASCII character at position 3"):
        decode(bytearray("ab\u2019".encode()) + b"A" * 41)  # bytes count as positions in a buffer


@pytest.mark.parametrize("bad", ["", "   ", "A" * 43, "0x" + "ab" * 33, "AB-_" * 11, "A" * 40 + "====",
                                 "A\x07" + "A" * 42, "Zm9v YmFy" * 5, "x" * 2000])
def test_str_and_bytearray_inputs_fail_alike(bad: str) -> None:
    with pytest.raises(ShareFormatError) as as_str:
        decode(bad)
    with pytest.raises(ShareFormatError) as as_buf:
        decode(bytearray(bad.encode()))
    assert as_str.value.message == as_buf.value.message


def test_detect_codec_reads_a_bytearray() -> None:
    raw = make_raw(3)
    assert detect_codec(bytearray(encode(raw, "hex").encode())) is Codec.HEX
    assert detect_codec(bytearray(encode(raw, "mnemonic").encode())) is Codec.MNEMONIC


def test_wipe_zeroes_in_place_even_while_viewed() -> None:
    buf = bytearray(b"secret")
    view = memoryview(buf)[1:3]
    wipe(buf)
    assert buf == bytearray(6) and bytes(view) == b"\x00\x00"

"""An incremental, strict tar reader: feed bytes as they arrive, get member callbacks.

Only what snapshot archives use is accepted: regular files (ustar), optional PAX headers
(Go's archive/tar writes them for sizes over 8 GiB), and the end-of-archive marker
followed by nothing but zero padding. Header checksums are checked.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from vaultops.errors import VerificationError

BLOCK = 512
DAMAGED = "the archive is damaged or not a snapshot; take a new one with 'vaultops backup run'"


class _State(Enum):
    HEADER = "header"
    DATA = "data"
    PAD = "pad"
    END = "end"


class TarStream:
    """on_start(name, size), on_data(name, data), on_end(name) are called in stream order.

    on_data receives a memoryview valid only during the call (no copy of member data is made).
    """

    def __init__(self, *, on_start: Callable[[str, int], None], on_data: Callable[[str, memoryview], None],
                 on_end: Callable[[str], None]) -> None:
        self._on_start, self._on_data, self._on_end = on_start, on_data, on_end
        self._state = _State.HEADER
        self._header = bytearray()
        self._remaining = 0
        self._name = ""
        self._zero_blocks = 0
        self._pax: dict[str, str] | None = None
        self._pax_buf: bytearray | None = None
        self._pad = 0

    @property
    def complete(self) -> bool:
        return self._state is _State.END

    def feed(self, data: bytes) -> None:
        view, pos = memoryview(data), 0
        while pos < len(view):
            if self._state is _State.HEADER:
                take = min(BLOCK - len(self._header), len(view) - pos)
                self._header += view[pos:pos + take]
                pos += take
                if len(self._header) == BLOCK:
                    self._parse_header(bytes(self._header))
                    self._header.clear()
            elif self._state is _State.DATA:
                take = min(self._remaining, len(view) - pos)
                self._data(view[pos:pos + take])
                pos += take
            elif self._state is _State.PAD:
                take = min(self._remaining, len(view) - pos)
                self._remaining -= take
                pos += take
                if self._remaining == 0:
                    self._state = _State.HEADER
            else:
                if view[pos:].tobytes().strip(b"\0"):
                    raise VerificationError("data after the end-of-archive marker", hint=DAMAGED)
                return

    def _parse_header(self, block: bytes) -> None:
        if block == bytes(BLOCK):
            self._zero_blocks += 1
            if self._zero_blocks == 2:
                self._state = _State.END
            return
        if self._zero_blocks:
            raise VerificationError("a zero block inside the archive", hint=DAMAGED)
        _check_checksum(block)
        kind = block[156:157]
        size = _parse_size(block[124:136])
        name = _parse_name(block)
        if kind in (b"x",):
            self._pax_buf = bytearray()
            self._begin("\0pax", size)
            return
        if kind not in (b"0", b"\0"):
            raise VerificationError(f"unexpected tar entry type {kind!r} for {name!r}", hint=DAMAGED)
        if self._pax:
            name = self._pax.get("path", name)
            size = int(self._pax.get("size", size))
            self._pax = None
        self._on_start(name, size)
        self._begin(name, size)

    def _begin(self, name: str, size: int) -> None:
        self._name, self._remaining = name, size
        self._pad = (-size) % BLOCK  # members are padded to whole blocks
        self._state = _State.DATA
        if size == 0:
            self._end_member()

    def _data(self, chunk: memoryview) -> None:
        self._remaining -= len(chunk)
        if self._name == "\0pax":
            assert self._pax_buf is not None
            self._pax_buf += chunk
            if len(self._pax_buf) > 1 << 16:
                raise VerificationError("oversized PAX header", hint=DAMAGED)
        else:
            self._on_data(self._name, chunk)
        if self._remaining == 0:
            self._end_member()

    def _end_member(self) -> None:
        if self._name == "\0pax":
            self._pax = _parse_pax(bytes(self._pax_buf or b""))
            self._pax_buf = None
        else:
            self._on_end(self._name)
        self._remaining = self._pad
        self._state = _State.PAD if self._pad else _State.HEADER


def _check_checksum(block: bytes) -> None:
    try:
        stored = int(block[148:156].split(b"\0")[0].strip() or b"0", 8)
    except ValueError:
        raise VerificationError("unreadable tar header checksum", hint=DAMAGED) from None
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:])
    if stored != computed:
        raise VerificationError("tar header checksum mismatch", hint=DAMAGED)


def _parse_size(field: bytes) -> int:
    if field[0] & 0x80:  # GNU base-256
        return int.from_bytes(field[1:], "big")
    try:
        return int(field.split(b"\0")[0].strip() or b"0", 8)
    except ValueError:
        raise VerificationError("unreadable tar member size", hint=DAMAGED) from None


def _parse_name(block: bytes) -> str:
    name = block[0:100].split(b"\0")[0]
    if block[257:262] == b"ustar":
        prefix = block[345:500].split(b"\0")[0]
        if prefix:
            name = prefix + b"/" + name
    return name.decode("utf-8", "replace")


def _parse_pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        try:
            length = int(data[pos:data.index(b" ", pos)])
            key, _, value = data[data.index(b" ", pos) + 1:pos + length - 1].partition(b"=")
        except ValueError:
            raise VerificationError("unreadable PAX header", hint=DAMAGED) from None
        if length <= 0:
            raise VerificationError("unreadable PAX header", hint=DAMAGED)
        out[key.decode()] = value.decode("utf-8", "replace")
        pos += length
    return out

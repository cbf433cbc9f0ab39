"""An incremental, strict tar reader: feed bytes as they arrive, get member callbacks.

Only what snapshot archives use is accepted, and every field that steers the reader is
checked before it is used, so no header can make it loop, skip backwards or read without end:
  * header blocks with the POSIX ("ustar\\0" "00") or GNU ("ustar " " \\0") magic and a
    correct checksum; numeric fields strictly octal (optionally space-led, NUL/space-ended)
    or positive GNU base-256; sizes bounded by MAX_MEMBER;
  * member types: regular files ('0', NUL) and a PAX extended header ('x') for the member
    right after it (Go's archive/tar writes them for long names and sizes over 8 GiB). Links,
    directories, devices, FIFOs, GNU long names, sparse files and global headers are refused;
  * PAX records "<len> <key>=<value>\\n" with a decimal length that matches the record, each
    key once, UTF-8 values; `size` decimal and bounded, `path` non-empty; link and sparse
    keys refused;
  * names valid UTF-8, NUL-padded; padding after member data all zero;
  * after the end-of-archive marker (two zero blocks) at most TRAILING_ZEROS zero bytes.
Header checksums are checked. Every refusal is a VerificationError with a one-line message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum

from vaultops.errors import VerificationError

BLOCK = 512
MAX_MEMBER = 1 << 40          # 1 TiB: far above any Raft/Consul snapshot member
MAX_PAX = 1 << 16             # a PAX header larger than this is not one Go would write
TRAILING_ZEROS = 1 << 20      # tar writers pad to their record size (10 KiB for GNU tar/Python)
DAMAGED = "the archive is damaged or not a snapshot; take a new one with 'vaultops backup run'"

MAGICS = (b"ustar\x0000", b"ustar  \x00")
REGULAR = (b"0", b"\0")
PAX = b"x"
_OCTAL = re.compile(rb" *([0-7]*)[ \0]*")
_PAX_LEN = re.compile(rb"[1-9][0-9]{0,5} ")
_DECIMAL = re.compile(r"[0-9]{1,20}")
_TIME = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,9})?")
PAX_KEYS = {"path": None, "size": _DECIMAL, "mtime": _TIME, "atime": _TIME, "ctime": _TIME,
            "uid": _DECIMAL, "gid": _DECIMAL, "uname": None, "gname": None, "comment": None}
PAX_REFUSED = ("linkpath", "GNU.sparse.", "hdrcharset")


def damaged(message: str) -> VerificationError:
    return VerificationError(message, hint=DAMAGED)


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
        self._trailing = 0
        self._pax: dict[str, str] | None = None
        self._pax_buf: bytearray | None = None
        self._pad = 0

    @property
    def complete(self) -> bool:
        return self._state is _State.END

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        view, pos = memoryview(data), 0
        while pos < len(view):
            if self._state is _State.HEADER:
                take = min(BLOCK - len(self._header), len(view) - pos)
                self._header += view[pos:pos + take]
                if len(self._header) == BLOCK:
                    self._parse_header(bytes(self._header))
                    self._header.clear()
            elif self._state is _State.DATA:
                take = min(self._remaining, len(view) - pos)
                self._data(view[pos:pos + take])
            elif self._state is _State.PAD:
                take = min(self._remaining, len(view) - pos)
                if any(view[pos:pos + take]):
                    raise damaged("non-zero padding after a member")
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _State.HEADER
            else:
                take = len(view) - pos
                self._trail(view[pos:])
            assert take > 0, "the reader must always move forward"
            pos += take

    def _trail(self, rest: memoryview) -> None:
        if any(rest):
            raise damaged("data after the end-of-archive marker")
        self._trailing += len(rest)
        if self._trailing > TRAILING_ZEROS:
            raise damaged(f"more than {TRAILING_ZEROS} bytes of padding after the end-of-archive marker")

    def _parse_header(self, block: bytes) -> None:
        if not any(block):
            self._zero_blocks += 1
            if self._zero_blocks == 2:
                if self._pax is not None:
                    raise damaged("a PAX header without a member after it")
                self._state = _State.END
            return
        if self._zero_blocks:
            raise damaged("a zero block inside the archive")
        header = parse_header(block)
        kind, name, size = header
        if kind == PAX:
            if self._pax is not None:
                raise damaged("two PAX headers in a row")
            if size == 0 or size > MAX_PAX:
                raise damaged(f"a PAX header of implausible size ({size} bytes)")
            self._pax_buf = bytearray()
            self._begin("\0pax", size)
            return
        if self._pax is not None:
            name = self._pax.get("path", name)
            size = int(self._pax.get("size", size))
            self._pax = None
            if size > MAX_MEMBER:
                raise damaged(f"member {name!r} claims an implausible size ({size} bytes)")
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
        else:
            self._on_data(self._name, chunk)
        if self._remaining == 0:
            self._end_member()

    def _end_member(self) -> None:
        if self._name == "\0pax":
            self._pax = parse_pax(bytes(self._pax_buf or b""))
            self._pax_buf = None
        else:
            self._on_end(self._name)
        self._remaining = self._pad
        self._state = _State.PAD if self._pad else _State.HEADER


def parse_header(block: bytes) -> tuple[bytes, str, int]:
    """(type flag, name, size) of one 512-byte header block, or VerificationError."""
    magic = block[257:265]
    if magic not in MAGICS:
        raise damaged("not a ustar header (bad magic)")
    stored = parse_number(block[148:156], "checksum", allow_base256=False)
    if stored != sum(block[:148]) + 8 * 32 + sum(block[156:]):
        raise damaged("tar header checksum mismatch")
    for start, end, what in ((100, 108, "mode"), (108, 116, "uid"), (116, 124, "gid"), (136, 148, "mtime")):
        parse_number(block[start:end], what)
    if magic == MAGICS[0]:
        parse_number(block[329:337], "devmajor")
        parse_number(block[337:345], "devminor")
    kind = block[156:157]
    if kind not in REGULAR and kind != PAX:
        raise damaged(f"unexpected tar entry type {kind!r} (only regular files belong in a snapshot)")
    size = parse_number(block[124:136], "size")
    if size > MAX_MEMBER:
        raise damaged(f"a tar member claims an implausible size ({size} bytes)")
    name = _text(block[0:100], "name")
    if magic == MAGICS[0]:
        prefix = _text(block[345:500], "name prefix")
        if prefix:
            name = f"{prefix}/{name}"
    if not name:
        raise damaged("a tar member without a name")
    return kind, name, size


def parse_number(field: bytes, what: str, *, allow_base256: bool = True) -> int:
    """Strict octal ('0000644\\0', ' 644 ', all NUL = 0) or positive GNU base-256."""
    if field[0] == 0x80 and allow_base256:
        return int.from_bytes(field[1:], "big")
    m = _OCTAL.fullmatch(field)
    if m is None or (what == "checksum" and not m.group(1)):
        raise damaged(f"unreadable tar header field {what} {field!r}")
    return int(m.group(1) or b"0", 8)


def _text(field: bytes, what: str) -> str:
    raw, _, rest = field.partition(b"\0")
    if any(rest):
        raise damaged(f"tar header {what} has bytes after its end")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise damaged(f"tar header {what} is not UTF-8") from None


def parse_pax(data: bytes) -> dict[str, str]:
    """PAX records '<len> <key>=<value>\\n'; every length, key and value checked."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        m = _PAX_LEN.match(data, pos)
        if m is None:
            raise damaged("unreadable PAX record length")
        end = pos + int(m.group()[:-1])
        if end > len(data) or end <= m.end() or data[end - 1:end] != b"\n":
            raise damaged("a PAX record length does not match its record")
        key_b, eq, value_b = data[m.end():end - 1].partition(b"=")
        try:
            key, value = key_b.decode("ascii"), value_b.decode("utf-8")
        except UnicodeDecodeError:
            raise damaged("a PAX record is not UTF-8") from None
        _check_pax(key, value, bool(eq), out)
        out[key] = value
        pos = end
    return out


def _check_pax(key: str, value: str, has_eq: bool, seen: dict[str, str]) -> None:
    if not has_eq or not key or not key.isprintable() or "\0" in value:
        raise damaged("a malformed PAX record")
    if key in seen:
        raise damaged(f"PAX key {key!r} appears twice")
    if key.startswith(PAX_REFUSED):
        raise damaged(f"PAX key {key!r} does not belong in a snapshot")
    if key not in PAX_KEYS and "." not in key:
        raise damaged(f"unknown PAX key {key!r}")
    pattern = PAX_KEYS.get(key)
    if pattern is not None and not pattern.fullmatch(value):
        raise damaged(f"PAX {key} is not a plain number ({value[:40]!r})")
    if key == "size" and int(value) > MAX_MEMBER:
        raise damaged(f"PAX size is implausible ({value} bytes)")
    if key == "path" and not value:
        raise damaged("PAX path is empty")

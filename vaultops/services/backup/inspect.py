"""What a snapshot holds: meta (index, term, peers) and entry counts/sizes per key prefix.

state.bin is a stream of uvarint-delimited protobuf StorageEntry{1: key, 2: value}. Values are
barrier-encrypted: only keys and sizes are meaningful offline. Parsed incrementally.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Annotated, Any

from msgspec import Meta

from vaultops.errors import VerificationError
from vaultops.files.model import Foreign
from vaultops.services.backup.tarstream import DAMAGED

MAX_ENTRY = 512 << 20


@dataclass
class PrefixStats:
    count: int = 0
    bytes: int = 0


@dataclass
class StateStats:
    """Feed state.bin bytes; per-prefix counts and value sizes accumulate."""

    depth: int = 1
    entries: int = 0
    prefixes: dict[str, PrefixStats] = field(default_factory=lambda: defaultdict(PrefixStats))
    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, chunk: bytes | bytearray) -> None:
        self._buf += chunk
        pos = 0
        while True:
            parsed = _uvarint(self._buf, pos)
            if parsed is None:
                break
            length, start = parsed
            if length > MAX_ENTRY:
                raise VerificationError("state.bin holds an implausible entry length", hint=DAMAGED)
            if start + length > len(self._buf):
                break
            self._entry(bytes(self._buf[start:start + length]))
            pos = start + length
        del self._buf[:pos]

    def finish(self) -> None:
        if self._buf:
            raise VerificationError("state.bin ends inside an entry", hint=DAMAGED)

    def _entry(self, msg: bytes) -> None:
        key, value_len = _decode_entry(msg)
        parts = key.split("/")
        prefix = "/".join(parts[:self.depth]) + ("/" if len(parts) > self.depth else "")
        stats = self.prefixes[prefix]
        stats.count += 1
        stats.bytes += value_len
        self.entries += 1

    def table(self) -> list[dict[str, Any]]:
        return [{"prefix": p, "entries": s.count, "bytes": s.bytes} for p, s in sorted(self.prefixes.items())]


def _uvarint(buf: bytearray | bytes, pos: int) -> tuple[int, int] | None:
    result = shift = 0
    while pos < len(buf):
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise VerificationError("state.bin holds a malformed varint", hint=DAMAGED)
    return None


def _decode_entry(msg: bytes) -> tuple[str, int]:
    """Key and value length of one StorageEntry; unknown fields are skipped."""
    key, value_len, pos = "", 0, 0
    while pos < len(msg):
        tag = _uvarint(msg, pos)
        if tag is None:
            raise VerificationError("state.bin holds a truncated entry", hint=DAMAGED)
        number, wire = tag[0] >> 3, tag[0] & 7
        pos = tag[1]
        if wire == 2:
            ln = _uvarint(msg, pos)
            if ln is None or ln[1] + ln[0] > len(msg):
                raise VerificationError("state.bin holds a truncated entry", hint=DAMAGED)
            if number == 1:
                key = msg[ln[1]:ln[1] + ln[0]].decode("utf-8", "replace")
            elif number == 2:
                value_len = ln[0]
            pos = ln[1] + ln[0]
        elif wire == 0:
            v = _uvarint(msg, pos)
            if v is None:
                raise VerificationError("state.bin holds a truncated entry", hint=DAMAGED)
            pos = v[1]
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise VerificationError(f"state.bin holds an unknown field type {wire}", hint=DAMAGED)
    return key, value_len


class RaftServer(Foreign):
    ID: Annotated[str, Meta(description="raft server id")] = ""
    Address: Annotated[str, Meta(description="raft address")] = ""
    Suffrage: Annotated[int, Meta(description="0: voter, 1: non-voter")] = 0


class RaftConfiguration(Foreign):
    Servers: Annotated[list[RaftServer] | None, Meta(description="the raft peers")] = None


class RaftMeta(Foreign):
    """meta.json of a Raft snapshot (written by OpenBao: keys we do not use are ignored)."""

    Index: Annotated[int | None, Meta(description="last raft index in the snapshot")] = None
    Term: Annotated[int | None, Meta(description="raft term")] = None
    Size: Annotated[int | None, Meta(description="size of state.bin")] = None
    Configuration: Annotated[RaftConfiguration | None, Meta(description="the peers when it was taken")] = None


def describe_meta(meta: Any, *, source: str = "meta.json") -> dict[str, Any]:
    """The parts of a Raft meta.json an operator cares about; an unexpected shape is one VerificationError."""
    from vaultops.files.loader import validate

    doc = validate(meta, RaftMeta, source=source, error=VerificationError, hint=DAMAGED, yaml=False)
    servers = (doc.Configuration.Servers if doc.Configuration else None) or []
    return {"index": doc.Index, "term": doc.Term, "size": doc.Size,
            "peers": [{"id": s.ID, "address": s.Address, "voter": s.Suffrage == 0} for s in servers]}

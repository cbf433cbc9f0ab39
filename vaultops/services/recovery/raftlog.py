"""How far a stopped node's raft log goes, read from its data files (boltdb.py) without starting it.

    state = read_log_state(read_at_raft_db, read_at_vault_db, node="node2")
    state.last_index, state.last_term     # the newest entry the node holds, committed or not
    state.applied_index                   # what its state machine had applied (vault.db)
    state.servers                         # the membership it last applied: ((id, address, voter), ...)

Why these numbers: a peers.json recovery (hashicorp/raft `RecoverCluster`) restores the node's
snapshot and then applies EVERY entry in its log store as committed, so the node with the
most recent log — highest (last term, last index), the order raft's own election uses — keeps
the most writes. The log lives in raft.db's `logs` bucket (keys: 8-byte big-endian indexes,
values: msgpack-encoded raft.Log with Index/Term/Type fields); the applied index in vault.db's
`config` bucket, key `latest_indexes` (protobuf IndexValue {term = 1, index = 2}); the applied
membership under `latest_config` (ConfigurationValue {index = 1, servers = 2 {suffrage = 1,
id = 2, address = 3}}). After an earlier recovery or a snapshot install the log can be empty:
then the applied index is the last one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from vaultops.services.recovery.boltdb import BoltError, BoltFile, ReadAt

MAX_NEST = 16


@dataclass(frozen=True)
class LogState:
    node: str
    last_index: int
    last_term: int
    applied_index: int
    applied_term: int
    log_entries: bool                              # False: the log is empty (the index is the applied one)
    servers: tuple[tuple[str, str, bool], ...]     # (raft id, cluster address, voter) as last applied

    @property
    def rank(self) -> tuple[int, int]:
        """Raft's own "more up to date" order: the last term first, then the last index."""
        return self.last_term, self.last_index

    def to_json(self) -> dict[str, Any]:
        return {"last_index": self.last_index, "last_term": self.last_term, "applied_index": self.applied_index,
                "log_entries": self.log_entries,
                "servers": [{"id": i, "address": a, "voter": v} for i, a, v in self.servers]}


def read_log_state(raft_db: ReadAt, vault_db: ReadAt, *, node: str) -> LogState:
    log = BoltFile(raft_db, name=f"{node}: raft/raft.db")
    fsm = BoltFile(vault_db, name=f"{node}: vault.db")
    applied_term, applied_index = _index_value(fsm.get(b"config", b"latest_indexes"), node)
    servers = _configuration(fsm.get(b"config", b"latest_config"), node)
    last = log.last(b"logs")
    if last is None:
        return LogState(node, applied_index, applied_term, applied_index, applied_term, False, servers)
    key, value = last
    if len(key) != 8:
        raise BoltError(f"{node}: raft.db holds a log key of {len(key)} bytes", hint="not a raft log?")
    index = struct.unpack(">Q", key)[0]
    fields = log_fields(value, node)
    term = fields.get("Term")
    if not isinstance(term, int) or fields.get("Index") != index:
        raise BoltError(f"{node}: the last log entry ({index}) does not name its index and term",
                        hint="the log is damaged: choose another survivor")
    if (term, index) < (applied_term, applied_index):   # a snapshot installed past the log's end
        return LogState(node, applied_index, applied_term, applied_index, applied_term, True, servers)
    return LogState(node, index, term, applied_index, applied_term, True, servers)


# -- protobuf (only varints, length-delimited fields) ----------------------------------------


def _index_value(raw: bytes | None, node: str) -> tuple[int, int]:
    if raw is None:
        return 0, 0
    fields = dict(_proto_fields(raw, node))
    return int(fields.get(1, 0)), int(fields.get(2, 0))


def _configuration(raw: bytes | None, node: str) -> tuple[tuple[str, str, bool], ...]:
    if raw is None:
        return ()
    out = []
    for number, value in _proto_fields(raw, node):
        if number == 2 and isinstance(value, bytes):
            server = dict(_proto_fields(value, node))
            ident, address = server.get(2, b""), server.get(3, b"")
            voter = server.get(1, 0) == 0   # raft.Voter = 0 (proto3 leaves it out), Nonvoter = 1, Staging = 2
            out.append((_text(ident), _text(address), voter))
    return tuple(out)


def _proto_fields(raw: bytes, node: str) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    at = 0
    while at < len(raw):
        tag, at = _varint(raw, at, node)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, at = _varint(raw, at, node)
            out.append((number, value))
        elif wire == 2:
            size, at = _varint(raw, at, node)
            if at + size > len(raw):
                raise BoltError(f"{node}: vault.db holds a truncated record", hint="the file is damaged")
            out.append((number, raw[at:at + size]))
            at += size
        else:
            raise BoltError(f"{node}: vault.db holds a record of an unknown shape (wire type {wire})",
                            hint="an OpenBao version this vaultops does not know?")
    return out


def _varint(raw: bytes, at: int, node: str) -> tuple[int, int]:
    value = shift = 0
    while at < len(raw) and shift < 64:
        b = raw[at]
        value |= (b & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not b & 0x80:
            return value, at
    raise BoltError(f"{node}: vault.db holds a damaged number", hint="the file is damaged")


def _text(value: int | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


# -- msgpack (the subset go-msgpack writes for raft.Log) --------------------------------------


def log_fields(raw: bytes, node: str = "node") -> dict[str, Any]:
    """The top-level map of a msgpack-encoded raft.Log; nested values are skipped, not built."""
    reader = _Msgpack(raw, node)
    size = reader.map_header()
    out: dict[str, Any] = {}
    for _ in range(size):
        key = reader.value(0)
        out[key if isinstance(key, str) else str(key)] = reader.value(0)
    return out


class _Msgpack:
    def __init__(self, raw: bytes, node: str) -> None:
        self.raw, self.at, self.node = raw, 0, node

    def _bad(self, what: str) -> BoltError:
        return BoltError(f"{self.node}: a raft log entry is damaged ({what})", hint="choose another survivor")

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.raw):
            raise self._bad("truncated")
        out = self.raw[self.at:self.at + n]
        self.at += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def map_header(self) -> int:
        b = self.uint(1)
        if 0x80 <= b <= 0x8F:
            return b & 0x0F
        if b in (0xDE, 0xDF):
            return self.uint(2 if b == 0xDE else 4)
        raise self._bad("not a map")

    def value(self, depth: int) -> Any:
        if depth > MAX_NEST:
            raise self._bad("nested too deep")
        b = self.uint(1)
        if b <= 0x7F or b >= 0xE0:
            return b if b <= 0x7F else b - 0x100
        if 0xA0 <= b <= 0xBF:
            return self.take(b & 0x1F).decode(errors="replace")
        if 0x80 <= b <= 0x9F:
            return self._container(b & 0x0F, b <= 0x8F, depth)   # fixmap, fixarray
        return self._typed(b, depth)

    def _typed(self, b: int, depth: int) -> Any:
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if b in simple:
            return simple[b]
        if 0xCC <= b <= 0xCF:
            return self.uint(1 << (b - 0xCC))
        if 0xD0 <= b <= 0xD3:
            n = 1 << (b - 0xD0)
            return int.from_bytes(self.take(n), "big", signed=True)
        sized = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}
        if b in sized:
            return self.take(self.uint(sized[b]))
        if b in (0xCA, 0xCB):
            return self.take(4 if b == 0xCA else 8)
        if b in (0xDC, 0xDD, 0xDE, 0xDF):
            return self._container(self.uint(2 if b in (0xDC, 0xDE) else 4), b >= 0xDE, depth)
        if 0xD4 <= b <= 0xD8:
            return self.take(1 + (1 << (b - 0xD4)))
        if b in (0xC7, 0xC8, 0xC9):
            return self.take(1 + self.uint({0xC7: 1, 0xC8: 2, 0xC9: 4}[b]))
        raise self._bad(f"unknown type byte {b:#x}")

    def _container(self, size: int, is_map: bool, depth: int) -> None:
        for _ in range(size * (2 if is_map else 1)):
            self.value(depth + 1)
        return None


__all__ = ["LogState", "log_fields", "read_log_state"]

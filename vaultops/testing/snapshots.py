"""Build snapshot archives in the real Raft/Consul format, for tests and the Consul double.

The layout matches what OpenBao writes (measured: gzip of a ustar tar holding meta.json,
state.bin, SHA256SUMS and - for Raft - SHA256SUMS.sealed, in that order). state.bin is a
stream of uvarint-length-delimited protobuf StorageEntry{1: key, 2: value} messages, as in
Vault's raft FSM. The sealed sums here are random bytes: tests cannot produce a real seal.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterable, Sequence
from typing import Any


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def storage_entry(key: str, value: bytes) -> bytes:
    k = key.encode()
    msg = b"\x0a" + _uvarint(len(k)) + k + b"\x12" + _uvarint(len(value)) + value
    return _uvarint(len(msg)) + msg


def state_bin(entries: Iterable[tuple[str, bytes]]) -> bytes:
    return b"".join(storage_entry(k, v) for k, v in entries)


def raft_meta(*, index: int = 42, term: int = 3, size: int = 0, servers: Sequence[str] = ("node1",)) -> dict[str, Any]:
    return {"Version": 1, "ID": "bolt-snapshot", "Index": index, "Term": term, "Peers": None,
            "Configuration": {"Servers": [{"Suffrage": 0, "ID": s, "Address": f"127.0.0.1:{8201 + i}"}
                                          for i, s in enumerate(servers)]},
            "ConfigurationIndex": 1, "Size": size}


def make_archive(*, kind: str = "raft", entries: Iterable[tuple[str, bytes]] = (("core/x", b"v"),),
                 meta: dict[str, Any] | None = None, extra_members: Sequence[tuple[str, bytes]] = (),
                 omit: Sequence[str] = (), sums_override: bytes | None = None,
                 sealed: bytes | None = None) -> bytes:
    state = state_bin(entries)
    meta_bytes = json.dumps(meta or raft_meta(size=len(state)), separators=(",", ":")).encode()
    sums = sums_override if sums_override is not None else (
        f"{hashlib.sha256(meta_bytes).hexdigest()}  meta.json\n"
        f"{hashlib.sha256(state).hexdigest()}  state.bin\n").encode()
    members = [("meta.json", meta_bytes), ("state.bin", state), ("SHA256SUMS", sums)]
    if kind == "raft":
        members.append(("SHA256SUMS.sealed", sealed if sealed is not None else os.urandom(185)))
    members += list(extra_members)
    return tar_gz([(n, d) for n, d in members if n not in omit])


def tar_gz(members: Sequence[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)

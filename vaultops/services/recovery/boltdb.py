"""A read-only reader of BoltDB (bbolt) files: the last key of a bucket, or one key's value.

OpenBao keeps a node's raft log in `<raft path>/raft/raft.db` and its applied state in
`<raft path>/vault.db`, both bbolt files (go.etcd.io/bbolt through hashicorp/raft-boltdb/v2).
vaultops reads them from a STOPPED node to learn how far its log goes without starting a server
(a started server may win an election and append to its log). There is no offline command in
the bao CLI for this (`bao operator raft` has join, list-peers, remove-peer, promote, demote,
snapshot and autopilot only, all through a running server), so this module reads the format:

    page header  id u64, flags u16, count u16, overflow u32                  (16 bytes)
    meta page    magic 0xED0CDAED, version 2, page size, flags, root bucket {root pgid, sequence},
                 freelist pgid, high-water pgid, txid, checksum (FNV-1a 64 of the 56 bytes before it)
    branch elem  pos u32, ksize u32, pgid u64   (key at elem + pos)
    leaf elem    flags u32, pos u32, ksize u32, vsize u32 (key, then value, at elem + pos)
    bucket value {root pgid u64, sequence u64}; root 0 = an inline page follows

Of the two meta pages the valid one with the higher txid is the last committed transaction.
The file is treated as hostile: every page id is checked against the high-water mark, every
element against its page, the depth is bounded, and anything else is one BoltError.
Pages come from a `read_at(offset, size)` callable, so a node driver can serve only the pages
that are needed (a raft.db is as large as the log).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from vaultops.errors import VaultOpsError

ReadAt = Callable[[int, int], bytes]

MAGIC, VERSION = 0xED0CDAED, 2
BRANCH, LEAF, META = 0x01, 0x02, 0x04
BUCKET_LEAF = 0x01
HEADER, ELEMENT = 16, 16
MAX_DEPTH = 32
MAX_PAGE_SIZE = 1 << 16
_META = struct.Struct("<IIIIQQQQQQ")   # magic version page_size flags root seq freelist pgid txid checksum


class BoltError(VaultOpsError):
    """Not a bbolt file, or a damaged one."""


@dataclass(frozen=True)
class Meta:
    page_size: int
    root: int
    high_water: int
    txid: int


@dataclass(frozen=True)
class Page:
    id: int
    flags: int
    count: int
    data: bytes          # the whole page, header included (inline pages: the bytes of the bucket value)

    def branch(self, i: int) -> tuple[bytes, int]:
        pos, ksize, pgid = struct.unpack_from("<IIQ", self.data, HEADER + i * ELEMENT)
        return self._slice(HEADER + i * ELEMENT + pos, ksize), pgid

    def leaf(self, i: int) -> tuple[int, bytes, bytes]:
        at = HEADER + i * ELEMENT
        flags, pos, ksize, vsize = struct.unpack_from("<IIII", self.data, at)
        key = self._slice(at + pos, ksize)
        return flags, key, self._slice(at + pos + ksize, vsize)

    def _slice(self, start: int, size: int) -> bytes:
        if start < 0 or start + size > len(self.data):
            raise BoltError(f"page {self.id}: an element points outside the page",
                            hint="the file is damaged; read another node's")
        return self.data[start:start + size]


def fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class BoltFile:
    """One bbolt file as of its last committed transaction."""

    def __init__(self, read_at: ReadAt, *, name: str = "bolt file") -> None:
        self.read_at, self.name = read_at, name
        self.meta = self._meta()

    # -- meta ------------------------------------------------------------------------
    def _meta(self) -> Meta:
        first = self._meta_at(0)
        size = first.page_size if first else 4096
        second = self._meta_at(size)
        found = [m for m in (first, second) if m is not None]
        if not found:
            raise BoltError(f"{self.name}: not a bbolt file (no valid meta page)",
                            hint="check the raft path: it must hold raft/raft.db and vault.db")
        return max(found, key=lambda m: m.txid)

    def _meta_at(self, offset: int) -> Meta | None:
        raw = self.read_at(offset + HEADER, _META.size)
        if len(raw) < _META.size:
            return None
        magic, version, size, _flags, root, _seq, _free, pgid, txid, checksum = _META.unpack(raw)
        if magic != MAGIC or version != VERSION or fnv64a(raw[:56]) != checksum:
            return None
        if not 512 <= size <= MAX_PAGE_SIZE or size & (size - 1):
            return None
        return Meta(page_size=size, root=root, high_water=pgid, txid=txid)

    # -- pages -----------------------------------------------------------------------
    def page(self, pgid: int) -> Page:
        if not 2 <= pgid < self.meta.high_water:
            raise BoltError(f"{self.name}: page {pgid} is outside the file's {self.meta.high_water} pages",
                            hint="the file is damaged; read another node's")
        size = self.meta.page_size
        head = self.read_at(pgid * size, HEADER)
        if len(head) < HEADER:
            raise BoltError(f"{self.name}: the file ends inside page {pgid}", hint="the file is truncated")
        _id, flags, count, overflow = struct.unpack("<QHHI", head)
        if pgid + overflow >= self.meta.high_water:
            raise BoltError(f"{self.name}: page {pgid} overflows the file", hint="the file is damaged")
        data = self.read_at(pgid * size, (overflow + 1) * size)
        return _checked(Page(pgid, flags, count, data), self.name)

    def bucket_root(self, name: bytes) -> Page | None:
        """The root page of a top-level bucket (an inline bucket's page), None if there is no such bucket."""
        found = self._find(self.page(self.meta.root), name, 0)
        if found is None:
            return None
        flags, value = found
        if not flags & BUCKET_LEAF or len(value) < 16:
            raise BoltError(f"{self.name}: {name.decode(errors='replace')!r} is not a bucket", hint="not a raft file?")
        root = struct.unpack_from("<Q", value)[0]
        if root == 0:   # inline: the page is stored in the value, after the bucket header
            if len(value) < 16 + HEADER:
                raise BoltError(f"{self.name}: the inline bucket {name.decode(errors='replace')!r} is cut short",
                                hint="the file is damaged")
            flags, count = struct.unpack_from("<HH", value, 16 + 8)
            return _checked(Page(0, flags, count, value[16:]), self.name)
        return self.page(root)

    # -- reading -------------------------------------------------------------------------
    def last(self, bucket: bytes) -> tuple[bytes, bytes] | None:
        """The last (greatest) key of *bucket* and its value; None when the bucket is empty or missing."""
        root = self.bucket_root(bucket)
        return None if root is None else self._last(root, 0)

    def get(self, bucket: bytes, key: bytes) -> bytes | None:
        root = self.bucket_root(bucket)
        if root is None:
            return None
        found = self._find(root, key, 0)
        return None if found is None else found[1]

    def _last(self, page: Page, depth: int) -> tuple[bytes, bytes] | None:
        _deep(depth, self.name)
        if page.flags & LEAF:
            if page.count == 0:
                return None
            _flags, key, value = page.leaf(page.count - 1)
            return key, value
        for i in reversed(range(page.count)):   # an empty child (never left by bbolt's rebalance) is skipped
            found = self._last(self.page(page.branch(i)[1]), depth + 1)
            if found is not None:
                return found
        return None

    def _find(self, page: Page, key: bytes, depth: int) -> tuple[int, bytes] | None:
        _deep(depth, self.name)
        if page.flags & LEAF:
            for i in range(page.count):
                flags, k, value = page.leaf(i)
                if k == key:
                    return flags, value
            return None
        child = None
        for i in range(page.count):       # the last element whose key is <= key
            k, pgid = page.branch(i)
            if k > key and child is not None:
                break
            child = pgid
        return None if child is None else self._find(self.page(child), key, depth + 1)


def _checked(page: Page, name: str) -> Page:
    if page.flags & (BRANCH | LEAF) == 0:
        raise BoltError(f"{name}: page {page.id} is neither a branch nor a leaf (flags {page.flags:#x})",
                        hint="the file is damaged or not a bbolt file")
    if HEADER + page.count * ELEMENT > len(page.data):
        raise BoltError(f"{name}: page {page.id} lists more elements than it holds", hint="the file is damaged")
    return page


def _deep(depth: int, name: str) -> None:
    if depth > MAX_DEPTH:
        raise BoltError(f"{name}: the tree is deeper than {MAX_DEPTH} levels (a loop?)", hint="the file is damaged")


def bytes_reader(data: bytes) -> ReadAt:
    """read_at over bytes already in memory (a file a driver returned whole)."""
    def read_at(offset: int, size: int) -> bytes:
        return data[offset:offset + size]
    return read_at


__all__ = ["BoltError", "BoltFile", "ReadAt", "bytes_reader", "fnv64a"]

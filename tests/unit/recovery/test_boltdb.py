"""The read-only bbolt reader and the raft log facts read with it.

The fixtures are a real OpenBao 2.7.2 node's raft/raft.db and vault.db (a one-node sandbox, 400
kv writes, stopped), cut at their high-water page (bbolt never reads past it) and gzipped. Its
`logs` bucket has a branch root (48 leaves), so the descent is exercised, not only one leaf.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from vaultops.services.recovery.boltdb import (BRANCH, HEADER, LEAF, MAGIC, BoltError, BoltFile, bytes_reader,
                                               fnv64a)
from vaultops.services.recovery.raftlog import LogState, log_fields, read_log_state

DATA = Path(__file__).parent / "data"
RAFT_DB = gzip.decompress((DATA / "raft.db.gz").read_bytes())
VAULT_DB = gzip.decompress((DATA / "vault.db.gz").read_bytes())


def state(raft: bytes = RAFT_DB, fsm: bytes = VAULT_DB) -> LogState:
    return read_log_state(bytes_reader(raft), bytes_reader(fsm), node="node1")


def test_real_node_files_give_the_last_index_term_and_membership() -> None:
    found = state()
    # the server's own sys/leader said committed = applied = 430 before the stop; the stop appended one entry
    assert (found.last_index, found.last_term) == (431, 3)
    assert found.applied_index == 431 and found.log_entries
    assert [(i, v) for i, _a, v in found.servers] == [("node1", True)]
    assert found.servers[0][1].startswith("127.0.0.1:")


def test_the_logs_bucket_is_a_tree_and_its_last_key_is_the_greatest() -> None:
    bolt = BoltFile(bytes_reader(RAFT_DB))
    root = bolt.bucket_root(b"logs")
    assert root is not None and root.flags & BRANCH and root.count > 10
    key, value = bolt.last(b"logs") or (b"", b"")
    assert struct.unpack(">Q", key)[0] == 431
    assert log_fields(value)["Index"] == 431
    assert bolt.get(b"conf", b"CurrentTerm") == struct.pack(">Q", 3)
    assert bolt.get(b"conf", b"no such key") is None and bolt.last(b"no such bucket") is None


def test_the_newer_meta_page_wins_and_a_damaged_one_is_skipped() -> None:
    bolt = BoltFile(bytes_reader(RAFT_DB))
    size = bolt.meta.page_size
    metas = [struct.unpack_from("<Q", RAFT_DB, off + HEADER + 48)[0] for off in (0, size)]   # txids
    newer = 0 if metas[0] > metas[1] else size
    broken = bytearray(RAFT_DB)
    broken[newer + HEADER + 60] ^= 0xFF                  # its checksum no longer matches
    older = BoltFile(bytes_reader(bytes(broken)))
    assert older.meta.txid == min(metas)
    both = bytearray(broken)
    both[(size - newer) + HEADER + 60] ^= 0xFF
    with pytest.raises(BoltError, match="not a bbolt file"):
        BoltFile(bytes_reader(bytes(both)))


def test_a_truncated_file_is_one_error() -> None:
    with pytest.raises(BoltError):
        state(raft=RAFT_DB[: len(RAFT_DB) // 2])
    with pytest.raises(BoltError, match="not a bbolt file"):
        state(raft=b"")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(RAFT_DB) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_random_damage_is_a_bolt_error_or_an_answer_never_a_crash(flips: list[tuple[int, int]]) -> None:
    damaged = bytearray(RAFT_DB)
    for at, value in flips:
        damaged[at] = value
    try:
        found = state(raft=bytes(damaged))
    except BoltError:
        return
    assert found.last_index >= 0


# -- a tiny bbolt file built here: inline buckets, an empty log, a loop -----------------------------


def _page(pgid: int, flags: int, elements: list[tuple[int, bytes, bytes]], size: int = 4096) -> bytes:
    """A leaf page: (flags, key, value) elements, keys and values after the element headers."""
    head = struct.pack("<QHHI", pgid, flags, len(elements), 0)
    body, blobs = b"", b""
    base = HEADER + 16 * len(elements)
    for i, (eflags, key, value) in enumerate(elements):
        pos = base + len(blobs) - (HEADER + 16 * i)
        body += struct.pack("<IIII", eflags, pos, len(key), len(value))
        blobs += key + value
    return (head + body + blobs).ljust(size, b"\0")   # size 0: exactly the page (an inline bucket's)


def _meta(pgid: int, root: int, high: int, txid: int) -> bytes:
    meta = struct.pack("<IIIIQQQQQ", MAGIC, 2, 4096, 0, root, 0, 0xFFFFFFFFFFFFFFFF, high, txid)
    return (struct.pack("<QHHI", pgid, 0x04, 0, 0) + meta + struct.pack("<Q", fnv64a(meta))).ljust(4096, b"\0")


def _inline(elements: list[tuple[int, bytes, bytes]]) -> bytes:
    return struct.pack("<QQ", 0, 0) + _page(0, LEAF, elements, size=0)


def _file(buckets: list[tuple[bytes, bytes]]) -> bytes:
    root = _page(2, LEAF, [(1, name, value) for name, value in buckets])
    return _meta(0, 2, 3, 7) + _meta(1, 2, 3, 6) + root


def test_inline_buckets_and_an_empty_log_fall_back_to_the_applied_index() -> None:
    index_value = bytes([0x08, 5, 0x10, 0xE7, 0x07])        # proto IndexValue {term: 5, index: 999}
    server = bytes([0x12, 2]) + b"n9" + bytes([0x1A, 11]) + b"10.0.0.9:82"
    config = bytes([0x08, 1, 0x12, len(server)]) + server
    fsm = _file([(b"config", _inline([(0, b"latest_config", config), (0, b"latest_indexes", index_value)])),
                 (b"data", _inline([]))])
    raft = _file([(b"conf", _inline([])), (b"logs", _inline([]))])
    found = state(raft=raft, fsm=fsm)
    assert (found.last_index, found.last_term, found.log_entries) == (999, 5, False)
    assert found.servers == (("n9", "10.0.0.9:82", True),)


def test_a_branch_that_points_at_itself_is_refused() -> None:
    loop = struct.pack("<QHHI", 3, BRANCH, 1, 0) + struct.pack("<IIQ", 16, 1, 3) + b"a"
    logs = struct.pack("<QQ", 3, 0)          # the bucket's root is page 3, a branch to itself
    raft = _meta(0, 2, 4, 7) + _meta(1, 2, 4, 6) + _page(2, LEAF, [(1, b"logs", logs)]) + loop.ljust(4096, b"\0")
    with pytest.raises(BoltError, match="deeper than"):
        BoltFile(bytes_reader(raft)).last(b"logs")


def test_a_page_beyond_the_high_water_mark_is_refused() -> None:
    logs = struct.pack("<QQ", 99, 0)
    raft = _meta(0, 2, 3, 7) + _meta(1, 2, 3, 6) + _page(2, LEAF, [(1, b"logs", logs)])
    with pytest.raises(BoltError, match="outside the file"):
        BoltFile(bytes_reader(raft)).last(b"logs")


def test_msgpack_log_fields() -> None:
    # {"Index": 300, "Term": 7, "Data": <bin 3>, "Extensions": nil, "AppendedAt": <ext>, "Type": 0}
    raw = (b"\x86\xa5Index\xcd\x01\x2c\xa4Term\x07\xa4Data\xc4\x03abc\xaaExtensions\xc0"
           b"\xaaAppendedAt\xd7\xff" + b"\0" * 8 + b"\xa4Type\x00")
    assert log_fields(raw) == {"Index": 300, "Term": 7, "Data": b"abc", "Extensions": None,
                               "AppendedAt": b"\xff" + b"\0" * 8, "Type": 0}
    with pytest.raises(BoltError):
        log_fields(b"\x91\x01")
    with pytest.raises(BoltError):
        log_fields(b"\x81\xa5Index")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_as_a_log_entry_are_fields_or_one_error(raw: bytes) -> None:
    try:
        assert isinstance(log_fields(raw), dict)
    except BoltError:
        pass

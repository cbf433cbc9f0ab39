"""Journal.append_unless: an event several processes observe is written once (checked under the lock)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from vaultops.journal import Journal
from vaultops.services.ceremony.journal import NODE_UNSEALED, CeremonyJournal, Once


def test_append_unless_skips_what_the_tail_already_says(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl", cluster="c")
    j.append("other", details={"k": 1})
    assert j.append_unless(lambda e: e["details"].get("k") == 1, "x") is None
    assert j.append_unless(lambda e: e["details"].get("k") == 2, "x", details={"k": 2}) is not None
    assert [e["action"] for e in j.entries()] == ["other", "x"] and j.verify() == []


def test_the_window_is_bounded(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl", cluster="c")
    j.append("old", details={"k": 1})
    for i in range(20):
        j.append("filler", details={"pad": "x" * 200, "i": i})
    assert j.append_unless(lambda e: e["action"] == "old", "x", tail=1024) is not None


def test_once_by_nonce_and_by_overlapping_spans(tmp_path: Path) -> None:
    cj = CeremonyJournal(Journal(tmp_path / "j.jsonl", cluster="c"), session="a")
    cj.write(NODE_UNSEALED, "node1 is unsealed", node="node1", once=Once(span=(10.0, 12.0)))
    cj.write(NODE_UNSEALED, "node1 is unsealed", node="node1", once=Once(span=(11.5, 13.0)))  # the same change
    cj.write(NODE_UNSEALED, "node2 is unsealed", node="node2", once=Once(span=(11.5, 13.0)))  # another node
    cj.write(NODE_UNSEALED, "node1 is unsealed", node="node1", once=Once(span=(20.0, 21.0)))  # a later change
    cj.write("unseal.nonce-changed", "lost", node="node1", once=Once(lost_nonce="n1"))
    cj.write("unseal.nonce-changed", "lost", node="node1", once=Once(lost_nonce="n1"))
    got = [(e["action"], e["node"]) for e in Journal(tmp_path / "j.jsonl").entries()]
    assert got == [(NODE_UNSEALED, "node1"), (NODE_UNSEALED, "node2"), (NODE_UNSEALED, "node1"),
                   ("unseal.nonce-changed", "node1")]


def _writer(path: str, barrier: object) -> None:
    cj = CeremonyJournal(Journal(path, cluster="c"), session="p")
    barrier.wait()  # type: ignore[attr-defined]
    for i in range(10):
        cj.write(NODE_UNSEALED, "n", node=f"node{i}", once=Once(span=(100.0 + i, 100.5 + i)))


def test_processes_racing_write_each_event_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_writer, args=(str(tmp_path / "j.jsonl"), barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    j = Journal(tmp_path / "j.jsonl")
    assert sorted(e["node"] for e in j.entries()) == sorted(f"node{i}" for i in range(10))
    assert j.verify() == []

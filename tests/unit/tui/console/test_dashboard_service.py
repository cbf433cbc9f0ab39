"""The dashboard service: every cell on its own thread and deadline; a hung node delays only its own row."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from console_harness import FakeVault, fake_cluster

from vaultops.config import parse_config
from vaultops.errors import VaultOpsError
from vaultops.journal import Journal
from vaultops.services.backup.manifest import MANIFEST_SUFFIX, backup_name
from vaultops.services.dashboard import (Cell, CellState, Dashboard, DashboardSnapshot, backup_probe, dashboard_for,
                                         journal_probe)


def filled(*names: str):  # type: ignore[no-untyped-def]
    return lambda s: all(s.row(n).status.state is CellState.OK for n in names)


def test_a_hung_node_fills_its_own_cell_only_and_times_out() -> None:
    nodes = fake_cluster(3)
    nodes[2].hang()
    dash = Dashboard(nodes, cluster="c", storage="raft", timeout=0.3)
    try:
        dash.refresh()
        snap = dash.wait(lambda s: filled("node1", "node2")(s) and s.raft.settled, timeout=5)
        assert snap.row("node3").status.state is CellState.PENDING
        assert snap.raft.state is CellState.OK and snap.autopilot.failure_tolerance == 1
        snap = dash.wait(lambda s: s.row("node3").status.state is CellState.TIMEOUT, timeout=5)
        assert "no answer within 0.3s" in snap.row("node3").status.error
        assert snap.row("node1").status.state is CellState.OK
        calls = nodes[2].calls
        assert calls == 1
        dash.refresh()  # the hung probe is still out: no second thread for node3
        dash.wait(filled("node1", "node2"), timeout=5)
        assert nodes[2].calls == calls
    finally:
        nodes[2].release()
    snap = dash.wait(filled("node3"), timeout=5)
    assert snap.row("node3").node.ha_role == "standby"


def test_a_dead_node_is_an_error_cell_and_keeps_the_others() -> None:
    nodes = fake_cluster(3)
    nodes[1].down = True
    dash = Dashboard(nodes, cluster="c", storage="raft", timeout=2)
    dash.refresh()
    snap = dash.wait(lambda s: all(r.status.settled for r in s.nodes), timeout=5)
    assert snap.row("node2").status.state is CellState.ERROR
    assert "connection refused" in snap.row("node2").status.error
    assert snap.row("node1").node.ha_role == "active" and snap.active == "node1"


def test_raft_cell_comes_from_the_active_node_and_says_when_there_is_none() -> None:
    nodes = fake_cluster(3, sealed=True)
    for n in nodes:
        n.active = False
    dash = Dashboard(nodes, cluster="c", storage="raft", timeout=2)
    dash.refresh()
    snap = dash.wait(lambda s: s.raft.settled, timeout=5)
    assert snap.raft.state is CellState.ERROR and snap.raft.error == "no active node"
    assert sum(n.autopilot_calls for n in nodes) == 0


def test_cells_that_are_not_configured_are_absent() -> None:
    nodes = fake_cluster(2, token=None)
    dash = Dashboard(nodes, cluster="c", storage="raft")
    snap = dash.snapshot()
    assert snap.raft.state is CellState.ABSENT  # no token: autopilot cannot be read
    assert snap.backup.state is CellState.ABSENT and snap.journal.state is CellState.ABSENT
    assert all(r.tls.state is CellState.ABSENT for r in snap.nodes)
    pg = Dashboard(fake_cluster(2), cluster="c", storage="postgresql")
    assert pg.snapshot().raft.state is CellState.ABSENT


def test_a_probe_that_fails_marks_only_its_cell() -> None:
    def broken() -> float:
        raise RuntimeError("bug")

    def unreachable() -> float:
        raise VaultOpsError("node2: TLS handshake failed", hint="x")

    nodes = fake_cluster(2)
    dash = Dashboard(nodes, cluster="c", storage="raft", timeout=2,
                     tls={"node1": broken, "node2": unreachable}, backup=lambda: 42)
    dash.refresh()
    snap = dash.wait(lambda s: all(r.tls.settled for r in s.nodes) and s.backup.settled, timeout=5)
    assert snap.row("node1").tls.error == "RuntimeError: bug"
    assert snap.row("node2").tls.state is CellState.ERROR
    assert snap.backup.value == 42 and snap.row("node1").status.state is CellState.OK


def test_on_change_is_called_as_cells_arrive() -> None:
    seen: list[int] = []
    dash = Dashboard(fake_cluster(2), cluster="c", storage="raft", on_change=lambda: seen.append(1))
    dash.refresh()
    dash.wait(filled("node1", "node2"), timeout=5)
    assert len(seen) >= 3


def test_backup_and_journal_probes_read_the_real_sink_and_journal(tmp_path: Path) -> None:
    sink = tmp_path / "sink"
    sink.mkdir()
    when = datetime.now(timezone.utc) - timedelta(hours=2)
    older = backup_name("prod", when - timedelta(days=1), "snap")
    newest = backup_name("prod", when, "snap")
    unverified = backup_name("prod", when + timedelta(minutes=30), "snap")
    for name in (older, newest, unverified):
        (sink / name).write_bytes(b"x")
    for name in (older, newest):
        (sink / (name + MANIFEST_SUFFIX)).write_text(json.dumps({"name": name}))
    cfg = parse_config({"cluster": {"name": "prod"}, "nodes": [{"name": "n1", "address": "http://127.0.0.1:1"}],
                        "backup": {"sinks": [{"type": "local", "path": str(sink)}]}}, path=tmp_path / "v.yaml")
    probe = backup_probe(cfg)
    assert probe is not None
    info = probe()
    assert info.name == newest and 7000 < info.age() < 7400
    journal = Journal(tmp_path / "j.jsonl", operator="ann", cluster="prod")
    for i in range(12):
        journal.append(f"test.{i}", node="n1")
    lines = journal_probe(journal, last=5)()
    assert [line.action for line in lines] == [f"test.{i}" for i in range(7, 12)]
    assert lines[0].operator == "ann" and lines[0].node == "n1"
    dash = dashboard_for(cfg, [FakeVault("n1", active=True)], journal=journal, timeout=2)
    dash.refresh()
    snap: DashboardSnapshot = dash.wait(lambda s: s.backup.settled and s.journal.settled, timeout=5)
    assert snap.backup.value.name == newest and len(snap.journal.value) == 8


def test_no_backup_sinks_means_no_backup_probe(tmp_path: Path) -> None:
    cfg = parse_config({"cluster": {"name": "prod"}, "nodes": [{"name": "n1", "address": "http://127.0.0.1:1"}]})
    assert backup_probe(cfg) is None


def test_backup_probe_shows_the_newest_backups_epoch_and_epochs_at_risk(tmp_path: Path) -> None:
    import hashlib

    from vaultops.services.backup.manifest import KeyEpoch, Manifest
    from vaultops.services.ceremony.manifest import Manifest as Keyholders, ScryptParams
    from vaultops.services.ceremony.shares import Share
    from vaultops.tui.dashboard_screen import backup_line

    sink = tmp_path / "sink"
    sink.mkdir()
    holders = Keyholders(cluster_id="c1", threshold=2, shares=2)
    for i, name in enumerate(["alice", "bob"], 1):
        holders = holders.enroll(name, Share(bytes([3] * 32 + [i])), params=ScryptParams(n=2, r=1, p=1))
    holders.save(tmp_path / "keyholders.yaml")
    when = datetime.now(timezone.utc) - timedelta(hours=1)
    name = backup_name("prod", when, "snap")
    (sink / name).write_bytes(b"x")
    manifest = Manifest(name=name, kind="raft", cluster_name="prod", cluster_id="c1", server_version="2.7.2",
                        source_node="n1", size=1, sha256=hashlib.sha256(b"x").hexdigest(),
                        started_at=when.isoformat(), finished_at=when.isoformat(), key_epoch=KeyEpoch(2, 2, number=1))
    (sink / (name + MANIFEST_SUFFIX)).write_bytes(manifest.to_json())
    cfg = parse_config({"cluster": {"name": "prod"}, "nodes": [{"name": "n1", "address": "http://127.0.0.1:1"}],
                        "keyholders": {"manifest": str(tmp_path / "keyholders.yaml")},
                        "backup": {"sinks": [{"type": "local", "path": str(sink)}]}}, path=tmp_path / "v.yaml")
    probe = backup_probe(cfg)
    assert probe is not None
    info = probe()
    assert (info.epoch, info.at_risk) == (1, ())
    assert "key epoch 1" in "".join(text for _, text in backup_line(Cell(CellState.OK, info)))
    from vaultops.services.ceremony.epochs import record_departure

    record_departure(tmp_path / "keyholders.yaml", "bob")
    assert probe().at_risk == ()                # the at-risk check is re-read every few minutes, not per refresh
    info = backup_probe(cfg)()                  # a fresh probe reads it now
    assert info.at_risk == (1,)
    assert "EPOCH AT RISK: 1" in "".join(text for _, text in backup_line(Cell(CellState.OK, info)))

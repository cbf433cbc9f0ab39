"""The sandbox's day after an outage, a cold start whose followers join (status: joining, exit 15),
and `sandbox down` removing everything the sandbox made -- on real OpenBao servers."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vaultops.cli import main
from vaultops.services.sandbox.bootstrap import unseal_nodes
from vaultops.services.sandbox.cluster import Sandbox, sandbox_dir
from vaultops.testing.sandbox import start_sandbox

pytestmark = pytest.mark.integration
AUTOPILOT = "sys/storage/raft/autopilot/configuration"


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str,
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def status_until(capsys: pytest.CaptureFixture[str], config: Path, wanted: int, *, timeout: float = 60.0
                 ) -> list[str]:
    """The status verdicts seen (JSON `exit`) until the exit code is *wanted*."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        code = main(["--config", str(config), "status", "--format", "json"])
        doc = json.loads(capsys.readouterr().out)
        if not seen or seen[-1] != doc["cluster"]["exit"]:
            seen.append(doc["cluster"]["exit"])
        if code == wanted:
            return seen
        assert time.monotonic() < deadline, f"status never exited {wanted}: saw {seen}"
        time.sleep(0.2)


@pytest.fixture
def own_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's default state folder (no VAULTOPS_STATE_DIR): where `sandbox up` puts sandboxes."""
    monkeypatch.delenv("VAULTOPS_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "vaultops"


def test_sealed_means_after_an_outage_one_share_each_unseals_every_node(
        own_state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run(capsys, monkeypatch, "sandbox", "up", "--name", "outage", "--sealed")
    box = Sandbox(sandbox_dir("outage"))
    try:
        assert code == 0, err
        assert "restarting every node (an outage)" in err and "stop:    vaultops sandbox down --name outage" in out
        assert all("performance_multiplier = 1" in (Path(n.dir) / "config.hcl").read_text()
                   for n in box.record.nodes)
        states = [c.seal.status() for c in box.clients(token=False)]
        assert all(s.initialized and s.sealed and s.progress == 0 for s in states)   # every node joined before
        code, lines, _ = run(capsys, monkeypatch, "sandbox", "shares", "--name", "outage")
        assert code == 0 and [line.split(":")[0] for line in lines.splitlines()] == ["alice", "bob", "carol",
                                                                                      "dave", "erin"]
        three = "".join(lines.splitlines(keepends=True)[:3])
        code, out, err = run(capsys, monkeypatch, "--config", str(box.config_path), "unseal", "--share-stdin",
                             stdin=three)
        assert code == 0, err
        assert out.count("submitted share") == 3 and "must submit again" not in out + err   # one entry each
        assert "is active (" in out
        assert all(not c.seal.status().sealed for c in box.clients(token=False))
        status_until(capsys, box.config_path, 0)
    finally:
        box.stop()


def test_cold_start_followers_join_and_status_says_joining_until_promoted(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]
                                                                           ) -> None:
    box = start_sandbox(tmp_path / "cold", name="cold", nodes=3, cold=True)
    try:
        followers = [c.seal.status() for c in box.clients(token=False)[1:]]
        assert not any(s.initialized for s in followers)     # they have not joined yet
        # node1 first; autopilot then waits 60 s of stability before promoting a joiner, so the joining
        # window cannot pass unseen between two polls on a slow machine (default 10 s; set back below)
        unseal_nodes(box.clients(token=False)[:1], box.shares_b64[:3])
        box.wait_active()
        leader = box.client("node1")
        leader.write(AUTOPILOT, {"server_stabilization_time": "60s"})
        box.unseal_all()          # each follower once it joined (the threshold again)
        seen = status_until(capsys, box.config_path, 15, timeout=90)
        assert seen[-1] == "joining", seen     # non-voters at failure tolerance 0: never called healthy
        leader.write(AUTOPILOT, {"server_stabilization_time": "10s"})
        seen += status_until(capsys, box.config_path, 0, timeout=90)
        assert seen[-1] == "healthy" and seen.index("joining") < len(seen) - 1
    finally:
        box.stop()


@pytest.fixture
def two_boxes(own_state: Path, capsys: pytest.CaptureFixture[str],
              monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Sandbox]]:
    for name in ("a", "a-b"):
        assert main(["sandbox", "up", "--name", name, "--nodes", "1"]) == 0, capsys.readouterr().err
    boxes = Sandbox(sandbox_dir("a")), Sandbox(sandbox_dir("a-b"))
    yield boxes
    for box in boxes:
        if box.dir.exists():
            box.stop()


def _leave_state(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    """What the sandbox's own commands leave: a verified backup (its lock and last-run files)."""
    assert main(["--config", str(box.config_path), "backup", "run"]) == 0, capsys.readouterr().err
    capsys.readouterr()


def test_down_removes_what_the_sandbox_made_and_nothing_of_another(
        two_boxes: tuple[Sandbox, Sandbox], own_state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, ab = two_boxes
    for box in two_boxes:
        _leave_state(box, capsys)
    assert (a.dir / "state" / "backup-sandbox-a.lock").exists() and list((a.dir / "backups").iterdir())
    assert main(["sandbox", "down", "--name", "a"]) == 0
    assert not a.dir.exists()
    assert (ab.dir / "state" / "backup-sandbox-a-b-last-run.json").exists() and ab.record.nodes
    assert all(d.is_running() for d in ab.drivers().values())
    # a new sandbox of the same name starts clean
    assert main(["sandbox", "up", "--name", "a", "--nodes", "1"]) == 0
    assert not (a.dir / "state").exists() and not (a.dir / "backups").exists()


def test_down_cleans_a_shared_state_folder_by_exact_names(
        two_boxes: tuple[Sandbox, Sandbox], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With $VAULTOPS_STATE_DIR set, the state goes there; `down` removes this sandbox's files only."""
    shared = tmp_path / "shared-state"
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(shared))
    a, ab = two_boxes
    for box in two_boxes:
        _leave_state(box, capsys)
    runs = shared / "runs"
    runs.mkdir()
    for cluster in ("sandbox-a", "sandbox-a-b"):   # run state as the engine writes it (runbook/state.py)
        (runs / f"{cluster}-upgrade.json").write_text(json.dumps({"cluster": cluster, "run_id": "x"}))
    before = sorted(p.name for p in shared.rglob("*") if p.is_file())
    assert {"backup-sandbox-a.lock", "backup-sandbox-a-b-last-run.json"} <= set(before)
    # `down` looks for the sandbox under $VAULTOPS_STATE_DIR/sandboxes: point it at the real folder
    monkeypatch.setattr("vaultops.services.sandbox.cluster.sandboxes_root", lambda: a.dir.parent)
    assert main(["sandbox", "down", "--name", "a"]) == 0
    after = sorted(p.name for p in shared.rglob("*") if p.is_file())
    assert set(before) - set(after) == {"backup-sandbox-a.lock", "backup-sandbox-a-last-run.json",
                                        "sandbox-a-upgrade.json"}
    assert os.path.isdir(ab.dir)

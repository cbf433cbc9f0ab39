"""`vaultops keyholders depart` and `list --epochs` without a vaultops.yaml (manifest given by path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vaultops.cli import main
from vaultops.services.ceremony.manifest import Manifest, ScryptParams
from vaultops.services.ceremony.shares import Share


def test_depart_records_once_and_refuses_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "keyholders.yaml"
    m = Manifest(cluster_id="c1", threshold=2, shares=3)
    for i, name in enumerate(["alice", "bob", "carol"], 1):
        m = m.enroll(name, Share(bytes([4] * 32 + [i])), params=ScryptParams(n=2, r=1, p=1))
    m.save(path)
    assert main(["keyholders", "depart", "bob", "--manifest", str(path), "--left", "2026-13-01"]) == 2
    assert "--left" in capsys.readouterr().err
    assert main(["keyholders", "depart", "mallory", "--manifest", str(path)]) == 2
    assert "held no share" in capsys.readouterr().err
    assert main(["keyholders", "depart", "bob", "--manifest", str(path), "--left", "2026-11-01"]) == 0
    assert main(["keyholders", "depart", "bob", "--manifest", str(path)]) == 0  # already recorded: unchanged
    saved = Manifest.load(path)
    assert [(d.name, d.left.isoformat()) for d in saved.departures] == [("bob", "2026-11-01")] and saved.epoch == 1
    capsys.readouterr()
    assert main(["keyholders", "list", "--epochs", "--manifest", str(path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["keyholder"], r["departed"]) for r in rows] == [("alice", False), ("bob", True), ("carol", False)]
    assert all(r["needed"].startswith("current") for r in rows)

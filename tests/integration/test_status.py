"""vaultops status against real OpenBao sandboxes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml

from vaultops.cli import main
from vaultops.testing.sandbox import Sandbox, start_sandbox


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_raft_cluster_healthy(raft3: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, "status", "--config", str(raft3.config_path))
    assert code == 0, doc
    assert doc["cluster"]["exit"] == "healthy" and doc["cluster"]["id"]
    roles = sorted(n["ha_role"] for n in doc["nodes"])
    assert roles == ["active", "standby", "standby"]
    assert all(n["raft"]["voter"] and n["version"] for n in doc["nodes"])
    assert doc["raft"]["failure_tolerance"] == 1 and len(doc["raft"]["voters"]) == 3


def test_table_output(raft3: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--config", str(raft3.config_path)]) == 0
    out = capsys.readouterr().out
    assert "node1" in out and "active" in out and "failure-tolerance 1" in out


def test_unreachable_node_reported_with_others(raft3: Sandbox, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load(raft3.config_path.read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    doc["nodes"].append({"name": "ghost", "address": f"http://127.0.0.1:{dead}"})
    cfg = tmp_path / "vaultops.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    code, out = run_json(capsys, "status", "--config", str(cfg))
    assert code == 12
    ghost = out["nodes"][-1]
    assert ghost["reachable"] is False and "unreachable" in ghost["error"]
    assert sum(n["reachable"] for n in out["nodes"]) == 3


def test_unknown_node_name(raft3: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--config", str(raft3.config_path), "--node", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown node 'nope'" in err and "node1" in err


def test_expired_token_still_reports_nodes(raft3: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "s.this-token-does-not-exist")
    code, doc = run_json(capsys, "status", "--config", str(raft3.config_path))
    assert code == 14 and doc["cluster"]["exit"] == "token_rejected"
    assert doc["raft"] is None and "permission denied" in (doc["raft_error"] or "")
    assert all(n["sealed"] is False for n in doc["nodes"])


def test_sealed_pair_and_env_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    box = start_sandbox(tmp_path / "sealed", name="sealed", nodes=2, storage="postgresql", sealed=True)
    try:
        code, doc = run_json(capsys, "status", "--config", str(box.config_path))
        assert code == 11
        assert all(n["sealed"] and n["threshold"] == 3 and n["shares"] == 5 for n in doc["nodes"])
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("VAULT_ADDR", box.config.nodes[0].address)
        code, doc = run_json(capsys, "status")
        assert code == 11 and len(doc["nodes"]) == 1
    finally:
        box.stop()


def test_tls_sandbox_verifies_and_rejects_wrong_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    box = start_sandbox(tmp_path / "tls", name="tls", nodes=1, tls=True)
    try:
        code, doc = run_json(capsys, "status", "--config", str(box.config_path))
        assert code == 0 and doc["nodes"][0]["address"].startswith("https://")
        other = start_ca(tmp_path / "other")
        monkeypatch.setenv("VAULT_CACERT", str(other))
        code, doc = run_json(capsys, "status", "--config", str(box.config_path))
        assert code == 12 and "TLS verification failed" in doc["nodes"][0]["error"]
    finally:
        box.stop()


def start_ca(folder: Path) -> Path:
    from vaultops.services.sandbox.certs import make_ca

    folder.mkdir()
    return make_ca(folder)[0]

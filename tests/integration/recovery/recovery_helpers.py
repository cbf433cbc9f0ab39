"""Helpers for the disaster-recovery integration tests (a uniquely named module: every conftest is conftest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vaultops.errors import VaultOpsError
from vaultops.testing.sandbox import Sandbox


def shares_text(box: Sandbox) -> str:
    return "\n".join(box.shares_b64[:3]) + "\n"


def with_backups(box: Sandbox, folder: Path, sentinel: str) -> None:
    """A local backup sink in the sandbox's vaultops.yaml; kvs/sentinel written (recover from-backup reads it)."""
    import yaml

    doc = yaml.safe_load(box.config_path.read_text())
    doc["backup"] = {"sinks": [{"type": "local", "path": str(folder / "backups")}],
                     "lock_file": str(folder / "backup.lock"), "state_file": str(folder / "last-run.json")}
    doc["recovery"] = {"sentinels": ["kvs/sentinel"]}
    box.config_path.write_text(yaml.safe_dump(doc))
    leader = active_client(box)
    leader.write("sys/mounts/kvs", {"type": "kv", "options": {"version": "1"}})
    leader.write("kvs/sentinel", {"value": sentinel})


def cluster_name(box: Sandbox) -> str:
    return box.config.cluster_name


def run_cli(box: Sandbox, *argv: str, stdin: str = "", env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vaultops", "--config", str(box.config_path), *argv],
                          input=stdin, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def active_client(box: Sandbox, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        for c in box.clients(timeout=2):
            try:
                if c.ha.health().status_code == 200:
                    return c
            except VaultOpsError:
                pass
        if time.monotonic() > deadline:
            raise AssertionError("no active node")
        time.sleep(0.2)


def commit_some(box: Sandbox, leader: str, count: int = 3) -> None:
    """Writes of our own through the leader: entries a frozen node misses for certain (the write probe
    can spend the whole freeze waiting on the frozen node)."""
    from vaultops.services.upgrade.write_probe import PROBE_MOUNT

    client = next(c for c in box.clients(timeout=5) if c.name == leader)
    for i in range(count):
        client.write(f"{PROBE_MOUNT}/commit-{time.monotonic_ns()}-{i}", {"value": str(i)})


def voters(box: Sandbox) -> dict[str, bool]:
    """Autopilot's view from the active node: raft id -> healthy voter."""
    ap = active_client(box).raft.autopilot_state()
    return {s.id: s.healthy and s.id in ap.voters for s in ap.servers.values()}


def journal(box: Sandbox) -> list[dict[str, Any]]:
    path = box.dir / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def step_evidence(entries: list[dict[str, Any]], step: str) -> dict[str, Any]:
    found = [e for e in entries if e["action"] == "runbook.step" and e["details"].get("step") == step]
    assert found, f"no journalled step {step}"
    return found[-1]["details"]["evidence"]

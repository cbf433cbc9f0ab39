"""The sandbox starts real servers and stops exactly what it started."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from vaultops.cli import main
from vaultops.services.sandbox.cluster import SECRETS_NAME, Sandbox
from vaultops.testing.sandbox import start_sandbox


def pids(box: Sandbox) -> list[int]:
    return [p for d in box.drivers().values() if (p := d.pid()) is not None]


def test_up_down_via_cli_and_coexistence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "up", "--name", "a", "--nodes", "1"]) == 0
    assert main(["sandbox", "up", "--name", "b", "--nodes", "1", "--sealed"]) == 0
    assert main(["sandbox", "up", "--name", "a", "--nodes", "1"]) == 10
    assert "already exists" in capsys.readouterr().err
    from vaultops.services.sandbox.cluster import sandbox_dir

    a, b = Sandbox(sandbox_dir("a")), Sandbox(sandbox_dir("b"))
    running = pids(a) + pids(b)
    assert len(running) == 2
    secrets = a.dir / SECRETS_NAME
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert main(["sandbox", "status", "--format", "json"]) == 0
    assert '"a"' in capsys.readouterr().out
    assert main(["sandbox", "down", "--name", "a"]) == 0
    assert not a.dir.exists()
    assert pids(b), "stopping one sandbox must leave the other running"
    for pid in running[:1]:
        assert not Path(f"/proc/{pid}").exists() or b"config.hcl" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert main(["sandbox", "down", "--name", "b"]) == 0
    assert main(["sandbox", "down", "--name", "b"]) == 10


def test_postgresql_pair_is_active_standby(pg_pair: Sandbox) -> None:
    roles = sorted(c.ha.health().role for c in pg_pair.clients())
    assert roles == ["active", "standby"]
    # The standby appears in ha-status after its first heartbeat to the active node.
    active = next(c for c in pg_pair.clients() if c.ha.health().role == "active")
    deadline = time.monotonic() + 20
    while len(active.ha.ha_status().nodes) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(active.ha.ha_status().nodes) == 2


def test_other_version_fetched_into_cache(tmp_path: Path) -> None:
    box = start_sandbox(tmp_path, name="old", nodes=1, version="2.6.2")
    try:
        assert box.clients()[0].seal.status().version == "2.6.2"
        assert box.drivers()["node1"].installed_version() == "2.6.2"
    finally:
        box.stop()
    assert all(str(tmp_path).encode() not in _cmdline(p) for p in Path("/proc").iterdir() if p.name.isdigit())


def _cmdline(p: Path) -> bytes:
    try:
        return (p / "cmdline").read_bytes()
    except OSError:
        return b""


def test_bad_spec_is_refused(tmp_path: Path) -> None:
    from vaultops.errors import SandboxError

    with pytest.raises(SandboxError, match="out of range"):
        start_sandbox(tmp_path, nodes=0)
    with pytest.raises(SandboxError, match="X.Y.Z"):
        start_sandbox(tmp_path, name="v", nodes=1, version="latest")
    assert os.listdir(tmp_path) == []      # refused before anything was created: no folder, no process

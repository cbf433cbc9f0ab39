"""Real OpenBao sandboxes for tests: start, hand out, stop.

    box = start_sandbox(tmp_path, nodes=3, storage="raft")
    box.clients(); box.root_token; box.shares_b64; box.config_path
    box.stop()
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from vaultops.sandbox.cluster import Sandbox, SandboxSpec, up

__all__ = ["Sandbox", "start_sandbox", "wait_raft_healthy"]


def start_sandbox(base_dir: Path, *, name: str = "test", nodes: int = 3, storage: str = "raft",
                  version: str | None = None, sealed: bool = False, tls: bool = False,
                  raft_healthy: bool = False) -> Sandbox:
    """Start a sandbox whose state lives under *base_dir* (not the user's state folder)."""
    base_dir.mkdir(parents=True, exist_ok=True)
    box = up(SandboxSpec(name=name, nodes=nodes, storage=storage, version=version, sealed=sealed, tls=tls),
             root=base_dir)
    if raft_healthy and storage == "raft" and not sealed:
        wait_raft_healthy(box, voters=nodes)
    return box


def wait_raft_healthy(box: Sandbox, *, voters: int, timeout: float = 60.0) -> None:
    """Until autopilot says healthy with *voters* voters (followers are promoted after ~10 s)."""
    from vaultops.errors import SandboxError, VaultOpsError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in box.clients():
            try:
                ap = c.raft.autopilot_state()
            except VaultOpsError:
                continue
            if ap.healthy and len(ap.voters) == voters:
                return
            break
        time.sleep(0.5)
    raise SandboxError(f"raft not healthy with {voters} voters after {timeout:g}s", hint="see bao.log")


def test_env_dir() -> Path | None:
    value = os.environ.get("VAULTOPS_TEST_TMP")
    return Path(value) if value else None

"""Real OpenBao sandboxes for tests: start, hand out, stop.

    box = start_sandbox(tmp_path, nodes=3, storage="raft")
    box.clients(); box.root_token; box.shares_b64; box.config_path
    box.stop()
"""

from __future__ import annotations

from pathlib import Path

from vaultops.services.sandbox.cluster import Sandbox, SandboxSpec, up

__all__ = ["Sandbox", "start_sandbox", "wait_raft_healthy"]


def start_sandbox(base_dir: Path, *, name: str = "test", nodes: int = 3, storage: str = "raft",
                  version: str | None = None, sealed: bool = False, cold: bool = False, tls: bool = False,
                  acme_config: str | None = None, raft_healthy: bool = False,
                  performance_multiplier: int = 1) -> Sandbox:
    """Start a sandbox whose state lives under *base_dir* (not the user's state folder).

    sealed: after an outage (every node joined, then restarted sealed); with cold: a fresh cluster
    whose followers have not joined yet."""
    base_dir.mkdir(parents=True, exist_ok=True)
    box = up(SandboxSpec(name=name, nodes=nodes, storage=storage, version=version, sealed=sealed or cold,
                         cold=cold, tls=tls, acme_config=acme_config,
                         performance_multiplier=performance_multiplier), root=base_dir)
    # `up` already waits for autopilot when it unseals, so this returns at once then.
    if raft_healthy and storage == "raft" and not sealed:
        wait_raft_healthy(box, voters=nodes)
    return box


def wait_raft_healthy(box: Sandbox, *, voters: int, timeout: float = 60.0) -> None:
    from vaultops.services.sandbox.bootstrap import wait_raft_healthy as wait

    wait(box.clients(token=False), token=box.root_token, voters=voters, timeout=timeout)

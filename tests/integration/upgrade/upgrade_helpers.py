"""Helpers shared by the upgrade integration tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from vaultops.testing.sandbox import Sandbox

FROM, TO = "2.6.2", "2.7.2"


def shares_text(box: Sandbox) -> str:
    return "\n".join(box.shares_b64[:3]) + "\n"


def run_subprocess(box: Sandbox, *argv: str, stdin: str = "", env: dict[str, str] | None = None,
                   timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "vaultops", "--config", str(box.config_path), *argv],
                          input=stdin, capture_output=True, text=True, timeout=timeout, env=full_env)


def journal(box: Sandbox) -> list[dict[str, Any]]:
    path = box.dir / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def versions(box: Sandbox) -> dict[str, str]:
    return {c.name: c.ha.health().version for c in box.clients()}


def active(box: Sandbox) -> Any:
    return next(c for c in box.clients() if c.ha.health().role == "active")


def stops_never_overlap(entries: list[dict[str, Any]]) -> list[str]:
    """From the journal: the order nodes were stopped and came back; a second stop before a back is a bug."""
    order, down = [], None
    for e in entries:
        d = e.get("details") or {}
        if e.get("action") != "runbook.step":
            continue
        if d.get("action") == "stop_node":
            assert down is None, f"{e['node']} stopped while {down} was still down"
            down = e["node"]
            order.append(e["node"])
        elif d.get("action") == "wait_healthy":
            down = None
    return order


class ForwardingCut:
    """A runbook listener that breaks forwarding the way openbao#3899 did: once `standby[NODE].back`
    is done, *link* (in front of the active node's cluster port) drops the connections of NODE's
    process of that moment -- the upgraded one; a later (rolled-back) process passes."""

    def __init__(self, link: Any, node: str, driver: Any) -> None:
        self.link, self.node, self.driver = link, node, driver
        self.pids: list[int] = []

    def __call__(self, state: Any) -> None:
        if self.pids:
            return
        if any(s.id == f"standby[{self.node}].back" and s.status.value == "done" for s in state.steps):
            self.pids.append(self.driver.pid())
            self.link.refuse(lambda: set(self.pids))

"""Helpers for the ceremony integration tests (a uniquely named module)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vaultops.errors import VaultOpsError
from vaultops.services.sandbox import bootstrap
from vaultops.services.sandbox.cluster import (NodeRecord, Sandbox, SandboxRecord, SandboxSpec, binary_for, create_folder,
                                      free_port, node_name, wait_port)

VAULTOPS = [sys.executable, "-m", "vaultops"]


def run_vaultops(box: Sandbox, *args: str, stdin: str = "", timeout: float = 120,
                 cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`vaultops --config BOX ARGS` in a child process; shares only ever on stdin."""
    return subprocess.run([*VAULTOPS, "--config", str(box.config_path), *args], input=stdin,
                          text=True, capture_output=True, timeout=timeout, cwd=cwd)


def statuses(box: Sandbox) -> dict[str, Any]:
    out = {}
    for c in box.clients(token=False):
        try:
            out[c.name] = c.seal.status()
        except VaultOpsError:
            out[c.name] = None
    return out


def reseal(box: Sandbox, *, timeout: float = 30.0) -> None:
    """Kill and restart every node: sealed, initialised, progress 0."""
    box.restart_sealed(timeout=timeout)


def wait_for(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {what}")


def keyholder_share(box: Sandbox, name: str) -> str:
    return str(box.secrets["keyholders"][name])


def foreign_share(index: int) -> str:
    """A well-formed share with *index* that belongs to no cluster."""
    return base64.b64encode(os.urandom(32) + bytes([index])).decode()


def start_uninitialized(root: Path, *, name: str, nodes: int) -> Sandbox:
    """A sandbox's nodes and vaultops.yaml, started but NOT initialised (for `vaultops init`)."""
    spec = SandboxSpec(name=name, nodes=nodes, sealed=True, cold=True)
    folder = root / name
    create_folder(folder)  # marked as a sandbox folder, so box.stop() may remove it
    box = Sandbox(folder)
    binary, version = binary_for(spec)
    recs = [NodeRecord(node_name(i), free_port(), free_port(), str(folder / node_name(i)))
            for i in range(1, nodes + 1)]
    rec = SandboxRecord(spec=spec, nodes=recs, version=version)
    box.save_record(rec)
    try:
        for n in recs:
            bootstrap._write_node(n, recs, rec, binary, None)
        bootstrap._write_config(box, rec, None)
        for d in box.drivers().values():
            d.start()
        for n in recs:
            wait_port(n.api_port)
    except BaseException:
        box.stop()
        raise
    return box

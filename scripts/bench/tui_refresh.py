#!/usr/bin/env python3
"""Benchmark: one dashboard refresh over 5 nodes (one hung) vs one status of a single healthy node, same run.

The hung node is a socket that accepts connections and never answers. A refresh
is done when every healthy cell is filled (4 node rows, raft autopilot from the
active node, backup age, journal tail) while the hung node's cell is still
pending ("…"; it turns to "timeout" at its own deadline). Prints ratios,
asserts nothing. Target: refresh <= 1.2x status.

  strict   dashboard refresh (in-process)  vs  cluster_status([node1]) in-process
           both cold (new clients, new connections) and warm (the TUI's steady state)
  cli      dashboard refresh (in-process)  vs  the `vaultops status --node node1` command

Starts its own 4-node sandbox and stops it.
Usage: .venv/bin/python scripts/bench/tui_refresh.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

TIMEOUT = 3.0


def hung_server() -> tuple[socket.socket, int]:
    """Accepts every connection and never sends a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)
    threading.Thread(target=accept, daemon=True).start()
    return srv, srv.getsockname()[1]


def bench_config(box_config: Path, folder: Path, hung_port: int | None) -> Path:
    doc = yaml.safe_load(box_config.read_text())
    if hung_port is not None:
        doc["nodes"].append({"name": "hung", "address": f"http://127.0.0.1:{hung_port}"})
    (folder / "backups").mkdir(exist_ok=True)
    doc["backup"] = {"sinks": [{"type": "local", "path": str(folder / "backups")}]}
    path = folder / ("bench.yaml" if hung_port else "bench-ok.yaml")
    path.write_text(yaml.safe_dump(doc))
    return path


def refresh_once(cfg, clients=None) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    from vaultops.journal import journal_for
    from vaultops.services.dashboard import CellState, dashboard_for
    from vaultops.vault import cluster_clients

    start = time.perf_counter()
    clients = clients or cluster_clients(cfg, timeout=TIMEOUT)
    dash = dashboard_for(cfg, clients, journal=journal_for(cfg), timeout=TIMEOUT)
    healthy = [c.name for c in clients if c.name != "hung"]

    def done(s) -> bool:  # type: ignore[no-untyped-def]
        return (all(s.row(n).status.state is CellState.OK for n in healthy) and s.raft.settled
                and s.backup.settled and s.journal.settled)
    dash.refresh()
    snap = dash.wait(done, timeout=10)
    elapsed = time.perf_counter() - start
    hung = [r.status.state.value for r in snap.nodes if r.name == "hung"]
    return elapsed, hung[0] if hung else "-"


def status_once(cfg, clients=None) -> float:  # type: ignore[no-untyped-def]
    from vaultops.services.status import cluster_status
    from vaultops.vault import cluster_clients

    start = time.perf_counter()
    clients = clients or [c for c in cluster_clients(cfg, timeout=TIMEOUT) if c.name == "node1"]
    cluster_status(clients, name=cfg.cluster_name, storage=cfg.storage, timeout=TIMEOUT + 1)
    return time.perf_counter() - start


def status_cli(config: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vaultops", "--config", str(config), "status", "--node", "node1"],
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def median(runs: int, fn: Callable[[], float]) -> float:
    fn()
    return statistics.median(fn() for _ in range(runs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    from vaultops.config import parse_config_file
    from vaultops.testing.sandbox import start_sandbox
    from vaultops.vault import cluster_clients

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VAULTOPS_STATE_DIR"] = str(Path(tmp) / "state")
        box = start_sandbox(Path(tmp), name="bench", nodes=4)
        srv, port = hung_server()
        try:
            cfg = parse_config_file(bench_config(box.config_path, Path(tmp), port))
            hung_states: list[str] = []

            def cold_refresh() -> float:
                elapsed, state = refresh_once(cfg)
                hung_states.append(state)
                return elapsed
            refresh_cold = median(args.runs, cold_refresh)
            cfg_ok = parse_config_file(bench_config(box.config_path, Path(tmp), None))
            no_hung = median(args.runs, lambda: refresh_once(cfg_ok)[0])
            status_cold = median(args.runs, lambda: status_once(cfg))
            warm_clients = cluster_clients(cfg, timeout=TIMEOUT)
            warm_one = [c for c in warm_clients if c.name == "node1"]
            refresh_warm = median(args.runs, lambda: refresh_once(cfg, warm_clients)[0])
            status_warm = median(args.runs, lambda: status_once(cfg, warm_one))
            cli = median(max(args.runs // 3, 3), lambda: status_cli(bench_config(box.config_path, Path(tmp), port)))
        finally:
            srv.close()
            box.stop()
    print(f"dashboard refresh, 5 nodes, 1 hung (cold)  {refresh_cold * 1000:7.1f} ms   hung cell: "
          f"{sorted(set(hung_states))}")
    print(f"same, 4 healthy nodes and no hung one      {no_hung * 1000:7.1f} ms   (what the hung node costs)")
    print(f"status of node1 in-process (cold)          {status_cold * 1000:7.1f} ms")
    print(f"ratio strict cold                          {refresh_cold / status_cold:7.2f}x   (target <= 1.2x)")
    print(f"dashboard refresh (warm connections)       {refresh_warm * 1000:7.1f} ms")
    print(f"status of node1 in-process (warm)          {status_warm * 1000:7.1f} ms")
    print(f"ratio strict warm                          {refresh_warm / status_warm:7.2f}x   (target <= 1.2x)")
    print(f"`vaultops status --node node1` command     {cli * 1000:7.1f} ms")
    print(f"ratio vs the command                       {refresh_cold / cli:7.2f}x   (target <= 1.2x)")


if __name__ == "__main__":
    main()

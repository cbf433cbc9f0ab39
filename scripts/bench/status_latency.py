#!/usr/bin/env python3
"""Benchmark: vaultops start-up and status latency against the bao CLI, same run.

Prints ratios, asserts nothing:
  vaultops --help            vs  bao --help                 (target <= 1.0x)
  vaultops status (3 nodes)  vs  three sequential bao status (target <= 0.7x)

Starts its own 3-node sandbox and stops it. Usage: .venv/bin/python scripts/bench/status_latency.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def timed(cmd: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    return elapsed


def median_of(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm the page cache
    return statistics.median(fn() for _ in range(runs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    from vaultops.testing.sandbox import start_sandbox

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    with tempfile.TemporaryDirectory() as tmp:
        box = start_sandbox(Path(tmp), name="bench", nodes=3, raft_healthy=True)
        try:
            addrs = [n.address for n in box.config.nodes]
            help_vo = median_of(args.runs, lambda: timed([str(BIN / "vaultops"), "--help"], env))
            help_bao = median_of(args.runs, lambda: timed([str(BIN / "bao"), "--help"], env, ok=(0, 127)))
            st_env = {**env, "VAULTOPS_CONFIG": str(box.config_path)}
            status_vo = median_of(args.runs, lambda: timed([str(BIN / "vaultops"), "status"], st_env))
            status_bao = median_of(args.runs, lambda: sum(
                timed([str(BIN / "bao"), "status"], {**env, "BAO_ADDR": a}) for a in addrs))
        finally:
            box.stop()
    print(f"vaultops --help               {help_vo * 1000:7.1f} ms")
    print(f"bao --help                    {help_bao * 1000:7.1f} ms")
    print(f"ratio --help                  {help_vo / help_bao:7.2f}x   (target <= 1.0x)")
    print(f"vaultops status, 3 nodes      {status_vo * 1000:7.1f} ms")
    print(f"3 x bao status, sequential    {status_bao * 1000:7.1f} ms")
    print(f"ratio status                  {status_vo / status_bao:7.2f}x   (target <= 0.7x)")


if __name__ == "__main__":
    main()

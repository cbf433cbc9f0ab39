#!/usr/bin/env python3
"""Benchmark: after an outage, from "every node unsealed" to an active leader.

The demo's day: a 3-node raft sandbox whose nodes all joined, then every node
restarted sealed (`sandbox up --sealed`). Each cycle kills and restarts every
node, submits the threshold of shares to all of them at once, and measures
from the moment the last node answers `sealed: false` until one node answers
sys/health 200 (field notes: "all unsealed" is not "serving").

Measured in the same run:

  anchor   the raft stanza without performance_multiplier (the server's slow
           default: elections 15-22 s after a full restart)
  sandbox  performance_multiplier = 1, as `sandbox up` writes it now (and the
           terraform template)

Prints each cycle, the medians, and the ratio sandbox / anchor. No assertions.

    .venv/bin/python scripts/bench/leader_after_unseal.py [--cycles 5] [--nodes 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vaultops.errors import VaultOpsError  # noqa: E402
from vaultops.services.sandbox.cluster import THRESHOLD, Sandbox  # noqa: E402
from vaultops.testing.sandbox import start_sandbox  # noqa: E402

POLL = 0.02
LIMIT = 90.0


def _until(check, what: str) -> float:  # type: ignore[no-untyped-def]
    """Seconds until *check* holds (polled every 20 ms)."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > LIMIT:
            raise SystemExit(f"{what}: not within {LIMIT:g}s")
        time.sleep(POLL)
    return time.perf_counter() - start


def _all_unsealed(clients: list) -> bool:  # type: ignore[type-arg]
    try:
        return all(not c.seal.status().sealed for c in clients)
    except VaultOpsError:
        return False


def _active(clients: list) -> bool:  # type: ignore[type-arg]
    for c in clients:
        try:
            if c.ha.health().role == "active":
                return True
        except VaultOpsError:
            continue
    return False


def cycle(box: Sandbox) -> float:
    """One outage: restart every node sealed, unseal all, time "all unsealed" -> active leader."""
    box.restart_sealed()
    clients = box.clients(token=False, timeout=2)
    box.unseal_all()
    _until(lambda: _all_unsealed(clients), "every node unsealed")
    return _until(lambda: _active(clients), "an active leader")


def run(multiplier: int, *, cycles: int, nodes: int, work: Path) -> list[float]:
    label = "anchor (no performance_multiplier)" if multiplier == 0 else f"performance_multiplier = {multiplier}"
    box = start_sandbox(work / f"m{multiplier}", name=f"bench-m{multiplier}", nodes=nodes,
                        performance_multiplier=multiplier)
    try:
        times = []
        for i in range(cycles):
            times.append(cycle(box))
            print(f"  {label:<36} cycle {i + 1}: {times[-1]:6.2f} s", flush=True)
        return times
    finally:
        box.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=3)
    args = ap.parse_args()
    print(f"after an outage: {args.nodes} raft nodes restarted sealed, {THRESHOLD} shares to each; "
          f"time from every node unsealed to an active leader, {args.cycles} cycles each")
    with tempfile.TemporaryDirectory(prefix="vaultops-bench-leader-") as tmp:
        anchor = run(0, cycles=args.cycles, nodes=args.nodes, work=Path(tmp))
        tuned = run(1, cycles=args.cycles, nodes=args.nodes, work=Path(tmp))
    a, t = statistics.median(anchor), statistics.median(tuned)
    print(f"anchor  (default timing)          median {a:6.2f} s  min {min(anchor):6.2f}  max {max(anchor):6.2f}")
    print(f"sandbox (performance_multiplier 1) median {t:6.2f} s  min {min(tuned):6.2f}  max {max(tuned):6.2f}")
    print(f"ratio sandbox / anchor: {t / a:.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

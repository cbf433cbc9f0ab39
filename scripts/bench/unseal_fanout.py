#!/usr/bin/env python3
"""Benchmark: unseal fan-out of the vaultops ceremony vs. a loop of `bao operator unseal`.

For 1-, 3- and 5-node raft sandboxes (followers joined once, then every node
restarted: the usual "unseal after a restart" ceremony), measure in the same run:

  vaultops last   from the last keyholder's submit() (check + fan-out) to every node unsealed
  vaultops net    the same without a manifest (no scrypt check): the fan-out alone
  vaultops all    all threshold shares submitted back to back, to every node unsealed
  bao last        the last keyholder running `bao operator unseal` against each node in turn
  bao all         `bao operator unseal` for every node and every share

`bao operator unseal` reads the share only from a terminal, so each call runs
on a pseudo-terminal and the share is typed at its hidden prompt (never argv;
VAULT_ADDR per node in its environment). Prints medians and the ratios the issue
targets (5 nodes <= 1.5x 1 node; >= 3x faster than the bao loop at 5 nodes).
No assertions.

    .venv/bin/python scripts/bench/unseal_fanout.py [--reps 5] [--nodes 1 3 5]
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vaultops.errors import VaultOpsError  # noqa: E402
from vaultops.journal import Journal  # noqa: E402
from vaultops.services.sandbox.cluster import THRESHOLD, Sandbox  # noqa: E402
from vaultops.services.ceremony.unseal import UnsealCeremony  # noqa: E402
from vaultops.services.ceremony.manifest import Manifest  # noqa: E402
from vaultops.testing.sandbox import start_sandbox  # noqa: E402

KEYHOLDERS = ("alice", "bob", "carol", "dave", "erin")


def all_unsealed(clients: list) -> bool:
    try:
        return all(not c.seal.status().sealed for c in clients)
    except VaultOpsError:
        return False


def wait_unsealed(clients: list) -> None:
    deadline = time.monotonic() + 60
    while not all_unsealed(clients):
        if time.monotonic() > deadline:
            raise SystemExit("cluster did not unseal")
        time.sleep(0.005)


def ceremony_run(box: Sandbox, *, checked: bool, work: Path) -> tuple[float, float]:
    """(seconds for the last share, seconds for all shares) through the ceremony service."""
    box.restart_sealed()
    shares = box.secrets["keyholders"]
    manifest = Manifest.load(box.dir / "keyholders.yaml") if checked else None
    cer = UnsealCeremony(box.clients(token=False), manifest=manifest,
                         journal=Journal(work / "bench-journal.jsonl", cluster="bench"))
    cer.start()
    t_all = time.perf_counter()
    for name in KEYHOLDERS[:THRESHOLD - 1]:
        cer.submit(shares[name], keyholder=name)
    t_last = time.perf_counter()
    cer.submit(shares[KEYHOLDERS[THRESHOLD - 1]], keyholder=KEYHOLDERS[THRESHOLD - 1])
    snap = cer.follow(timeout=60, interval=0.005, until_unsealed=True)
    end = time.perf_counter()
    if not snap.all_unsealed:
        raise SystemExit("ceremony did not unseal every node")
    return end - t_last, end - t_all


def bao_unseal(bao: str, address: str, share: str) -> None:
    """One `bao operator unseal` on a pseudo-terminal: the share is typed at its prompt."""
    master, slave = os.openpty()
    env = {**os.environ, "VAULT_ADDR": address, "BAO_ADDR": address}
    proc = subprocess.Popen([bao, "operator", "unseal"], stdin=slave, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    try:
        _read_until(master, b"Key")
        os.write(master, share.encode() + b"\r")
        _drain(master)
        if proc.wait(timeout=30) != 0:
            raise SystemExit(f"bao operator unseal failed against {address}")
    finally:
        os.close(master)


def _read_until(fd: int, marker: bytes, timeout: float = 10.0) -> None:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        if time.monotonic() > deadline:
            raise SystemExit("bao never asked for the key")
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            seen += os.read(fd, 4096)


def _drain(fd: int) -> None:
    while True:
        ready, _, _ = select.select([fd], [], [], 5.0)
        if not ready:
            return
        try:
            if not os.read(fd, 4096):
                return
        except OSError:  # EIO once the child closed the terminal
            return


def bao_run(box: Sandbox, bao: str) -> tuple[float, float]:
    """(seconds for the last keyholder's loop over nodes, seconds for the whole loop)."""
    box.restart_sealed()
    shares = box.secrets["keyholders"]
    clients = box.clients(token=False)
    addresses = [c.address for c in clients]
    t_all = time.perf_counter()
    for name in KEYHOLDERS[:THRESHOLD - 1]:
        for address in addresses:
            bao_unseal(bao, address, shares[name])
    t_last = time.perf_counter()
    for address in addresses:
        bao_unseal(bao, address, shares[KEYHOLDERS[THRESHOLD - 1]])
    wait_unsealed(clients)
    end = time.perf_counter()
    return end - t_last, end - t_all


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 3, 5])
    args = ap.parse_args()
    bao = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="vaultops-bench-") as tmp:
        work = Path(tmp)
        for n in args.nodes:
            print(f"starting a {n}-node raft sandbox ...", file=sys.stderr, flush=True)
            box = start_sandbox(work / f"n{n}", name=f"bench{n}", nodes=n)
            try:
                samples: dict[str, list[float]] = {k: [] for k in
                                                   ("vo_last", "vo_net", "vo_all", "bao_last", "bao_all")}
                for _ in range(args.reps):
                    last, total = ceremony_run(box, checked=True, work=work)
                    samples["vo_last"].append(last)
                    samples["vo_all"].append(total)
                    samples["vo_net"].append(ceremony_run(box, checked=False, work=work)[0])
                    last, total = bao_run(box, bao)
                    samples["bao_last"].append(last)
                    samples["bao_all"].append(total)
                results[n] = {k: statistics.median(v) for k, v in samples.items()}
            finally:
                box.stop()
    report(results, args.reps)
    return 0


def report(results: dict[int, dict[str, float]], reps: int) -> None:
    ms = lambda v: f"{v * 1000:8.1f}"  # noqa: E731
    print(f"\nunseal fan-out, medians of {reps} runs, milliseconds (threshold {THRESHOLD})")
    print(f"{'nodes':>5} {'vo last':>8} {'vo net':>8} {'vo all':>8} {'bao last':>8} {'bao all':>8}")
    for n, r in sorted(results.items()):
        print(f"{n:>5} {ms(r['vo_last'])} {ms(r['vo_net'])} {ms(r['vo_all'])} "
              f"{ms(r['bao_last'])} {ms(r['bao_all'])}")
    lo, hi = min(results), max(results)
    a, b = results[lo], results[hi]
    print(f"\nflatness  vaultops {hi} nodes / {lo} node, last share with check: "
          f"{b['vo_last'] / a['vo_last']:.2f}x   fan-out only: {b['vo_net'] / a['vo_net']:.2f}x"
          "   (target <= 1.5x)")
    print(f"speed-up  bao loop / vaultops at {hi} nodes, last share: "
          f"{b['bao_last'] / b['vo_last']:.1f}x (fan-out only {b['bao_last'] / b['vo_net']:.1f}x)"
          f"   whole ceremony: {b['bao_all'] / b['vo_all']:.1f}x   (target >= 3x)")


if __name__ == "__main__":
    raise SystemExit(main())

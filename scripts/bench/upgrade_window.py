#!/usr/bin/env python3
"""Benchmark: the write window of a rolling upgrade, on one 3-node raft sandbox under a write load.

The load is a client behind a health-checking load balancer (vaultops.services.upgrade.write_probe):
it writes every 20 ms to a node whose sys/health says it is serving, follows redirects and
retries once elsewhere; every acknowledged write is checked afterwards.

  (a) a bare `sys/step-down`: the longest gap between acknowledged writes it causes;
  (b) the documented manual procedure, scripted plainly: each standby stopped, swapped,
      started, unsealed, then wait until autopilot reports it healthy on the new version and
      stable (it keeps reporting so for server_stabilization_time, 10 s); step-down; the old
      active last.           2.6.2 -> 2.7.0
  (c0) `vaultops upgrade run` with the mixed-version probes taken out of the runbook.  2.7.0 -> 2.7.1
  (c) `vaultops upgrade run` as shipped, the mixed-version probes on (a write forwarded through
      each upgraded standby, and through the old active after leadership moved).  2.7.1 -> 2.7.2

Targets: 0 lost acknowledged writes; gap(c) <= 1.5 x gap(a); time(c) <= 0.6 x time(b).
Reported beside them: what the probes cost, time(c) / time(c0), and each probe's own timings.

With --rollback, the automatic-rollback case instead, on its own sandbox under the same load:
  (d) `vaultops upgrade run --to 2.7.2` whose first upgraded standby is killed while its health
      gate waits for it (the gate fails before the point of no return): the time from the failed
      gate to a healthy all-2.6.2 cluster (the rollback's final postflight passed);
  (e) then the same upgrade without a fault: the time of the upgrade itself, reported beside it.
Target: 0 lost acknowledged writes (the rollback's time is reported, with its ratio to (e)).

    .venv/bin/python scripts/bench/upgrade_window.py [--keep] [--rollback]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STABILIZATION = 10.0   # autopilot server_stabilization_time (default)
START, MANUAL_TO, NO_PROBES_TO, TOOL_TO = "2.6.2", "2.7.0", "2.7.1", "2.7.2"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="leave the sandbox running")
    ap.add_argument("--rollback", action="store_true", help="measure the automatic rollback instead (d, e)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vaultops-bench-upgrade-"))
    os.environ["VAULTOPS_STATE_DIR"] = str(work / "state")
    from vaultops import releases as binaries
    from vaultops.testing.sandbox import start_sandbox

    for v in (START, MANUAL_TO, NO_PROBES_TO, TOOL_TO):
        binaries.ensure(v)
    print(f"starting a 3-node raft sandbox on {START} in {work}", flush=True)
    box = start_sandbox(work, name="bench", nodes=3, version=START, raft_healthy=True)
    try:
        results = run_rollback(box) if args.rollback else run_all(box)
    finally:
        if not args.keep:
            box.stop()
    print(json.dumps(results, indent=2))
    ok = results["lost_writes"] == 0 and (args.rollback or (results["gap_ratio"] <= 1.5
                                                            and results["time_ratio"] <= 0.6))
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


def run_all(box) -> dict:  # type: ignore[no-untyped-def]
    from vaultops.services.upgrade.write_probe import WriteProbe, prepare

    clients = box.clients(timeout=2)
    prepare(clients)
    results: dict = {}
    with WriteProbe(clients) as probe:
        time.sleep(2)
        t0 = time.monotonic()
        step_down(box)
        time.sleep(3)
        results["gap_a_step_down_s"] = round(probe.longest_gap(t0, time.monotonic()), 3)
        print(f"(a) step-down gap {results['gap_a_step_down_s']} s", flush=True)

        t0 = time.monotonic()
        manual_upgrade(box, MANUAL_TO)
        results["time_b_manual_s"] = round(time.monotonic() - t0, 2)
        results["gap_b_manual_s"] = round(probe.longest_gap(t0, time.monotonic()), 3)
        print(f"(b) manual procedure {results['time_b_manual_s']} s, gap {results['gap_b_manual_s']} s", flush=True)

        t0 = time.monotonic()
        vaultops_upgrade(box, NO_PROBES_TO, runbooks=without_probes(box.dir))
        t1 = time.monotonic()
        results["time_c0_no_probes_s"] = round(t1 - t0, 2)
        results["gap_c0_no_probes_s"] = round(probe.longest_gap(t0, t1), 3)
        print(f"(c0) vaultops upgrade, probes off {results['time_c0_no_probes_s']} s, "
              f"gap {results['gap_c0_no_probes_s']} s", flush=True)

        t0 = time.monotonic()
        vaultops_upgrade(box, TOOL_TO)
        t1 = time.monotonic()
        results["time_c_vaultops_s"] = round(t1 - t0, 2)
        results["gap_c_vaultops_s"] = round(probe.longest_gap(t0, t1), 3)
        print(f"(c) vaultops upgrade, probes on {results['time_c_vaultops_s']} s, gap {results['gap_c_vaultops_s']} s",
              flush=True)
        results["probes"] = probe_evidence(box)
        time.sleep(1)
    reader = next(c for c in box.clients() if c.ha.health().role == "active")
    results["acknowledged_writes"] = len(probe.acks)
    results["unacknowledged_writes"] = len(probe.failed)
    results["lost_writes"] = len(probe.missing(reader))
    results["gap_ratio"] = round(results["gap_c_vaultops_s"] / results["gap_a_step_down_s"], 2)
    results["time_ratio"] = round(results["time_c_vaultops_s"] / results["time_b_manual_s"], 2)
    results["probe_cost_ratio"] = round(results["time_c_vaultops_s"] / results["time_c0_no_probes_s"], 2)
    return results


def without_probes(work: Path) -> Path:
    """A copy of runbooks/upgrade.yaml with every `probe` step taken out (the anchor for their cost)."""
    import yaml

    from vaultops.services.upgrade.service import runbooks_dir

    doc = yaml.safe_load((runbooks_dir() / "upgrade.yaml").read_text())

    def keep(steps: list) -> list:
        return [{**s, "steps": keep(s["steps"])} if "steps" in s else s for s in steps if s.get("action") != "probe"]
    doc["steps"] = keep(doc["steps"])
    folder = work / "runbooks-without-probes"
    folder.mkdir(exist_ok=True)
    (folder / "upgrade.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


def probe_evidence(box) -> list:  # type: ignore[no-untyped-def]
    """Each probe step of the last run, from `vaultops upgrade status --format json`."""
    proc = subprocess.run([sys.executable, "-m", "vaultops", "--config", str(box.config_path), "upgrade", "status",
                           "--format", "json"], text=True, capture_output=True)
    steps = json.loads(proc.stdout)["steps"]
    return [{"step": s["id"], **{k: s["evidence"]["probe"][k] for k in
                                 ("direction", "write_ms", "read_active_ms", "read_node_ms", "attempts", "served_locally")}}
            for s in steps if s["action"] == "probe"]


def active(box):  # type: ignore[no-untyped-def]
    while True:
        for c in box.clients():
            try:
                if c.ha.health().role == "active":
                    return c
            except Exception:  # noqa: BLE001 - a node down during the change
                pass
        time.sleep(0.05)


def step_down(box) -> str:  # type: ignore[no-untyped-def]
    old = active(box)
    old.ha.step_down()
    while (new := active(box)).name == old.name:
        time.sleep(0.05)
    return new.name


def manual_upgrade(box, version: str) -> None:  # type: ignore[no-untyped-def]
    """The documented procedure, plainly: standbys one by one, wait healthy + stable, step-down, old active."""
    leader = active(box).name
    drivers = box.drivers()
    for name in [n for n in drivers if n != leader]:
        restart_on(box, name, version)
    step_down(box)
    restart_on(box, leader, version)


def restart_on(box, name: str, version: str) -> None:  # type: ignore[no-untyped-def]
    drv = box.drivers()[name]
    drv.stop(timeout=60)
    drv.install(version)
    drv.start()
    client = next(c for c in box.clients(token=False) if c.name == name)
    while True:
        try:
            if client.seal.status().initialized:
                break
        except Exception:  # noqa: BLE001 - still starting
            time.sleep(0.05)
    for share in box.shares_b64[:3]:
        client.seal.unseal(share)
    healthy_since = None
    while True:
        try:
            st = active(box).raft.autopilot_state()
            s = st.servers.get(name)
            ok = st.healthy and st.failure_tolerance >= 1 and s is not None and s.healthy and s.version == version
        except Exception:  # noqa: BLE001 - leader change in progress
            ok = False
        if not ok:
            healthy_since = None
        elif healthy_since is None:
            healthy_since = time.monotonic()
        elif time.monotonic() - healthy_since >= STABILIZATION:
            return
        time.sleep(0.5)


def vaultops_upgrade(box, version: str, *, runbooks: Path | None = None,  # type: ignore[no-untyped-def]
                     expect_rollback: bool = False) -> None:
    shares = "\n".join(box.shares_b64[:3]) + "\n"
    env = {**os.environ, **({"VAULTOPS_RUNBOOKS": str(runbooks)} if runbooks else {})}
    extra = ["--gate-timeout", "15"] if expect_rollback else ["--restart"]
    proc = subprocess.run([sys.executable, "-m", "vaultops", "--config", str(box.config_path), "upgrade", "run",
                           "--to", version, "--share-stdin", *extra], input=shares, text=True,
                          capture_output=True, env=env)
    if expect_rollback:
        if "upgrade rolled back" not in proc.stderr:
            raise SystemExit(f"expected an automatic rollback: {proc.stderr[-1000:]}")
    elif proc.returncode != 0:
        raise SystemExit(f"vaultops upgrade failed: {proc.stderr[-1000:]}")


def run_rollback(box) -> dict:  # type: ignore[no-untyped-def]
    """(d) a failed gate before the point of no return, rolled back automatically; (e) the clean upgrade."""
    import threading
    from datetime import datetime

    from vaultops.runbook.state import load_state
    from vaultops.services.upgrade.write_probe import WriteProbe, prepare
    from vaultops.services.upgrade.service import state_path

    clients = box.clients(timeout=2)
    prepare(clients)
    results: dict = {}
    with WriteProbe(clients) as probe:
        stop = threading.Event()
        killer = threading.Thread(target=kill_in_back_gate, args=(box, stop), daemon=True)
        killer.start()
        t0 = time.monotonic()
        vaultops_upgrade(box, TOOL_TO, expect_rollback=True)
        t1 = time.monotonic()
        stop.set()
        upgrade = load_state(state_path(box.config, "upgrade"))
        rollback = load_state(state_path(box.config, "upgrade-autorollback"))
        failed = next(s for s in upgrade.steps if s.status.value == "failed")
        healthy = rollback.steps[-1]
        seconds = (datetime.fromisoformat(healthy.finished_at) - datetime.fromisoformat(failed.finished_at))
        results["time_d_rollback_s"] = round(seconds.total_seconds(), 2)
        results["gap_d_s"] = round(probe.longest_gap(t0, t1), 3)
        results["rolled_back_nodes"] = upgrade.halt["rollback"]["nodes"]
        print(f"(d) failed gate at {failed.id} -> healthy on {START}: {results['time_d_rollback_s']} s", flush=True)

        t0 = time.monotonic()
        vaultops_upgrade(box, TOOL_TO)
        results["time_e_upgrade_s"] = round(time.monotonic() - t0, 2)
        print(f"(e) the upgrade itself {results['time_e_upgrade_s']} s", flush=True)
        time.sleep(1)
    reader = next(c for c in box.clients() if c.ha.health().role == "active")
    results["acknowledged_writes"] = len(probe.acks)
    results["lost_writes"] = len(probe.missing(reader))
    results["rollback_to_upgrade_ratio"] = round(results["time_d_rollback_s"] / results["time_e_upgrade_s"], 2)
    return results


def kill_in_back_gate(box, stop) -> None:  # type: ignore[no-untyped-def]
    """The fault: the first upgraded standby is SIGKILLed while its `back` gate waits for it."""
    from vaultops.runbook.state import load_state
    from vaultops.services.upgrade.service import state_path

    path = state_path(box.config, "upgrade")
    while not stop.is_set():
        try:
            cur = load_state(path).current if path.exists() else None
        except Exception:  # noqa: BLE001 - the state file being replaced
            cur = None
        if cur is not None and cur.action == "wait_healthy" and cur.status.value == "running":
            box.drivers()[cur.node].kill()
            return
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())

"""`vaultops upgrade rollback` after a completed 2.6.2 -> 2.7.2 upgrade: every node back on 2.6.2 with
the pre-upgrade data; the report names the writes lost since the snapshot, which the load generator
confirms; a vaultops SIGKILLed while the cluster is down for the restore finishes with --resume."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

import pytest
from upgrade_helpers import FROM, TO, active, journal, shares_text, versions

from vaultops.runbook.state import RunStatus, StepStatus, load_state
from vaultops.services.upgrade.write_probe import WriteProbe, prepare
from vaultops.services.upgrade.rollback import MANUAL
from vaultops.services.upgrade.service import state_path

pytestmark = pytest.mark.integration


def _wall(mono: float, offset: float) -> float:
    return mono + offset


def test_rollback_after_a_completed_upgrade_restores_the_pre_upgrade_data(make_box, cli) -> None:  # type: ignore[no-untyped-def]
    box = make_box("uprestore")
    clients = box.clients(timeout=2)
    prepare(clients)
    offset = time.time() - time.monotonic()
    with WriteProbe(clients) as probe:
        time.sleep(2)                       # writes before the snapshot: they must come back
        rc, _, err = cli(box, "upgrade", "run", "--to", TO, "--share-stdin", stdin=shares_text(box))
        assert rc == 0, err
        time.sleep(2)                       # writes after the upgrade: lost too
    assert set(versions(box).values()) == {TO}
    snap = next(s for s in load_state(state_path(box.config, "upgrade")).steps if s.action == "snapshot")
    taken = datetime.fromisoformat(snap.started_at).timestamp()
    finished = datetime.fromisoformat(snap.finished_at).timestamp()

    rc, out, err = cli(box, "upgrade", "rollback", "--share-stdin", "--yes", stdin=shares_text(box))
    assert rc == 0, err
    assert set(versions(box).values()) == {FROM}
    assert "EVERY WRITE MADE AFTER IT IS LOST" in out and "LOST: every write made after" in out

    reader = active(box)
    before = [a for a in probe.acks if _wall(a.at, offset) < taken]
    after = [a for a in probe.acks if _wall(a.at, offset) > finished]
    assert len(before) > 20 and len(after) > 100
    assert probe.missing_among(reader, before) == []                   # pre-upgrade data is back
    lost = probe.missing_among(reader, probe.acks)
    assert set(a.key for a in after) <= set(lost)                      # everything after the snapshot is gone
    rb = load_state(state_path(box.config, MANUAL))
    assert rb.status == RunStatus.DONE
    counted = next(s.evidence for s in rb.steps if s.action == "rollback_loss")["entries_since"]
    print(f"\nlost acknowledged writes (load generator): {len(lost)}; raft entries since the snapshot "
          f"(report): {counted}")
    assert len(lost) <= counted <= len(lost) + 200, (len(lost), counted)
    assert f"at least the {counted} raft log entries" in out
    history = reader.ha.version_history()
    assert TO not in history and FROM in history
    upgrade = load_state(state_path(box.config, "upgrade"))
    assert upgrade.status == RunStatus.ROLLED_BACK and upgrade.halt["rollback"]["run"] == rb.run_id
    assert any(e["action"] == "upgrade.rollback.done" for e in journal(box))
    for share in box.shares_b64:
        assert share not in state_path(box.config, MANUAL).read_text()
        assert share not in (box.dir / "journal.jsonl").read_text()


def _kill_when_down(box, proc: subprocess.Popen[str], seen: list[str]) -> None:  # type: ignore[no-untyped-def]
    path = state_path(box.config, MANUAL)
    while proc.poll() is None:
        try:
            state = load_state(path) if path.exists() else None
            done = [s for s in (state.steps if state else []) if s.action == "set_aside" and s.status == StepStatus.DONE]
            if len(done) >= 2:          # two of three nodes down and set aside: no quorum; kill vaultops now
                proc.send_signal(signal.SIGKILL)
                seen.append("killed")
                return
        except Exception:
            pass
        time.sleep(0.02)


def test_rollback_killed_while_the_cluster_is_down_resumes_and_completes(make_box) -> None:  # type: ignore[no-untyped-def]
    box = make_box("uprestorekill")
    shares = shares_text(box)
    argv = [sys.executable, "-m", "vaultops", "--config", str(box.config_path)]
    up = subprocess.run([*argv, "upgrade", "run", "--to", TO, "--share-stdin"], input=shares, capture_output=True,
                        text=True, timeout=300)
    assert up.returncode == 0, up.stderr[-800:]
    proc = subprocess.Popen([*argv, "upgrade", "rollback", "--share-stdin", "--yes"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    watcher = threading.Thread(target=_kill_when_down, args=(box, proc, seen), daemon=True)
    watcher.start()
    out, err = proc.communicate(shares, timeout=300)
    watcher.join()
    assert proc.returncode == -signal.SIGKILL and seen, (out[-600:], err[-600:])
    assert sum(d.is_running() for d in box.drivers().values()) <= 1     # killed during the outage: no quorum

    final = subprocess.run([*argv, "upgrade", "rollback", "--resume", "--share-stdin", "--yes"], input=shares,
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-800:]
    assert "resuming without it until it is back" in final.stdout
    assert set(versions(box).values()) == {FROM}
    assert load_state(state_path(box.config, MANUAL)).status == RunStatus.DONE
    assert load_state(state_path(box.config, "upgrade")).status == RunStatus.ROLLED_BACK
    assert TO not in active(box).ha.version_history()

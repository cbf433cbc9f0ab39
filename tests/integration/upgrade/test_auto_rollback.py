"""A gate fails in the mixed-version phase (before the point of no return): the upgrade rolls the
upgraded standby back to 2.6.2 by itself, under a write load, losing no acknowledged write; and a
vaultops killed during that rollback finishes it with `upgrade resume`.

The failing gate is a real one: the upgraded standby is SIGKILLed while its `back` gate waits
for it, so the gate times out (any failed step before the point of no return rolls back; a
mixed-version probe that fails is one more such step).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest
from upgrade_helpers import FROM, TO, active, journal, shares_text, versions

from vaultops.errors import RunbookError
from vaultops.journal import journal_for
from vaultops.runbook.state import RunStatus, StepStatus, load_state
from vaultops.services.upgrade.context import Prompter, build_context
from vaultops.services.upgrade.write_probe import WriteProbe, prepare
from vaultops.services.upgrade.rollback import AUTO, run_upgrade
from vaultops.services.upgrade.service import default_runbook, state_path
from vaultops.services.upgrade.unseal import SharesUnsealer

pytestmark = pytest.mark.integration


def _context(box, *, gate_timeout: float, backup: str = "required"):  # type: ignore[no-untyped-def]
    return build_context(box.config, clients=box.clients(), drivers=box.drivers(), journal=journal_for(box.config),
                         unsealer=SharesUnsealer(box.shares_b64[:3]), prompter=Prompter(assume_yes=True),
                         gate_timeout=gate_timeout, connect=lambda: box.clients(), backup=backup)


def _killer(drivers, killed: list[str]):  # type: ignore[no-untyped-def]
    """A listener that SIGKILLs the first upgraded standby while its `back` gate waits for it."""
    def kill_upgraded_standby(state) -> None:  # type: ignore[no-untyped-def]
        cur = state.current
        if cur is not None and cur.action == "wait_healthy" and cur.status == StepStatus.RUNNING and not killed:
            drivers[cur.node].kill()             # it came up on 2.7.2; now its health gate cannot pass
            killed.append(cur.node)
    return kill_upgraded_standby


def test_failed_gate_in_the_mixed_phase_rolls_back_to_the_old_version(make_box, cli) -> None:  # type: ignore[no-untyped-def]
    box = make_box("uprb")
    leader = active(box).name
    killed: list[str] = []
    clients = box.clients(timeout=2)
    prepare(clients)
    with WriteProbe(clients) as probe, pytest.raises(RunbookError) as rolled:
        run_upgrade(box.config, _context(box, gate_timeout=15), runbook_path=default_runbook(),
                    params={"to": TO}, listener=_killer(box.drivers(), killed))
    assert killed and killed[0] != leader, rolled.value.message
    assert "upgrade rolled back: every node runs 2.6.2 again" in rolled.value.message, rolled.value.message
    assert f"{killed[0]} did not come back healthy on {TO}" in rolled.value.message
    assert set(versions(box).values()) == {FROM}
    assert active(box).name == leader                        # leadership never left the old version
    assert len(probe.acks) > 100 and probe.missing(active(box)) == []
    assert all(not c.seal.status().sealed for c in box.clients())

    state = load_state(state_path(box.config, "upgrade"))
    assert state.status == RunStatus.ROLLED_BACK
    assert state.halt is not None and state.halt["evidence"]["problems"]          # the gate's evidence stays
    assert state.halt["rollback"]["nodes"] == killed and state.halt["rollback"]["run"]
    rb = load_state(state_path(box.config, AUTO))
    assert rb.status == RunStatus.DONE and [s.id for s in rb.steps][-1] == "verify"
    assert "rolled back" in cli(box, "upgrade", "status")[1]
    actions = [e["action"] for e in journal(box)]
    assert "upgrade.rollback.start" in actions and "upgrade.rollback.done" in actions
    # a new upgrade may start without --restart, and this time it goes through
    rc, _, err = cli(box, "upgrade", "run", "--to", TO, "--share-stdin", stdin=shares_text(box))
    assert rc == 0, err
    assert set(versions(box).values()) == {TO}


def test_pg_pair_failed_gate_rolls_the_standby_back(make_box) -> None:  # type: ignore[no-untyped-def]
    box = make_box("uprbpg", nodes=2, storage="postgresql")
    leader = active(box).name
    killed: list[str] = []
    clients = box.clients(timeout=2)
    prepare(clients)
    with WriteProbe(clients) as probe, pytest.raises(RunbookError) as rolled:
        run_upgrade(box.config, _context(box, gate_timeout=15, backup="skip"), runbook_path=default_runbook(),
                    params={"to": TO}, listener=_killer(box.drivers(), killed))
    assert "upgrade rolled back: every node runs 2.6.2 again" in rolled.value.message, rolled.value.message
    assert killed == [next(n for n in ("node1", "node2") if n != leader)]
    assert set(versions(box).values()) == {FROM} and active(box).name == leader
    assert len(probe.acks) > 50 and probe.missing(active(box)) == []
    assert load_state(state_path(box.config, "upgrade")).status == RunStatus.ROLLED_BACK


MID_ROLLBACK = ("start_node", "unseal_node", "wait_healthy")


def _watch(box, proc: subprocess.Popen[str], killed: list[str], done: threading.Event) -> None:  # type: ignore[no-untyped-def]
    """From outside: kill the upgraded standby in its `back` gate, then SIGKILL vaultops mid-rollback
    (the rolled-back node being started, unsealed or waited for)."""
    drivers = box.drivers()
    up, rb = state_path(box.config, "upgrade"), state_path(box.config, AUTO)
    while proc.poll() is None and not done.is_set():
        try:
            if not killed and up.exists():
                cur = load_state(up).current
                if cur is not None and cur.action == "wait_healthy" and cur.status == StepStatus.RUNNING:
                    drivers[cur.node].kill()
                    killed.append(cur.node)
            if killed and rb.exists():
                cur = load_state(rb).current
                # mid-rollback, the rolled-back node in transition (unseal alone can pass between two polls)
                if cur is not None and cur.action in MID_ROLLBACK and cur.status == StepStatus.RUNNING:
                    proc.send_signal(signal.SIGKILL)
                    killed.append("vaultops")
                    return
        except Exception:       # a state file being replaced: look again
            pass
        time.sleep(0.05)


def test_vaultops_killed_during_the_automatic_rollback_resume_finishes_it(make_box) -> None:  # type: ignore[no-untyped-def]
    box = make_box("uprbkill")
    shares = shares_text(box)
    argv = [sys.executable, "-m", "vaultops", "--config", str(box.config_path)]
    proc = subprocess.Popen([*argv, "upgrade", "run", "--to", TO, "--share-stdin", "--gate-timeout", "15"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed: list[str] = []
    done = threading.Event()
    watcher = threading.Thread(target=_watch, args=(box, proc, killed, done), daemon=True)
    watcher.start()
    out, err = proc.communicate(shares, timeout=300)
    done.set()
    watcher.join()
    assert proc.returncode == -signal.SIGKILL and killed[-1] == "vaultops", (killed, out[-600:], err[-600:])
    assert load_state(state_path(box.config, AUTO)).status == RunStatus.RUNNING

    final = subprocess.run([*argv, "upgrade", "resume", "--share-stdin"], input=shares, capture_output=True,
                           text=True, timeout=300)
    assert final.returncode != 0 and "upgrade rolled back" in final.stderr, final.stderr[-800:]
    assert "continuing the automatic rollback" in final.stdout
    assert set(versions(box).values()) == {FROM}
    assert load_state(state_path(box.config, "upgrade")).status == RunStatus.ROLLED_BACK
    resumes = [e for e in journal(box) if e["action"] == "runbook.resume"]
    assert resumes and resumes[-1]["details"]["runbook"] == AUTO

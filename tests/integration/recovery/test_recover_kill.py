"""`recover quorum` with vaultops SIGKILLed at every step boundary, resumed by a new process each time.

A 5-node cluster loses 3 nodes; the two survivors' logs end at different indexes (one was frozen
earlier). The run has 17 steps; process n is killed at boundary n — alternately after the state
file records step n and after step n did its work but before it is recorded (resume must redo
it: every action is idempotent) — and process n+1 resumes. A write load runs throughout: no write
acknowledged once the recovered node leads may be lost while the others re-join.
"""

from __future__ import annotations

import signal
import time

import pytest
from recovery_helpers import (active_client, cluster_name, commit_some, journal, run_cli, shares_text, step_evidence,
                              voters)

from vaultops.runbook.state import RunStatus, StepStatus, load_state
from vaultops.services.recovery.service import state_path
from vaultops.services.upgrade.write_probe import WriteProbe, prepare
from vaultops.testing.sandbox import frozen, kill_and_wipe

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]   # real elections under a full suite
STEPS = 17   # assess, stop x2, choose, peers, start, unseal, leader, rejoin x2 x4, replace


def test_killed_at_every_step_boundary_then_resumed_completes(make_box) -> None:  # type: ignore[no-untyped-def]
    box = make_box("quorumkill", nodes=5)
    leader = active_client(box).name
    behind, ahead = [n.name for n in box.record.nodes if n.name != leader][:2]
    lost = [n.name for n in box.record.nodes if n.name not in (behind, ahead)]
    clients = box.clients(timeout=1)
    prepare(clients)
    with WriteProbe(clients) as probe:
        with frozen(box, behind):
            commit_some(box, leader)           # ahead gets entries behind does not
            time.sleep(1.0)
            with frozen(box, ahead):
                time.sleep(0.5)
                run_cli(box, "status", "--timeout", "1")
                kill_and_wipe(box, *lost)
        shares = shares_text(box)
        path = state_path(box.config, "recover-quorum")
        for n in range(STEPS):
            mode = f"{n}:unsaved" if n % 2 else str(n)
            argv = ("recover", "quorum", "--confirm", cluster_name(box)) if n == 0 else ("recover", "resume")
            proc = run_cli(box, *argv, "--share-stdin", stdin=shares,
                           env={"VAULTOPS_TEST_HOOKS": "1", "VAULTOPS_TEST_KILL_AT": mode})
            assert proc.returncode == -signal.SIGKILL, (n, proc.stdout[-800:], proc.stderr[-800:])
            state = load_state(path)
            assert state.steps[n].status == (StepStatus.RUNNING if n % 2 else StepStatus.DONE), n
            if state.steps[n].id == "leader":
                led_at = time.monotonic()
        final = run_cli(box, "recover", "resume", "--share-stdin", stdin=shares)
        assert final.returncode == 0, final.stdout + final.stderr
    state = load_state(path)
    assert state.status == RunStatus.DONE and len(state.steps) == STEPS
    assert len([h for h in state.history if h["event"] == "resume"]) == STEPS
    assert step_evidence(journal(box), "choose")["chosen"] == ahead
    assert voters(box) == {ahead: True, behind: True}
    missing = set(probe.missing(active_client(box)))
    assert not {a.key for a in probe.acks if a.at > led_at} & missing, "a write acknowledged after the recovery is lost"
    assert len([a for a in probe.acks if a.at > led_at]) > 20

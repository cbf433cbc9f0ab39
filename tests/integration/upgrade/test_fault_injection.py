"""Faults during an upgrade: the vaultops process killed at every step boundary; a non-target node
killed mid-upgrade; a node that does not come back healthy.

Kill hook (test-only, see vaultops/runbook/testhooks.py): VAULTOPS_TEST_HOOKS=1 and
VAULTOPS_TEST_KILL_AT=N (after step N is saved) or N:unsaved (after step N did its work,
before the state file records it).
"""

from __future__ import annotations

import os
import signal

import pytest
from upgrade_helpers import TO, active, journal, run_subprocess, shares_text, versions

from vaultops.errors import RunbookError
from vaultops.journal import journal_for
from vaultops.runbook.state import RunStatus, StepStatus, load_state
from vaultops.services.upgrade.context import Prompter, build_context
from vaultops.services.upgrade.service import default_runbook, resume_run, start_run, state_path
from vaultops.services.upgrade.unseal import SharesUnsealer
from vaultops.testing.sandbox import wait_raft_healthy

pytestmark = pytest.mark.integration
STEPS = 19  # runbooks/upgrade.yaml on 3 nodes


def test_killed_at_every_step_boundary_then_resumed_completes(make_box) -> None:  # type: ignore[no-untyped-def]
    """One sandbox, one process per step: each is SIGKILLed at the next boundary (alternately before
    and after the state file records the step) and the next one resumes."""
    box = make_box("upkill")
    shares = shares_text(box)
    for n in range(STEPS):
        mode = f"{n}:unsaved" if n % 2 else str(n)
        argv = ("upgrade", "run", "--to", TO) if n == 0 else ("upgrade", "resume")
        proc = run_subprocess(box, *argv, "--share-stdin", stdin=shares,
                              env={"VAULTOPS_TEST_HOOKS": "1", "VAULTOPS_TEST_KILL_AT": mode})
        assert proc.returncode == -signal.SIGKILL, (n, proc.stdout[-800:], proc.stderr[-800:])
        state = load_state(state_path(box.config, "upgrade"))
        assert state.steps[n].status == (StepStatus.RUNNING if n % 2 else StepStatus.DONE), n
    final = run_subprocess(box, "upgrade", "resume", "--share-stdin", stdin=shares)
    assert final.returncode == 0, final.stderr
    assert set(versions(box).values()) == {TO}
    state = load_state(state_path(box.config, "upgrade"))
    assert state.status == RunStatus.DONE
    assert len([h for h in state.history if h["event"] == "resume"]) == STEPS
    resumes = [e for e in journal(box) if e["action"] == "runbook.resume"]
    assert len(resumes) == STEPS and all("observed" in e["details"] for e in resumes)


def _context(box, *, gate_timeout: float):  # type: ignore[no-untyped-def]
    return build_context(box.config, clients=box.clients(), drivers=box.drivers(), journal=journal_for(box.config),
                         unsealer=SharesUnsealer(box.shares_b64[:3]), prompter=Prompter(assume_yes=True),
                         gate_timeout=gate_timeout, connect=lambda: box.clients())   # the backup's own clients


def test_halts_on_a_dead_peer_and_on_a_node_that_stays_unhealthy(make_box) -> None:  # type: ignore[no-untyped-def]
    box = make_box("uphalt")
    drivers = box.drivers()
    leader = active(box).name
    first, second = [n for n in ("node1", "node2", "node3") if n != leader]
    cfg = box.config

    # 1. a non-target node dies while the first standby is being upgraded
    def kill_peer(state) -> None:  # type: ignore[no-untyped-def]
        cur = state.current
        if cur is not None and cur.id == f"standby[{first}].unseal" and cur.status == StepStatus.RUNNING:
            drivers[second].kill()

    with pytest.raises(RunbookError) as halted:
        start_run(cfg, _context(box, gate_timeout=12), runbook_path=default_runbook(), params={"to": TO},
                  listener=kill_peer)
    assert f"halted at standby[{first}].back" in halted.value.message
    assert f"{second} is unreachable" in halted.value.message
    assert drivers[leader].is_running() and drivers[first].is_running()
    stopped = [e["node"] for e in journal(box) if (e.get("details") or {}).get("action") == "stop_node"]
    assert stopped == [first]                      # no second node taken down
    state = load_state(state_path(cfg, "upgrade"))
    assert state.status == RunStatus.HALTED and state.halt["evidence"]["nodes"][second]["reachable"] is False

    # the operator brings the peer back; 2. the next node hangs after its restart (SIGSTOP)
    drivers[second].start()
    box.unseal_all()
    wait_raft_healthy(box, voters=3)
    frozen: list[int] = []

    def freeze(state) -> None:  # type: ignore[no-untyped-def]
        cur = state.current
        if cur is not None and cur.id == f"standby[{second}].back" and not frozen:
            pid = drivers[second].pid()
            os.kill(pid, signal.SIGSTOP)
            frozen.append(pid)

    try:
        with pytest.raises(RunbookError) as stuck:
            resume_run(cfg, _context(box, gate_timeout=12), listener=freeze)
        assert f"{second} did not come back healthy on {TO}" in stuck.value.message
        assert stuck.value.evidence["evidence"]["problems"]
        assert active(box).name == leader        # no step-down while a node is unhealthy
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)

    # 3. once the node answers again, resume completes
    resume_run(cfg, _context(box, gate_timeout=60))
    assert set(versions(box).values()) == {TO}

"""Which halted upgrade runs roll back automatically, and what a restore rollback is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaultops.drivers.local import LocalDriver
from vaultops.errors import DriverError, RunbookError
from vaultops.runbook.loader import load_runbook, resolve
from vaultops.runbook.state import RunState, RunStatus, StepState, StepStatus
from vaultops.services.upgrade.pnr import before_pnr, pnr_index
from vaultops.services.upgrade.rollback import auto_plan, rollback_params
from vaultops.services.upgrade.service import runbooks_dir
from vaultops.services.upgrade.steps import UPGRADE_ACTIONS

VARS = {"leader": "node1", "standbys": ["node2", "node3"], "nodes": ["node1", "node2", "node3"],
        "current_version": "2.6.2", "to": "2.7.2"}


def _state(failed_at: str | None, *, status: RunStatus = RunStatus.HALTED) -> RunState:
    rb = load_runbook(runbooks_dir() / "upgrade.yaml", actions=UPGRADE_ACTIONS)
    steps = [StepState(id=p.id, name=p.name, action=p.action, params=p.params, node=p.node, group=p.group)
             for p in resolve(rb, VARS)]
    for step in steps:
        if step.id == failed_at:
            step.status = StepStatus.FAILED
            break
        step.status = StepStatus.DONE
    return RunState(run_id="r1", runbook="upgrade", runbook_path="", runbook_digest="", cluster="c",
                    variables=dict(VARS), steps=steps, status=status)


def test_the_point_of_no_return_is_the_step_down() -> None:
    steps = _state(None).steps
    i = pnr_index(steps)
    assert i is not None and steps[i].id == "move-leadership"
    assert before_pnr(steps, i) and not before_pnr(steps, i + 1)


@pytest.mark.parametrize(("failed", "touched"), [
    ("standby[node2].back", ["node2"]),
    ("standby[node3].stop", ["node2"]),                 # its stop gate refused: node3 was never touched
    ("standby[node3].install", ["node3", "node2"]),     # the last touched goes back first
    ("move-leadership", ["node3", "node2"]),
])
def test_a_failed_gate_before_the_point_of_no_return_rolls_back_the_touched_standbys(failed: str,
                                                                                     touched: list[str]) -> None:
    plan = auto_plan(_state(failed))
    assert plan is not None and plan.touched == touched and plan.to == "2.6.2" and plan.failed_step == failed


@pytest.mark.parametrize("failed", ["preflight", "snapshot", "old-active[node1].stop", "old-active[node1].back",
                                    "postflight"])
def test_no_automatic_rollback_when_nothing_was_touched_or_after_the_point_of_no_return(failed: str) -> None:
    assert auto_plan(_state(failed)) is None


def test_pauses_and_lease_halts_are_not_gate_failures() -> None:
    assert auto_plan(_state("standby[node2].unseal", status=RunStatus.PAUSED)) is None
    lease_halt = _state("standby[node2].back")
    lease_halt.steps[6].status = StepStatus.PENDING     # a guard halt leaves the step pending
    assert auto_plan(lease_halt) is None


def test_restore_rollback_parameters_come_from_the_upgrade_snapshot() -> None:
    state = _state(None, status=RunStatus.DONE)
    snap = state.steps[1]
    snap.started_at = "2026-11-30T10:00:00.000+00:00"
    snap.evidence = {"path": "/s/x.snap", "sha256": "ab" * 32, "verified": True}
    params = rollback_params(state)
    assert params == {"to": "2.6.2", "newer": "2.7.2", "snapshot": "/s/x.snap", "source": "file",
                      "sha256": "ab" * 32, "snapshot_at": snap.started_at, "upgrade_run": "r1"}
    snap.evidence = {"name": "c-20261130", "sinks": {"local": "ok"}, "verified": True}
    assert rollback_params(state)["source"] == "backup"
    snap.evidence = {"skipped": True}
    with pytest.raises(RunbookError, match="no verified pre-upgrade snapshot"):
        rollback_params(state)
    state.status = RunStatus.ROLLED_BACK
    with pytest.raises(RunbookError, match="rolled back already"):
        rollback_params(state)


def test_both_rollback_runbooks_load_against_the_upgrade_actions() -> None:
    for name in ("upgrade-autorollback.yaml", "upgrade-rollback.yaml"):
        assert load_runbook(runbooks_dir() / name, actions=UPGRADE_ACTIONS).steps


def test_local_driver_sets_the_raft_data_aside_and_keeps_it(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "raft.db").write_bytes(b"x")
    drv = LocalDriver("node1", {"dir": str(tmp_path)})
    res = drv.set_aside_storage("before-rollback-1a2b3c")
    assert res.exit_code == 0 and (tmp_path / "data.before-rollback-1a2b3c" / "raft.db").read_bytes() == b"x"
    assert not any((tmp_path / "data").iterdir())
    assert drv.set_aside_storage("again").stdout == "already empty"
    with pytest.raises(DriverError, match="bad storage label"):
        (tmp_path / "data" / "f").write_bytes(b"y")
        drv.set_aside_storage("../x")

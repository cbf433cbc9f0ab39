"""Rolling an upgrade back: automatically before the point of no return, by restore after it.

    state = run_upgrade(cfg, ctx, runbook_path=..., params={"to": "2.7.2"})   # `upgrade run`
    state = resume_upgrade(cfg, ctx)                                          # `upgrade resume`
    state = start_rollback(cfg, ctx) / resume_rollback(cfg, ctx)             # `upgrade rollback [--resume]`

Automatic (services/upgrade/pnr.py defines the point of no return): when an upgrade run halts
on a FAILED step at or before the step that moves leadership — any gate: health, catch-up,
a mixed-version probe, a failed install — and it had touched standbys, the upgrade's record is
marked (halt.rollback) and runbooks/upgrade-autorollback.yaml runs: the touched standbys, the
last one first, go back to the old version through the upgrade's own gated steps, then the
postflight checks every node on the old version. The upgrade run then ends "rolled back" with
the gate's evidence (`upgrade status`). A run killed during the rollback continues with
`upgrade resume`. Pauses (keyholders), lost leases and interruptions are not gate failures:
they halt as before.

By restore (`upgrade rollback`, runbooks/upgrade-rollback.yaml): every node reinstalled on the
old version, the upgrade's verified pre-upgrade snapshot restored, versions and data verified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaultops.config import Config
from vaultops.errors import RunbookError
from vaultops.runbook.engine import Listener
from vaultops.runbook.state import RunState, RunStatus, StepStatus, load_state, now, run_lock, save_state
from vaultops.services.upgrade.context import UpgradeContext
from vaultops.services.upgrade.pnr import before_pnr
from vaultops.services.upgrade.service import resume_run, runbooks_dir, start_run, state_path

AUTO = "upgrade-autorollback"
MANUAL = "upgrade-rollback"
Emit = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What the automatic rollback does: the touched standbys (last first) back to *to*."""

    to: str
    touched: list[str]
    failed_step: str


def auto_plan(state: RunState) -> Plan | None:
    """The rollback a halted upgrade run calls for, or None (not a gate failure before the point of no return)."""
    if state.runbook != "upgrade" or state.status != RunStatus.HALTED:
        return None
    failed = next((i for i, s in enumerate(state.steps) if s.status == StepStatus.FAILED), None)
    if failed is None or not before_pnr(state.steps, failed):
        return None
    touched: list[str] = []
    for step in state.steps[:failed + 1]:
        # a node is touched once it was stopped; a stop whose safety gate refused left it as it was
        stopped = step.action == "stop_node" and step.status == StepStatus.DONE
        changed = stopped or (step.action in ("install", "start_node") and step.status != StepStatus.PENDING)
        if changed and step.node and step.node not in touched:
            touched.append(step.node)
    if not touched:
        return None                  # preflight or snapshot: nothing was changed
    return Plan(to=str(state.variables["current_version"]), touched=touched[::-1],
                failed_step=state.steps[failed].id)


def run_upgrade(cfg: Config, ctx: UpgradeContext, *, auto_rollback: bool = True, emit: Emit = lambda _m: None,
                operator: str | None = None, **start: Any) -> RunState:
    """start_run, rolling back automatically when a gate fails before the point of no return."""
    try:
        return start_run(cfg, ctx, operator=operator, emit=emit, **start)
    except RunbookError as exc:
        if not auto_rollback:
            raise
        return _roll_back_or_raise(cfg, ctx, exc, operator=operator, emit=emit, listener=start.get("listener"))


def resume_upgrade(cfg: Config, ctx: UpgradeContext, *, auto_rollback: bool = True, emit: Emit = lambda _m: None,
                   operator: str | None = None, **resume: Any) -> RunState:
    """resume_run; a marked upgrade continues its automatic rollback instead."""
    path = state_path(cfg, "upgrade")
    state = load_state(path)
    if state.status == RunStatus.ROLLED_BACK:
        raise RunbookError(f"run {state.run_id} was rolled back", hint="start a new one with `vaultops upgrade run`")
    if state.status == RunStatus.HALTED and (state.halt or {}).get("rollback"):
        if auto_rollback:
            return _auto_rollback(cfg, ctx, state, operator=operator, emit=emit, listener=resume.get("listener"))
        _forward(path, state, ctx, emit)   # the operator goes forward: the resumed upgrade re-checks every node
    try:
        return resume_run(cfg, ctx, operator=operator, emit=emit, **resume)
    except RunbookError as exc:
        if not auto_rollback:
            raise
        return _roll_back_or_raise(cfg, ctx, exc, operator=operator, emit=emit, listener=resume.get("listener"))


def _forward(path: Path, state: RunState, ctx: UpgradeContext, emit: Emit) -> None:
    """Drop the rollback mark: the upgrade resumes instead (its re-check of done steps redoes any node
    the rollback already put back on the old version)."""
    with run_lock(path):
        fresh = load_state(path)
        mark = (fresh.halt or {}).pop("rollback", None)
        fresh.history.append({"event": "rollback abandoned", "at": now()})
        save_state(path, fresh)
    emit(f"not rolling back (--no-auto-rollback): resuming upgrade run {state.run_id} instead")
    ctx.journal.append("upgrade.rollback.abandoned", outcome="forward", details={"run": state.run_id, "mark": mark})


def _roll_back_or_raise(cfg: Config, ctx: UpgradeContext, exc: RunbookError, *, operator: str | None,
                        emit: Emit, listener: Listener | None = None) -> RunState:
    path = state_path(cfg, "upgrade")
    if not path.exists():
        raise exc
    state = load_state(path)
    plan = auto_plan(state)
    if plan is None:
        raise exc
    emit(f"{plan.failed_step} failed before the point of no return: rolling {', '.join(plan.touched)} "
         f"back to {plan.to}")
    with run_lock(path):
        state = load_state(path)
        assert state.halt is not None
        state.halt["rollback"] = {"runbook": AUTO, "to": plan.to, "nodes": plan.touched,
                                  "failed_step": plan.failed_step, "started_at": now()}
        state.history.append({"event": "rollback", "at": now(), "from": plan.failed_step})
        save_state(path, state)
    ctx.journal.append("upgrade.rollback.start", outcome="rolling back",
                       details={"run": state.run_id, "failed_step": plan.failed_step, "nodes": plan.touched,
                                "to": plan.to, "reason": state.halt.get("message")})
    return _auto_rollback(cfg, ctx, state, operator=operator, emit=emit, listener=listener)


def _auto_rollback(cfg: Config, ctx: UpgradeContext, upgrade: RunState, *, operator: str | None,
                   emit: Emit, listener: Listener | None = None) -> RunState:
    """The rollback run (started, or resumed after a kill); *listener* sees its states (a live view)."""
    assert upgrade.halt is not None
    mark = upgrade.halt["rollback"]
    rb_path = state_path(cfg, AUTO)
    ours = _own_run(rb_path, upgrade.run_id)
    if ours is not None and ours.status == RunStatus.DONE:
        done = ours
    elif ours is not None:
        emit(f"continuing the automatic rollback (run {ours.run_id})")
        done = resume_run(cfg, ctx, runbook=AUTO, operator=operator, emit=emit, listener=listener)
    else:
        params = {"to": mark["to"], "touched": list(mark["nodes"]), "upgrade_run": upgrade.run_id}
        done = start_run(cfg, ctx, runbook_path=runbooks_dir() / f"{AUTO}.yaml", params=params, restart=True,
                         operator=operator, emit=emit, listener=listener)
    finished = mark_rolled_back(cfg, ctx, done)
    reason = (finished.halt or {}).get("message", "a gate failed")
    raise RunbookError(f"upgrade rolled back: every node runs {mark['to']} again; it halted at "
                       f"{mark['failed_step']}: {reason}",
                       hint="see the evidence in `vaultops upgrade status`, fix the cause, then `vaultops upgrade run`",
                       evidence=finished.halt)


def _own_run(path: Path, upgrade_run: str) -> RunState | None:
    if not path.exists():
        return None
    found = load_state(path)
    return found if found.variables.get("upgrade_run") == upgrade_run else None


def mark_rolled_back(cfg: Config, ctx: UpgradeContext, rollback: RunState, *,
                     extra: dict[str, Any] | None = None) -> RunState:
    """The upgrade's record ends "rolled back", with the rollback's run and final evidence beside the halt."""
    path = state_path(cfg, "upgrade")
    with run_lock(path):
        state = load_state(path)
        halt = dict(state.halt or {"message": f"rolled back by run {rollback.run_id}"})
        last = rollback.steps[-1]
        halt["rollback"] = {**(halt.get("rollback") or {}), "runbook": rollback.runbook, "run": rollback.run_id,
                            "finished_at": last.finished_at, "summary": last.message,
                            "evidence": last.evidence, **(extra or {})}
        state.halt, state.status = halt, RunStatus.ROLLED_BACK
        state.history.append({"event": "rolled back", "at": now(), "by": rollback.run_id})
        save_state(path, state)
    ctx.journal.append("upgrade.rollback.done", outcome="rolled back",
                       details={"run": state.run_id, "rollback_run": rollback.run_id, "summary": last.message})
    return state


# -- after the point of no return: `vaultops upgrade rollback` ------------------------------------

def rollback_params(upgrade: RunState) -> dict[str, Any]:
    """The restore rollback's parameters, from the upgrade run's record (its verified snapshot)."""
    if upgrade.status == RunStatus.ROLLED_BACK:
        raise RunbookError(f"upgrade run {upgrade.run_id} was rolled back already", hint="nothing to roll back")
    snap = next((s for s in upgrade.steps if s.action == "snapshot"), None)
    if snap is None or snap.status != StepStatus.DONE or snap.evidence.get("skipped"):
        raise RunbookError(f"upgrade run {upgrade.run_id} has no verified pre-upgrade snapshot",
                           hint="restore a verified backup by hand (`vaultops backup restore`)")
    ev = snap.evidence
    source, ref = ("file", ev.get("path")) if ev.get("path") else ("backup", ev.get("name"))
    return {"to": str(upgrade.variables["current_version"]), "newer": str(upgrade.variables["to"]),
            "snapshot": str(ref), "source": source, "sha256": str(ev.get("sha256") or ""),
            "snapshot_at": snap.started_at or "", "upgrade_run": upgrade.run_id}


def _reclaiming(upgrade_run: str) -> Callable[[Any], Callable[[], None]]:
    """The guard of a restore rollback: after the restore the lease entry is the snapshot's (held by
    the upgrade run): take it back instead of halting."""
    def wrap(lease: Any) -> Callable[[], None]:
        def guard() -> None:
            try:
                lease.check()
            except RunbookError:
                if not lease.lost or not lease.reclaim(upgrade_run):
                    raise
        return guard
    return wrap


def start_rollback(cfg: Config, ctx: UpgradeContext, *, operator: str | None = None, emit: Emit = lambda _m: None,
                   restart: bool = False) -> RunState:
    upgrade = load_state(state_path(cfg, "upgrade"))
    params = rollback_params(upgrade)
    done = start_run(cfg, ctx, runbook_path=runbooks_dir() / f"{MANUAL}.yaml", params=params, restart=restart,
                     operator=operator, emit=emit, lease_guard=_reclaiming(upgrade.run_id))
    return _finish_restore(cfg, ctx, done)


def resume_rollback(cfg: Config, ctx: UpgradeContext, *, operator: str | None = None, emit: Emit = lambda _m: None,
                    accept_changed_runbook: bool = False) -> RunState:
    """Continue `upgrade rollback`. Killed while the cluster was down for the restore, no quorum can
    hold the cluster's run lease: the run goes on without it (journaled) until the restore."""
    from vaultops.errors import VaultOpsError
    from vaultops.services.lease import release_if_held_by

    path = state_path(cfg, MANUAL)
    state = load_state(path)
    upgrade_run = str(state.variables["upgrade_run"])

    def again(*, hold_lease: bool) -> RunState:
        return resume_run(cfg, ctx, runbook=MANUAL, operator=operator, emit=emit, hold_lease=hold_lease,
                          accept_changed_runbook=accept_changed_runbook, lease_guard=_reclaiming(upgrade_run))
    try:   # killed after the restore: the entry is the snapshot's, naming the upgrade run, which is gone
        release_if_held_by(cfg, list(ctx.clients.values()), upgrade_run)
        done = again(hold_lease=True)
    except RunbookError:
        raise
    except VaultOpsError as exc:      # no quorum answered the lease (a lone node may claim active a while)
        if len(load_state(path).history) != len(state.history):
            raise                     # the run had started: not a lease failure
        emit(f"the cluster cannot hold the run lease now ({exc.message}): the cluster is down for the "
             "restore; resuming without it until it is back (the local run lock still keeps a second "
             "vaultops out)")
        ctx.journal.append("runbook.lease_skipped", outcome="cluster down",
                           details={"run": state.run_id, "error": exc.message})
        done = again(hold_lease=False)
    return _finish_restore(cfg, ctx, done)


def _finish_restore(cfg: Config, ctx: UpgradeContext, done: RunState) -> RunState:
    loss = next((s.evidence for s in done.steps if s.action == "rollback_loss"), {})
    restored = next((s.evidence for s in done.steps if s.action == "restore_snapshot"), {})
    mark_rolled_back(cfg, ctx, done, extra={"statement": loss.get("statement"), "lost": restored})
    return done


def loss_report(state: RunState) -> str:
    """The closing lines of `upgrade rollback`: what was restored and which writes are lost."""
    first = next((s.evidence for s in state.steps if s.action == "rollback_loss"), {})
    restored = next((s.finished_at for s in state.steps if s.action == "restore_snapshot"), None)
    return (f"restored the pre-upgrade snapshot taken at {first.get('snapshot_at')} (raft index "
            f"{first.get('snapshot_index')}); every node runs {state.variables.get('to')}.\n"
            f"LOST: every write made after {first.get('snapshot_at')}: at least the "
            f"{first.get('entries_since')} raft log entries committed before the rollback began (at most that "
            f"many writes), and any made until the cluster went down; the cluster was down from "
            f"{_down_at(state)} until {restored}.")


def _down_at(state: RunState) -> str | None:
    return next((s.finished_at for s in state.steps if s.action == "take_down"), None)

"""Run a resolved plan step by step, saving state after each step and journaling its evidence.

    engine = Engine(state_path=..., ctx=ctx, actions=UPGRADE_ACTIONS, journal=journal, observe=observe,
                    listener=tui_update)
    state = engine.start(runbook, variables, plan)   # or engine.resume(load_state(path))
    engine.run(state)

A failing step halts the run: the step is marked failed, the state says why
with the evidence the step saw, the journal records it, and RunbookError is
raised. A step that waits for people raises RunbookPaused: same, but status
`paused`. On resume the engine first re-reads the cluster (`observe`) and
re-checks every done step that has a `verify`: a step whose effect no longer
holds (a node recorded as upgraded that is sealed again, say) sends the run
back to the start of that step's group. Actions are idempotent, so a step
that was interrupted simply runs again.

The engine is generic over its context: an `Engine[C]` takes a C and a
`Registry[C]` of actions that all run on a C (runbook/registry.py).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from vaultops.errors import RunbookError, RunbookPaused, VaultOpsError
from vaultops.journal import Journal
from vaultops.runbook import testhooks
from vaultops.runbook.changes import RunbookChange, adopt, review
from vaultops.runbook.loader import PlannedStep, Runbook
from vaultops.runbook.registry import Registry
from vaultops.runbook.state import RunState, RunStatus, StepState, StepStatus, now, save_state

log = logging.getLogger("vaultops.runbook")

Listener = Callable[[RunState], None]
Guard = Callable[[], None]
Observer = Callable[[], dict[str, dict[str, Any]]]
MAX_EVIDENCE_CHARS = 6000
C = TypeVar("C")


class Engine(Generic[C]):
    def __init__(self, *, state_path: Path, ctx: C, actions: Registry[C], journal: Journal,
                 observe: Observer | None = None, listener: Listener | None = None,
                 emit: Callable[[str], None] = lambda _m: None,
                 resume_command: str = "`vaultops upgrade resume` (or `vaultops runbook resume FILE`)") -> None:
        self.state_path = state_path
        self.resume_command = resume_command   # named in a halted run's hint
        self.ctx = ctx
        self.actions = actions
        self.journal = journal
        self.observe = observe
        self.listener = listener
        self.emit = emit
        self.guard: Guard | None = None

    def _hint(self, exc: VaultOpsError) -> str:
        return _resume_hint(exc, self.resume_command)

    # -- entry points ------------------------------------------------------------
    def start(self, runbook: Runbook, variables: dict[str, Any], plan: list[PlannedStep], *,
              run_id: str | None = None, guard: Guard | None = None) -> RunState:
        """A new run. *guard* is called before every step (the cluster run lease): raising halts the run."""
        self.guard = guard
        steps = [StepState(id=p.id, name=p.name, action=p.action, params=p.params, node=p.node, group=p.group)
                 for p in plan]
        state = RunState(run_id=run_id or new_run_id(), runbook=runbook.name,
                         runbook_path=str(runbook.path or ""), runbook_digest=runbook.digest,
                         cluster=self.journal.cluster or "", variables=_plain(variables), steps=steps)
        state.history.append({"event": "start", "at": now()})
        self._save(state)
        self._journal("runbook.start", state, details={"plan": [s.id for s in steps],
                                                       "variables": state.variables})
        return self.run(state)

    def resume(self, state: RunState, *, runbook: Runbook | None = None, accept_changed: bool = False,
               guard: Guard | None = None) -> RunState:
        """Continue a run. *runbook*, read again from disk, must be the text the run started from
        unless *accept_changed* (then its plan is adopted, see runbook/changes.py)."""
        self.guard = guard
        if state.status == RunStatus.DONE:
            self.emit(f"run {state.run_id} already finished")
            return state
        change = review(state, runbook, accept=accept_changed, emit=self.emit)
        if change is not None and runbook is not None:
            self._adopt(state, runbook, change)
        view = self._observe(state)
        state.history.append({"event": "resume", "at": now(), "from": getattr(state.current, "id", None)})
        self._journal("runbook.resume", state, details={"from": getattr(state.current, "id", None),
                                                        "observed": view})
        self._recheck(state)
        state.status, state.halt, state.prompt = RunStatus.RUNNING, None, None
        self._save(state)
        return self.run(state)

    def run(self, state: RunState) -> RunState:
        for index, step in enumerate(state.steps):
            if step.status == StepStatus.DONE:
                continue
            self._check_guard(state, step)
            self._run_step(state, index, step)
        state.status = RunStatus.DONE
        self._observe(state)
        self._save(state)
        self._journal("runbook.done", state, details={"steps": len(state.steps)})
        self.emit(f"run {state.run_id}: all {len(state.steps)} steps done")
        return state

    # -- one step ------------------------------------------------------------------
    def _run_step(self, state: RunState, index: int, step: StepState) -> None:
        act = self.actions.get(step.action)
        step.status, step.started_at, step.message = StepStatus.RUNNING, now(), ""
        step.attempts += 1
        self._observe(state)
        self._save(state)
        self.emit(f"[{index + 1}/{len(state.steps)}] {step.id}: {act.describe(step.params)}")
        try:
            evidence = act.run(self.ctx, **step.params) or {}
        except RunbookPaused as exc:
            self._stop(state, step, exc, RunStatus.PAUSED, StepStatus.PAUSED)
            raise
        except VaultOpsError as exc:
            self._stop(state, step, exc, RunStatus.HALTED, StepStatus.FAILED)
            raise RunbookError(f"halted at {step.id}: {exc.message}", hint=self._hint(exc),
                               evidence=state.halt) from exc
        except KeyboardInterrupt:
            self._stop(state, step, RunbookError("interrupted by the operator"), RunStatus.HALTED,
                       StepStatus.RUNNING)
            raise
        testhooks.maybe_kill(index, saved=False)
        step.status, step.finished_at, step.evidence = StepStatus.DONE, now(), _bounded(evidence)
        step.message = str(evidence.get("summary", "")) if isinstance(evidence, dict) else ""
        self._save(state)
        self._journal("runbook.step", state, node=step.node,
                      details={"step": step.id, "action": step.action, "params": step.params,
                               "evidence": step.evidence})
        testhooks.maybe_kill(index, saved=True)

    def _stop(self, state: RunState, step: StepState, exc: VaultOpsError, run_status: RunStatus,
              step_status: StepStatus) -> None:
        evidence = _bounded(getattr(exc, "evidence", None) or {})
        step.status, step.finished_at, step.message = step_status, now(), exc.message
        step.evidence = evidence
        state.status = run_status
        state.halt = {"step": step.id, "message": exc.message, "hint": exc.hint, "evidence": evidence}
        state.prompt = exc.message if run_status == RunStatus.PAUSED else None
        self._observe(state)
        self._save(state)
        self._journal("runbook.halt" if run_status == RunStatus.HALTED else "runbook.pause", state,
                      node=step.node, outcome=run_status.value,
                      details={"step": step.id, "message": exc.message, "evidence": evidence})

    # -- resume: trust the cluster, not the record -----------------------------------
    def _recheck(self, state: RunState) -> None:
        for i, step in enumerate(state.steps):
            if step.status != StepStatus.DONE:
                break
            act = self.actions.get(step.action)
            if act.verify is None:
                continue
            problem = act.verify(self.ctx, **step.params)
            if problem:
                start = _group_start(state, i)
                for later in state.steps[start:]:
                    later.status = StepStatus.PENDING
                self.emit(f"{step.id} no longer holds ({problem}): redoing from {state.steps[start].id}")
                self._journal("runbook.rewind", state, node=step.node, outcome="rewind",
                              details={"step": step.id, "problem": problem, "from": state.steps[start].id})
                return

    # -- edited runbooks and the run lease ----------------------------------------------
    def _adopt(self, state: RunState, runbook: Runbook, change: RunbookChange) -> None:
        for line in change.diff:
            self.emit(f"  {line}")
        adopt(state, runbook, change)
        self.emit(f"run {state.run_id}: continuing with the edited runbook ({change.summary()})")
        self._journal("runbook.changed", state, outcome="accepted",
                      details={"from": change.old_digest, "to": change.new_digest,
                               "steps": list(change.steps_changed), "diff": list(change.diff)})

    def _check_guard(self, state: RunState, step: StepState) -> None:
        if self.guard is None:
            return
        try:
            self.guard()
        except VaultOpsError as exc:
            self._stop(state, step, exc, RunStatus.HALTED, StepStatus.PENDING)
            raise RunbookError(f"halted before {step.id}: {exc.message}", hint=self._hint(exc),
                               evidence=state.halt) from exc

    # -- plumbing ----------------------------------------------------------------------
    def _observe(self, state: RunState) -> dict[str, Any]:
        if self.observe is None:
            return {}
        try:
            state.nodes = self.observe()
        except VaultOpsError as exc:  # a view for people; never a reason to stop
            log.debug("observe failed: %s", exc)
        return state.nodes

    def _save(self, state: RunState) -> None:
        save_state(self.state_path, state)
        if self.listener is not None:
            self.listener(state)

    def _journal(self, action: str, state: RunState, *, node: str | None = None, outcome: str = "ok",
                 details: dict[str, Any] | None = None) -> None:
        self.journal.append(action, node=node, outcome=outcome,
                            details={"run": state.run_id, "runbook": state.runbook, **(details or {})})


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _group_start(state: RunState, index: int) -> int:
    group = state.steps[index].group
    if group is None:
        return index
    return next(i for i, s in enumerate(state.steps) if s.group == group)


def _resume_hint(exc: VaultOpsError, command: str) -> str:
    if exc.hint and command in exc.hint:      # the step's hint already says how to go on
        return exc.hint
    base = exc.hint + "; then " if exc.hint else ""
    return base + f"resume with {command}"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _bounded(evidence: Any) -> dict[str, Any]:
    import json

    plain = _plain(evidence if isinstance(evidence, dict) else {"value": evidence})
    text = json.dumps(plain, default=str)
    if len(text) <= MAX_EVIDENCE_CHARS:
        return plain
    return {"truncated": True, "head": text[:MAX_EVIDENCE_CHARS]}

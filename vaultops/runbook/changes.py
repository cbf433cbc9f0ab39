"""An edited runbook meets a recorded run: what changed, refuse it, or adopt it when accepted.

A run records the digest of the runbook text it started from. On resume the runbook is read
again; if its digest differs, the resume is refused and the difference shown as a short unified
diff of the resolved plans (step id, action, parameters), resolved with the run's own variables.
With --accept-changed-runbook the edited runbook's plan replaces the recorded one: steps that
are done and unchanged (same id, action and parameters) stay done, everything else runs.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vaultops.errors import RunbookError
from vaultops.runbook.loader import PlannedStep, Runbook, resolve
from vaultops.runbook.state import RunState, StepState, StepStatus, now

MAX_DIFF_LINES = 40
ACCEPT_FLAG = "--accept-changed-runbook"


@dataclass(frozen=True)
class RunbookChange:
    old_digest: str
    new_digest: str
    diff: tuple[str, ...]
    plan: tuple[PlannedStep, ...] | None = None     # the edited runbook's plan; None if it cannot be resolved
    problem: str | None = None                      # why it cannot be resolved
    steps_changed: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        if self.problem:
            return f"and no longer resolves ({self.problem})"
        if not self.steps_changed:
            return "but its plan is the same (comments, descriptions or formatting changed)"
        shown = ", ".join(self.steps_changed[:4]) + (" …" if len(self.steps_changed) > 4 else "")
        return f"steps changed: {shown}"


def compare(state: RunState, runbook: Runbook) -> RunbookChange | None:
    """None when *runbook* is the text the run started from."""
    if runbook.digest == state.runbook_digest:
        return None
    plan: list[PlannedStep] | None = None
    problem = None
    try:
        plan = resolve(runbook, _variables(state, runbook))
    except RunbookError as exc:
        problem = exc.message
    old = [_line(s.id, s.action, s.params) for s in state.steps]
    new = [_line(p.id, p.action, p.params) for p in plan or []]
    diff = list(difflib.unified_diff(old, new, "recorded plan", "edited runbook", n=1, lineterm=""))
    changed = sorted({ln[1:].split(":", 1)[0] for ln in diff[2:] if ln[:1] in "+-"})
    if len(diff) > MAX_DIFF_LINES:
        diff = diff[:MAX_DIFF_LINES] + [f"… {len(diff) - MAX_DIFF_LINES} more lines"]
    return RunbookChange(state.runbook_digest, runbook.digest, tuple(diff), tuple(plan) if plan is not None else None,
                         problem, tuple(changed))


def review(state: RunState, runbook: Runbook | None, *, accept: bool,
           emit: Callable[[str], None] = lambda _m: None) -> RunbookChange | None:
    """Refuse (RunbookError, after showing the diff) a resume of an edited runbook unless *accept*."""
    if runbook is None:
        return None
    change = compare(state, runbook)
    if change is None or accept:
        return change
    emit(f"runbook {runbook.path or runbook.name} changed since run {state.run_id} started:")
    for line in change.diff:
        emit(f"  {line}")
    raise RunbookError(f"runbook {runbook.path or runbook.name} was edited after run {state.run_id} started "
                       f"(digest {change.old_digest[:12]} -> {change.new_digest[:12]}), {change.summary()}",
                       hint=f"restore the runbook it started from, or resume with {ACCEPT_FLAG} to run the edited one")


def adopt(state: RunState, runbook: Runbook, change: RunbookChange) -> None:
    """Make the edited runbook's plan the run's plan: unchanged done steps stay done."""
    if change.plan is not None:
        done = {s.id: s for s in state.steps if s.status == StepStatus.DONE}
        steps = []
        for p in change.plan:
            old = done.get(p.id)
            same = old is not None and old.action == p.action and old.params == _plain(p.params)
            steps.append(old if same and old is not None else
                         StepState(id=p.id, name=p.name, action=p.action, params=_plain(p.params), node=p.node,
                                   group=p.group))
        state.steps = steps
    state.runbook_digest = runbook.digest
    state.runbook_path = str(runbook.path or state.runbook_path)
    state.history.append({"event": "runbook-changed", "at": now(), "from": change.old_digest,
                          "to": change.new_digest, "steps": list(change.steps_changed)})


def _variables(state: RunState, runbook: Runbook) -> dict[str, Any]:
    """The run's variables with the edited runbook's parameters (a new one gets its default)."""
    given = {p.name: state.variables[p.name] for p in runbook.params if p.name in state.variables}
    return {**state.variables, **runbook.variables(given)}


def _line(step_id: str, action: str, params: dict[str, Any]) -> str:
    return f"{step_id}: {action} {json.dumps(params, sort_keys=True, default=str)}"


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params, default=str))

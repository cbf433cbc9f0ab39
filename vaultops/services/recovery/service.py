"""Start, resume and describe the recovery runbooks (node-remove, node-replace, recover-quorum,
recover-from-backup) on the shared runbook engine: resumable state after every step, every step
journalled, an edited runbook refused on resume.

    ctx = build_context(...)                                   # context.py; the CLI wires it
    state = start(ctx, "recover-quorum", {"survivors": [...], "lost": [...]}, lease=False)
    state = resume(ctx, "recover-quorum", shares_again=...)    # after a halt, a pause or a SIGKILL

The cluster-wide run lease (services/lease.py) lives in the cluster's KV store, so it is held
only by runs that start while quorum holds (node remove/replace). `recover quorum` and
`recover from-backup` run when no node can write: they hold the local run lock only, and say so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vaultops.config import Config
from vaultops.errors import RunbookError
from vaultops.runbook.changes import ACCEPT_FLAG, review
from vaultops.runbook.engine import Engine, Listener, new_run_id
from vaultops.runbook.loader import Runbook, load_runbook, resolve
from vaultops.runbook.state import RunState, RunStatus, load_state, run_lock
from vaultops.services.lease import run_lease
from vaultops.services.recovery.context import RecoveryContext
from vaultops.services.recovery.node_steps import RESUME_COMMAND
from vaultops.services.upgrade.observe import observe, summary
from vaultops.services.upgrade.service import runbooks_dir, state_path

RUNBOOKS = ("recover-quorum", "recover-from-backup", "node-replace", "node-remove")
LEASED = ("node-replace", "node-remove")


def runbook_path(name: str) -> Path:
    path = runbooks_dir() / f"{name}.yaml"
    if not path.is_file():
        raise RunbookError(f"runbook {path} not found", hint="set VAULTOPS_RUNBOOKS to the runbooks/ folder")
    return path


def load(path: Path) -> Runbook:
    from vaultops.services.recovery.actions import RECOVERY_ACTIONS

    return load_runbook(path, actions=RECOVERY_ACTIONS)


def engine_for(ctx: RecoveryContext, *, listener: Listener | None = None) -> Engine[RecoveryContext]:
    from vaultops.services.recovery.actions import RECOVERY_ACTIONS

    return Engine(state_path=ctx.state_path, ctx=ctx, actions=RECOVERY_ACTIONS, journal=ctx.journal,
                  observe=lambda: summary(observe(ctx.clients, storage=ctx.storage)), listener=listener,
                  emit=ctx.emit, resume_command=RESUME_COMMAND)


def start(ctx: RecoveryContext, name: str, variables: dict[str, Any], *, restart: bool = False,
          operator: str | None = None, listener: Listener | None = None) -> RunState:
    """A new run of runbooks/<name>.yaml with *variables* (resolved once, stored with the run)."""
    rb = load(runbook_path(name))
    params = {p.name for p in rb.params}
    variables = {**variables, **rb.variables({k: v for k, v in variables.items() if k in params})}
    plan = resolve(rb, variables)
    engine = engine_for(ctx, listener=listener)
    run_id = new_run_id()
    with run_lock(ctx.state_path):
        refuse_unfinished(ctx.state_path, restart=restart)
        with _lease(ctx, name, run_id, operator) as guard:
            return engine.start(rb, variables, plan, run_id=run_id, guard=guard)


def resume(ctx: RecoveryContext, name: str, *, operator: str | None = None, listener: Listener | None = None,
           accept_changed_runbook: bool = False) -> RunState:
    with run_lock(ctx.state_path):
        state = load_state(ctx.state_path)
        if state.status == RunStatus.DONE:
            raise RunbookError(f"run {state.run_id} ({name}) already finished", hint="nothing to resume")
        rb = _current_runbook(state, accept_changed_runbook)
        review(state, rb, accept=accept_changed_runbook, emit=ctx.emit)   # before touching the cluster
        engine = engine_for(ctx, listener=listener)
        with _lease(ctx, name, state.run_id, operator) as guard:
            return engine.resume(state, runbook=rb, accept_changed=accept_changed_runbook, guard=guard)


@contextlib.contextmanager
def _lease(ctx: RecoveryContext, name: str, run_id: str, operator: str | None) -> Iterator[Callable[[], None] | None]:
    if name not in LEASED:
        yield None     # no node can write: the local run lock is all there is
        return
    with run_lease(ctx.cfg, list(ctx.clients.values()), run_id=run_id, runbook=name, operator=operator,
                   journal=ctx.journal) as lease:
        yield lease.check if lease else None


def unfinished(cfg: Config, names: tuple[str, ...] = RUNBOOKS) -> list[tuple[str, RunState]]:
    """The recorded runs of *names* that are not done."""
    out = []
    for name in names:
        path = state_path(cfg, name)
        if path.exists():
            state = load_state(path)
            if state.status != RunStatus.DONE:
                out.append((name, state))
    return out


def refuse_unfinished(path: Path, *, restart: bool) -> None:
    if not path.exists():
        return
    old = load_state(path)
    if old.status == RunStatus.DONE or restart:
        path.replace(path.with_name(f"{path.stem}.{old.run_id}.json"))
        return
    where = old.current.id if old.current else "?"
    raise RunbookError(f"run {old.run_id} of {old.runbook} is {old.status.value} at {where}",
                       hint="continue it with `vaultops recover resume` (or `vaultops node resume`), "
                            "or pass --restart to abandon it")


def _current_runbook(state: RunState, accept_changed: bool) -> Runbook | None:
    path = Path(state.runbook_path) if state.runbook_path else None
    if path is None or (not path.is_file() and accept_changed):
        return None
    if not path.is_file():
        raise RunbookError(f"the runbook run {state.run_id} started from ({path}) is gone",
                           hint=f"restore it, or resume with {ACCEPT_FLAG} to continue the recorded plan")
    return load(path)


__all__ = ["LEASED", "RUNBOOKS", "load", "resume", "runbook_path", "start", "state_path", "unfinished"]

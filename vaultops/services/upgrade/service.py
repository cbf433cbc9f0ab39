"""Start, resume and describe runbook runs against a configured cluster (used by the CLI and the TUI).

    unsealer = make_unsealer(cfg, shares, clients=session.clients(token=False), journal=session.journal)
    ctx = build_context(cfg, clients=session.clients(), drivers=session.drivers(), journal=session.journal,
                        unsealer=unsealer)
    state = start_run(cfg, ctx, runbook_path=default_runbook(), params={"to": "2.7.2"})
    state = resume_run(cfg, ctx)            # after a halt, a pause or a kill

(the Session is the caller's: the CLI's or the console's; nothing here builds clients or journals.)

`listener(state)` is called after every change of the RunState: a TUI shows
per-node state, the current step and the keyholder prompt from it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.config import Config
from vaultops.errors import RunbookError, VaultOpsError
from vaultops.journal import Journal
from vaultops.runbook.changes import ACCEPT_FLAG, review
from vaultops.runbook.engine import Engine, Listener, new_run_id
from vaultops.runbook.loader import PlannedStep, Runbook, load_runbook, resolve
from vaultops.runbook.state import RunState, RunStatus, load_state, run_lock
from vaultops.services.lease import RunLease, ensure_free, run_lease
from vaultops.services.upgrade.context import UpgradeContext
from vaultops.services.upgrade.observe import observe, summary
from vaultops.services.upgrade.unseal import Unsealer, choose

if TYPE_CHECKING:
    from vaultops.vault import NodeClient

UPGRADE_RUNBOOK = "upgrade.yaml"
LeaseGuard = Callable[[RunLease], Callable[[], None]]


def runbooks_dir() -> Path:
    env = os.environ.get("VAULTOPS_RUNBOOKS")
    # vaultops/runbooks links to the repository's runbooks/ and is shipped in the wheel as package data.
    return Path(env) if env else Path(__file__).resolve().parents[2] / "runbooks"


def default_runbook(cfg: Config | None = None) -> Path:
    configured = cfg.section("upgrade").get("runbook") if cfg is not None else None
    path = cfg.resolve_path(configured) if configured and cfg is not None else runbooks_dir() / UPGRADE_RUNBOOK
    if not path.is_file():
        raise RunbookError(f"runbook {path} not found", hint="set VAULTOPS_RUNBOOKS to the runbooks/ folder")
    return path


def load_upgrade_runbook(path: Path) -> Runbook:
    """A runbook file, its actions checked against the upgrade's table (the one runbook context there is)."""
    from vaultops.services.upgrade.steps import UPGRADE_ACTIONS

    return load_runbook(path, actions=UPGRADE_ACTIONS)


def state_path(cfg: Config, runbook: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cfg.cluster_name)
    return cfg.state_dir / "runs" / f"{safe}-{runbook}.json"


def make_unsealer(cfg: Config, shares: list[str] | None, *, clients: Sequence[NodeClient],
                  journal: Journal) -> Unsealer:
    """Shamir with shares given: submit them (through the checked ceremony when a manifest exists);
    without: pause for the keyholders; auto-unseal: wait. The seal type is asked of the nodes
    (*clients*: unauthenticated will do)."""
    from vaultops.services.ceremony.manifest import Manifest, manifest_path

    seal_type = "shamir"
    for client in clients:
        try:
            seal_type = client.seal.status().type
            break
        except VaultOpsError:
            continue
    manifest, path = None, None
    try:
        path = manifest_path(cfg)
        manifest = Manifest.load(path)
    except VaultOpsError:
        pass
    names = [kh.name for kh in manifest.keyholders] if manifest else []
    return choose(seal_type, shares, names, manifest=manifest, manifest_path=path, journal=journal)


def cluster_vars(ctx: UpgradeContext) -> dict[str, Any]:
    """Variables every runbook can use: leader, standbys, nodes, current_version."""
    view = observe(ctx.clients, storage=ctx.storage)
    active = view.active
    if active is None:
        raise RunbookError("no active node: cannot plan", hint="check `vaultops status`", evidence=view.evidence())
    names = [n.name for n in ctx.cfg.nodes]
    versions = sorted({n.version for n in view.nodes.values() if n.version})
    return {"leader": active.name, "standbys": [n for n in names if n != active.name], "nodes": names,
            "current_version": versions[0] if len(versions) == 1 else ",".join(versions)}


def make_plan(ctx: UpgradeContext, runbook_path: Path, params: dict[str, Any]) -> tuple[Runbook, dict[str, Any],
                                                                                        list[PlannedStep]]:
    rb = load_upgrade_runbook(runbook_path)
    variables = {**cluster_vars(ctx), **rb.variables(params)}
    return rb, variables, resolve(rb, variables)


def engine_for(ctx: UpgradeContext, path: Path, *, listener: Listener | None = None,
               emit: Callable[[str], None] = lambda _m: None) -> Engine:
    from vaultops.services.upgrade.steps import UPGRADE_ACTIONS

    return Engine(state_path=path, ctx=ctx, actions=UPGRADE_ACTIONS, journal=ctx.journal,
                  observe=lambda: summary(observe(ctx.clients, storage=ctx.storage)),
                  listener=listener, emit=emit)


def start_run(cfg: Config, ctx: UpgradeContext, *, runbook_path: Path, params: dict[str, Any],
              restart: bool = False, operator: str | None = None, listener: Listener | None = None,
              emit: Callable[[str], None] = lambda _m: None, path: Path | None = None,
              precheck: Callable[[dict[str, Any]], None] | None = None, take_over_lease: bool = False,
              lease_guard: LeaseGuard | None = None) -> RunState:
    """A new run, holding the local run lock and the cluster's run lease (vaultops/services/lease.py).

    *take_over_lease* is for a throwaway copy of a cluster (a rehearsal restored from a backup),
    whose lease entry came with the backup and belongs to no live run."""
    if not take_over_lease:
        ensure_free(cfg, list(ctx.clients.values()))   # name the holder before planning, writing nothing
    rb, variables, plan = make_plan(ctx, runbook_path, params)
    if precheck is not None:
        precheck(variables)
    path = path or state_path(cfg, rb.name)
    run_id = new_run_id()
    engine = engine_for(ctx, path, listener=listener, emit=emit)
    with run_lock(path):
        _refuse_unfinished(path, restart)
        with run_lease(cfg, list(ctx.clients.values()), run_id=run_id, runbook=rb.name, operator=operator,
                       take_over=take_over_lease, journal=engine.journal) as lease:
            return engine.start(rb, variables, plan, run_id=run_id, guard=_guard(lease, lease_guard))


def resume_run(cfg: Config, ctx: UpgradeContext, *, runbook: str = "upgrade", operator: str | None = None,
               listener: Listener | None = None, emit: Callable[[str], None] = lambda _m: None,
               path: Path | None = None, runbook_path: Path | None = None,
               accept_changed_runbook: bool = False, lease_guard: LeaseGuard | None = None,
               hold_lease: bool = True) -> RunState:
    """Resume the recorded run: refused if its runbook was edited (unless accepted) or another run
    holds the cluster's lease; a resume of the same run takes its own lease over at once."""
    path = path or state_path(cfg, runbook)
    with run_lock(path):
        state = load_state(path)
        if state.status == RunStatus.DONE:
            raise RunbookError(f"run {state.run_id} already finished", hint="nothing to resume")
        rb = _current_runbook(state, runbook_path, accept_changed_runbook)
        review(state, rb, accept=accept_changed_runbook, emit=emit)   # before touching the cluster
        engine = engine_for(ctx, path, listener=listener, emit=emit)
        held = run_lease(cfg, list(ctx.clients.values()), run_id=state.run_id, runbook=state.runbook,
                         operator=operator, journal=engine.journal) if hold_lease else contextlib.nullcontext()
        with held as lease:
            return engine.resume(state, runbook=rb, accept_changed=accept_changed_runbook,
                                 guard=_guard(lease, lease_guard))


def _guard(lease: RunLease | None, wrap: LeaseGuard | None) -> Callable[[], None] | None:
    """The engine's check before every step: the lease's own, or *wrap*'s around it (a rollback that
    restores a snapshot takes the lease back from the entry the snapshot brought along)."""
    if lease is None:
        return None
    return wrap(lease) if wrap is not None else lease.check


def _current_runbook(state: RunState, given: Path | None, accept_changed: bool) -> Runbook | None:
    """The runbook as it is on disk now: the file named, else the one the run started from."""
    path = given or (Path(state.runbook_path) if state.runbook_path else None)
    if path is None:
        return None
    if not path.is_file() and accept_changed:
        return None       # gone, and the operator accepts: the recorded plan continues
    if not path.is_file():
        raise RunbookError(f"the runbook run {state.run_id} started from ({path}) is gone",
                           hint=f"restore it, or resume with {ACCEPT_FLAG} to continue the recorded plan")
    return load_upgrade_runbook(path)


def _refuse_unfinished(path: Path, restart: bool) -> None:
    if not path.exists():
        return
    old = load_state(path)
    if old.status in (RunStatus.DONE, RunStatus.ROLLED_BACK) or restart:
        path.replace(path.with_name(f"{path.stem}.{old.run_id}.json"))
        return
    where = old.current.id if old.current else "?"
    raise RunbookError(f"run {old.run_id} is {old.status.value} at {where}",
                       hint="resume it (`vaultops upgrade resume`), or pass --restart to abandon it")

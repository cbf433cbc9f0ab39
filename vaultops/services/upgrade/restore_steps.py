"""`vaultops upgrade rollback` (runbooks/upgrade-rollback.yaml): back to the old version AFTER the
point of no return, by restoring the upgrade's verified pre-upgrade snapshot.

Measured here (field notes): once a 2.7.2 node has led the cluster, a 2.6.2 node unseals on that
storage but never becomes active ("post-unseal setup failed: failed to load response wrapping
policy: check-and-set parameter did not match the current version"). So a rolling downgrade
cannot work; the rollback is an outage on purpose:

  rollback_loss     the snapshot verified; which writes are lost (since when, how many raft
                    entries); the operator confirms (--yes)
  take_down+install every node stopped (no safety gate: the whole cluster goes down) and given
                    the old version
  set_aside         every node's raft data moved aside (kept, never deleted) — a fresh server
  restore_snapshot  the first node: initialised with a throwaway key, the snapshot force-restored
                    into it, unsealed with the shares given to the run (those of the snapshot's
                    key epoch); the other nodes then re-join it (start, unseal: retry_join)
  rollback_verify   every node on the old version and healthy; the storage is the pre-upgrade one
                    (its version history never saw the newer version); a canary through each node
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.errors import RunbookError, VaultOpsError
from vaultops.retry import poll
from vaultops.runbook.registry import Evidence, action
from vaultops.services.upgrade import gates
from vaultops.services.upgrade.observe import ClusterView, observe

if TYPE_CHECKING:
    from vaultops.drivers import NodeDriver
    from vaultops.services.upgrade.context import UpgradeContext
    from vaultops.vault import NodeClient

BY_HAND = "restore a verified backup by hand (`vaultops backup restore`)"


@contextlib.contextmanager
def snapshot_file(ctx: UpgradeContext, *, snapshot: str, sha256: str, source: str) -> Iterator[tuple[Path, int | None]]:
    """The pre-upgrade snapshot, verified again: (a local path, its raft index). *source* "file": the
    upgrade's local snapshot (also checked against the digest recorded when it was taken);
    "backup": the backup it published to backup.sinks, downloaded and checked against its manifest."""
    from vaultops.services.backup.restore import fetched, verify_file

    if source == "backup":
        with _fetched_backup(ctx, snapshot, fetched) as found:
            yield found
        return
    path = Path(snapshot)
    if not path.is_file():
        raise RunbookError(f"the pre-upgrade snapshot {path} is gone", hint=BY_HAND)
    report = verify_file(path, "raft")
    if sha256 and report.sha256 != sha256:
        raise RunbookError(f"the pre-upgrade snapshot {path} changed since it was taken "
                           f"(sha256 {report.sha256[:12]}…, recorded {sha256[:12]}…)", hint=BY_HAND)
    index = report.meta.get("Index")
    yield path, index if isinstance(index, int) else None


@contextlib.contextmanager
def _fetched_backup(ctx: UpgradeContext, name: str, fetched: Any) -> Iterator[tuple[Path, int | None]]:
    from vaultops.services.backup.runner import build_sinks
    from vaultops.services.backup.settings import load_settings
    from vaultops.services.backup.stored import read_manifest

    settings = load_settings(ctx.cfg)
    last: VaultOpsError | None = None
    for sink in build_sinks(ctx.cfg, settings):
        try:
            manifest = read_manifest(sink, name)
        except VaultOpsError as exc:
            last = exc
            continue
        with fetched(sink, name, manifest, settings=settings, identities=ctx.identities) as path:
            yield path, manifest.raft_index
        return
    raise RunbookError(f"the pre-upgrade backup {name} is in none of backup.sinks"
                       + (f" ({last.message})" if last else ""), hint=BY_HAND)


def writes_since(ctx: UpgradeContext, index: int | None, snapshot_at: str) -> dict[str, Any]:
    """Raft entries committed since the snapshot (an upper bound of the writes lost) and the time window."""
    view = observe(ctx.clients, storage=ctx.storage)
    committed = None
    if view.active is not None:
        with contextlib.suppress(VaultOpsError):
            committed = ctx.clients[view.active.name].ha.leader().raft_committed_index
    window = (datetime.now(timezone.utc) - datetime.fromisoformat(snapshot_at)).total_seconds()
    return {"snapshot_at": snapshot_at, "snapshot_index": index, "committed_index": committed,
            "entries_since": committed - index if index is not None and committed is not None else None,
            "window_s": round(window, 1)}


@action("rollback_loss")
def rollback_loss(ctx: UpgradeContext, *, snapshot: str, sha256: str, source: str, snapshot_at: str,
                  upgrade_run: str, to: str) -> Evidence:
    """Verify the pre-upgrade snapshot and state, for confirmation, which writes the rollback loses."""
    problems = movable(ctx) if ctx.storage == "raft" else []
    if problems:                           # found now, not with the cluster down
        raise RunbookError(f"cannot roll back: {problems[0]}" + (f" (and {len(problems) - 1} more)"
                                                                  if len(problems) > 1 else ""),
                           hint="set recovery.nodes.NODE.raft_path (or .server_config) in vaultops.yaml; "
                                "nothing was stopped", evidence={"problems": problems})
    with snapshot_file(ctx, snapshot=snapshot, sha256=sha256, source=source) as (_path, index):
        loss = writes_since(ctx, index, snapshot_at)
    statement = (f"Rolling back to {to} restores the snapshot taken at {snapshot_at} (raft index {index}) by "
                 f"upgrade run {upgrade_run}. EVERY WRITE MADE AFTER IT IS LOST: so far {loss['entries_since']} "
                 f"raft log entries committed over {loss['window_s']:.0f}s (at most that many writes; "
                 f"vaultops' own bookkeeping counts too), and every write until the cluster is back. "
                 f"The cluster is DOWN from the first node's stop until the restore.")
    ctx.emit(statement)
    if not ctx.prompter.confirm("stop the cluster, restore the snapshot and lose those writes?"):
        raise RunbookError("rollback not confirmed", hint="resume when ready (`vaultops upgrade rollback --resume`)")
    return {"summary": f"snapshot verified; {loss['entries_since']} raft entries since {snapshot_at} will be lost",
            "statement": statement, **loss}


@action("take_down")
def take_down(ctx: UpgradeContext, *, node: str) -> Evidence:
    """Stop the node without the upgrade's safety gate: the restore needs the whole cluster down."""
    drv = ctx.drivers[node]
    result = drv.stop(timeout=ctx.settings.stop_timeout).check(node)
    if drv.is_running():
        raise RunbookError(f"{node} is still running after stop", hint="stop it by hand, then resume")
    return {"summary": f"stopped ({result.command})"}


@action("set_aside")
def set_aside(ctx: UpgradeContext, *, node: str, label: str) -> Evidence:
    """Move the node's raft data aside (kept): it starts as a fresh server."""
    tag = f"{label}-{secrets.token_hex(3)}"
    move = getattr(ctx.drivers[node], "set_aside_storage", None)
    if move is not None:                     # the local driver: the whole data folder, an empty one left
        result = move(tag).check(node)
        return {"summary": result.stdout or result.command, "command": result.command}
    if ctx.raft_data is None:
        raise RunbookError(f"{node}: its driver cannot move the raft data aside", hint=_BY_HAND.format(node=node))
    moved = ctx.raft_data.move_aside(node, f".{tag}")
    return {"summary": f"moved aside: {', '.join(moved)}" if moved else "no raft data there", "moved": moved}


_BY_HAND = ("on {node}: stop bao, move the raft and vault.db items of its raft `path` aside; then resume "
            "with --accept-changed-runbook after removing this step (or set recovery.nodes.{node}.raft_path)")


def movable(ctx: UpgradeContext) -> list[str]:
    """Why a node's raft data could not be set aside (asked before the cluster goes down)."""
    problems = []
    for node, drv in ctx.drivers.items():
        if hasattr(drv, "set_aside_storage"):
            continue
        if ctx.raft_data is None:
            problems.append(f"{node}: its driver cannot move the raft data aside")
            continue
        try:
            ctx.raft_data.path(node)
        except VaultOpsError as exc:
            problems.append(exc.message)
    return problems


@action("restore_snapshot")
def restore_snapshot(ctx: UpgradeContext, *, node: str, snapshot: str, sha256: str, source: str,
                     snapshot_at: str, upgrade_run: str, to: str, newer: str) -> Evidence:
    """Start *node* fresh, restore the verified snapshot into it, unseal it with the run's shares."""
    client = ctx.clients[node]
    done = _already_restored(ctx, client, newer)
    if done is not None:
        return done
    drv = ctx.drivers[node]
    with snapshot_file(ctx, snapshot=snapshot, sha256=sha256, source=source) as (path, index):
        loss = writes_since(ctx, index, snapshot_at)     # nothing answers now: the window only
        if drv.is_running():                             # a killed earlier attempt: start it fresh again
            drv.stop(timeout=ctx.settings.stop_timeout).check(node)
            set_aside.run(ctx, node=node, label="attempt")
        drv.start().check(node)
        _into_fresh_node(ctx, client, drv, path)
    return {"summary": f"snapshot of {snapshot_at} restored into {node} on {to}; unsealed with the run's shares",
            **loss}


def _into_fresh_node(ctx: UpgradeContext, client: NodeClient, drv: NodeDriver, path: Path) -> None:
    """Initialise with a throwaway key (never stored), force-restore, then the ORIGINAL shares unseal it."""
    from vaultops.services.upgrade.unseal import wait_ready
    from vaultops.vault import NodeClient as Client

    poll(lambda: True if _answers(client) else None, timeout=60, interval=0.2, what=f"{client.name} to answer",
         error=RunbookError)
    throwaway = client.seal.init(shares=1, threshold=1)
    client.seal.unseal(throwaway.keys_b64[0])
    temp = Client(client.name, client.address, token=throwaway.root_token)
    poll(lambda: True if temp.ha.health().role == "active" else None, timeout=60, interval=0.2,
         what=f"{client.name} to become active on its throwaway key", error=RunbookError, tolerate=(VaultOpsError,))
    with path.open("rb") as fh:
        temp.raft.restore(fh, force=True)
    # the forced restore swaps the keyring: the node seals itself within seconds (field notes), but
    # its seal-status still reports the throwaway 1-of-1 threshold until it restarts (measured):
    # restart it so the keyholders are asked for the restored cluster's threshold.
    with contextlib.suppress(VaultOpsError):
        poll(lambda: True if client.seal.status().sealed else None, timeout=30, interval=0.2,
             what=f"{client.name} to seal itself after the restore")
    drv.stop(timeout=ctx.settings.stop_timeout).check(client.name)
    drv.start().check(client.name)
    wait_ready(client)
    ctx.unsealer.unseal(client, node=client.name)
    poll(lambda: True if client.ha.health().role == "active" else None, timeout=60, interval=0.2,
         what=f"{client.name} to become active on the restored data", error=RunbookError, tolerate=(VaultOpsError,))


def _answers(client: NodeClient) -> bool:
    try:
        client.seal.initialized()
        return True
    except VaultOpsError:
        return False


def _already_restored(ctx: UpgradeContext, client: NodeClient, newer: str) -> Evidence | None:
    """A restore that finished before a kill: the node leads on the pre-upgrade storage."""
    try:
        if client.ha.health().role != "active" or newer in client.ha.version_history():
            return None
    except VaultOpsError:
        return None
    return {"summary": f"{client.name} already leads on the restored snapshot", "already": True}


@action("rollback_verify")
def rollback_verify(ctx: UpgradeContext, *, to: str, newer: str) -> Evidence:
    """Every node on the old version and healthy; the storage the pre-upgrade one; a canary through each."""
    from vaultops.services.upgrade.preflight import canary_round

    view = gates.wait_for(ctx, lambda v: _all_on(v, ctx, to), what=f"not every node healthy on {to}")
    assert view.active is not None
    history = ctx.clients[view.active.name].ha.version_history()
    if newer in history:
        raise RunbookError(f"sys/version-history lists {newer} after the restore: {history}",
                           hint="the restore did not take: check the first node's log", evidence=view.evidence())
    canaries = canary_round(ctx)
    return {"summary": f"{len(view.nodes)} nodes on {to}; pre-upgrade storage (history {history}); canary ok",
            "version_history": history, "canaries": canaries, **view.evidence()}


def _all_on(view: ClusterView, ctx: UpgradeContext, to: str) -> list[str]:
    problems = gates.cluster_problems(view, ctx)
    problems += [f"{n.name} runs {n.version}" for n in view.nodes.values() if n.reachable and n.version != to]
    if view.raft and view.autopilot is not None and view.autopilot.failure_tolerance < ctx.settings.min_failure_tolerance:
        problems.append(f"failure tolerance {view.autopilot.failure_tolerance}")
    return problems

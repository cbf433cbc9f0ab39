"""Runbook actions on one node: stop, set its stale data aside, start, unseal, wait until it is a member,
and remove it from the raft configuration. Used by `node remove/replace` and by `recover quorum`
(re-joining survivors) and `recover from-backup` (joining fresh nodes). Each is idempotent.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from vaultops.errors import RunbookError, RunbookPaused, VaultOpsError
from vaultops.retry import TimedOut, poll
from vaultops.runbook.registry import Evidence, action, with_verify
from vaultops.services.recovery import membership
from vaultops.services.recovery.context import RecoveryContext
from vaultops.services.recovery.layout import move_aside
from vaultops.vault.cluster import find_active

RESUME_COMMAND = "`vaultops recover resume` (or `vaultops node resume`)"   # named in every halted run's hint
RESUME = f"then {RESUME_COMMAND}"


@action("stop_node")
def stop_node(ctx: RecoveryContext, *, node: str) -> Evidence:
    """Stop the node's server through its driver (nothing to do when it is not running)."""
    drv = ctx.driver(node)
    result = drv.stop(timeout=ctx.settings.stop_timeout)
    if drv.is_running():
        raise RunbookError(f"{node} is still running after stop", hint=f"stop it by hand, {RESUME}",
                           evidence={"result": result.command})
    return {"summary": f"stopped ({result.stdout or result.command})"}


@action("set_aside_data")
def set_aside_data(ctx: RecoveryContext, *, node: str) -> Evidence:
    """Move the node's stale raft data aside (renamed, never deleted) so it starts blank and joins."""
    if ctx.storage != "raft":
        return {"summary": f"{ctx.storage} storage: nothing on the node to set aside"}
    drv = ctx.driver(node)
    if drv.is_running():
        raise RunbookError(f"{node} is running: refusing to move its data under it",
                           hint=f"stop it, {RESUME}")
    suffix = ".vaultops-aside-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    moved = move_aside(drv, ctx.layout(node).need_path(), suffix)
    return {"summary": f"moved aside: {len(moved)} item(s)" if moved else "no stale data", "moved": moved}


@action("start_node")
def start_node(ctx: RecoveryContext, *, node: str) -> Evidence:
    """Start the node's server through its driver and wait until it answers seal-status."""
    result = ctx.driver(node).start()
    client = ctx.clients[node]
    st = poll(client.seal.status, timeout=ctx.wait, interval=0.1, what=f"{node} to answer after its start",
              error=RunbookError, hint="see the node's server log")
    return {"summary": f"answering ({'initialised' if st.initialized else 'blank'}, "
                       f"{'sealed' if st.sealed else 'unsealed'}, {st.version})", "start": result.stdout[-200:]}


@action("unseal_node")
def unseal_node(ctx: RecoveryContext, *, node: str) -> Evidence:
    """Unseal the node: the shares given to this run, checked against the keyholder manifest first."""
    try:
        return ctx.unsealer.unseal(ctx.clients[node], node=node)
    except RunbookPaused as exc:   # no shares in this process: the keyholders' ceremony, then resume
        raise RunbookPaused(exc.message.replace("restarted on the new version and is", "is"),
                            hint=f"keyholders: `vaultops unseal --node {node}`; {RESUME} "
                                 "(or resume with --share-stdin)") from None


def _still_unsealed(ctx: RecoveryContext, *, node: str) -> str | None:
    try:
        st = ctx.clients[node].seal.status()
    except VaultOpsError as exc:
        return f"{node} does not answer ({exc.message})"
    return f"{node} is sealed again" if st.sealed else None


unseal_node = with_verify(unseal_node, _still_unsealed)


@action("wait_member")
def wait_member(ctx: RecoveryContext, *, node: str) -> Evidence:
    """Wait until the node serves as a member: raft, a healthy voter per autopilot; else a standby."""
    started = time.monotonic()
    last: list[str] = ["not asked yet"]

    def member() -> dict[str, object] | None:
        problem = _member_problem(ctx, node)
        last[:] = [problem or ""]
        return None if problem else {"summary": f"{node} serves as a {'healthy voter' if ctx.storage == 'raft' else 'standby'}"}
    try:
        found = poll(member, timeout=ctx.wait, interval=0.5, what=f"{node} to become a member", tolerate=(VaultOpsError,))
    except TimedOut:
        raise RunbookError(f"{node} did not become a member in {ctx.wait:g}s: {last[0]}",
                           hint=f"see the node's server log; {RESUME}") from None
    return {**found, "waited_s": round(time.monotonic() - started, 1)}


def _member_problem(ctx: RecoveryContext, node: str) -> str | None:
    st = ctx.clients[node].seal.status()
    if st.sealed or not st.initialized:
        return f"{node} is {'sealed' if st.initialized else 'not initialised'}"
    active = find_active(list(ctx.clients.values()), timeout=5.0)
    if active is None:
        return "no active node"
    if ctx.storage != "raft":
        return None
    listed, healthy = membership.is_member(ctx, node)
    if not listed:
        return f"autopilot does not list {node} yet"
    return None if healthy else f"autopilot does not report {node} a healthy voter yet"


def _still_member(ctx: RecoveryContext, *, node: str) -> str | None:
    try:
        return _member_problem(ctx, node)
    except VaultOpsError as exc:
        return f"{node}: {exc.message}"


wait_member = with_verify(wait_member, _still_member)


@action("remove_peer")
def remove_peer(ctx: RecoveryContext, *, node: str, allow_active: bool = False,
                allow_reachable: bool = False) -> Evidence:
    """Remove the node from the raft configuration (sys/storage/raft/remove-peer), only while quorum holds."""
    if ctx.storage != "raft":
        return {"summary": f"{ctx.storage} storage has no raft configuration: nothing to remove"}
    plan = membership.removal_plan(ctx, node, allow_active=allow_active, allow_reachable=allow_reachable)
    if not plan.member:
        return {"summary": plan.describe(), "plan": plan.to_json()}
    membership.leader(ctx).raft.remove_peer(plan.raft_id)
    ctx.emit(plan.describe())
    return {"summary": f"removed {plan.raft_id}; failure tolerance now {plan.tolerance_after}", "plan": plan.to_json()}


__all__ = ["remove_peer", "set_aside_data", "start_node", "stop_node", "unseal_node", "wait_member"]

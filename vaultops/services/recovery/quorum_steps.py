"""The actions of runbooks/recover-quorum.yaml. Each is idempotent; later steps learn the chosen
survivor from the `choose` step's recorded evidence (ctx.earlier), so a resumed run in a new
process continues with the same choice.

    assess -> stop[each survivor] -> choose -> peers -> start -> unseal -> leader
           -> rejoin[each other survivor]: aside, start, unseal, back -> replace (offered)
"""

from __future__ import annotations

import time
from typing import Any

from vaultops.errors import RunbookError, VaultOpsError
from vaultops.retry import TimedOut, poll
from vaultops.runbook.registry import Evidence, action, with_verify
from vaultops.services.recovery import node_steps, peers, quorum
from vaultops.services.recovery.context import RecoveryContext
from vaultops.services.recovery.settings import sentinels

CHOOSE = "choose"


def chosen(ctx: RecoveryContext) -> str:
    return str(ctx.earlier(CHOOSE)["chosen"])


@action("assess_quorum")
def assess_quorum(ctx: RecoveryContext) -> Evidence:
    """Confirm quorum is lost and who survived (refuses while quorum holds)."""
    found = quorum.assess(ctx)
    return {"summary": f"quorum lost; survivors {', '.join(found.survivors)}; lost {', '.join(found.lost) or 'none'}",
            **found.to_json()}


@action("choose_survivor")
def choose_survivor(ctx: RecoveryContext, *, nodes: list[str]) -> Evidence:
    """Read each stopped survivor's raft log from its data and choose the most recent."""
    states, unreadable = [], {}
    for node in nodes:
        if ctx.driver(node).is_running():
            raise RunbookError(f"{node} is running: its log may still change",
                               hint=f"stop it; {node_steps.RESUME}")
        try:
            states.append(ctx.read_log(node))
        except VaultOpsError as exc:
            unreadable[node] = exc.message
    if not states:
        raise RunbookError("no survivor's raft log can be read", hint="check the nodes' disks and recovery.nodes",
                           evidence={"unreadable": unreadable})
    pick = quorum.choose(states, ctx.seen)
    ctx.emit(pick.summary())
    for row in pick.table():
        ctx.emit(f"  {row[0]}: last index {row[1]} (term {row[2]}), applied {row[3]} {row[4]}")
    return {**pick.to_json(), "unreadable": unreadable}


@action("write_peers")
def write_peers(ctx: RecoveryContext) -> Evidence:
    """Write raft/peers.json on the chosen survivor naming exactly the node that restarts from it: itself."""
    node = chosen(ctx)
    if ctx.driver(node).is_running():
        raise RunbookError(f"{node} is running: peers.json is read only when a stopped node starts",
                           hint=f"stop it; {node_steps.RESUME}")
    lay = ctx.layout(node)
    members = peers.peers_for([lay])
    path = peers.write(ctx.driver(node), lay, members, owner=ctx.settings.peers_owner, group=ctx.settings.peers_group)
    return {"summary": f"{path}: {members[0].id} at {members[0].address}", "path": path,
            "peers": [m.__dict__ for m in members]}


@action("start_chosen")
def start_chosen(ctx: RecoveryContext) -> Evidence:
    """Start the chosen survivor through its driver."""
    return node_steps.start_node.run(ctx, node=chosen(ctx))


@action("unseal_chosen")
def unseal_chosen(ctx: RecoveryContext) -> Evidence:
    """Unseal the chosen survivor (shares checked against the manifest); its peers.json is consumed then."""
    node = chosen(ctx)
    evidence = node_steps.unseal_node.run(ctx, node=node)
    if peers.present(ctx.driver(node), ctx.layout(node)):
        raise RunbookError(f"{node} is unsealed but {peers.path_of(ctx.layout(node))} is still there: "
                           "the raft recovery did not run", hint="see the node's server log")
    return {**evidence, "peers_json": "consumed"}


def _chosen_unsealed(ctx: RecoveryContext) -> str | None:
    return node_steps._still_unsealed(ctx, node=chosen(ctx))


unseal_chosen = with_verify(unseal_chosen, _chosen_unsealed)


@action("verify_leader")
def verify_leader(ctx: RecoveryContext) -> Evidence:
    """Wait until the chosen survivor leads alone with the data it had, and the sentinel paths read."""
    node, started = chosen(ctx), time.monotonic()
    expected = int(ctx.earlier(CHOOSE)["indexes"][node]["last_index"])
    client = ctx.clients[node]
    try:
        leader = poll(lambda: _leading(ctx, node), timeout=ctx.wait, interval=0.2, what=f"{node} to lead")
    except TimedOut:
        raise RunbookError(f"{node} did not become the active node in {ctx.wait:g}s",
                           hint=f"see its server log; {node_steps.RESUME}") from None
    config = client.raft.configuration()
    ids = [s.node_id for s in config.servers]
    if leader.raft_applied_index is None or leader.raft_applied_index < expected:
        raise RunbookError(f"{node} applied index {leader.raft_applied_index} is below the {expected} its log held",
                           hint="the recovery did not replay the log: see the node's server log")
    read = _sentinels(ctx, node)
    bad = {p: r for p, r in read.items() if r != "ok"}
    if bad:
        raise RunbookError(f"{node} leads but sentinel paths do not read: {bad}",
                           hint="check the paths in recovery.sentinels and the token", evidence={"sentinels": read})
    return {"summary": f"{node} active after {time.monotonic() - started:.1f}s, applied index "
                       f"{leader.raft_applied_index} >= {expected}, raft members {ids}",
            "applied_index": leader.raft_applied_index, "members": ids, "sentinels": read}


def _leading(ctx: RecoveryContext, node: str) -> Any:
    client = ctx.clients[node]
    if client.ha.health().status_code != 200:
        return None
    leader = client.ha.leader()
    return leader if leader.is_self else None


def _sentinels(ctx: RecoveryContext, node: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sentinels(ctx.cfg, ctx.settings):
        try:
            out[path] = "ok" if ctx.clients[node].read(path).get("data") else "empty"
        except VaultOpsError as exc:
            out[path] = f"error: {exc.message}"
    return out


def _still_leading(ctx: RecoveryContext) -> str | None:
    try:
        return None if _leading(ctx, chosen(ctx)) else f"{chosen(ctx)} is not the active node"
    except VaultOpsError as exc:
        return exc.message


verify_leader = with_verify(verify_leader, _still_leading)


# -- the other survivors join the recovered node, blank ------------------------------------------


def _rejoin(name: str, inner: Any, summary: str) -> Any:
    def run(ctx: RecoveryContext, *, node: str) -> Evidence:
        if node == chosen(ctx):
            return {"summary": f"{node} is the recovered leader: nothing to do"}
        return inner.run(ctx, node=node)
    run.__doc__ = summary
    act = action(name)(run)
    if inner.verify is None:
        return act

    def holds(ctx: RecoveryContext, *, node: str) -> str | None:
        return None if node == chosen(ctx) else inner.verify(ctx, node=node)
    return with_verify(act, holds)


rejoin_aside = _rejoin("rejoin_aside", node_steps.set_aside_data,
                       "Move a stale survivor's raft data aside (renamed) so it joins the recovered node blank.")
rejoin_start = _rejoin("rejoin_start", node_steps.start_node, "Start the survivor; retry_join finds the leader.")
rejoin_unseal = _rejoin("rejoin_unseal", node_steps.unseal_node, "Unseal the joining survivor (checked shares).")
rejoin_back = _rejoin("rejoin_back", node_steps.wait_member, "Wait until autopilot reports it a healthy voter.")


@action("offer_replace")
def offer_replace(ctx: RecoveryContext, *, lost: list[str]) -> Evidence:
    """Say how to bring the lost nodes back (`vaultops node replace`), one per lost node."""
    commands = [f"vaultops node replace {n}" for n in lost if n in ctx.names]
    for line in commands:
        ctx.emit(f"next: {line}")
    return {"summary": f"{len(commands)} lost node(s) to replace" if commands else "no lost node to replace",
            "commands": commands}


__all__ = ["assess_quorum", "choose_survivor", "offer_replace", "rejoin_aside", "rejoin_back", "rejoin_start",
           "rejoin_unseal", "start_chosen", "unseal_chosen", "verify_leader", "write_peers"]

"""Who is in the raft cluster and what removing one of them does: the checks before `node remove/replace`.

    plan = removal_plan(ctx, "node3", allow_active=False, allow_reachable=False)
    plan.tolerance_before, plan.tolerance_after   # shown to the operator before anything changes

A node is removed from the raft configuration only while quorum holds (an active node answers
autopilot), never the active node and never a node that still answers as an initialised member,
unless the operator says so explicitly. On external storage (PostgreSQL, Consul) there is no raft
configuration: nothing is removed, and `node replace` only starts and unseals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from vaultops.errors import SecurityError, VaultOpsError
from vaultops.services.recovery.detect import majority
from vaultops.vault.cluster import find_active
from vaultops.vault.models import AutopilotState

if TYPE_CHECKING:
    from vaultops.services.recovery.context import RecoveryContext
    from vaultops.vault import NodeClient

QUORUM_HINT = "no leader: if a majority of voters is gone for good, run `vaultops recover quorum`"


@dataclass(frozen=True)
class RemovalPlan:
    node: str
    raft_id: str
    member: bool                 # listed in the raft configuration now
    voter: bool
    active: str                  # the active node
    reachable: bool
    voters_before: int
    voters_after: int
    tolerance_before: int
    tolerance_after: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if not self.member:
            return f"{self.node} (raft id {self.raft_id}) is not in the raft configuration: nothing to remove"
        return (f"removing {self.node} (raft id {self.raft_id}, {'voter' if self.voter else 'non-voter'}): voters "
                f"{self.voters_before} -> {self.voters_after}, failure tolerance {self.tolerance_before} -> "
                f"{self.tolerance_after}")


def leader(ctx: RecoveryContext) -> NodeClient:
    """The active node's client, or SecurityError (exit 3) saying quorum does not hold."""
    found = find_active(list(ctx.clients.values()), timeout=5.0)
    if found is None:
        raise SecurityError("no active node: quorum does not hold, so the raft configuration cannot change",
                            hint=QUORUM_HINT)
    return found.client


def answers(client: NodeClient) -> bool:
    """Whether the node answers as an initialised member (unsealed, or sealed with its data)."""
    try:
        return client.seal.status().initialized
    except VaultOpsError:
        return False


def removal_plan(ctx: RecoveryContext, node: str, *, allow_active: bool = False,
                 allow_reachable: bool = False) -> RemovalPlan:
    """What removing *node* does, or SecurityError (nothing changed) when it must not be removed."""
    active = leader(ctx)
    ap = active.raft.autopilot_state()
    raft_id = ctx.layout(node).raft_id if node in ctx.names else node
    server = ap.servers.get(raft_id) or next((s for s in ap.servers.values() if s.name == raft_id), None)
    reachable = node in ctx.clients and answers(ctx.clients[node])
    _refuse(node, active.name, reachable, allow_active=allow_active, allow_reachable=allow_reachable)
    member = server is not None
    voter = member and server is not None and server.id in ap.voters
    return RemovalPlan(node=node, raft_id=server.id if server else raft_id, member=member, voter=voter,
                       active=active.name, reachable=reachable, voters_before=len(ap.voters),
                       voters_after=len(ap.voters) - (1 if voter else 0), tolerance_before=ap.failure_tolerance,
                       tolerance_after=tolerance_without(ap, server.id if voter and server else None))


def _refuse(node: str, active: str, reachable: bool, *, allow_active: bool, allow_reachable: bool) -> None:
    if node == active and not allow_active:
        raise SecurityError(f"refusing to remove {node}: it is the active node",
                            hint="step it down first (the console's dashboard: s), or pass --allow-active")
    if reachable and node != active and not allow_reachable:
        raise SecurityError(f"refusing to remove {node}: it still answers as a member",
                            hint="stop it first if it is retired, or pass --allow-reachable")


def tolerance_without(ap: AutopilotState, voter_id: str | None) -> int:
    """Autopilot's failure tolerance (healthy voters minus the quorum) once *voter_id* is gone."""
    voters = [v for v in ap.voters if v != voter_id]
    healthy = [v for v in voters if (s := ap.servers.get(v)) is not None and s.healthy]
    return max(len(healthy) - majority(len(voters)), 0) if voters else 0


def is_member(ctx: RecoveryContext, node: str) -> tuple[bool, bool]:
    """(listed, healthy voter) for *node* in autopilot, asked of the active node."""
    ap = leader(ctx).raft.autopilot_state()
    raft_id = ctx.layout(node).raft_id
    server = ap.servers.get(raft_id) or next((s for s in ap.servers.values() if s.name == raft_id), None)
    if server is None:
        return False, False
    return True, server.healthy and server.id in ap.voters and server.status in ("leader", "voter")


__all__ = ["RemovalPlan", "answers", "is_member", "leader", "removal_plan", "tolerance_without"]

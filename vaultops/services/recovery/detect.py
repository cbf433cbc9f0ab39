"""What is wrong with a cluster that lost nodes, and the command that addresses it.

    conds = conditions(storage="raft", nodes=st.nodes, autopilot=st.autopilot, seen=seen)
    # [Condition(kind=Kind.QUORUM_LOST, message="...", commands=("vaultops recover quorum",), nodes=(...))]

Read from what `status` (or the console's dashboard) already asked — each node's seal-status and
sys/health, autopilot from the active node — plus the membership recorded before (lastseen.py),
so a cluster without a leader can still be judged against the voters it had. Nothing here asks a
driver or starts anything.

Raft: quorum is lost when fewer than a majority of the voters answer (then nothing commits, and a
leader that still claims to be active steps down within seconds). A leader with failure
tolerance 0 is degraded: one more failure loses quorum. A node that does not answer while the
others carry on is dead. External storage (PostgreSQL, Consul) has no quorum to lose: a dead
active node's standby takes the HA lock over; the dead node only needs starting and unsealing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from vaultops.services.recovery.lastseen import Seen
from vaultops.services.status import NodeStatus
from vaultops.vault.models import AutopilotState


class Kind(StrEnum):
    QUORUM_LOST = "quorum-lost"
    ALL_LOST = "all-lost"
    DEGRADED = "degraded"
    NODE_DEAD = "node-dead"
    NOT_A_MEMBER = "not-a-member"
    TOOK_OVER = "standby-took-over"


@dataclass(frozen=True)
class Condition:
    kind: Kind
    message: str
    commands: tuple[str, ...] = field(default_factory=tuple)
    nodes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = self.kind.value
        out["commands"], out["nodes"] = list(self.commands), list(self.nodes)
        return out


def majority(voters: int) -> int:
    return voters // 2 + 1


def conditions(*, storage: str, nodes: Sequence[NodeStatus], autopilot: AutopilotState | None,
               seen: Seen | None = None) -> list[Condition]:
    if storage == "raft":
        return raft_conditions(nodes, autopilot, seen)
    return ha_conditions(nodes)


def raft_conditions(nodes: Sequence[NodeStatus], autopilot: AutopilotState | None,
                    seen: Seen | None) -> list[Condition]:
    answering = [n.name for n in nodes if n.reachable and n.initialized]
    if not answering:
        return [Condition(Kind.ALL_LOST, "no node answers as an initialised member: every node is down or lost "
                          "(if their data is gone, rebuild from the newest verified backup)",
                          ("vaultops recover from-backup",), tuple(n.name for n in nodes))]
    voters = _voters(nodes, autopilot, seen)
    up = [v for v in voters if v in answering]
    if len(up) < majority(len(voters)):
        down = tuple(v for v in voters if v not in up)
        return [Condition(Kind.QUORUM_LOST, f"{len(up)} of {len(voters)} voters answer "
                          f"({', '.join(up) or 'none'}); {majority(len(voters))} are needed for a leader. Down: "
                          f"{', '.join(down)}", ("vaultops recover quorum",), down)]
    return _with_leader(nodes, autopilot, voters)


def _with_leader(nodes: Sequence[NodeStatus], autopilot: AutopilotState | None, voters: list[str]) -> list[Condition]:
    out: list[Condition] = []
    dead = [n.name for n in nodes if not n.reachable]
    for name in dead:
        out.append(Condition(Kind.NODE_DEAD, f"{name} does not answer",
                             (f"vaultops node replace {name}", f"vaultops node remove {name}"), (name,)))
    if autopilot is not None:
        members = {s.name for s in autopilot.servers.values()} | {s.id for s in autopilot.servers.values()}
        for n in nodes:
            if n.reachable and n.name not in members:
                out.append(Condition(Kind.NOT_A_MEMBER, f"{n.name} answers but is not a raft member",
                                     (f"vaultops node replace {n.name}",), (n.name,)))
        if autopilot.failure_tolerance == 0:
            weak = _unhealthy(autopilot, nodes) or [c.nodes[0] for c in out]
            commands = tuple(f"vaultops node replace {w}" for w in weak) or (
                "vaultops node replace NODE (add a voter)",)
            out.insert(0, Condition(Kind.DEGRADED, f"failure tolerance 0 ({len(autopilot.voters)} voters): "
                                    "one more failure loses quorum", commands, tuple(weak)))
    return out


def _voters(nodes: Sequence[NodeStatus], autopilot: AutopilotState | None, seen: Seen | None) -> list[str]:
    """The voters by node name: autopilot's, else the ones recorded before, else every configured node."""
    if autopilot is not None and autopilot.voters:
        names = {s.id: s.name for s in autopilot.servers.values()}
        return [names.get(v, v) for v in autopilot.voters]
    if seen is not None and seen.voters():
        return seen.voters()
    return [n.name for n in nodes]


def _unhealthy(autopilot: AutopilotState, nodes: Sequence[NodeStatus]) -> list[str]:
    known = {n.name for n in nodes}
    out = []
    for s in autopilot.servers.values():
        if not s.healthy:
            out.append(s.name if s.name in known else s.id)
    return out


def ha_conditions(nodes: Sequence[NodeStatus]) -> list[Condition]:
    """External storage: no quorum, one HA lock. Say who took over; a dead node is started and unsealed."""
    active = [n.name for n in nodes if n.ha_role == "active"]
    out: list[Condition] = []
    for n in nodes:
        if n.reachable:
            continue
        who = f"; {active[0]} is active (the standby took over, no quorum to lose on external storage)" \
            if active else ""
        kind = Kind.TOOK_OVER if active else Kind.NODE_DEAD
        out.append(Condition(kind, f"{n.name} does not answer{who}",
                             (f"vaultops node replace {n.name}",), (n.name,)))
    if not any(n.reachable for n in nodes):
        out = [Condition(Kind.ALL_LOST, "no node answers: the data is in the external storage, so each node only "
                         "needs starting and unsealing (if the storage itself is lost, restore it from a backup)",
                         tuple(f"vaultops node replace {n.name}" for n in nodes), tuple(n.name for n in nodes))]
    return out


__all__ = ["Condition", "Kind", "conditions", "majority"]

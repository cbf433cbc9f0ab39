"""Has the raft cluster lost quorum, who survived, and which survivor's log is the most recent.

    found = assess(ctx)              # QuorumAssessment, or SecurityError (exit 3) while quorum holds
    found.explain()                  # what happened and what `recover quorum` will do, for the operator
    pick = choose(states, seen)      # the survivor with the most recent log; what could be lost

Quorum is lost when fewer than a majority of the voters (as last recorded by `status`, else every
configured node) answer as initialised members. Before calling a node lost, its driver is asked
for its data: a node that is down but has its raft data is a survivor — and when the survivors
with data are a majority, starting them is the answer, not a recovery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from vaultops.errors import SecurityError
from vaultops.services.recovery.detect import majority
from vaultops.services.recovery.lastseen import Seen
from vaultops.services.recovery.raftlog import LogState
from vaultops.services.upgrade.observe import observe

if TYPE_CHECKING:
    from vaultops.services.recovery.context import RecoveryContext


@dataclass(frozen=True)
class QuorumAssessment:
    cluster: str
    voters: tuple[str, ...]
    answering: tuple[str, ...]         # voters answering as initialised members
    down_with_data: tuple[str, ...]    # configured nodes not answering whose raft data their driver can read
    lost: tuple[str, ...]              # voters (and configured nodes) with neither
    active: str | None
    seen: dict[str, Any] | None        # the high-water mark recorded before the outage
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def survivors(self) -> list[str]:
        return [*self.answering, *self.down_with_data]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "survivors": self.survivors}

    def explain(self) -> str:
        need = majority(len(self.voters))
        lines = [f"cluster {self.cluster}: quorum is LOST. {len(self.survivors)} of {len(self.voters)} voters survive "
                 f"({', '.join(self.survivors)}); a leader needs {need}.",
                 f"  lost (no answer, no data): {', '.join(self.lost) or 'none'}"]
        if self.seen:
            lines.append(f"  before the outage `status` saw index {self.seen['highest']} (on {self.seen['highest_on']}) "
                         f"at {self.seen['at']}")
        lines += [f"  note: {n}" for n in self.notes]
        lines += ["What `recover quorum` does, step by step (journalled; `vaultops recover resume` continues it):",
                  f"  1. stop the survivors ({', '.join(self.survivors)}) through their drivers;",
                  "  2. read each survivor's raft log from its data files, without starting it, and choose the one",
                  "     with the most recent log; show what could be lost against the index seen before the outage;",
                  "  3. write raft/peers.json on the chosen survivor naming only itself, start it, unseal it",
                  "     (shares checked against the keyholder manifest), and verify it leads with its data;",
                  "  4. move the other survivors' stale raft data aside (renamed, not deleted) and join them again;",
                  f"  5. offer `vaultops node replace` for the lost nodes ({', '.join(self.lost) or 'none'})."]
        return "\n".join(lines)


def assess(ctx: RecoveryContext) -> QuorumAssessment:
    """The cluster's state, or SecurityError when quorum holds (or can be had by starting nodes)."""
    if ctx.storage != "raft":
        raise SecurityError(f"{ctx.storage} storage has no quorum to lose: the standby takes the HA lock over "
                            "when the active node dies", hint="see `vaultops status`; bring a dead node back with "
                                                             "`vaultops node replace NODE` (start and unseal)")
    view = observe(ctx.clients, storage="raft")
    voters, notes = _voters(ctx)
    answering = tuple(v for v in voters if v in view.nodes and view.nodes[v].reachable and view.nodes[v].initialized)
    active = view.active.name if view.active else None
    need = majority(len(voters))
    if len(answering) >= need:
        where = f"{active} is active" if active else "a leader election is in progress (wait, then run `vaultops status`)"
        raise SecurityError(f"quorum holds: {len(answering)} of {len(voters)} voters answer; {where}",
                            hint="nothing to recover; replace dead nodes with `vaultops node replace NODE`")
    down = [n for n in ctx.names if n not in answering]
    with_data = tuple(n for n in down if ctx.has_data(n))
    if len(answering) + len([n for n in with_data if n in voters]) >= need:
        raise SecurityError(f"quorum can come back without a recovery: {', '.join(with_data)} "
                            "are down but have their raft data", hint="start them (their service), then unseal with "
                                                                      "`vaultops unseal`")
    lost = tuple(v for v in voters if v not in answering and v not in with_data)
    if not answering and not with_data:
        raise SecurityError("every node is lost (none answers, none has its raft data)",
                            hint="rebuild the cluster from a backup: `vaultops recover from-backup`")
    return QuorumAssessment(cluster=ctx.cfg.cluster_name, voters=tuple(voters), answering=answering,
                            down_with_data=with_data, lost=lost, active=active, seen=_seen(ctx.seen),
                            notes=tuple(notes))


def _voters(ctx: RecoveryContext) -> tuple[list[str], list[str]]:
    if ctx.seen is not None and ctx.seen.voters():
        return ctx.seen.voters(), []
    return list(ctx.names), ["no raft membership was recorded (`vaultops status` records it): "
                             "every configured node is taken for a voter"]


def _seen(seen: Seen | None) -> dict[str, Any] | None:
    if seen is None:
        return None
    index, node = seen.highest
    return {"highest": index, "highest_on": node, "at": seen.at, "leader": seen.leader,
            "indexes": {s.name: s.last_index for s in seen.servers}}


# -- the choice ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    chosen: str
    indexes: dict[str, dict[str, Any]]      # node -> its LogState as JSON
    highest_before: int | None              # the highest index any node reported before the outage
    highest_on: str | None
    seen_at: str | None
    could_be_lost: tuple[int, int] | None   # raft indexes (first, last) written before the outage, not on the chosen

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["could_be_lost"] = list(self.could_be_lost) if self.could_be_lost else None
        out["summary"] = self.summary()
        return out

    def summary(self) -> str:
        own = self.indexes[self.chosen]
        text = f"{self.chosen} has the most recent log (index {own['last_index']}, term {own['last_term']})"
        if self.highest_before is None:
            return text + "; no index was recorded before the outage to compare with"
        if self.could_be_lost:
            first, last = self.could_be_lost
            return (text + f"; entries {first}..{last} ({last - first + 1}) that {self.highest_on} had at "
                    f"{self.seen_at} could be lost")
        return text + f"; it holds everything seen before the outage (index {self.highest_before} at {self.seen_at})"

    def table(self) -> list[list[Any]]:
        return [[n, s["last_index"], s["last_term"], s["applied_index"], "chosen" if n == self.chosen else ""]
                for n, s in self.indexes.items()]


def choose(states: Sequence[LogState], seen: Seen | None) -> Choice:
    """The survivor raft would elect: highest (last term, last index); the first configured wins a tie."""
    best = states[0]
    for st in states[1:]:
        if st.rank > best.rank:
            best = st
    highest, on = seen.highest if seen is not None else (None, None)
    lost = (best.last_index + 1, highest) if highest is not None and highest > best.last_index else None
    return Choice(chosen=best.node, indexes={s.node: s.to_json() for s in states}, highest_before=highest,
                  highest_on=on, seen_at=seen.at if seen else None, could_be_lost=lost)


__all__ = ["Choice", "QuorumAssessment", "assess", "choose"]

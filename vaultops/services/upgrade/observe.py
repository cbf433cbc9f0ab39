"""What the cluster looks like right now, read from the nodes' own APIs.

Every gate decides on a ClusterView and, when it halts, hands the same view
over as evidence. Per node: sys/health (seal, role, version) and sys/leader
(raft applied/committed index); from the active node: autopilot state (raft)
or sys/ha-status (external storage).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vaultops.errors import VaultOpsError
from vaultops.vault import NodeClient, fan_out
from vaultops.vault.models import AutopilotState, HAStatus

OBSERVE_TIMEOUT = 3.0


@dataclass(frozen=True)
class NodeView:
    name: str
    reachable: bool
    initialized: bool = False
    sealed: bool = True
    role: str = "unreachable"          # active | standby | sealed | uninitialized | unreachable
    version: str = ""
    applied_index: int | None = None
    committed_index: int | None = None
    error: str | None = None

    @property
    def serving(self) -> bool:
        return self.reachable and self.initialized and not self.sealed


@dataclass(frozen=True)
class ClusterView:
    storage: str
    nodes: dict[str, NodeView]
    autopilot: AutopilotState | None = None
    ha: HAStatus | None = None
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def raft(self) -> bool:
        return self.storage == "raft"

    @property
    def active(self) -> NodeView | None:
        found = [n for n in self.nodes.values() if n.role == "active"]
        return found[0] if len(found) == 1 else None

    def actives(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.role == "active"]

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"nodes": {k: _node_evidence(v) for k, v in self.nodes.items()}}
        if self.autopilot is not None:
            ap = self.autopilot
            out["autopilot"] = {
                "healthy": ap.healthy, "failure_tolerance": ap.failure_tolerance, "leader": ap.leader,
                "voters": list(ap.voters),
                "servers": {k: {"status": s.status, "healthy": s.healthy, "version": s.version,
                                "last_index": s.last_index, "node_status": s.node_status}
                            for k, s in ap.servers.items()}}
        if self.ha is not None:
            out["ha_status"] = [{"hostname": n.hostname, "api_address": n.api_address, "active": n.active,
                                 "version": n.version} for n in self.ha.nodes]
        if self.errors:
            out["errors"] = list(self.errors)
        return out


def _node_evidence(n: NodeView) -> dict[str, Any]:
    return {k: v for k, v in asdict(n).items() if v is not None and k != "name"}


def node_view(client: NodeClient) -> NodeView:
    h = client.ha.health()
    applied = committed = None
    if h.initialized and not h.sealed:
        try:
            leader = client.ha.leader()
            applied, committed = leader.raft_applied_index, leader.raft_committed_index
        except VaultOpsError:
            pass
    return NodeView(name=client.name, reachable=True, initialized=h.initialized, sealed=h.sealed,
                    role=h.role, version=h.version, applied_index=applied, committed_index=committed)


def observe(clients: dict[str, NodeClient], *, storage: str) -> ClusterView:
    results = fan_out(list(clients.values()), node_view, timeout=OBSERVE_TIMEOUT + 2)
    nodes: dict[str, NodeView] = {}
    for r in results:
        if r.ok and r.value is not None:
            nodes[r.node] = r.value
        else:
            nodes[r.node] = NodeView(name=r.node, reachable=False, error=str(r.error)[:200])
    view = ClusterView(storage=storage, nodes=nodes)
    active = view.active
    if active is None:
        return view
    return _with_leader_view(view, clients[active.name])


def _with_leader_view(view: ClusterView, leader: NodeClient) -> ClusterView:
    try:
        if view.raft:
            return ClusterView(view.storage, view.nodes, autopilot=leader.raft.autopilot_state())
        return ClusterView(view.storage, view.nodes, ha=leader.ha.ha_status())
    except VaultOpsError as exc:
        return ClusterView(view.storage, view.nodes, errors=(f"{leader.name}: {exc.message}",))


def summary(view: ClusterView) -> dict[str, dict[str, Any]]:
    """The per-node view the run state (and a TUI) shows."""
    out: dict[str, dict[str, Any]] = {}
    for name, n in view.nodes.items():
        row: dict[str, Any] = {"role": n.role, "version": n.version, "sealed": n.sealed}
        if view.autopilot is not None and name in view.autopilot.servers:
            s = view.autopilot.servers[name]
            row.update(raft=s.status, healthy=s.healthy)
        if n.applied_index is not None:
            row["applied_index"] = n.applied_index
        out[name] = row
    return out

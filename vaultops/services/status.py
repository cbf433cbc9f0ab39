"""Cluster status: every node asked at once, one row per node.

JSON shape (stable; documented in README "Status JSON"):
    {"cluster": {"name", "id", "storage", "healthy",
                 "exit": "healthy|sealed|unreachable|degraded|token_rejected|joining", "reason"},
     "nodes": [{"name", "address", "reachable", "error", "initialized", "sealed", "progress",
                "threshold", "shares", "nonce", "ha_role", "version",
                "raft": {"role", "healthy", "last_index", "voter"} | null}],
     "raft": {"healthy", "failure_tolerance", "leader", "voters"} | null,
     "raft_error": why raft was not checked (no token, token rejected, ...) | null,
     "consul": {"address", "leader", "servers": [{"id", "node", "address", "leader", "voter"}],
                "token": {"accessor", "description", "policies", "expires"} | null,
                "errors": {what: why}, "problems": [...]} | null}

For a cluster on Consul storage with backup.consul settings, Consul itself is asked too
(leader, raft peers, the ACL token's self-check; never the token's secret). Consul without
a leader is exit 13 (degraded); a failed check is shown, not judged.

Raft with failure tolerance 0 while followers are still non-voters (just joined, waiting for
autopilot to promote them) is exit 15 (joining): autopilot may call that healthy, but one
lost voter would stop the cluster.

The raft check needs a token. Without one it is skipped (said in the table and in
raft_error); a token the cluster rejects is exit 14, because "healthy" would then
only mean "unsealed".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from vaultops.errors import VaultAuthError, VaultError, VaultOpsError
from vaultops.vault import NodeClient, fan_out
from vaultops.vault.models import AutopilotState

if TYPE_CHECKING:
    from vaultops.consul import ConsulClient, ConsulFacts


class StatusExit(IntEnum):
    HEALTHY = 0
    SEALED = 11
    UNREACHABLE = 12
    DEGRADED = 13  # all unsealed, but raft autopilot reports unhealthy
    TOKEN_REJECTED = 14  # the raft check was refused the token: health unknown
    JOINING = 15  # failure tolerance 0 while non-voters are still joining: losing one voter stops the cluster


NO_TOKEN = "not checked: no token (export VAULT_TOKEN, write ~/.vault-token or set cluster.token_file)"


@dataclass(frozen=True)
class NodeStatus:
    name: str
    address: str
    reachable: bool
    error: str | None = None
    initialized: bool | None = None
    sealed: bool | None = None
    progress: int | None = None
    threshold: int | None = None
    shares: int | None = None
    nonce: str | None = None
    ha_role: str | None = None
    version: str | None = None
    cluster_id: str | None = None
    raft: dict[str, Any] | None = None


@dataclass(frozen=True)
class ClusterStatus:
    name: str
    storage: str
    nodes: tuple[NodeStatus, ...]
    autopilot: AutopilotState | None
    autopilot_error: str | None = None
    token_rejected: bool = False
    consul: ConsulFacts | None = None

    @property
    def cluster_id(self) -> str | None:
        return next((n.cluster_id for n in self.nodes if n.cluster_id), None)

    @property
    def exit(self) -> StatusExit:
        if any(not n.reachable for n in self.nodes):
            return StatusExit.UNREACHABLE
        if any(n.sealed or not n.initialized for n in self.nodes):
            return StatusExit.SEALED
        if self.token_rejected:
            return StatusExit.TOKEN_REJECTED
        if self.autopilot is not None and not self.autopilot.healthy and not self.joining:
            return StatusExit.DEGRADED
        if self.joining:
            return StatusExit.JOINING
        if self.consul is not None and "leader" not in self.consul.errors and not self.consul.leader:
            return StatusExit.DEGRADED
        return StatusExit.HEALTHY

    @property
    def joining(self) -> tuple[str, ...]:
        """Non-voters while the failure tolerance is 0 and every voter is healthy: nodes that joined and
        wait for autopilot to promote them (~10 s of stability). Until then autopilot may call the
        cluster healthy, yet one lost voter stops it -- so this is not healthy."""
        ap = self.autopilot
        if ap is None or ap.failure_tolerance > 0:
            return ()
        servers = ap.servers.values()
        if any(s.id in ap.voters and not s.healthy for s in servers):
            return ()       # a voter in trouble: degraded, whoever else is joining
        return tuple(sorted(s.name or s.id for s in servers if s.id not in ap.voters))

    @property
    def reason(self) -> str:
        """One line on why the verdict is what it is, for people (empty when there is nothing to add)."""
        if self.exit == StatusExit.JOINING:
            return (f"failure tolerance 0: {', '.join(self.joining)} still joining as non-voter(s); "
                    "autopilot promotes them after ~10 s of stability (run status again)")
        return ""

    def to_json(self) -> dict[str, Any]:
        ap = self.autopilot
        return {
            "cluster": {"name": self.name, "id": self.cluster_id, "storage": self.storage,
                        "healthy": self.exit == StatusExit.HEALTHY, "exit": self.exit.name.lower(),
                        "reason": self.reason or None},
            "nodes": [asdict(n) for n in self.nodes],
            "raft": None if ap is None else {"healthy": ap.healthy, "failure_tolerance": ap.failure_tolerance,
                                             "leader": ap.leader, "voters": list(ap.voters)},
            "raft_error": self.autopilot_error,
            "consul": None if self.consul is None else self.consul.to_json(),
        }


def node_status(client: NodeClient) -> NodeStatus:
    seal = client.seal.status()
    role = None
    try:
        role = client.ha.health().role
    except VaultError:
        pass
    return NodeStatus(name=client.name, address=client.address, reachable=True, initialized=seal.initialized,
                      sealed=seal.sealed, progress=seal.progress, threshold=seal.t, shares=seal.n,
                      nonce=seal.nonce or None, ha_role=role, version=seal.version, cluster_id=seal.cluster_id)


def cluster_status(clients: list[NodeClient], *, name: str, storage: str, timeout: float = 6.0,
                   consul: ConsulClient | None = None) -> ClusterStatus:
    results = fan_out(clients, node_status, timeout=timeout)
    nodes = [r.value if r.value else NodeStatus(name=r.node, address=_addr(clients, r.node), reachable=False,
                                                 error=str(r.error)) for r in results]
    autopilot, ap_error, rejected = None, None, False
    if storage == "raft" and not clients[0].token:
        ap_error = NO_TOKEN
    elif storage == "raft":
        try:
            autopilot, ap_error = _autopilot(clients, nodes, timeout)
        except VaultAuthError as exc:
            ap_error, rejected = f"not checked: the token was rejected ({exc.message})", True
        if autopilot:
            nodes = [_with_raft(n, autopilot) for n in nodes]
    return ClusterStatus(name=name, storage=storage, nodes=tuple(nodes), autopilot=autopilot,
                         autopilot_error=ap_error, token_rejected=rejected,
                         consul=consul.facts() if consul is not None else None)


def _addr(clients: list[NodeClient], name: str) -> str:
    return next(c.address for c in clients if c.name == name)


def _autopilot(clients: list[NodeClient], nodes: list[NodeStatus], timeout: float
               ) -> tuple[AutopilotState | None, str | None]:
    """Ask the active node first (a standby forwards, but may be slow); first answer wins.

    A rejected token (VaultAuthError) is raised: every node would reject it alike."""
    order = sorted(zip(clients, nodes, strict=True), key=lambda cn: cn[1].ha_role != "active")
    candidates = [c for c, n in order if n.reachable and n.sealed is False]
    if not candidates:
        return None, "not checked: no node is unsealed"
    error = None
    for c in candidates[:2]:
        try:
            return c.raft.autopilot_state(), None
        except VaultAuthError:
            raise
        except VaultOpsError as exc:
            error = f"not checked: {exc}"
    return None, error


def _with_raft(n: NodeStatus, ap: AutopilotState) -> NodeStatus:
    server = ap.servers.get(n.name) or next((s for s in ap.servers.values() if s.name == n.name), None)
    if server is None:
        return n
    raft = {"role": server.status, "healthy": server.healthy, "last_index": server.last_index,
            "voter": server.id in ap.voters, "version": server.version}
    return NodeStatus(**{**asdict(n), "raft": raft})

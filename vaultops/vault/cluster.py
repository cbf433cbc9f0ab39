"""Cluster facts every operation asks, answered once here: which node is active, and waiting for a
node (or the cluster) to be ready, unsealed or serving.

    found = active(clients)                          # Active(client, health), or NoActiveNode
    found = find_active(clients)                     # the same, or None
    found = wait_active(clients, timeout=60)         # after an unseal or a step-down
    st = wait_ready(client, timeout=60)              # answers seal-status, initialised (a raft joiner
                                                     # has fetched its challenge: shares may be sent)
    st = wait_unsealed(client, timeout=60)

Callers that report in their own terms (a backup exits 6, a runbook halts) pass `error=`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vaultops.errors import VaultError, VaultOpsError
from vaultops.retry import poll
from vaultops.vault.client import NodeClient
from vaultops.vault.fanout import NodeResult, fan_out
from vaultops.vault.models import Health, SealStatus


class NoActiveNode(VaultError):
    """No node answered sys/health as active (sealed, electing, unreachable)."""


@dataclass(frozen=True)
class Active:
    client: NodeClient
    health: Health

    @property
    def name(self) -> str:
        return self.client.name


def health_all(clients: Sequence[NodeClient], *, timeout: float = 10.0) -> list[NodeResult[Health]]:
    """sys/health of every node at once (a hung node costs only its own answer)."""
    return fan_out(list(clients), lambda c: c.ha.health(), timeout=timeout)


def find_active(clients: Sequence[NodeClient], *, timeout: float = 10.0) -> Active | None:
    """The node answering sys/health 200, or None. Snapshots and writes belong there."""
    for client, res in zip(clients, health_all(clients, timeout=timeout)):
        if res.ok and res.value is not None and res.value.status_code == 200:
            return Active(client, res.value)
    return None


def active(clients: Sequence[NodeClient], *, timeout: float = 10.0, error: type[VaultOpsError] = NoActiveNode,
           hint: str = "unseal the cluster or wait for a leader election, then try again") -> Active:
    """The active node; *error* naming every node's state when there is none."""
    results = health_all(clients, timeout=timeout)
    for client, res in zip(clients, results):
        if res.ok and res.value is not None and res.value.status_code == 200:
            return Active(client, res.value)
    raise error(f"no active node ({describe(results)})", hint=hint)


def wait_active(clients: Sequence[NodeClient], *, timeout: float = 60.0, interval: float = 0.1,
                error: type[VaultOpsError] = NoActiveNode) -> Active:
    """Until one node answers sys/health 200 (after a full restart an election takes 15-22 s)."""
    return poll(lambda: find_active(clients, timeout=min(5.0, timeout)), timeout=timeout, interval=interval,
                what="no node became active", error=error, hint="see the nodes' server logs")


def wait_ready(client: NodeClient, *, timeout: float = 60.0, interval: float = 0.05,
               error: type[VaultOpsError] = VaultError) -> SealStatus:
    """Until *client* answers seal-status as initialised (a raft joiner has its challenge)."""
    def ready() -> SealStatus | None:
        st = client.seal.status()
        return st if st.initialized else None
    return poll(ready, timeout=timeout, interval=interval, error=error,
                what=f"{client.name} did not answer seal-status as initialised",
                hint="see the node's server log")


def wait_unsealed(client: NodeClient, *, timeout: float = 60.0, interval: float = 0.1) -> SealStatus:
    """Until *client* says unsealed; returns the last status (still sealed when the time is up)."""
    last: list[SealStatus] = []

    def unsealed() -> SealStatus | None:
        st = client.seal.status()
        last[:] = [st]
        return st if not st.sealed else None
    try:
        return poll(unsealed, timeout=timeout, interval=interval, what=f"{client.name} to unseal")
    except VaultOpsError:
        if last:
            return last[0]
        raise


def describe(results: Sequence[NodeResult[Health]]) -> str:
    """'node1: sealed, node2: unreachable ...' for messages."""
    return ", ".join(f"{r.node}: {r.value.role if r.value is not None else _short(r.error)}" for r in results)


def _short(exc: BaseException | None) -> str:
    return str(exc).split(": ", 1)[-1][:80] if exc else "no answer"


__all__ = ["Active", "NoActiveNode", "active", "describe", "find_active", "health_all", "wait_active",
           "wait_ready", "wait_unsealed"]

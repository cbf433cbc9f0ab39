"""The ceremony tests' view of the one fake Vault (vaultops.testing.fake_vault).

fake_cluster(raws, n) gives n real NodeClients over one FakeVault whose shares are *raws*. As these
tests always did, a node's seal state is read and set through `node.seal`: `received`, `calls` (unseal
requests), `unreachable`, `sealed`, `initialized`, `restart()`, `join()`; status/unseal/reset/init are the
real sys/seal endpoints. Shares come from the seeded test stream (VAULTOPS_TEST_SEED).
"""

from __future__ import annotations

import base64
from typing import Any

from vaultops.services.ceremony.manifest import Manifest, ScryptParams
from vaultops.services.ceremony.shares import Share
from vaultops.testing.fake_vault import CLUSTER_ID, FakeVault, NodeAliases
from vaultops.testing.fake_vault import make_shares as make_shares
from vaultops.vault.client import NodeClient
from vaultops.vault.sys_seal import SealEndpoints

FAST = ScryptParams(n=16, r=1, p=1)
NAMES = ("alice", "bob", "carol", "dave", "erin")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def make_manifest(raws: list[bytes], *, cluster_id: str = CLUSTER_ID, threshold: int = 3) -> Manifest:
    m = Manifest(cluster_id=cluster_id, threshold=threshold, shares=len(raws))
    for name, raw in zip(NAMES, raws):
        m = m.enroll(name, Share(raw), params=FAST)
    return m


class FakeSeal(NodeAliases, SealEndpoints):
    """sys/seal endpoints over the fake transport, with the node's state at hand."""

    _ALIASES = {"received": "received", "calls": "unseal_calls", "unreachable": "unreachable", "sealed": "sealed",
                "nonce": "nonce", "follower": "follower", "joining": "joining", "restart": "restart", "join": "join"}

    def __init__(self, client: NodeClient, vault: FakeVault) -> None:
        self._alias_node(vault.node(client.name))
        super().__init__(client.transport)

    @property  # the node's state here (the endpoint GET sys/init is not what these tests ask)
    def initialized(self) -> bool:  # type: ignore[override]
        return bool(self.__dict__["_node"].initialized)

    @initialized.setter
    def initialized(self, value: bool) -> None:
        self.__dict__["_node"].initialized = value


def _with_seal(client: NodeClient, vault: FakeVault) -> NodeClient:
    client.seal = FakeSeal(client, vault)
    return client

    def close(self) -> None:
        """The session closes every client it handed out."""


def FakeNode(name: str, valid: frozenset[bytes], **kwargs: Any) -> NodeClient:  # noqa: N802 - was a class
    """One node on a cluster of its own (init tests)."""
    vault = FakeVault([name], shares=sorted(valid), **kwargs)
    return _with_seal(vault.client(name), vault)


def fake_cluster(raws: list[bytes], nodes: int = 3, **kwargs: Any) -> list[NodeClient]:
    vault = FakeVault(nodes, shares=raws, **kwargs)
    return [_with_seal(c, vault) for c in vault.clients()]

"""One in-memory Vault/OpenBao cluster for unit tests, served through a fake transport.

    vault = FakeVault(3, shares=make_shares(), threshold=3)   # node1..node3, initialised and sealed
    clients = vault.clients(token=ROOT_TOKEN)                 # real NodeClients over FakeTransport
    vault.node("node2").unreachable = True                    # connection refused
    vault.node("node3").hang(); ...; vault.node("node3").release()   # its requests block until released

Every request goes through the real endpoint groups (vaultops.vault.sys_*, kv) and the real error
table (vaultops.vault.http.error_for): only the server is fake. It behaves as OpenBao was measured
to (shared/field-notes.md): seal-status per node; a share counts once per nonce (a byte-identical
duplicate is ignored); a wrong share is only found at the threshold (400, progress back to 0); a raft
follower answers `sealed, progress 0` after its last share and unseals once `join()` is called; an
uninitialised node refuses shares; sys/health answers 200 active / 429 standby / 501 / 503; a
step-down hands leadership to the next unsealed node; KV v2 keeps versions and honours check-and-set.
Real behaviour is proven against real servers in tests/integration.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, ClassVar

from vaultops import errors
from vaultops.testing import seed
from vaultops.testing.fake_routes import route
from vaultops.vault.client import NodeClient
from vaultops.vault.http import Response, error_for

CLUSTER_ID = "11111111-2222-3333-4444-555555555555"
ROOT_TOKEN = "s.fake-root-token"
LOGIN_TOKEN = "s.login-token"
HANG_LIMIT = 30.0     # a hung node answers after this long at the latest (a test that forgot release())


def make_shares(n: int = 5) -> list[bytes]:
    """*n* distinct 33-byte shares (32 key bytes + the x-coordinate), from the seeded test stream."""
    xs = [3, 17, 70, 130, 201, 222, 250][:n] if n <= 7 else seed.rng().sample(range(1, 256), n)
    return [seed.randbytes(32) + bytes([x]) for x in xs]


@dataclass(eq=False)
class FakeNode:
    """One node's state; tests read and set it directly."""

    name: str
    address: str
    initialized: bool = True
    sealed: bool = True
    active: bool = False
    follower: bool = False        # a raft joiner: unseals only once join() is called
    joining: bool = False
    unreachable: bool = False
    version: str = "2.7.2"
    received: list[bytes] = field(default_factory=list)
    nonce: str = ""
    requests: int = 0             # every request that reached the node (hung ones included)
    unseal_calls: int = 0
    autopilot_calls: int = 0
    stepped_down: int = 0
    logins: list[tuple[str, Any]] = field(default_factory=list)
    revoked: int = 0
    _open: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        self._open.set()

    def hang(self) -> None:
        """Every request from now on blocks until release() (or HANG_LIMIT)."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def join(self) -> None:
        """The follower finished joining: it comes up unsealed."""
        self.joining, self.sealed = False, False

    def restart(self) -> None:
        """The process restarted: sealed, no shares, no leadership."""
        self.received, self.nonce, self.sealed, self.joining, self.active = [], "", True, False, False


class NodeAliases:
    """A fake node's state read and set on a wrapper (a client, an endpoint group) under the names a test
    suite knows it by: `_ALIASES` maps the wrapper's name to the FakeNode attribute."""

    _ALIASES: ClassVar[dict[str, str]] = {}

    def _alias_node(self, node: FakeNode) -> None:
        self.__dict__["_node"] = node

    def __getattr__(self, name: str) -> Any:
        if name in type(self)._ALIASES and "_node" in self.__dict__:
            return getattr(self.__dict__["_node"], type(self)._ALIASES[name])
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self)._ALIASES:
            setattr(self.__dict__["_node"], type(self)._ALIASES[name], value)
        else:
            super().__setattr__(name, value)


class FakeVault:
    """A cluster of FakeNodes sharing seal keys, tokens and a KV store."""

    def __init__(self, nodes: int | Sequence[str] = 3, *, shares: Sequence[bytes] | None = None, threshold: int = 3,
                 initialized: bool = True, sealed: bool = True, active: str | None = None, follower: bool = False,
                 unreachable: bool = False, storage: str = "raft", cluster_id: str = CLUSTER_ID,
                 tokens: Mapping[str, Sequence[str]] | None = None, login_policies: Sequence[str] = ("default",),
                 refuse_logins: bool = False, mounts: Mapping[str, dict[str, Any]] | None = None,
                 auto_elect: bool = True, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        names = [f"node{i}" for i in range(1, nodes + 1)] if isinstance(nodes, int) else list(nodes)
        self.valid = frozenset(make_shares() if shares is None else shares)
        self.t, self.n = threshold, len(self.valid)
        self.storage, self.cluster_id, self.now = storage, cluster_id, now
        self.login_policies, self.refuse_logins = list(login_policies), refuse_logins
        self.tokens: dict[str, list[str]] = {k: list(v) for k, v in (tokens or {ROOT_TOKEN: ["root"]}).items()}
        self.mounts: dict[str, dict[str, Any]] = dict(mounts or {})  # path -> {type, options}
        self.auto_elect = auto_elect      # an unsealed cluster without a leader elects one at the next request
        self.kv: dict[str, dict[str, list[dict[str, Any]]]] = {}     # kv-v2 mount -> path -> versions
        self.logical: dict[str, dict[str, Any]] = {}                 # other mounts: path -> data
        self.raft_index = 1
        self.lock = threading.RLock()
        self.nodes = {name: FakeNode(name, f"http://127.0.0.1:{8100 + 100 * i}", initialized=initialized,
                                     sealed=sealed, follower=follower, unreachable=unreachable)
                      for i, name in enumerate(names)}
        leader = (names[0] if not sealed else None) if active is None else active   # "": no leader
        if leader:
            self.nodes[leader].active = True

    def node(self, name: str) -> FakeNode:
        return self.nodes[name]

    def transport(self, name: str, *, token: str | None = None) -> FakeTransport:
        return FakeTransport(self, self.nodes[name], token=token)

    def client(self, name: str, *, token: str | None = None) -> NodeClient:
        node = self.nodes[name]
        return NodeClient(name, node.address, transport=self.transport(name, token=token))

    def clients(self, *, token: str | None = None) -> list[NodeClient]:
        return [self.client(name, token=token) for name in self.nodes]

    @property
    def leader(self) -> FakeNode | None:
        return next((n for n in self.nodes.values() if n.active and not n.sealed), None)

    def elect(self) -> None:
        """No unsealed node leads: the first unsealed one takes over (an election on loopback)."""
        if self.leader is None:
            for n in self.nodes.values():
                n.active = False
            up = next((n for n in self.nodes.values() if not n.sealed and n.initialized), None)
            if up is not None:
                up.active = True


class FakeTransport:
    """vaultops.vault.http.HTTP for one node of a FakeVault."""

    def __init__(self, vault: FakeVault, node: FakeNode, *, token: str | None = None) -> None:
        self.vault, self._node = vault, node
        self.node, self.address, self.token = node.name, node.address, token

    def request(self, method: str, path: str, *, body: Any = None, auth: bool = False,
                ok: tuple[int, ...] = (200, 204), timeout: float | None = None) -> Response:
        self._gate(path)
        if auth and not self.token:
            raise errors.VaultAuthError(f"{self.node}: this call needs a token", node=self.node,
                                        hint="export VAULT_TOKEN, write ~/.vault-token, or set cluster.token_file")
        if isinstance(body, (bytes, bytearray)):
            body = json.loads(bytes(body))
        with self.vault.lock:
            status, data = route(self.vault, self._node, self.token if auth else None, method, path, body or {})
        if status not in ok:
            raise error_for(status, data, node=self.node, path=path)
        return Response(status, data, {"Date": format_datetime(self.vault.now(), usegmt=True)})

    def stream(self, method: str, path: str, *, auth: bool = True, body: Any = None,
               timeout: float | None = None) -> Any:
        self._gate(path)
        raise errors.VaultNotFound(f"{self.node}: {path}: the fake Vault serves no streams", node=self.node)

    def upload(self, path: str, body: Any, *, auth: bool = True, timeout: float | None = None) -> Response:
        self._gate(path)
        raise errors.VaultNotFound(f"{self.node}: {path}: the fake Vault takes no uploads", node=self.node)

    def close(self) -> None:
        return None

    def _gate(self, path: str) -> None:
        node = self._node
        with self.vault.lock:
            node.requests += 1
        node._open.wait(HANG_LIMIT)
        if node.unreachable:
            raise errors.VaultUnreachable(f"{self.node}: unreachable at {self.address} (connection refused)",
                                          node=self.node, hint="check the address and that the server is running")


__all__ = ["CLUSTER_ID", "LOGIN_TOKEN", "ROOT_TOKEN", "FakeNode", "NodeAliases", "FakeTransport", "FakeVault", "make_shares"]

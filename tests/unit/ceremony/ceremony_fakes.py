"""An in-memory sealed cluster for unit tests of the ceremony service and the TUI.

FakeNode follows the behaviour measured on OpenBao (field notes): progress
counts distinct shares under one nonce; a byte-identical duplicate is
ignored; a wrong share is detected only at the threshold (HTTP 400, progress
lost); a raft follower answers `sealed, progress 0` after its last share and
unseals once `join()` is called; an uninitialised follower refuses shares.
Real behaviour is proven against real servers in tests/integration/ceremony.
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass, field

from vaultops.errors import VaultError, VaultUnreachable
from vaultops.services.ceremony.manifest import Manifest, ScryptParams
from vaultops.services.ceremony.shares import Share
from vaultops.vault.models import InitResult, SealStatus

FAST = ScryptParams(n=16, r=1, p=1)
NAMES = ("alice", "bob", "carol", "dave", "erin")
CLUSTER_ID = "11111111-2222-3333-4444-555555555555"


def make_shares(n: int = 5) -> list[bytes]:
    xs = [3, 17, 70, 130, 201, 222, 250][:n]
    return [os.urandom(32) + bytes([x]) for x in xs]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def make_manifest(raws: list[bytes], *, cluster_id: str = CLUSTER_ID, threshold: int = 3) -> Manifest:
    m = Manifest(cluster_id=cluster_id, threshold=threshold, shares=len(raws))
    for name, raw in zip(NAMES, raws):
        m = m.enroll(name, Share(raw), params=FAST)
    return m


@dataclass
class FakeSeal:
    valid: frozenset[bytes]
    t: int = 3
    n: int = 5
    initialized: bool = True
    sealed: bool = True
    follower: bool = False
    joining: bool = False
    unreachable: bool = False
    received: list[bytes] = field(default_factory=list)
    nonce: str = ""
    calls: int = 0
    name: str = "node"

    def _check(self) -> None:
        if self.unreachable:
            raise VaultUnreachable(f"{self.name}: unreachable (connection refused)", node=self.name)

    def status(self) -> SealStatus:
        self._check()
        return SealStatus(type="shamir", initialized=self.initialized, sealed=self.sealed, t=self.t,
                          n=self.n, progress=len(self.received), nonce=self.nonce, version="2.7.2",
                          cluster_id=None if self.sealed else CLUSTER_ID)

    def unseal(self, key: str, *, timeout: float | None = None) -> SealStatus:
        self._check()
        self.calls += 1
        if not self.initialized:
            raise VaultError(f"{self.name}: sys/unseal: Vault is not initialized", status=400,
                             node=self.name)
        if not self.sealed:
            return self.status()
        raw = base64.b64decode(key)
        if raw in self.received:
            return self.status()
        if not self.received:
            self.nonce = str(uuid.uuid4())
        self.received.append(raw)
        if len(self.received) < self.t:
            return self.status()
        ok = all(r in self.valid for r in self.received)
        self.received, self.nonce = [], ""
        if not ok:
            raise VaultError(f"{self.name}: sys/unseal: failed to decrypt keys", status=400,
                             node=self.name)
        if self.follower:
            self.joining = True
            return self.status()
        self.sealed = False
        return self.status()

    def reset(self) -> SealStatus:
        self._check()
        self.received, self.nonce = [], ""
        return self.status()

    def init(self, *, shares: int, threshold: int, pgp_keys: list[str] | None = None) -> InitResult:
        raws = make_shares(shares)
        self.valid, self.t, self.n, self.initialized = frozenset(raws), threshold, shares, True
        return InitResult(tuple(b64(r) for r in raws), "s.fake-root-token")

    def join(self) -> None:
        """The follower finished joining."""
        self.joining, self.sealed = False, False

    def restart(self) -> None:
        self.received, self.nonce, self.sealed, self.joining = [], "", True, False


class FakeNode:
    def __init__(self, name: str, valid: frozenset[bytes], **kwargs: object) -> None:
        self.name = name
        self.address = f"http://127.0.0.1:8{name[-1]}00"
        self.seal = FakeSeal(valid=valid, name=name, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        """The session closes every client it handed out."""


def fake_cluster(raws: list[bytes], nodes: int = 3, **kwargs: object) -> list[FakeNode]:
    valid = frozenset(raws)
    return [FakeNode(f"node{i}", valid, **kwargs) for i in range(1, nodes + 1)]

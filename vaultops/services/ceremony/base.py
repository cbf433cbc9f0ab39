"""What a rekey and a root-token generation share: one attempt on the active node.

    cer = RekeyCeremony.open(clients, manifest_path, journal=j)   # or RootCeremony.open(...)
    cer.status(); cer.cancel()

Both run against the active node (vault/cluster.py), check each share against the keyholder
manifest before it is sent (a refusal is journalled), journal every step with the node's name,
and cancel an attempt in progress the same way. They differ in their endpoints and results:
services/ceremony/rekey.py and services/ceremony/root.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from vaultops.errors import ShareMismatchError, UsageError
from vaultops.vault.cluster import active

if TYPE_CHECKING:
    from collections.abc import Sequence

    from vaultops.journal import Journal
    from vaultops.services.ceremony.manifest import Manifest
    from vaultops.services.ceremony.shares import Share
    from vaultops.vault import NodeClient

NO_ACTIVE_HINT = "unseal the cluster first (vaultops unseal), or wait for a leader election"


class AttemptStatus(Protocol):
    """The server's view of the attempt in progress (RotationStatus, GenerateRootStatus)."""

    @property
    def started(self) -> bool: ...

    @property
    def nonce(self) -> str: ...


class Endpoints(Protocol):
    def status(self) -> AttemptStatus: ...

    def cancel(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class KeyCeremony:
    """One attempt (rekey, root generation) against the active node of a cluster."""

    KIND: ClassVar[str]                # journal actions are KIND.started, KIND.cancelled ...
    NEEDS_MANIFEST: ClassVar[bool]     # without a manifest shares cannot be checked: refuse, or allow

    client: NodeClient
    manifest: Manifest | None = None
    manifest_path: Path | None = None
    journal: Journal | None = None

    @classmethod
    def open(cls, clients: Sequence[NodeClient], manifest_path: Path | None, *,
             journal: Journal | None = None) -> Self:
        """The ceremony on the active node, checked against the manifest at *manifest_path*.

        *manifest_path* None: no manifest, shares go unchecked (only where NEEDS_MANIFEST is false).
        """
        from vaultops.services.ceremony.manifest import Manifest

        if manifest_path is None and cls.NEEDS_MANIFEST:
            raise UsageError(f"{cls.KIND} needs the keyholder manifest", hint="pass --manifest FILE")
        client = active(clients, hint=NO_ACTIVE_HINT).client
        manifest = Manifest.load(manifest_path) if manifest_path is not None else None
        return cls(client=client, manifest=manifest, manifest_path=manifest_path, journal=journal,
                   **cls.detect(client))

    @classmethod
    def detect(cls, client: NodeClient) -> dict[str, Any]:
        """What this ceremony learns from the node before it starts (rekey: which API it offers)."""
        return {}

    @property
    def ep(self) -> Endpoints:
        raise NotImplementedError

    def status(self) -> AttemptStatus:
        return self.ep.status()

    def cancel(self) -> bool:
        """Cancel the attempt in progress (the old shares and tokens stay valid); True if there was one."""
        st = self.status()
        if st.started:
            self.ep.cancel()
        details = self.forget(st)
        if details is not None:
            self.log(f"{self.KIND}.cancelled", **details)
        return details is not None

    def forget(self, st: AttemptStatus) -> dict[str, Any] | None:
        """After a cancel: drop what is kept locally for the attempt; the journal details of what was
        cancelled, or None when nothing was in progress."""
        return {"nonce": st.nonce} if st.started else None

    def log_details(self) -> dict[str, Any]:
        """Details every journal entry of this ceremony carries."""
        return {}

    def log(self, action: str, outcome: str = "ok", **details: Any) -> None:
        if self.journal is not None:
            self.journal.append(action, outcome=outcome, node=self.client.name,
                                details={**self.log_details(), **details})

    def require(self, manifest: Manifest, name: str, share: Share, *, action: str) -> None:
        """Refuse a share that is not *name*'s in *manifest* before anything is sent (journalled as *action*)."""
        try:
            manifest.require(name, share)
        except (ShareMismatchError, UsageError) as exc:
            self.log(action, outcome="rejected", keyholder=name, reason=exc.message)
            raise


__all__ = ["AttemptStatus", "Endpoints", "KeyCeremony", "NO_ACTIVE_HINT"]

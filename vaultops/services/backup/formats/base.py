"""What every backup format provides (one subclass per module of this package)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from vaultops.services.backup.manifest import Manifest
from vaultops.services.backup.sources import Source
from vaultops.services.backup.verify import Verifier
from vaultops.storage.base import Sink
from vaultops.vault import NodeClient

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from vaultops.services.backup.scratch import ScratchCopy
    from vaultops.services.backup.settings import BackupSettings
    from vaultops.services.ceremony.shares import Share


@dataclass(frozen=True)
class Contents:
    """What `backup inspect` shows below the manifest."""

    meta: dict[str, Any]
    prefixes: list[dict[str, Any]] = field(default_factory=list)
    entries: int = 0


class Format:
    name: ClassVar[str]
    extension: ClassVar[str] = "snap"
    reads_through_vault: ClassVar[bool] = False    # a run logs in to Vault (backup.auth) to take the snapshot
    checks_cluster: ClassVar[bool] = False         # restoring another cluster's backup needs --force
    restores_into_sandbox: ClassVar[bool] = False  # a drill can restore it into a throwaway sandbox
    sandbox_storage: ClassVar[str] = "raft"        # ... of this storage
    restore_notice: ClassVar[str | None] = None    # what the operator must do around a restore

    def __init__(self, settings: BackupSettings | None = None) -> None:
        self.settings = settings

    def verifier(self, *, on_state: Callable[[bytes], None] | None = None) -> Verifier:
        raise NotImplementedError

    def source(self, clients: list[NodeClient]) -> Source:
        raise NotImplementedError

    def inspect(self, sink: Sink, name: str, manifest: Manifest, *, depth: int = 1) -> Contents:
        raise NotImplementedError

    def drill_prerequisites(self) -> None:
        """Raise (before anything is fetched) when this machine cannot host the drill's copy."""

    def restore_copy(self, copy: ScratchCopy, path: Path, *, shares: Sequence[Share], threshold: int | None) -> None:
        """Restore the verified backup at *path* into a scratch copy (a drill) and unseal it with *shares*."""
        raise NotImplementedError

    def manifest_fields(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Fields of the manifest taken from the verified archive's meta (raft: index, term)."""
        return {}

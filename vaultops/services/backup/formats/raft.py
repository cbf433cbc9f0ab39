"""Raft snapshots: GET/POST sys/storage/raft/snapshot on the active node, read through Vault's API.

Take snapshots from the active node: a standby serves its own copy, which can miss writes
acknowledged milliseconds earlier. Restoring another cluster's snapshot needs snapshot-force.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from vaultops.errors import BackupError
from vaultops.services.backup.formats.base import Contents, Format
from vaultops.services.backup.inspect import StateStats, describe_meta
from vaultops.services.backup.manifest import Manifest
from vaultops.services.backup.sources import CHUNK, OpenSnapshot, SnapshotInfo, Source
from vaultops.services.backup.stored import verify_stored
from vaultops.services.backup.verify import ArchiveKind, ArchiveVerifier, Verifier
from vaultops.storage.base import Sink
from vaultops.vault import NodeClient
from vaultops.vault.cluster import Active, active
from vaultops.vault.bounded import read_blocks

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from vaultops.services.backup.scratch import ScratchCopy
    from vaultops.services.ceremony.shares import Share

NO_LEADER = "unseal the cluster or wait for a leader election, then run the backup again"


def _active(clients: list[NodeClient]) -> Active:
    return active(clients, error=BackupError, hint=NO_LEADER)


class RaftSource:
    kind = "raft"
    extension = "snap"

    def __init__(self, clients: list[NodeClient]) -> None:
        self.clients = clients

    def verifier(self, *, on_state: Callable[[bytes], None] | None = None) -> Verifier:
        return ArchiveVerifier(ArchiveKind.RAFT, on_state=on_state)

    @contextlib.contextmanager
    def open(self) -> Iterator[OpenSnapshot]:
        found = _active(self.clients)
        resp = found.client.raft.snapshot()
        health = found.health
        info = SnapshotInfo(source_node=found.name, cluster_id=health.cluster_id,
                            cluster_name=health.cluster_name, server_version=health.version)
        try:
            yield OpenSnapshot(info, read_blocks(resp, CHUNK, node=found.name))
        finally:
            resp.release_conn()

    def restore(self, body: IO[bytes], *, force: bool) -> str:
        found = _active(self.clients)
        found.client.raft.restore(body, force=force)
        return found.name


class RaftFormat(Format):
    name = "raft"
    reads_through_vault = True
    checks_cluster = True
    restores_into_sandbox = True

    def verifier(self, *, on_state: Callable[[bytes], None] | None = None) -> Verifier:
        return ArchiveVerifier(ArchiveKind.RAFT, on_state=on_state)

    def restore_copy(self, copy: ScratchCopy, path: Path, *, shares: Sequence[Share], threshold: int | None) -> None:
        copy.restore(path, shares=shares, error=BackupError, threshold=threshold)

    def source(self, clients: list[NodeClient]) -> Source:
        return RaftSource(clients)

    def inspect(self, sink: Sink, name: str, manifest: Manifest, *, depth: int = 1) -> Contents:
        """meta.json (index, term, peers) and per-prefix counts/sizes of state.bin's keys."""
        stats = StateStats(depth=depth)
        report = verify_stored(sink, name, manifest, self.verifier(on_state=stats.feed))
        stats.finish()
        meta = describe_meta(report.meta, source=f"{sink.name}/{name}: meta.json")
        return Contents(meta, stats.table(), stats.entries)

    def manifest_fields(self, meta: dict[str, Any]) -> dict[str, Any]:
        """raft index/term from meta.json."""
        index, term = meta.get("Index"), meta.get("Term")
        return {"raft_index": int(index) if isinstance(index, int) else None,
                "raft_term": int(term) if isinstance(term, int) else None}

"""What a backup source is: it opens a stream of bytes plus what is known about it (node, cluster
id, version), gives the verifier for its format, and restores a stream back. Each format
(formats/) provides one; they are found by name through formats.FORMATS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from vaultops.services.backup.verify import Verifier
from vaultops.vault import NodeClient
from vaultops.vault.cluster import find_active

CHUNK = 1 << 20


@dataclass(frozen=True)
class SnapshotInfo:
    source_node: str | None
    cluster_id: str | None = None
    cluster_name: str | None = None
    server_version: str | None = None
    consul_index: int | None = None


@dataclass(frozen=True)
class OpenSnapshot:
    info: SnapshotInfo
    chunks: Iterator[bytes | bytearray]


class Source(Protocol):
    kind: str
    extension: str

    def verifier(self, *, on_state: Callable[[bytes], None] | None = None) -> Verifier: ...

    def open(self) -> contextlib.AbstractContextManager[OpenSnapshot]: ...

    def restore(self, body: IO[bytes], *, force: bool) -> str: ...


def vault_info(clients: Sequence[NodeClient]) -> SnapshotInfo:
    """The Vault cluster a storage-level snapshot belongs to, as far as its active node says."""
    found = find_active(clients) if clients else None
    if found is None:
        return SnapshotInfo(source_node=None)
    return SnapshotInfo(source_node=found.name, cluster_id=found.health.cluster_id,
                        cluster_name=found.health.cluster_name, server_version=found.health.version)


__all__ = ["CHUNK", "OpenSnapshot", "SnapshotInfo", "Source", "vault_info"]

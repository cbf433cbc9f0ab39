"""Where snapshots come from: the active Raft node, Consul, or pg_dump. Chosen by name.

A source opens a stream of bytes plus what is known about it (node, cluster id, version),
gives the verifier for its format, and restores a stream back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol

from vaultops.errors import BackupError
from vaultops.services.backup.verify import ArchiveKind, ArchiveVerifier, Verifier
from vaultops.vault import NodeClient, fan_out
from vaultops.vault.http import read_blocks
from vaultops.vault.models import Health

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


def active_node(clients: list[NodeClient]) -> tuple[NodeClient, Health]:
    """The node answering sys/health 200; snapshots from a standby can miss acknowledged writes."""
    results = fan_out(clients, lambda c: c.ha.health())
    for client, res in zip(clients, results):
        if res.ok and res.value is not None and res.value.status_code == 200:
            return client, res.value
    states = ", ".join(f"{r.node}: {r.value.role if r.value else r.error}" for r in results)
    raise BackupError(f"no active node found ({states})",
                      hint="unseal the cluster or wait for a leader election, then run the backup again")


def vault_info(clients: list[NodeClient]) -> SnapshotInfo:
    try:
        client, health = active_node(clients)
    except BackupError:
        return SnapshotInfo(source_node=None)
    return SnapshotInfo(source_node=client.name, cluster_id=health.cluster_id,
                        cluster_name=health.cluster_name, server_version=health.version)


class RaftSource:
    kind = "raft"
    extension = "snap"

    def __init__(self, clients: list[NodeClient]) -> None:
        self.clients = clients

    def verifier(self, *, on_state: Callable[[bytes], None] | None = None) -> Verifier:
        return ArchiveVerifier(ArchiveKind.RAFT, on_state=on_state)

    @contextlib.contextmanager
    def open(self) -> Iterator[OpenSnapshot]:
        client, health = active_node(self.clients)
        resp = client.raft.snapshot()
        info = SnapshotInfo(source_node=client.name, cluster_id=health.cluster_id,
                            cluster_name=health.cluster_name, server_version=health.version)
        try:
            yield OpenSnapshot(info, _guarded(read_blocks(resp, CHUNK), client.name))
        finally:
            resp.release_conn()

    def restore(self, body: IO[bytes], *, force: bool) -> str:
        client, _ = active_node(self.clients)
        client.raft.restore(body, force=force)
        return client.name


def _guarded(chunks: Iterator[bytes | bytearray], node: str) -> Iterator[bytes | bytearray]:
    """Turn a connection dropped mid-snapshot into our error."""
    import http.client

    import urllib3

    try:
        yield from chunks
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        raise BackupError(f"{node}: the snapshot download broke off ({exc})",
                          hint="check the node and network, then run the backup again") from exc


def make_source(name: str, *, clients: list[NodeClient], settings: Any) -> Source:
    """The source called *name* (Consul allows plain http only as far as the Vault *clients* do)."""
    if name == "raft":
        return RaftSource(clients)
    if name == "consul":
        from vaultops.services.backup.consul import ConsulSource
        return ConsulSource.from_settings(settings.consul, clients=clients)
    if name == "postgresql":
        from vaultops.services.backup.pgdump import PgDumpSource
        return PgDumpSource.from_settings(settings.postgresql, clients=clients)
    raise BackupError(f"unknown backup source {name!r}", hint="use raft, consul or postgresql")


def source_for_kind(kind: str, *, clients: list[NodeClient], settings: Any) -> Source:
    """The source that reads/writes backups of *kind* (from a manifest)."""
    return make_source(kind, clients=clients, settings=settings)


__all__ = ["OpenSnapshot", "RaftSource", "SnapshotInfo", "Source", "active_node", "make_source"]

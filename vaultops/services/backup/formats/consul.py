"""Consul snapshots (HashiCorp Vault on `storage "consul"`) through vaultops.consul, no Consul binary.

    GET /v1/snapshot[?stale]   X-Consul-Token   -> gzipped tar (meta.json, state.bin, SHA256SUMS)
                                                   + X-Consul-Index / -KnownLeader / -LastContact
    PUT /v1/snapshot           X-Consul-Token   <- the same archive

Consul snapshots hold ACL tokens in clear: they are stored 0600 and should be encrypted at rest
(SSE on S3). Restoring a Consul-backed Vault also needs Vault stopped and `core/lock` removed.
Tests run against vaultops.testing.consul_double, an in-repo HTTP double, not a real Consul.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from vaultops.consul import ConsulClient, consul_client
from vaultops.errors import BackupError
from vaultops.services.backup.formats.base import Contents, Format
from vaultops.services.backup.manifest import Manifest
from vaultops.services.backup.sources import OpenSnapshot, SnapshotInfo, Source, vault_info
from vaultops.services.backup.stored import verify_stored
from vaultops.services.backup.verify import ArchiveKind, ArchiveVerifier, Verifier
from vaultops.storage.base import Sink
from vaultops.vault import NodeClient


class ConsulSource:
    kind = "consul"
    extension = "snap"

    def __init__(self, address: str, *, token: str | None, ca_cert: str | None = None, stale: bool = False,
                 clients: list[NodeClient] | None = None, allow_insecure_http: bool = False,
                 client: ConsulClient | None = None) -> None:
        self.consul = client or ConsulClient(address, token=token, ca_cert=ca_cert,
                                             allow_insecure_http=allow_insecure_http, error=BackupError)
        self.address = self.consul.address
        self.stale = stale
        self.clients = clients or []

    @classmethod
    def from_settings(cls, raw: dict[str, Any], *, clients: list[NodeClient]) -> ConsulSource:
        """Plain http to a non-loopback Consul only if the Vault *clients* were allowed it too
        (--allow-insecure-http: the session builds them; the flag is read nowhere else)."""
        insecure_ok = bool(clients) and all(c.allow_insecure_http for c in clients)
        client = consul_client(raw, allow_insecure_http=insecure_ok, error=BackupError)
        return cls(client.address, token=None, stale=bool(raw.get("stale")), clients=clients, client=client)

    def verifier(self, *, on_state: Callable[[bytes], None] | None = None) -> Verifier:
        return ArchiveVerifier(ArchiveKind.CONSUL, on_state=on_state)

    @contextlib.contextmanager
    def open(self) -> Iterator[OpenSnapshot]:
        with self.consul.snapshot(stale=self.stale) as snap:
            if not snap.known_leader and not self.stale:
                raise BackupError("consul: no known leader", hint="wait for Consul to elect a leader")
            base = vault_info(self.clients)
            info = SnapshotInfo(source_node=self.address, cluster_id=base.cluster_id,
                                cluster_name=base.cluster_name, server_version=base.server_version,
                                consul_index=snap.index)
            yield OpenSnapshot(info, snap.blocks)

    def restore(self, body: IO[bytes], *, force: bool) -> str:
        """PUT /v1/snapshot. Vault must be stopped and core/lock removed afterwards (restore_notice)."""
        self.consul.restore(body)
        return self.address


class ConsulFormat(Format):
    name = "consul"
    restore_notice = ("Consul: stop every Vault node first; after the restore delete the Vault 'core/lock' key "
                      "from Consul, then start and unseal Vault.")

    def verifier(self, *, on_state: Callable[[bytes], None] | None = None) -> Verifier:
        return ArchiveVerifier(ArchiveKind.CONSUL, on_state=on_state)

    def source(self, clients: list[NodeClient]) -> Source:
        raw = self.settings.consul if self.settings else {}
        return ConsulSource.from_settings(raw, clients=clients)

    def inspect(self, sink: Sink, name: str, manifest: Manifest, *, depth: int = 1) -> Contents:
        """meta.json as Consul wrote it; state.bin (msgpack raft records) is not parsed."""
        return Contents(verify_stored(sink, name, manifest, self.verifier()).meta)

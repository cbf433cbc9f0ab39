"""Consul snapshots over Consul's documented HTTP API (no Consul binary needed).

    GET /v1/snapshot[?stale]   X-Consul-Token   -> gzipped tar (meta.json, state.bin, SHA256SUMS)
                                                   + X-Consul-Index / -KnownLeader / -LastContact
    PUT /v1/snapshot           X-Consul-Token   <- the same archive

Consul snapshots hold ACL tokens in clear: they are stored 0600 and should be encrypted at rest
(SSE on S3). The ACL token travels in a header, so plain http is refused for any address that
is not loopback unless the global --allow-insecure-http was given (the rule Vault nodes follow). Restoring a Consul-backed Vault also needs Vault stopped and `core/lock` removed.
Tests run against vaultops.testing.consul_double, an in-repo HTTP double, not a real Consul.
"""

from __future__ import annotations

import contextlib
import http.client
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import urllib3

from vaultops.errors import BackupError, ConfigError, SecurityError
from vaultops.services.backup.sources import CHUNK, OpenSnapshot, SnapshotInfo, vault_info
from vaultops.services.backup.verify import ArchiveKind, ArchiveVerifier, Verifier
from vaultops.vault import NodeClient
from vaultops.vault.http import is_loopback, read_blocks

TIMEOUT = urllib3.Timeout(connect=5.0, read=600.0)


class ConsulSource:
    kind = "consul"
    extension = "snap"

    def __init__(self, address: str, *, token: str | None, ca_cert: str | None = None, stale: bool = False,
                 clients: list[NodeClient] | None = None, allow_insecure_http: bool = False) -> None:
        parts = urlsplit(address)
        if parts.scheme == "http" and not (allow_insecure_http or is_loopback(parts.hostname or "")):
            raise SecurityError(f"refusing plain http to Consul at {address}: the ACL token would cross the "
                                "network in clear", hint="use https in backup.consul.address, or pass "
                                "--allow-insecure-http if you really mean it")
        self.address = address.rstrip("/")
        self._token = token
        self.stale = stale
        self.clients = clients or []
        opts: dict[str, Any] = {}
        if self.address.startswith("https://"):
            opts = {"cert_reqs": ssl.CERT_REQUIRED, **({"ca_certs": ca_cert} if ca_cert else {})}
        self._pool = urllib3.PoolManager(num_pools=1, retries=False, **opts)

    @classmethod
    def from_settings(cls, raw: dict[str, Any], *, clients: list[NodeClient]) -> ConsulSource:
        """Plain http to a non-loopback Consul only if the Vault *clients* were allowed it too
        (--allow-insecure-http: the session builds them; the flag is read nowhere else)."""
        address = raw.get("address")
        if not isinstance(address, str) or not address.startswith(("http://", "https://")):
            raise ConfigError("backup.consul.address is missing", hint="e.g. consul: {address: https://consul:8501}")
        token = _read_token(raw["token_file"]) if raw.get("token_file") else None
        insecure_ok = bool(clients) and all(c.allow_insecure_http for c in clients)
        return cls(address, token=token, ca_cert=raw.get("ca_cert"), stale=bool(raw.get("stale")),
                   clients=clients, allow_insecure_http=insecure_ok)

    def _headers(self) -> dict[str, str]:
        return {"X-Consul-Token": self._token} if self._token else {}

    def verifier(self, *, on_state: Callable[[bytes], None] | None = None) -> Verifier:
        return ArchiveVerifier(ArchiveKind.CONSUL, on_state=on_state)

    @contextlib.contextmanager
    def open(self) -> Iterator[OpenSnapshot]:
        url = f"{self.address}/v1/snapshot" + ("?stale" if self.stale else "")
        resp = self._send("GET", url, preload=False)
        try:
            if resp.status != 200:
                raise _error(resp.status, resp.data, "GET /v1/snapshot")
            if resp.headers.get("X-Consul-KnownLeader") == "false" and not self.stale:
                raise BackupError("consul: no known leader", hint="wait for Consul to elect a leader")
            base = vault_info(self.clients) if self.clients else SnapshotInfo(source_node=None)
            info = SnapshotInfo(source_node=self.address, cluster_id=base.cluster_id,
                                cluster_name=base.cluster_name, server_version=base.server_version,
                                consul_index=int(resp.headers.get("X-Consul-Index") or 0) or None)
            yield OpenSnapshot(info, self._chunks(resp))
        finally:
            resp.release_conn()

    def _chunks(self, resp: urllib3.BaseHTTPResponse) -> Iterator[bytes | bytearray]:
        try:
            yield from read_blocks(resp, CHUNK)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise BackupError(f"consul: the snapshot download broke off ({exc})",
                              hint="check Consul and the network, then run the backup again") from exc

    def restore(self, body: IO[bytes], *, force: bool) -> str:
        """PUT /v1/snapshot. Vault must be stopped and core/lock removed afterwards (see docs)."""
        resp = self._send("PUT", f"{self.address}/v1/snapshot", body=body, preload=True)
        if resp.status != 200:
            raise _error(resp.status, resp.data, "PUT /v1/snapshot")
        return self.address

    def _send(self, method: str, url: str, *, body: Any = None, preload: bool) -> urllib3.BaseHTTPResponse:
        try:
            return self._pool.request(method, url, body=body, headers=self._headers(), redirect=False,
                                      preload_content=preload, timeout=TIMEOUT)
        except urllib3.exceptions.HTTPError as exc:
            raise BackupError(f"consul: {self.address} unreachable ({exc})",
                              hint="check backup.consul.address and that Consul is running") from exc


def _read_token(path: str) -> str:
    """A Consul ACL token goes into an HTTP header: one line of printable ASCII, never echoed."""
    hint = "point it at a 0600 file holding the Consul ACL token on one line"
    try:
        token = Path(path).expanduser().read_bytes().strip().decode("ascii")
    except OSError as exc:
        raise ConfigError(f"backup.consul.token_file: cannot read ({exc.strerror})", hint=hint) from None
    except UnicodeDecodeError:
        raise ConfigError("backup.consul.token_file: the token is not ASCII", hint=hint) from None
    if not token or not token.isprintable() or len(token) > 4096:
        raise ConfigError("backup.consul.token_file: not a single-line token", hint=hint)
    return token


def _error(status: int, data: bytes | None, what: str) -> BackupError:
    detail = (data or b"").decode("utf-8", "replace").strip()[:200]
    if status == 403:
        return BackupError(f"consul: {what}: permission denied ({detail})",
                           hint="the ACL token needs management rights for snapshots: check backup.consul.token_file")
    return BackupError(f"consul: {what}: HTTP {status} ({detail})", hint="see the Consul server log")

"""Consul's HTTP API, with the bounds of the Vault transport.

    consul = ConsulClient(address, token=token, ca_cert=ca, error=BackupError)
    with consul.snapshot(stale=False) as snap:   # GET  /v1/snapshot, streamed: snap.blocks, snap.index
        ...
    consul.restore(body)                         # PUT  /v1/snapshot
    consul.leader()                              # GET  /v1/status/leader                (py-consul)
    consul.raft_servers()                        # GET  /v1/operator/raft/configuration  (py-consul)
    consul.token_self()                          # GET  /v1/acl/token/self               (py-consul)
    consul.facts()                               # the three above, each failure kept as text

Every request goes through vault.bounded.BoundedPool, like every Vault request: no redirects, no
retries, a whole answer capped at MAX_JSON_BYTES and complete within its deadline, a snapshot's
headers within the snapshot deadline and its body read block by block (a body that breaks off
is one error). py-consul, imported on first use, knows the non-streaming API's paths and status
codes; its own requests-based client is never used: it would read answers without bound, let
REQUESTS_CA_BUNDLE override our CA (field notes), and let CONSUL_HTTP_TOKEN replace the
configured token. Its snapshot.save() holds the whole archive in memory, so snapshots stay here.

The ACL token travels in a header: plain http is refused for any address that is not loopback
unless --allow-insecure-http was given (the rule Vault nodes follow). Consul snapshots hold ACL
tokens in clear. Failures are raised as the caller's *error* class (a backup exits 6, a runbook
halts) with one line that says what to check.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode, urlsplit

import urllib3

from vaultops.config import Config
from vaultops.errors import ConfigError, SecurityError, VaultError, VaultOpsError
from vaultops.vault.bounded import BoundedPool, is_loopback, read_blocks

TIMEOUT = 10.0
SNAPSHOT_TIMEOUT = 600.0
CHUNK = 1 << 20
NODE = "consul"
_PY_CONSUL_ERRORS = {"ACLPermissionDenied": "permission denied", "ACLDisabled": "ACLs are disabled",
                     "NotFound": "not found", "BadRequest": "bad request", "ClientError": "refused"}


@dataclass(frozen=True)
class SnapshotStream:
    index: int | None              # X-Consul-Index
    known_leader: bool             # X-Consul-KnownLeader
    blocks: Iterator[bytes | bytearray]


@dataclass(frozen=True)
class RaftServer:
    id: str
    node: str
    address: str
    leader: bool
    voter: bool


@dataclass(frozen=True)
class TokenInfo:
    """What /v1/acl/token/self says about the token; never its SecretID."""

    accessor: str
    description: str
    policies: tuple[str, ...] = ()
    expires: str | None = None


@dataclass(frozen=True)
class ConsulFacts:
    """What `vaultops status` shows and the upgrade preflight checks; each failure as text."""

    address: str
    leader: str | None = None
    servers: tuple[RaftServer, ...] = ()
    token: TokenInfo | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        out = [f"consul {what}: {why}" for what, why in self.errors.items()]
        if "leader" not in self.errors and not self.leader:
            out.append("consul has no leader")
        if "raft" not in self.errors and self.servers and not any(s.leader for s in self.servers):
            out.append("consul's raft configuration lists no leader")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "leader": self.leader,
                "servers": [vars(s) for s in self.servers],
                "token": None if self.token is None else {**vars(self.token), "policies": list(self.token.policies)},
                "errors": dict(self.errors), "problems": self.problems}


class ConsulClient:
    def __init__(self, address: str, *, token: str | None, ca_cert: str | None = None,
                 allow_insecure_http: bool = False, timeout: float = TIMEOUT,
                 error: type[VaultOpsError] = VaultOpsError) -> None:
        parts = urlsplit(address)
        if parts.scheme == "http" and not (allow_insecure_http or is_loopback(parts.hostname or "")):
            raise SecurityError(f"refusing plain http to Consul at {address}: the ACL token would cross the "
                                "network in clear", hint="use https in backup.consul.address, or pass "
                                "--allow-insecure-http if you really mean it")
        self._pool = BoundedPool(address, node=NODE, ca_cert=ca_cert, timeout=timeout)
        self.address = self._pool.address
        self._token = token
        self._error = error
        self._api: Any = None

    # -- snapshots (streamed, ours) ------------------------------------------------------------
    @contextlib.contextmanager
    def snapshot(self, *, stale: bool = False) -> Iterator[SnapshotStream]:
        """GET /v1/snapshot[?stale] (ACL token with management rights), streamed."""
        path = "/v1/snapshot"
        with self._ours():
            with self._pool.deadline(SNAPSHOT_TIMEOUT, path):
                resp = self._send("GET", path, query="stale" if stale else "", timeout=SNAPSHOT_TIMEOUT)
                if resp.status != 200:
                    raise self._status(resp.status, self._pool.read_body(resp, path), f"GET {path}")
        try:
            index = resp.headers.get("X-Consul-Index") or ""
            yield SnapshotStream(index=int(index) if index.isdigit() and int(index) else None,
                                 known_leader=resp.headers.get("X-Consul-KnownLeader") != "false",
                                 blocks=self._blocks(resp))
        finally:
            resp.release_conn()

    def _blocks(self, resp: urllib3.BaseHTTPResponse) -> Iterator[bytes | bytearray]:
        with self._ours():
            yield from read_blocks(resp, CHUNK, node=NODE)

    def restore(self, body: IO[bytes] | bytes) -> None:
        """PUT /v1/snapshot. A Consul-backed Vault must be stopped, and core/lock removed afterwards."""
        status, _, data = self.call("PUT", "/v1/snapshot", body=body, timeout=SNAPSHOT_TIMEOUT)
        if status != 200:
            raise self._status(status, data, "PUT /v1/snapshot")

    # -- the non-streaming API (py-consul's paths and status codes, our transport) ------------------
    def leader(self) -> str:
        """GET /v1/status/leader: the leader's raft address, "" while there is none."""
        raw = self._py("leader", lambda api: api.status.leader())
        if raw is not None and not isinstance(raw, str):
            raise self._error(f"consul: /v1/status/leader answered a JSON {type(raw).__name__}, not an address",
                              hint="check backup.consul.address points at Consul")
        return raw or ""

    def raft_servers(self) -> tuple[RaftServer, ...]:
        """GET /v1/operator/raft/configuration (operator:read)."""
        raw = self._py("raft configuration", lambda api: api.operator.raft_config()) or {}
        servers = raw.get("Servers") if isinstance(raw, dict) else None
        return tuple(RaftServer(id=str(s.get("ID", "")), node=str(s.get("Node", "")),
                                address=str(s.get("Address", "")), leader=s.get("Leader") is True,
                                voter=s.get("Voter") is True)
                     for s in servers or () if isinstance(s, dict))

    def token_self(self) -> TokenInfo:
        """GET /v1/acl/token/self: the configured token is valid, and what it is."""
        raw = self._py("ACL token", lambda api: api.acl.token.read_self()) or {}
        if not isinstance(raw, dict):
            raise self._error("consul: /v1/acl/token/self answered something else than a token",
                              hint="check backup.consul.address points at Consul")
        policies = tuple(str(p.get("Name", "")) for p in raw.get("Policies") or () if isinstance(p, dict))
        return TokenInfo(accessor=str(raw.get("AccessorID", "")), description=str(raw.get("Description", "")),
                         policies=policies, expires=raw.get("ExpirationTime"))

    def facts(self) -> ConsulFacts:
        """Leader, raft servers and the token's self-check; each that fails is kept as text."""
        asks: dict[str, Callable[[], Any]] = {"leader": self.leader, "raft": self.raft_servers,
                                              "token": self.token_self}
        found: dict[str, Any] = {}
        errors: dict[str, str] = {}
        self._py_consul()  # built once, before the threads share it
        with ThreadPoolExecutor(len(asks), thread_name_prefix="consul") as pool:  # one slow answer costs once
            futures = {what: pool.submit(ask) for what, ask in asks.items()}
        for what, future in futures.items():
            try:
                found[what] = future.result()
            except VaultOpsError as exc:
                errors[what] = exc.message
        return ConsulFacts(address=self.address, leader=found.get("leader"), servers=found.get("raft", ()),
                           token=found.get("token"), errors=errors)

    def _py(self, what: str, ask: Callable[[Any], Any]) -> Any:
        from consul import ConsulException

        try:
            return ask(self._py_consul())
        except ConsulException as exc:  # the status table of py-consul's callbacks, in our words
            text = _one_line(str(exc))
            kind = _PY_CONSUL_ERRORS.get(type(exc).__name__, "failed")
            raise self._error(f"consul: {what}: {kind} ({text})",
                              hint="check backup.consul.token_file (the ACL token needs read rights there)"
                              ) from None

    def _py_consul(self) -> Any:
        if self._api is None:
            self._api = _py_consul(self)
        return self._api

    # -- one request --------------------------------------------------------------------------
    def call(self, method: str, path: str, *, params: Any = None, body: Any = None,
             timeout: float | None = None) -> tuple[int, dict[str, str], bytes]:
        """One request answered in full, within its deadline and size cap: (status, headers, body)."""
        t = timeout or self._pool.timeout
        with self._ours(), self._pool.deadline(t, path):
            resp = self._send(method, path, query=urlencode(params or []), body=body, timeout=t)
            data = self._pool.read_body(resp, path)
        return resp.status, dict(resp.headers), data

    def _send(self, method: str, path: str, *, query: str = "", body: Any = None,
              timeout: float) -> urllib3.BaseHTTPResponse:
        headers = {"X-Consul-Token": self._token} if self._token else {}
        url = f"{self.address}{path}" + (f"?{query}" if query else "")
        return self._pool.send(method, url, headers=headers, body=body, timeout=timeout, what=path)

    @contextlib.contextmanager
    def _ours(self) -> Iterator[None]:
        """The transport's errors (unreachable, too slow, too big, broke off) as the caller's class."""
        try:
            yield
        except VaultError as exc:
            raise self._error(exc.message, hint=exc.hint) from exc

    def _status(self, status: int, data: bytes | None, what: str) -> VaultOpsError:
        detail = _one_line((data or b"").decode("utf-8", "replace"))
        if status == 403:
            return self._error(f"consul: {what}: permission denied ({detail})",
                               hint="the ACL token needs management rights for snapshots: check "
                                    "backup.consul.token_file")
        return self._error(f"consul: {what}: HTTP {status} ({detail})", hint="see the Consul server log")

    def close(self) -> None:
        self._pool.close()


def _one_line(text: str) -> str:
    """A server's words for a message: one line, no terminal escapes, short."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:200]


def _py_consul(client: ConsulClient) -> Any:
    """A py-consul Consul whose every request goes through *client* (see the module docstring)."""
    import consul.base

    class Through(consul.base.HTTPClient):
        def _answer(self, method: str, callback: Callable[[Any], Any], path: str, params: Any,
                    body: Any = None) -> Any:
            status, headers, data = client.call(method, path, params=params, body=body or None)
            return callback(consul.base.Response(status, headers, data.decode("utf-8", "replace")))

        def get(self, callback: Any, path: str, params: Any = None, headers: Any = None, raw: bool = False) -> Any:
            return self._answer("GET", callback, path, params)

        def put(self, callback: Any, path: str, params: Any = None, data: Any = "", headers: Any = None) -> Any:
            return self._answer("PUT", callback, path, params, data)

        def delete(self, callback: Any, path: str, params: Any = None, data: Any = "", headers: Any = None) -> Any:
            return self._answer("DELETE", callback, path, params, data)

        def post(self, callback: Any, path: str, params: Any = None, data: Any = "", headers: Any = None) -> Any:
            return self._answer("POST", callback, path, params, data)

        def close(self) -> None:
            pass

    class Bounded(consul.base.Consul):
        def http_connect(self, host: str, port: int, scheme: str, verify: Any = True, cert: Any = None) -> Any:
            return Through(host, port, scheme, verify, cert)

    parts = urlsplit(client.address)
    api = Bounded(host=parts.hostname or "", port=parts.port or 8500, scheme=parts.scheme)
    api.token = None   # base.Consul prefers CONSUL_HTTP_TOKEN to its argument; our transport sends ours
    return api


def read_token(path: str, *, key: str = "backup.consul.token_file") -> str:
    """A Consul ACL token goes into an HTTP header: one line of printable ASCII, never echoed."""
    hint = "point it at a 0600 file holding the Consul ACL token on one line"
    try:
        token = Path(path).expanduser().read_bytes().strip().decode("ascii")
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read ({exc.strerror})", hint=hint) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: the token is not ASCII", hint=hint) from None
    if not token or not token.isprintable() or len(token) > 4096:
        raise ConfigError(f"{key}: not a single-line token", hint=hint)
    return token


def consul_client(settings: Mapping[str, Any], *, allow_insecure_http: bool = False, timeout: float = TIMEOUT,
                  error: type[VaultOpsError] = VaultOpsError, where: str = "backup.consul") -> ConsulClient:
    """The client for a `consul:` settings mapping {address, token_file, ca_cert}."""
    address = settings.get("address")
    if not isinstance(address, str) or not address.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.address is missing", hint="e.g. consul: {address: https://consul:8501}")
    token = read_token(settings["token_file"], key=f"{where}.token_file") if settings.get("token_file") else None
    return ConsulClient(address, token=token, ca_cert=settings.get("ca_cert"),
                        allow_insecure_http=allow_insecure_http, timeout=timeout, error=error)


def cluster_consul(cfg: Config, *, allow_insecure_http: bool = False, timeout: float = TIMEOUT,
                   error: type[VaultOpsError] = VaultOpsError) -> ConsulClient | None:
    """The Consul client of a cluster on `storage: consul` with `backup.consul` settings, else None."""
    settings = cfg.section("backup").get("consul") if cfg.storage == "consul" else None
    if not isinstance(settings, Mapping) or not settings.get("address"):
        return None
    return consul_client(settings, allow_insecure_http=allow_insecure_http, timeout=timeout, error=error)

"""KV version 2 ({mount}/data, {mount}/metadata) with check-and-set, and the mount it lives on (sys/mounts).

    kv = ClusterKV(clients, mount="vaultops")
    entry = kv.read("leases/runbook")                 # KVEntry or None
    kv.write("leases/runbook", {...}, cas=entry.version if entry else 0)   # CASMismatch if someone else wrote

ClusterKV asks the active node (another node if it cannot answer: standbys forward writes) and rides out what
clients see during a step-down or a restart (307/429, 500 "not active", unreachable, sealed) and
OpenBao's "Upgrading from non-versioned to versioned data" (active node) and 400 "Waiting for the
primary to upgrade" (standbys) for ~1 s after a kv-v2 mount is enabled. Times
come from the server: `created_time` of a version and the `Date` header of the answer, so two
machines with different clocks agree on how old an entry is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote

from vaultops import errors
from vaultops.retry import retry
from vaultops.vault.http import HTTP, Response, error_for

T = TypeVar("T")
_NO_MOUNT = "no handler for route"
# Right after a kv-v2 mount is enabled: the active node answers the first, standbys the second (~1 s).
_UPGRADING = ("Upgrading from non-versioned to versioned data", "Waiting for the primary to upgrade")
_CAS = "check-and-set parameter did not match"


class CASMismatch(errors.VaultError):
    """A check-and-set write lost: the entry changed since it was read."""


class MountMissing(errors.VaultNotFound):
    """No secrets engine is mounted at the path."""


@dataclass(frozen=True)
class KVEntry:
    path: str
    data: dict[str, Any]
    version: int
    created_time: datetime | None          # the server's clock, when this version was written
    server_time: datetime | None = None    # the server's clock when it answered (Date header)
    deleted: bool = False

    @property
    def age(self) -> float | None:
        """Seconds since this version was written, by the server's clock."""
        if self.created_time is None or self.server_time is None:
            return None
        return max(0.0, (self.server_time - self.created_time).total_seconds())


@dataclass(frozen=True)
class KVWritten:
    version: int
    created_time: datetime | None


@dataclass(frozen=True)
class KVVersions:
    current: int
    live: tuple[int, ...] = field(default_factory=tuple)   # versions neither deleted nor destroyed, oldest first


@dataclass(frozen=True)
class MountInfo:
    path: str
    type: str
    version: str


class KVEndpoints:
    """One node's view of one KV v2 mount."""

    def __init__(self, transport: HTTP, mount: str) -> None:
        self._t = transport
        self.mount = mount.strip("/")

    def read(self, path: str, *, version: int | None = None) -> KVEntry | None:
        """GET {mount}/data/{path}[?version=N] (token): None if there is no such entry (or it was deleted)."""
        query = f"?version={int(version)}" if version is not None else ""
        resp = self._call("GET", f"data/{_quoted(path)}{query}")
        if resp.status == 404:
            return None
        data = resp.data.get("data") or {}
        meta = data.get("metadata") or {}
        return KVEntry(path=path, data=dict(data.get("data") or {}), version=int(meta.get("version") or 0),
                       created_time=_time(meta.get("created_time")), server_time=_date(resp.headers),
                       deleted=bool(meta.get("deletion_time")) or bool(meta.get("destroyed")))

    def write(self, path: str, data: dict[str, Any], *, cas: int) -> KVWritten:
        """PUT {mount}/data/{path} (token) with options.cas: 0 creates only, N replaces version N only."""
        resp = self._call("PUT", f"data/{_quoted(path)}", body={"options": {"cas": int(cas)}, "data": data})
        meta = resp.data.get("data") or {}
        return KVWritten(version=int(meta.get("version") or 0), created_time=_time(meta.get("created_time")))

    def versions(self, path: str) -> KVVersions | None:
        """GET {mount}/metadata/{path} (token): which versions exist."""
        resp = self._call("GET", f"metadata/{_quoted(path)}")
        if resp.status == 404:
            return None
        meta = resp.data.get("data") or {}
        raw = meta.get("versions") or {}
        live = sorted(int(v) for v, info in raw.items()
                      if str(v).isdigit() and not (info or {}).get("deletion_time")
                      and not (info or {}).get("destroyed"))
        return KVVersions(current=int(meta.get("current_version") or 0), live=tuple(live))

    def _call(self, method: str, rel: str, *, body: Any = None) -> Response:
        path = f"{self.mount}/{rel}"
        resp = self._t.request(method, path, body=body, auth=True, ok=(200, 204, 400, 403, 404))
        detail = "; ".join(str(m) for m in resp.data.get("errors") or [])
        if resp.status == 403:
            raise errors.VaultAuthError(f"{self._t.node}: permission denied on {path}", status=403, node=self._t.node,
                                        hint=f"the token needs read, create and update on {self.mount}/data/* and "
                                             f"{self.mount}/metadata/*, on a kv-v2 mount that exists "
                                             f"(`bao secrets enable -path={self.mount} kv-v2`)")
        if resp.status == 404 and _NO_MOUNT in detail:
            raise MountMissing(f"{self._t.node}: no secrets engine is mounted at {self.mount}/", status=404,
                               node=self._t.node, hint=enable_hint(self.mount))
        if resp.status == 400 and _CAS in detail:
            raise CASMismatch(f"{self._t.node}: {path} changed since it was read", status=400, node=self._t.node,
                              hint="read it again")
        if resp.status == 400:
            raise error_for(400, resp.data, node=self._t.node, path=path)
        return resp


class MountEndpoints:
    def __init__(self, transport: HTTP) -> None:
        self._t = transport

    def get(self, mount: str) -> MountInfo | None:
        """GET sys/mounts/{mount} (token): None when nothing is mounted there."""
        resp = self._t.request("GET", f"sys/mounts/{_quoted(mount)}", auth=True, ok=(200, 400))
        if resp.status == 400:
            return None     # "No secret engine mount at {mount}/"
        data = resp.data.get("data") or resp.data
        return MountInfo(path=mount, type=str(data.get("type") or ""),
                         version=str((data.get("options") or {}).get("version") or "1"))

    def enable_kv2(self, mount: str, *, description: str = "") -> None:
        """POST sys/mounts/{mount} (token, sudo-like policy): a KV version 2 secrets engine."""
        self._t.request("POST", f"sys/mounts/{_quoted(mount)}", auth=True,
                        body={"type": "kv", "options": {"version": "2"}, "description": description})


def enable_hint(mount: str) -> str:
    return (f"create it with `bao secrets enable -path={mount} kv-v2` (or `vault secrets enable -path={mount} "
            "kv-v2`) with a token allowed to, or point the setting at an existing kv-v2 mount")


class ClusterKV:
    """KV v2 on a cluster: calls go to the active node, else the next that answers, within *budget* seconds."""

    RETRY = (errors.VaultStandby, errors.VaultUnreachable, errors.VaultSealed)

    def __init__(self, clients: Sequence[Any], mount: str, *, budget: float = 10.0, create_mount: bool = False,
                 pause: float = 0.25) -> None:
        if not clients:
            raise errors.ConfigError("no nodes configured to reach KV", hint="add nodes to vaultops.yaml")
        self._clients = list(clients)
        self.mount = mount.strip("/")
        self.budget = budget
        self.create_mount = create_mount
        self._pause = pause
        self._active: Any = None

    def read(self, path: str, *, version: int | None = None) -> KVEntry | None:
        return self._mounted(lambda c: KVEndpoints(c.transport, self.mount).read(path, version=version))

    def write(self, path: str, data: dict[str, Any], *, cas: int) -> KVWritten:
        try:
            return self._mounted(lambda c: KVEndpoints(c.transport, self.mount).write(path, data, cas=cas))
        except CASMismatch:
            self._active = None     # the version we read may have come from a node that has lost leadership
            raise

    def versions(self, path: str) -> KVVersions | None:
        return self._mounted(lambda c: KVEndpoints(c.transport, self.mount).versions(path))

    def _mounted(self, fn: Callable[[Any], T]) -> T:
        try:
            return self._any(fn)
        except MountMissing:
            if not self.create_mount:
                raise
        self.ensure_mount()
        return self._any(fn, new_mount=True)

    def ensure_mount(self) -> None:
        """Enable a kv-v2 engine at the mount unless one is there; a mount of another kind is an error."""
        try:
            info = self._any(lambda c: MountEndpoints(c.transport).get(self.mount))
            if info is None:
                self._enable()
                return
        except errors.VaultAuthError as exc:
            raise errors.VaultAuthError(f"no kv-v2 mount at {self.mount}/ and this token may not create one",
                                        node=exc.node, status=exc.status, hint=enable_hint(self.mount)) from None
        if info.type not in ("kv", "generic") or info.version != "2":
            raise errors.ConfigError(f"the mount {self.mount}/ is a {info.type} v{info.version} engine, not kv v2",
                                     hint="check-and-set needs KV version 2: choose another mount")

    def _enable(self) -> None:
        try:
            self._any(lambda c: MountEndpoints(c.transport).enable_kv2(self.mount, description="vaultops"))
        except errors.VaultError as exc:
            if "already in use" not in exc.message:   # a retried or concurrent enable: it is there
                raise

    def _any(self, fn: Callable[[Any], T], *, new_mount: bool = False) -> T:
        """fn(client) on the first node that can answer; *new_mount*: a standby may not know the mount yet.

        A round asks every node in turn; rounds are retried within the budget unless every node is
        sealed (no round can help) or an error is not one a leader change or a restart explains."""
        sealed_everywhere = False

        def one_round() -> T:
            nonlocal sealed_everywhere
            sealed, last_error = 0, None
            for client in self._order():
                try:
                    return fn(client)
                except errors.VaultError as exc:
                    if not self._passing(exc, new_mount):
                        raise
                    last_error, sealed = exc, sealed + isinstance(exc, errors.VaultSealed)
                    if client is self._active:
                        self._active = None
            sealed_everywhere = sealed == len(self._clients)
            assert last_error is not None
            raise last_error

        return retry(one_round, on=(errors.VaultError,), budget=self.budget, first=self._pause, cap=self._pause,
                     give_up=lambda exc: sealed_everywhere or not self._passing(exc, new_mount))

    def _passing(self, exc: BaseException, new_mount: bool) -> bool:
        """An error another node, or the same node a moment later, may not give."""
        if not isinstance(exc, errors.VaultError):
            return False
        return isinstance(exc, self.RETRY) or _transient(exc) or (new_mount and isinstance(exc, MountMissing))

    def serving(self, *, timeout: float = 2.0) -> bool:
        """Whether some node answers as the active one now (all asked at once, within *timeout*)."""
        from vaultops.vault.fanout import fan_out

        for client, result in zip(self._clients, fan_out(self._clients, lambda c: c.ha.health(), timeout=timeout)):
            if result.ok and result.value is not None and result.value.role == "active":
                self._active = client
                return True
        return False

    def _order(self) -> list[Any]:
        """The active node first: a standby answers reads from its own copy, which can lag behind a write
        (a node that just rejoined, say), and a check-and-set write must start from the current version."""
        if self._active is None:
            for client in self._clients:
                try:
                    if client.ha.health().role == "active":
                        self._active = client
                        break
                except errors.VaultOpsError:
                    continue
        return sorted(self._clients, key=lambda c: c is not self._active)


def _transient(exc: errors.VaultError) -> bool:
    return any(text in exc.message for text in _UPGRADING) or (exc.status is not None and exc.status >= 500)


def _quoted(path: str) -> str:
    return quote(path.strip("/"), safe="/")


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _date(headers: dict[str, str]) -> datetime | None:
    value = headers.get("Date") or headers.get("date")
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None

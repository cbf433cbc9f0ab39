"""Frozen views of Vault/OpenBao answers. Unknown fields are ignored."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from vaultops.errors import VaultBadResponse

P = ParamSpec("P")
R = TypeVar("R")


def _answer(parse: Callable[P, R]) -> Callable[P, R]:
    """A server answer of the wrong shape (a proxy, a hostile server) is one VaultBadResponse, not a traceback."""
    @functools.wraps(parse)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return parse(*args, **kwargs)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            raise VaultBadResponse(f"the server's answer has an unexpected shape ({type(exc).__name__})",
                                   hint="check the address points at Vault/OpenBao and the server's version") from None
    return checked


def _data(raw: dict[str, Any]) -> dict[str, Any]:
    """Most sys/ answers nest their payload under 'data'; some repeat it at top level."""
    inner = raw.get("data")
    return inner if isinstance(inner, dict) else raw


def _strings(value: Any) -> tuple[str, ...]:
    """A list of strings, or nothing; anything else is a wrong shape (not iterated into garbage)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class SealStatus:
    type: str
    initialized: bool
    sealed: bool
    t: int
    n: int
    progress: int
    nonce: str
    version: str
    storage_type: str | None = None
    cluster_name: str | None = None
    cluster_id: str | None = None
    migration: bool = False
    recovery_seal: bool = False

    @classmethod
    @_answer
    def from_api(cls, raw: dict[str, Any]) -> SealStatus:
        return cls(
            type=raw.get("type", "shamir"), initialized=bool(raw.get("initialized")),
            sealed=bool(raw.get("sealed", True)), t=int(raw.get("t") or 0), n=int(raw.get("n") or 0),
            progress=int(raw.get("progress") or 0), nonce=raw.get("nonce") or "",
            version=raw.get("version") or "", storage_type=raw.get("storage_type"),
            cluster_name=raw.get("cluster_name"), cluster_id=raw.get("cluster_id"),
            migration=bool(raw.get("migration")), recovery_seal=bool(raw.get("recovery_seal")),
        )


@dataclass(frozen=True)
class Health:
    """sys/health. OpenBao answers 200 active, 429 standby, 501 uninitialised, 503 sealed."""

    status_code: int
    initialized: bool
    sealed: bool
    standby: bool
    version: str
    cluster_id: str | None = None
    cluster_name: str | None = None

    @property
    def role(self) -> str:
        if not self.initialized:
            return "uninitialized"
        if self.sealed:
            return "sealed"
        return "standby" if self.standby else "active"

    @classmethod
    @_answer
    def from_api(cls, status: int, raw: dict[str, Any]) -> Health:
        return cls(status_code=status, initialized=bool(raw.get("initialized")),
                   sealed=bool(raw.get("sealed", status == 503)), standby=bool(raw.get("standby")),
                   version=raw.get("version") or "", cluster_id=raw.get("cluster_id"),
                   cluster_name=raw.get("cluster_name"))


@dataclass(frozen=True)
class Leader:
    ha_enabled: bool
    is_self: bool
    leader_address: str
    active_time: str | None = None
    raft_committed_index: int | None = None
    raft_applied_index: int | None = None

    @classmethod
    @_answer
    def from_api(cls, raw: dict[str, Any]) -> Leader:
        return cls(ha_enabled=bool(raw.get("ha_enabled")), is_self=bool(raw.get("is_self")),
                   leader_address=raw.get("leader_address") or "", active_time=raw.get("active_time"),
                   raft_committed_index=raw.get("raft_committed_index"),
                   raft_applied_index=raw.get("raft_applied_index"))


@dataclass(frozen=True)
class HANode:
    hostname: str
    api_address: str
    active: bool
    version: str | None
    last_echo: str | None


@dataclass(frozen=True)
class HAStatus:
    nodes: tuple[HANode, ...]

    @classmethod
    @_answer
    def from_api(cls, raw: dict[str, Any]) -> HAStatus:
        items = _data(raw).get("nodes") or []
        return cls(tuple(HANode(hostname=n.get("hostname", ""), api_address=n.get("api_address", ""),
                                active=bool(n.get("active_node")), version=n.get("version"),
                                last_echo=n.get("last_echo")) for n in items))


@dataclass(frozen=True)
class RaftServer:
    node_id: str
    address: str
    leader: bool
    voter: bool


@dataclass(frozen=True)
class RaftConfiguration:
    servers: tuple[RaftServer, ...]
    index: int

    @classmethod
    @_answer
    def from_api(cls, raw: dict[str, Any]) -> RaftConfiguration:
        cfg = _data(raw).get("config") or {}
        return cls(tuple(RaftServer(node_id=s.get("node_id", ""), address=s.get("address", ""),
                                    leader=bool(s.get("leader")), voter=bool(s.get("voter")))
                         for s in cfg.get("servers") or []), int(cfg.get("index") or 0))


@dataclass(frozen=True)
class AutopilotServer:
    id: str
    name: str
    address: str
    status: str
    healthy: bool
    last_index: int
    last_term: int
    last_contact: str
    version: str
    node_status: str
    stable_since: str | None = None


@dataclass(frozen=True)
class AutopilotState:
    healthy: bool
    failure_tolerance: int
    leader: str
    voters: tuple[str, ...]
    servers: dict[str, AutopilotServer] = field(default_factory=dict)

    @classmethod
    @_answer
    def from_api(cls, raw: dict[str, Any]) -> AutopilotState:
        d = _data(raw)
        servers = {
            sid: AutopilotServer(
                id=s.get("id", sid), name=s.get("name", sid), address=s.get("address", ""),
                status=s.get("status", ""), healthy=bool(s.get("healthy")),
                last_index=int(s.get("last_index") or 0), last_term=int(s.get("last_term") or 0),
                last_contact=str(s.get("last_contact") or ""), version=s.get("version") or "",
                node_status=s.get("node_status") or "", stable_since=s.get("stable_since"))
            for sid, s in (d.get("servers") or {}).items()
        }
        return cls(healthy=bool(d.get("healthy")), failure_tolerance=int(d.get("failure_tolerance") or 0),
                   leader=d.get("leader") or "", voters=tuple(d.get("voters") or ()), servers=servers)


@dataclass(frozen=True, repr=False)
class InitResult:
    """Secret material: repr never shows it."""

    keys_b64: tuple[str, ...]
    root_token: str

    def __repr__(self) -> str:
        return f"InitResult(<{len(self.keys_b64)} shares>, root_token=<hidden>)"

    @classmethod
    @_answer
    def from_api(cls, raw: dict[str, Any]) -> InitResult:
        return cls(tuple(raw.get("keys_base64") or raw.get("keys") or ()), raw.get("root_token", ""))


@dataclass(frozen=True)
class RotationStatus:
    """Progress of a rekey (Vault sys/rekey) or root-key rotation (OpenBao sys/rotate/root)."""

    started: bool
    nonce: str
    t: int
    n: int
    progress: int
    required: int
    verification_required: bool
    verification_nonce: str
    pgp_fingerprints: tuple[str, ...]
    backup: bool

    @classmethod
    @_answer
    def from_api(cls, raw: dict[str, Any]) -> RotationStatus:
        d = _data(raw)
        return cls(started=bool(d.get("started")), nonce=d.get("nonce") or "", t=int(d.get("t") or 0),
                   n=int(d.get("n") or 0), progress=int(d.get("progress") or 0),
                   required=int(d.get("required") or 0),
                   verification_required=bool(d.get("verification_required")),
                   verification_nonce=d.get("verification_nonce") or "",
                   pgp_fingerprints=tuple(d.get("pgp_fingerprints") or ()), backup=bool(d.get("backup")))


@dataclass(frozen=True, repr=False)
class RotationUpdate:
    """Answer to PUT {rekey}/update: progress, and after the last current share the NEW shares.

    The new shares (`keys_b64`, PGP-encrypted when pgp_keys were given) are secret: repr never shows them.
    `required` is 0 when the server does not say.
    """

    nonce: str
    complete: bool
    progress: int
    required: int
    keys_b64: tuple[str, ...] = ()
    pgp_fingerprints: tuple[str, ...] = ()
    verification_required: bool = False
    verification_nonce: str = ""
    backup: bool = False

    def __repr__(self) -> str:
        shares = f", <{len(self.keys_b64)} new shares>" if self.keys_b64 else ""
        return (f"RotationUpdate(nonce={self.nonce!r}, complete={self.complete}, "
                f"progress={self.progress}/{self.required}{shares})")

    @classmethod
    @_answer
    def from_api(cls, raw: dict[str, Any]) -> RotationUpdate:
        d = _data(raw)
        return cls(nonce=d.get("nonce") or "", complete=bool(d.get("complete")),
                   progress=int(d.get("progress") or 0), required=int(d.get("required") or 0),
                   keys_b64=_strings(d.get("keys_base64") or d.get("keys")),
                   pgp_fingerprints=tuple(d.get("pgp_fingerprints") or ()),
                   verification_required=bool(d.get("verification_required")),
                   verification_nonce=d.get("verification_nonce") or "", backup=bool(d.get("backup")))


@dataclass(frozen=True)
class RotationVerification:
    """Answer to GET/PUT {rekey}/verify: the new keyholders proving they hold their new shares."""

    nonce: str
    started: bool
    complete: bool
    progress: int
    t: int
    n: int

    @classmethod
    @_answer
    def from_api(cls, raw: dict[str, Any]) -> RotationVerification:
        d = _data(raw)
        return cls(nonce=d.get("nonce") or "", started=bool(d.get("started")), complete=bool(d.get("complete")),
                   progress=int(d.get("progress") or 0), t=int(d.get("t") or 0), n=int(d.get("n") or 0))


@dataclass(frozen=True)
class GenerateRootStatus:
    started: bool
    nonce: str
    progress: int
    required: int
    complete: bool
    otp_length: int
    pgp_fingerprint: str
    encoded_token: str = field(default="", repr=False)

    @classmethod
    @_answer
    def from_api(cls, raw: dict[str, Any]) -> GenerateRootStatus:
        d = _data(raw)
        return cls(started=bool(d.get("started")), nonce=d.get("nonce") or "",
                   progress=int(d.get("progress") or 0), required=int(d.get("required") or 0),
                   complete=bool(d.get("complete")), otp_length=int(d.get("otp_length") or 0),
                   pgp_fingerprint=d.get("pgp_fingerprint") or "",
                   encoded_token=d.get("encoded_token") or d.get("encoded_root_token") or "")

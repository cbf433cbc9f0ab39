"""The fake Vault's server side: one handler per API path, each answering (status, JSON) as OpenBao does.

Called by FakeTransport with the cluster lock held; see fake_vault.py for the behaviour modelled.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from vaultops.testing import seed

if TYPE_CHECKING:
    from vaultops.testing.fake_vault import FakeNode, FakeVault

Answer = tuple[int, dict[str, Any]]
Handler = Callable[["FakeVault", "FakeNode", "str | None", str, dict[str, str], dict[str, Any]], Answer]

SEALED: Answer = (503, {"errors": ["Vault is sealed"]})
DENIED: Answer = (403, {"errors": ["permission denied"]})
UNSUPPORTED: Answer = (404, {"errors": ["unsupported path"]})
CAS_MISMATCH = "check-and-set parameter did not match the current version"


def route(vault: FakeVault, node: FakeNode, token: str | None, method: str, path: str,
          body: dict[str, Any]) -> Answer:
    base, query = _parts(path)
    if vault.auto_elect:
        vault.elect()
    handler = _SYS.get(base)
    if handler is None:
        if base.startswith("sys/mounts/"):
            handler = _mount
        elif base.startswith("auth/"):
            handler = _auth
        elif base.startswith("sys/"):
            return UNSUPPORTED
        else:
            handler = _logical
    return handler(vault, node, token, method, {**query, "path": base}, body)


# -- seal: per node, unauthenticated --------------------------------------------------------------

def seal_json(vault: FakeVault, node: FakeNode) -> dict[str, Any]:
    out = {"type": "shamir", "initialized": node.initialized, "sealed": node.sealed, "t": vault.t, "n": vault.n,
           "progress": len(node.received), "nonce": node.nonce, "version": node.version,
           "storage_type": vault.storage}
    if not node.sealed:
        out |= {"cluster_name": "fake", "cluster_id": vault.cluster_id}
    return out


def _seal_status(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
                 body: dict[str, Any]) -> Answer:
    return 200, seal_json(vault, node)


def _unseal(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
            body: dict[str, Any]) -> Answer:
    node.unseal_calls += 1
    if not node.initialized:
        return 400, {"errors": ["Vault is not initialized"]}
    if body.get("reset"):
        node.received, node.nonce = [], ""
        return 200, seal_json(vault, node)
    if not node.sealed:
        return 200, seal_json(vault, node)
    raw = _decode_key(str(body.get("key") or ""))
    if raw is None:
        return 400, {"errors": ["'key' must be a valid hex or base64 string"]}
    if raw in node.received:            # a byte-identical duplicate is ignored
        return 200, seal_json(vault, node)
    if not node.received:
        node.nonce = str(uuid.UUID(int=seed.rng().getrandbits(128), version=4))
    node.received.append(raw)
    if len(node.received) < vault.t:
        return 200, seal_json(vault, node)
    ok = all(r in vault.valid for r in node.received)
    node.received, node.nonce = [], ""
    if not ok:
        return 400, {"errors": ["failed to decrypt keys from storage: cipher: message authentication failed"]}
    if node.follower:
        node.joining = True             # sealed, progress 0 until join()
    else:
        node.sealed = False
    return 200, seal_json(vault, node)


def _init(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
          body: dict[str, Any]) -> Answer:
    from vaultops.testing.fake_vault import ROOT_TOKEN, make_shares

    if method == "GET":
        return 200, {"initialized": node.initialized}
    if node.initialized:
        return 400, {"errors": ["Vault is already initialized"]}
    raws = make_shares(int(body["secret_shares"]))
    vault.valid, vault.t, vault.n = frozenset(raws), int(body["secret_threshold"]), len(raws)
    node.initialized = True
    keys = [base64.b64encode(r).decode() for r in raws]
    return 200, {"keys": [r.hex() for r in raws], "keys_base64": keys, "root_token": ROOT_TOKEN}


def _seal(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
          body: dict[str, Any]) -> Answer:
    denied = _check(vault, node, token)
    if denied:
        return denied
    node.sealed, node.active = True, False
    return 204, {}


# -- HA and raft ------------------------------------------------------------------------------------

def _health(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
            body: dict[str, Any]) -> Answer:
    status = 501 if not node.initialized else 503 if node.sealed else 200 if node.active else 429
    return status, {"initialized": node.initialized, "sealed": node.sealed, "standby": not node.active,
                    "version": node.version, "cluster_id": vault.cluster_id, "cluster_name": "fake"}


def _leader(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
            body: dict[str, Any]) -> Answer:
    if node.sealed:
        return SEALED
    leader = vault.leader
    return 200, {"ha_enabled": True, "is_self": node.active, "leader_address": leader.address if leader else "",
                 "raft_committed_index": vault.raft_index, "raft_applied_index": vault.raft_index}


def _ha_status(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
               body: dict[str, Any]) -> Answer:
    denied = _check(vault, node, token)
    return denied or (200, {"data": {"nodes": [
        {"hostname": n.name, "api_address": n.address, "active_node": n.active, "version": n.version}
        for n in vault.nodes.values() if not n.sealed]}})


def _step_down(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
               body: dict[str, Any]) -> Answer:
    denied = _check(vault, node, token)
    if denied:
        return denied
    leader = vault.leader
    if leader is not None:       # a standby forwards the request to the active node
        leader.stepped_down += 1
        others = [n for n in vault.nodes.values() if n is not leader and not n.sealed and n.initialized]
        if others:
            leader.active, others[0].active = False, True
    return 204, {}


def _version_history(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
                     body: dict[str, Any]) -> Answer:
    denied = _check(vault, node, token)
    versions = sorted({n.version for n in vault.nodes.values()})
    return denied or (200, {"data": {"keys": versions, "key_info": {
        v: {"timestamp_installed": f"2026-01-0{i + 1}T00:00:00Z"} for i, v in enumerate(versions)}}})


def _raft_configuration(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
                        body: dict[str, Any]) -> Answer:
    denied = _check(vault, node, token, raft=True)
    return denied or (200, {"data": {"index": vault.raft_index, "config": {"index": vault.raft_index, "servers": [
        {"node_id": n.name, "address": f"{n.name}:8201", "leader": n.active, "voter": True} for n in vault.nodes.values()]}}})


def _autopilot(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
               body: dict[str, Any]) -> Answer:
    denied = _check(vault, node, token, raft=True)
    if denied:
        return denied
    node.autopilot_calls += 1
    servers: dict[str, dict[str, Any]] = {n.name: {"id": n.name, "name": n.name, "address": n.address, "node_status": "alive",
                        "status": "leader" if n.active else "voter", "healthy": not (n.sealed or n.unreachable),
                        "last_index": vault.raft_index, "last_term": 1, "last_contact": "0s", "version": n.version}
               for n in vault.nodes.values()}
    healthy = sum(1 for s in servers.values() if s["healthy"])
    leader = vault.leader
    return 200, {"data": {"healthy": healthy == len(servers), "voters": list(servers),
                          "failure_tolerance": max(0, healthy - (len(servers) // 2 + 1)),
                          "leader": leader.name if leader else "", "servers": servers}}


# -- mounts, KV v2 and anything else written -----------------------------------------------------------

def _mount(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
           body: dict[str, Any]) -> Answer:
    denied = _check(vault, node, token)
    if denied:
        return denied
    mount = q["path"].removeprefix("sys/mounts/").strip("/")
    if method == "GET":
        info = vault.mounts.get(mount)
        return (200, {"data": info}) if info else (400, {"errors": [f"No secret engine mount at {mount}/"]})
    if mount in vault.mounts:
        return 400, {"errors": [f"path is already in use at {mount}/"]}
    vault.mounts[mount] = {"type": body.get("type", "kv"), "options": dict(body.get("options") or {})}
    return 204, {}


def _logical(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
             body: dict[str, Any]) -> Answer:
    denied = _check(vault, node, token)
    if denied:
        return denied
    mount, _, rest = q["path"].partition("/")
    info = vault.mounts.get(mount)
    if info is None:
        return 404, {"errors": [f'no handler for route "{q["path"]}". route entry not found.']}
    if (info.get("options") or {}).get("version") == "2":
        return _kv2(vault, mount, rest, method, q, body)
    if method == "GET":
        found = vault.logical.get(q["path"])
        return (200, {"data": found}) if found is not None else (404, {"errors": []})
    if method == "DELETE":
        vault.logical.pop(q["path"], None)
    else:
        vault.logical[q["path"]] = dict(body)
    return 204, {}


def _kv2(vault: FakeVault, mount: str, rest: str, method: str, q: dict[str, str], body: dict[str, Any]) -> Answer:
    kind, _, path = rest.partition("/")
    store = vault.kv.setdefault(mount, {})
    versions = store.get(path, [])
    if kind == "metadata":
        if method == "DELETE":
            store.pop(path, None)
            return 204, {}
        return (200, {"data": {"current_version": len(versions), "versions": {
            str(i): {k: v[k] for k in ("created_time", "deletion_time", "destroyed")}
            for i, v in enumerate(versions, 1)}}}) if versions else (404, {"errors": []})
    if method == "GET":
        wanted = int(q.get("version") or len(versions))
        if not 1 <= wanted <= len(versions) or versions[wanted - 1]["deletion_time"]:
            return 404, {"errors": []}
        v = versions[wanted - 1]
        meta = {"version": wanted, **{k: v[k] for k in ("created_time", "deletion_time", "destroyed")}}
        return 200, {"data": {"data": dict(v["data"]), "metadata": meta}}
    if method == "DELETE":
        if versions:
            versions[-1]["deletion_time"] = vault.now().isoformat()
        return 204, {}
    cas = (body.get("options") or {}).get("cas")
    if cas is not None and int(cas) != len(versions):
        return 400, {"errors": [CAS_MISMATCH]}
    created = vault.now().isoformat()
    store[path] = [*versions, {"data": dict(body.get("data") or {}), "created_time": created,
                               "deletion_time": "", "destroyed": False}]
    vault.raft_index += 1
    return 200, {"data": {"version": len(store[path]), "created_time": created}}


# -- auth --------------------------------------------------------------------------------------------

def _auth(vault: FakeVault, node: FakeNode, token: str | None, method: str, q: dict[str, str],
          body: dict[str, Any]) -> Answer:
    from vaultops.testing.fake_vault import LOGIN_TOKEN

    path = q["path"].removeprefix("auth/")
    if node.sealed:
        return SEALED
    if path.endswith("/login"):
        node.logins.append((path, dict(body)))
        if vault.refuse_logins:
            return DENIED
        vault.tokens[LOGIN_TOKEN] = list(vault.login_policies)
        return 200, {"auth": {"client_token": LOGIN_TOKEN, "policies": list(vault.login_policies)}}
    denied = _check(vault, node, token)
    if denied:
        return denied
    assert token is not None
    if path == "token/lookup-self":
        return 200, {"data": {"policies": list(vault.tokens[token])}}
    if path == "token/revoke-self":
        vault.tokens.pop(token, None)
        node.revoked += 1
        return 204, {}
    return UNSUPPORTED


def _check(vault: FakeVault, node: FakeNode, token: str | None, *, raft: bool = False) -> Answer | None:
    """The answer to a token call that cannot be served: sealed, unknown token, not raft storage."""
    if node.sealed or not node.initialized:
        return SEALED
    if token not in vault.tokens:
        return DENIED
    if raft and vault.storage != "raft":
        return UNSUPPORTED
    return None


def _decode_key(key: str) -> bytes | None:
    """As OpenBao reads sys/unseal's key: hex first, then base64; 16-33 bytes."""
    decoders: tuple[Callable[[str], bytes], ...] = (bytes.fromhex, lambda k: base64.b64decode(k, validate=True))
    for decode in decoders:
        try:
            raw = decode(key)
        except (ValueError, binascii.Error):
            continue
        return raw if 16 <= len(raw) <= 33 else None
    return None


def _parts(path: str) -> tuple[str, dict[str, str]]:
    """'a/b?x=1' -> ('a/b', {'x': '1'}), unquoted."""
    base, _, query = path.partition("?")
    return unquote(base.strip("/")), dict(p.split("=", 1) for p in query.split("&") if "=" in p)


_SYS: dict[str, Handler] = {
    "sys/seal-status": _seal_status, "sys/unseal": _unseal, "sys/init": _init, "sys/seal": _seal,
    "sys/health": _health, "sys/leader": _leader, "sys/ha-status": _ha_status, "sys/step-down": _step_down,
    "sys/version-history": _version_history, "sys/storage/raft/configuration": _raft_configuration,
    "sys/storage/raft/autopilot/state": _autopilot,
}

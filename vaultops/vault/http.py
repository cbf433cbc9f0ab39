"""HTTP transport for one Vault/OpenBao node, and the one place errors are translated.

Built on urllib3 (not requests/hvac) to keep start-up cheap: `vaultops status`
must beat three `bao status` calls.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

from vaultops import errors

DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Response:
    status: int
    data: dict[str, Any]
    headers: dict[str, str]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Transport:
    """Talks to one node. Never follows redirects: a 307 means 'ask the active node'."""

    def __init__(self, address: str, *, node: str | None = None, ca_cert: str | None = None,
                 token: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 allow_insecure_http: bool = False, server_name: str | None = None) -> None:
        parts = urlsplit(address)
        if parts.scheme == "http" and not (allow_insecure_http or is_loopback(parts.hostname or "")):
            raise errors.SecurityError(
                f"refusing plain http to {address}: shares and tokens would cross the network in clear",
                hint="use https, or pass --allow-insecure-http if you really mean it")
        self.address = address.rstrip("/")
        self.node = node or (parts.hostname or address)
        self.token = token
        self.timeout = timeout
        self._pool = urllib3.PoolManager(
            num_pools=1, maxsize=4, retries=False,
            **_tls_options(parts.scheme, ca_cert, server_name),
        )

    def request(self, method: str, path: str, *, body: Any = None, auth: bool = False,
                ok: tuple[int, ...] = (200, 204), timeout: float | None = None) -> Response:
        """One JSON request. Statuses in *ok* return; others raise a VaultError."""
        resp = self._send(method, path, body=body, auth=auth, timeout=timeout, preload=True)
        data = self._decode(resp, path)
        if resp.status not in ok:
            raise error_for(resp.status, data, node=self.node, path=path)
        return Response(resp.status, data, dict(resp.headers))

    def stream(self, method: str, path: str, *, auth: bool = True, body: Any = None,
               timeout: float | None = None) -> urllib3.BaseHTTPResponse:
        """A raw streaming response (snapshots). Caller must release_conn()."""
        resp = self._send(method, path, body=body, auth=auth, timeout=timeout, preload=False)
        if resp.status != 200:
            data = self._decode(resp, path)
            resp.release_conn()
            raise error_for(resp.status, data, node=self.node, path=path)
        return resp

    def upload(self, path: str, body: Any, *, auth: bool = True, timeout: float | None = None) -> Response:
        """POST a raw body (snapshot restore); *body* may be bytes or a file object."""
        resp = self._send("POST", path, raw=body, auth=auth, timeout=timeout, preload=True)
        data = self._decode(resp, path)
        if resp.status not in (200, 204):
            raise error_for(resp.status, data, node=self.node, path=path)
        return Response(resp.status, data, dict(resp.headers))

    def _send(self, method: str, path: str, *, body: Any = None, raw: Any = None, auth: bool,
              timeout: float | None, preload: bool) -> urllib3.BaseHTTPResponse:
        headers = {"X-Vault-Request": "true"}
        if auth:
            if not self.token:
                raise errors.VaultAuthError(
                    f"{self.node}: this call needs a token", node=self.node,
                    hint="export VAULT_TOKEN, write ~/.vault-token, or set cluster.token_file")
            headers["X-Vault-Token"] = self.token
        payload = raw
        if body is not None:  # a bytearray is JSON its caller built, to wipe after the send (sys/unseal)
            payload = body if isinstance(body, bytearray) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        t = timeout or self.timeout
        try:
            return self._pool.request(
                method, f"{self.address}/v1/{path}", body=payload, headers=headers,
                redirect=False, preload_content=preload,
                timeout=urllib3.Timeout(connect=min(t, 3.0), read=t))
        except urllib3.exceptions.SSLError as exc:
            raise errors.VaultUnreachable(
                f"{self.node}: TLS verification failed ({_short(exc)})", node=self.node,
                hint="check the CA bundle (VAULT_CACERT or cluster.ca_cert) and the node's name") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise errors.VaultUnreachable(
                f"{self.node}: unreachable at {self.address} ({_short(exc)})", node=self.node,
                hint="check the address and that the server is running") from exc

    def _decode(self, resp: urllib3.BaseHTTPResponse, path: str) -> dict[str, Any]:
        raw = resp.data if resp.data is not None else b""
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            ctype = resp.headers.get("Content-Type", "?")
            raise errors.VaultBadResponse(
                f"{self.node}: {path} answered HTTP {resp.status} with non-JSON ({ctype})", node=self.node,
                status=resp.status,
                hint="is a proxy or load balancer answering instead of Vault? check the address") from None
        if not isinstance(data, dict):
            raise errors.VaultBadResponse(f"{self.node}: {path} answered a JSON {type(data).__name__}",
                                          node=self.node, hint="check the address points at Vault")
        return data

    def close(self) -> None:
        self._pool.clear()


def read_blocks(resp: urllib3.BaseHTTPResponse, size: int = 1 << 20) -> Iterator[bytes | bytearray]:
    """The body of a streamed response as blocks of *size* bytes (the last one may be shorter).

    urllib3's stream() yields a chunked body one transfer chunk (~32 KiB) at a time; joining those
    into blocks costs a copy. Instead the socket reads straight into a fresh buffer per block,
    through http.client, which undoes the chunked framing. Blocks are never reused, so consumers
    may keep them. Falls back to stream() when urllib3 would decode a Content-Encoding.
    """
    raw = getattr(resp, "_fp", None)  # the http.client response urllib3 wraps
    if raw is None or not hasattr(raw, "readinto") or resp.headers.get("Content-Encoding", "identity") != "identity":
        yield from resp.stream(size)
        return
    while True:
        block = bytearray(size)
        got = _fill(raw, block)
        if got < size:
            del block[got:]
            if got:
                yield block
            return
        yield block


def _fill(raw: Any, block: bytearray) -> int:
    with memoryview(block) as view:
        got = 0
        while got < len(block):
            n = raw.readinto(view[got:])
            if not n:
                break
            got += n
        return got


def _tls_options(scheme: str, ca_cert: str | None, server_name: str | None) -> dict[str, Any]:
    if scheme != "https":
        return {}
    opts: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED}
    if ca_cert:  # otherwise the system store (urllib3 loads the default certs)
        opts["ca_certs"] = ca_cert
    if server_name:
        opts["server_hostname"] = server_name
        opts["assert_hostname"] = server_name
    return opts


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    return text.split(": ", 1)[-1][:160]


# One table: HTTP status -> our exception.
_STATUS_ERRORS: dict[int, type[errors.VaultError]] = {
    400: errors.VaultError, 401: errors.VaultAuthError, 403: errors.VaultAuthError,
    404: errors.VaultNotFound, 405: errors.VaultNotFound, 429: errors.VaultStandby,
    503: errors.VaultSealed,
}
_HINTS = {
    errors.VaultAuthError: "the token is missing, expired or lacks the policy: log in again",
    errors.VaultNotFound: "this server or storage backend does not offer that endpoint",
    errors.VaultStandby: "ask the active node",
    errors.VaultSealed: "unseal the node first: vaultops unseal",
}


def error_for(status: int, data: dict[str, Any], *, node: str, path: str) -> errors.VaultError:
    messages = data.get("errors") or []
    detail = "; ".join(str(m) for m in messages)[:300] or f"HTTP {status}"
    cls = _STATUS_ERRORS.get(status, errors.VaultError)
    if status == 500 and "not active" in detail:
        cls = errors.VaultStandby
    if status in (301, 302, 307, 308):
        cls = errors.VaultStandby
    hint = _HINTS.get(cls, "see the server log for details")
    return cls(f"{node}: {path}: {detail}", status=status, node=node, hint=hint)

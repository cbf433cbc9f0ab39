"""HTTP transport for one Vault/OpenBao node, and the one place errors are translated.

Built on urllib3 (not requests/hvac) to keep start-up cheap: `vaultops status`
must beat three `bao status` calls.

Every answer is bounded (vault/bounded.py: size cap, deadline, streamed bodies
read block by block and their breaks translated; shared with vaultops.consul).
Transport adds what is Vault's: paths under /v1/, X-Vault-Token, the status table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import urllib3

from vaultops import errors
from vaultops.vault.bounded import (DEFAULT_TIMEOUT, MAX_JSON_BYTES, BoundedPool, is_loopback, printable,
                                    read_blocks)

_TOKEN = re.compile(r"[\x21-\x7e]+")  # what an HTTP header value may carry, and every Vault token is


@dataclass(frozen=True)
class Response:
    status: int
    data: dict[str, Any]
    headers: dict[str, str]


class HTTP(Protocol):
    """What the endpoint groups need from a transport: the real Transport, or a fake one in tests
    (vaultops.testing.fake_vault), injected through NodeClient(transport=...)."""

    node: str
    address: str
    token: str | None

    def request(self, method: str, path: str, *, body: Any = None, auth: bool = False,
                ok: tuple[int, ...] = (200, 204), timeout: float | None = None) -> Response: ...

    def stream(self, method: str, path: str, *, auth: bool = True, body: Any = None,
               timeout: float | None = None) -> Any: ...

    def upload(self, path: str, body: Any, *, auth: bool = True, timeout: float | None = None) -> Response: ...

    def close(self) -> None: ...


class Transport(BoundedPool):
    """Talks to one node. Never follows redirects: a 307 means 'ask the active node'."""

    def __init__(self, address: str, *, node: str | None = None, ca_cert: str | None = None,
                 token: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 allow_insecure_http: bool = False, server_name: str | None = None) -> None:
        parts = urlsplit(address)
        if parts.scheme == "http" and not (allow_insecure_http or is_loopback(parts.hostname or "")):
            raise errors.SecurityError(
                f"refusing plain http to {address}: shares and tokens would cross the network in clear",
                hint="use https, or pass --allow-insecure-http if you really mean it")
        super().__init__(address, node=node or (parts.hostname or address), ca_cert=ca_cert,
                         server_name=server_name, timeout=timeout)
        self.token = token

    def request(self, method: str, path: str, *, body: Any = None, auth: bool = False,
                ok: tuple[int, ...] = (200, 204), timeout: float | None = None) -> Response:
        """One JSON request. Statuses in *ok* return; others raise a VaultError."""
        t = timeout or self.timeout
        with self.deadline(t, path):
            resp = self._send(method, path, body=body, auth=auth, timeout=t)
            data = self._decode(resp, self.read_body(resp, path), path)
        if resp.status not in ok:
            raise error_for(resp.status, data, node=self.node, path=path, location=resp.headers.get("Location"))
        return Response(resp.status, data, dict(resp.headers))

    def stream(self, method: str, path: str, *, auth: bool = True, body: Any = None,
               timeout: float | None = None) -> urllib3.BaseHTTPResponse:
        """A raw streaming response (snapshots): read it with read_blocks(resp, node=...), then release_conn()."""
        t = timeout or self.timeout
        with self.deadline(t, path):
            resp = self._send(method, path, body=body, auth=auth, timeout=t)
            if resp.status != 200:
                data = self._decode(resp, self.read_body(resp, path), path)
                raise error_for(resp.status, data, node=self.node, path=path,
                                location=resp.headers.get("Location"))
        return resp

    def upload(self, path: str, body: Any, *, auth: bool = True, timeout: float | None = None) -> Response:
        """POST a raw body (snapshot restore); *body* may be bytes or a file object."""
        t = timeout or self.timeout
        with self.deadline(t, path):
            resp = self._send("POST", path, raw=body, auth=auth, timeout=t)
            data = self._decode(resp, self.read_body(resp, path), path)
        if resp.status not in (200, 204):
            raise error_for(resp.status, data, node=self.node, path=path)
        return Response(resp.status, data, dict(resp.headers))

    def _send(self, method: str, path: str, *, body: Any = None, raw: Any = None, auth: bool,
              timeout: float) -> urllib3.BaseHTTPResponse:
        headers = {"X-Vault-Request": "true"}
        if auth:
            headers["X-Vault-Token"] = self._checked_token()
        payload = raw
        if body is not None:  # a bytearray is JSON its caller built, to wipe after the send (sys/unseal)
            payload = body if isinstance(body, bytearray) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return self.send(method, f"{self.address}/v1/{path}", headers=headers, body=payload, timeout=timeout,
                         what=path)

    def _checked_token(self) -> str:
        if not self.token:
            raise errors.VaultAuthError(
                f"{self.node}: this call needs a token", node=self.node,
                hint="export VAULT_TOKEN, write ~/.vault-token, or set cluster.token_file")
        if not _TOKEN.fullmatch(self.token):
            raise errors.VaultAuthError(
                f"{self.node}: the token holds a space, newline, control or non-ASCII character "
                "and cannot be sent", node=self.node,
                hint="check VAULT_TOKEN, ~/.vault-token or cluster.token_file: a token is one word")
        return self.token

    def _decode(self, resp: urllib3.BaseHTTPResponse, raw: bytes, path: str) -> dict[str, Any]:
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            ctype = printable(resp.headers.get("Content-Type", "?"))[:60]
            raise errors.VaultBadResponse(
                f"{self.node}: {path} answered HTTP {resp.status} with non-JSON ({ctype})", node=self.node,
                status=resp.status,
                hint="is a proxy or load balancer answering instead of Vault? check the address") from None
        if not isinstance(data, dict):
            raise errors.VaultBadResponse(f"{self.node}: {path} answered a JSON {type(data).__name__}",
                                          node=self.node, hint="check the address points at Vault")
        return data


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


def error_for(status: int, data: dict[str, Any], *, node: str, path: str,
              location: str | None = None) -> errors.VaultError:
    messages = data.get("errors") or []
    if not isinstance(messages, list):
        messages = [messages]
    detail = " ".join(printable("; ".join(str(m) for m in messages)).split())[:300] or f"HTTP {status}"
    cls = _STATUS_ERRORS.get(status, errors.VaultError)
    if status == 500 and "not active" in detail:
        cls = errors.VaultStandby
    if status in (301, 302, 303, 307, 308):
        cls = errors.VaultStandby
        if location:
            detail += f" (redirect to {printable(location)[:100]}, not followed)"
    hint = _HINTS.get(cls, "see the server log for details")
    return cls(f"{node}: {path}: {detail}", status=status, node=node, hint=hint)




__all__ = ["DEFAULT_TIMEOUT", "HTTP", "MAX_JSON_BYTES", "Response", "Transport", "error_for", "is_loopback",
           "read_blocks"]

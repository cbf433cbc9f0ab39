"""HTTP transport for one Vault/OpenBao node, and the one place errors are translated.

Built on urllib3 (not requests/hvac) to keep start-up cheap: `vaultops status`
must beat three `bao status` calls.

Every answer is bounded. A JSON answer is read in pieces and refused past
MAX_JSON_BYTES (no Vault answer comes near it: raft's max_entry_size is 1 MiB),
and must be complete within the call's timeout counted from the moment the
request was sent: per-read socket timeouts never fire against a server that
trickles one byte a second, so a watchdog cuts the socket at the deadline.
Streamed snapshots get the deadline until their headers arrive; their body is
read block by block (read_blocks) with the per-read timeout only, and a body that
breaks off mid-stream is our VaultUnreachable naming the node, like every other
network failure.

The bounds live in BoundedPool; Transport adds what is Vault's (paths under /v1/,
X-Vault-Token, the status table). vaultops.consul builds on the same BoundedPool.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import urllib3
import urllib3.connection

from vaultops import errors

DEFAULT_TIMEOUT = 5.0
MAX_JSON_BYTES = 4 << 20
_PIECE = 64 << 10
_TOKEN = re.compile(r"[\x21-\x7e]+")  # what an HTTP header value may carry, and every Vault token is
# What a connection dropped or cut short mid-answer raises below us (urllib3, http.client, the socket).
_BROKEN = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


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


class BoundedPool:
    """One urllib3 pool to one server, every answer bounded: no redirects, no retries, a body read
    whole only up to MAX_JSON_BYTES, complete within the call's deadline (see the watchdog below).
    Failures are our errors naming *node*."""

    def __init__(self, address: str, *, node: str, ca_cert: str | None = None, server_name: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address.rstrip("/")
        self.node = node
        self.timeout = timeout
        self._pool = urllib3.PoolManager(
            num_pools=1, maxsize=4, retries=False,
            **_tls_options(urlsplit(address).scheme, ca_cert, server_name),
        )
        self._pool.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    @contextlib.contextmanager
    def deadline(self, seconds: float, path: str) -> Iterator[None]:
        """The answer to the request sent inside the block must be complete within *seconds*."""
        _flight.seconds, _flight.watchdog = seconds, None
        try:
            yield
        except errors.VaultError as exc:
            if _expired():
                raise self._too_slow(seconds, path) from exc
            raise
        finally:
            watchdog: _Watchdog | None = _flight.watchdog
            _flight.seconds = _flight.watchdog = None
            if watchdog is not None:
                watchdog.cancel()
        if watchdog is not None and watchdog.expired:
            raise self._too_slow(seconds, path)

    def _too_slow(self, seconds: float, path: str) -> errors.VaultUnreachable:
        return errors.VaultUnreachable(
            f"{self.node}: no complete answer to {path} within {seconds:g}s", node=self.node,
            hint="the node, or something in between, answers too slowly or never finishes: check it")

    def send(self, method: str, url: str, *, headers: dict[str, str], body: Any, timeout: float,
             what: str) -> urllib3.BaseHTTPResponse:
        """One request, its answer unread (preload off): read it with read_body or read_blocks."""
        try:
            return self._pool.request(
                method, url, body=body, headers=headers, redirect=False, preload_content=False,
                timeout=urllib3.Timeout(connect=min(timeout, 3.0), read=timeout))
        except urllib3.exceptions.SSLError as exc:
            raise errors.VaultUnreachable(
                f"{self.node}: TLS verification failed ({_short(exc)})", node=self.node,
                hint="check the CA bundle (VAULT_CACERT or cluster.ca_cert) and the node's name") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise errors.VaultUnreachable(
                f"{self.node}: unreachable at {self.address} ({_short(exc)})", node=self.node,
                hint="check the address and that the server is running") from exc
        except ValueError as exc:  # http.client refusing a header or URL; its text may quote the token
            raise errors.VaultError(f"{self.node}: cannot send {method} {what[:80]!r} ({type(exc).__name__})",
                                    node=self.node, hint="check the path and the token") from None

    def read_body(self, resp: urllib3.BaseHTTPResponse, path: str) -> bytes:
        """The whole body, at most MAX_JSON_BYTES; the connection goes back to the pool only when read."""
        done = False
        try:
            if _declared_length(resp) > MAX_JSON_BYTES:
                raise self._too_big(resp, path)
            buf = bytearray()
            while piece := resp.read(_PIECE, decode_content=False):
                buf += piece
                if len(buf) > MAX_JSON_BYTES:
                    raise self._too_big(resp, path)
            done = True
            return bytes(buf)
        except _BROKEN as exc:
            raise errors.VaultUnreachable(f"{self.node}: the answer to {path} broke off ({_short(exc)})",
                                          node=self.node, hint="check the node and the network") from exc
        finally:
            if not done:
                resp.close()
            resp.release_conn()

    def _too_big(self, resp: urllib3.BaseHTTPResponse, path: str) -> errors.VaultBadResponse:
        return errors.VaultBadResponse(
            f"{self.node}: {path} answered more than {MAX_JSON_BYTES >> 20} MiB (HTTP {resp.status}); "
            "no such answer is that large", node=self.node, status=resp.status,
            hint="is something else answering at this address? check the address")

    def close(self) -> None:
        self._pool.clear()


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
            ctype = _printable(resp.headers.get("Content-Type", "?"))[:60]
            raise errors.VaultBadResponse(
                f"{self.node}: {path} answered HTTP {resp.status} with non-JSON ({ctype})", node=self.node,
                status=resp.status,
                hint="is a proxy or load balancer answering instead of Vault? check the address") from None
        if not isinstance(data, dict):
            raise errors.VaultBadResponse(f"{self.node}: {path} answered a JSON {type(data).__name__}",
                                          node=self.node, hint="check the address points at Vault")
        return data


# -- the deadline watchdog -------------------------------------------------------------------

_flight = threading.local()  # per thread: the deadline of the request being sent, and its watchdog


def _expired() -> bool:
    watchdog = getattr(_flight, "watchdog", None)
    return watchdog is not None and watchdog.expired


class _Watchdog:
    """Shuts a socket down when its deadline passes: the blocked read returns, the call fails."""

    def __init__(self, sock: Any, seconds: float) -> None:
        self.expired = False
        self._sock = sock
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        # The plain socket's shutdown, not SSLSocket's: that one drops its SSL object under the reader.
        shutdown = socket.socket.shutdown if isinstance(self._sock, socket.socket) else type(self._sock).shutdown
        with contextlib.suppress(OSError):
            shutdown(self._sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _arm(sock: Any) -> None:
    """Called when a request has been sent and its answer is awaited."""
    seconds = getattr(_flight, "seconds", None)
    if seconds is not None and sock is not None and getattr(_flight, "watchdog", None) is None:
        _flight.watchdog = _Watchdog(sock, seconds)


class _HTTPConnection(urllib3.connection.HTTPConnection):
    def getresponse(self) -> Any:  # type: ignore[override]
        _arm(self.sock)
        return super().getresponse()


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    def getresponse(self) -> Any:  # type: ignore[override]
        _arm(self.sock)
        return super().getresponse()


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def _declared_length(resp: urllib3.BaseHTTPResponse) -> int:
    value = resp.headers.get("Content-Length") or ""
    return int(value) if value.isdigit() else 0


# -- streamed bodies ---------------------------------------------------------------------------

def read_blocks(resp: urllib3.BaseHTTPResponse, size: int = 1 << 20, *,
                node: str | None = None) -> Iterator[bytes | bytearray]:
    """The body of a streamed response as blocks of *size* bytes (the last one may be shorter).

    urllib3's stream() yields a chunked body one transfer chunk (~32 KiB) at a time; joining those
    into blocks costs a copy. Instead the socket reads straight into a fresh buffer per block,
    through http.client, which undoes the chunked framing. Blocks are never reused, so consumers
    may keep them. Falls back to stream() when urllib3 would decode a Content-Encoding.

    A body that breaks off (connection reset, a chunk cut short, a read timeout) raises
    VaultUnreachable naming *node*: callers never see urllib3's or http.client's exceptions.
    """
    try:
        yield from _blocks(resp, size)
    except _BROKEN as exc:
        where = node or "the server"
        raise errors.VaultUnreachable(f"{where}: the download broke off ({_short(exc)})", node=node,
                                      hint=f"check {where} and the network, then try again") from exc


def _blocks(resp: urllib3.BaseHTTPResponse, size: int) -> Iterator[bytes | bytearray]:
    raw = getattr(resp, "_fp", None)  # the http.client response urllib3 wraps
    if raw is None or not hasattr(raw, "readinto") or resp.headers.get("Content-Encoding", "identity") != "identity":
        yield from resp.stream(size)
        return
    declared, total = _declared_length(resp), 0
    while True:
        block = bytearray(size)
        got = _fill(raw, block)
        total += got
        if got < size:
            del block[got:]
            if got:
                yield block
            if total < declared:  # http.client's readinto ends a short Content-Length body quietly
                raise http.client.IncompleteRead(b"", declared - total)
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
    return _printable(text.split(": ", 1)[-1])[:160]


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
    detail = " ".join(_printable("; ".join(str(m) for m in messages)).split())[:300] or f"HTTP {status}"
    cls = _STATUS_ERRORS.get(status, errors.VaultError)
    if status == 500 and "not active" in detail:
        cls = errors.VaultStandby
    if status in (301, 302, 303, 307, 308):
        cls = errors.VaultStandby
        if location:
            detail += f" (redirect to {_printable(location)[:100]}, not followed)"
    hint = _HINTS.get(cls, "see the server log for details")
    return cls(f"{node}: {path}: {detail}", status=status, node=node, hint=hint)


def _printable(text: str) -> str:
    """A server's words on one line, without terminal escapes."""
    return "".join(c if c.isprintable() else " " for c in text)

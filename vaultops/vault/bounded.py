"""The bounds every answer vaultops reads obeys, from Vault (vault.http.Transport) and from Consul
(vaultops.consul): one urllib3 pool per server, no redirects, no retries.

A whole answer is read in pieces and refused past MAX_JSON_BYTES (no Vault answer comes near
it: raft's max_entry_size is 1 MiB), and must be complete within the call's timeout counted
from the moment the request was sent: per-read socket timeouts never fire against a server that
trickles one byte a second, so a watchdog cuts the socket at the deadline. Streamed snapshots
get the deadline until their headers arrive; their body is read block by block (read_blocks)
with the per-read timeout only, and a body that breaks off or falls short of its
Content-Length is our VaultUnreachable naming the node, like every other network failure.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import urllib3
import urllib3.connection

from vaultops import errors

DEFAULT_TIMEOUT = 5.0
MAX_JSON_BYTES = 4 << 20
_PIECE = 64 << 10
# What a connection dropped or cut short mid-answer raises below us (urllib3, http.client, the socket).
_BROKEN = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False



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
    return printable(text.split(": ", 1)[-1])[:160]


def printable(text: str) -> str:
    """A server's words on one line, without terminal escapes."""
    return "".join(c if c.isprintable() else " " for c in text)

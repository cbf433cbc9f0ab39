"""sys/init, sys/seal-status, sys/unseal, sys/seal."""

from __future__ import annotations

from typing import Any

from vaultops.vault.http import HTTP
from vaultops.vault.models import InitResult, SealStatus

_KEY_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_KEY_OPEN, _KEY_CLOSE = b'{"key": "', b'"}'


class SealEndpoints:
    def __init__(self, transport: HTTP) -> None:
        self._t = transport

    def status(self) -> SealStatus:
        """GET sys/seal-status (unauthenticated, per node, never forwarded)."""
        return SealStatus.from_api(self._t.request("GET", "sys/seal-status").data)

    def init(self, *, shares: int, threshold: int, pgp_keys: list[str] | None = None,
             root_token_pgp_key: str | None = None) -> InitResult:
        """PUT sys/init. Returns the shares and root token: secret material."""
        body: dict[str, Any] = {"secret_shares": shares, "secret_threshold": threshold}
        if pgp_keys:
            body["pgp_keys"] = pgp_keys
        if root_token_pgp_key:
            body["root_token_pgp_key"] = root_token_pgp_key
        # A fresh raft node elects itself first (~6 s): allow for it.
        return InitResult.from_api(self._t.request("PUT", "sys/init", body=body, timeout=60.0).data)

    def initialized(self) -> bool:
        """GET sys/init."""
        return bool(self._t.request("GET", "sys/init").data.get("initialized"))

    def unseal(self, key: str | bytearray, *, timeout: float | None = None) -> SealStatus:
        """PUT sys/unseal {key}. A wrong share is only detected at the threshold (HTTP 400).

        A raft follower answers the threshold share only after its join attempt (~2 s): callers
        may pass a longer *timeout* than the transport's default. A bytearray key (base64 or hex)
        goes out in a request body built in a bytearray that is zeroed after the send.
        """
        body = {"key": key} if isinstance(key, str) else _key_body(key)
        try:
            return SealStatus.from_api(self._t.request("PUT", "sys/unseal", body=body, timeout=timeout).data)
        finally:
            if isinstance(body, bytearray):
                body[:] = bytes(len(body))

    def reset(self) -> SealStatus:
        """PUT sys/unseal {reset: true}: discard the shares submitted so far on this node."""
        return SealStatus.from_api(self._t.request("PUT", "sys/unseal", body={"reset": True}).data)

    def seal(self) -> None:
        """PUT sys/seal (token)."""
        self._t.request("PUT", "sys/seal", auth=True)


def _key_body(key: bytearray) -> bytearray:
    """{"key": "<key>"} in one bytearray of its final size (a growing one would leave copies behind)."""
    if not key or any(c not in _KEY_CHARS for c in key):  # nothing to escape in JSON, nothing injected
        raise ValueError("an unseal key must be base64 or hex")
    body = bytearray(len(_KEY_OPEN) + len(key) + len(_KEY_CLOSE))
    body[:len(_KEY_OPEN)] = _KEY_OPEN
    body[len(_KEY_OPEN):len(_KEY_OPEN) + len(key)] = key
    body[len(body) - len(_KEY_CLOSE):] = _KEY_CLOSE
    return body

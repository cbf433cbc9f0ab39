"""Changing the unseal shares: sys/rekey/* (Vault, OpenBao < 2.5) or sys/rotate/root/* (OpenBao >= 2.5).

Both families take the same bodies; only the prefix and authentication differ.
"""

from __future__ import annotations

from typing import Any

from vaultops.vault.http import HTTP
from vaultops.vault.models import RotationStatus, RotationUpdate, RotationVerification

REKEY = "sys/rekey"          # Vault: unauthenticated
ROTATE_ROOT = "sys/rotate/root"  # OpenBao >= 2.5: token-authenticated


class RotateEndpoints:
    def __init__(self, transport: HTTP, *, prefix: str = ROTATE_ROOT) -> None:
        self._t = transport
        self.prefix = prefix
        self._auth = prefix == ROTATE_ROOT

    def status(self) -> RotationStatus:
        """GET {prefix}/init."""
        return RotationStatus.from_api(self._t.request("GET", f"{self.prefix}/init", auth=self._auth).data)

    def start(self, *, shares: int, threshold: int, pgp_keys: list[str] | None = None,
              require_verification: bool = True, backup: bool = False) -> RotationStatus:
        """PUT {prefix}/init: begin a rotation to new shares/threshold."""
        body: dict[str, Any] = {"secret_shares": shares, "secret_threshold": threshold,
                                "require_verification": require_verification}
        if pgp_keys:
            body["pgp_keys"] = pgp_keys
            body["backup"] = backup
        return RotationStatus.from_api(self._t.request("PUT", f"{self.prefix}/init", body=body,
                                                       auth=self._auth).data)

    def cancel(self) -> None:
        """DELETE {prefix}/init: cancel; the old shares stay valid."""
        self._t.request("DELETE", f"{self.prefix}/init", auth=self._auth)

    def update(self, *, key: str, nonce: str) -> RotationUpdate:
        """PUT {prefix}/update: one current share. The last one returns the new shares (secret)."""
        return RotationUpdate.from_api(self._t.request("PUT", f"{self.prefix}/update",
                                                       body={"key": key, "nonce": nonce}, auth=self._auth).data)

    def verify_status(self) -> RotationVerification:
        """GET {prefix}/verify."""
        return RotationVerification.from_api(self._t.request("GET", f"{self.prefix}/verify", auth=self._auth).data)

    def verify(self, *, key: str, nonce: str) -> RotationVerification:
        """PUT {prefix}/verify: one NEW share, proving the new keyholders hold them."""
        return RotationVerification.from_api(self._t.request("PUT", f"{self.prefix}/verify",
                                                             body={"key": key, "nonce": nonce}, auth=self._auth).data)

    def verify_cancel(self) -> None:
        """DELETE {prefix}/verify: restart verification with a fresh nonce."""
        self._t.request("DELETE", f"{self.prefix}/verify", auth=self._auth)

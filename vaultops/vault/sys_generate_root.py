"""sys/generate-root/*: root-token generation from unseal shares (OTP or PGP)."""

from __future__ import annotations

from typing import Any

from vaultops.vault.http import HTTP
from vaultops.vault.models import GenerateRootStatus

PREFIX = "sys/generate-root"


class GenerateRootEndpoints:
    def __init__(self, transport: HTTP, *, prefix: str = PREFIX, auth: bool = False) -> None:
        self._t = transport
        self.prefix = prefix
        self._auth = auth

    def status(self) -> GenerateRootStatus:
        """GET {prefix}/attempt."""
        return GenerateRootStatus.from_api(self._t.request("GET", f"{self.prefix}/attempt", auth=self._auth).data)

    def start(self, *, otp: str | None = None, pgp_key: str | None = None) -> GenerateRootStatus:
        """PUT {prefix}/attempt with an OTP or a PGP key (or neither: the server makes the OTP)."""
        body: dict[str, Any] = {}
        if otp:
            body["otp"] = otp
        if pgp_key:
            body["pgp_key"] = pgp_key
        return GenerateRootStatus.from_api(self._t.request("PUT", f"{self.prefix}/attempt", body=body,
                                                           auth=self._auth).data)

    def cancel(self) -> None:
        """DELETE {prefix}/attempt."""
        self._t.request("DELETE", f"{self.prefix}/attempt", auth=self._auth)

    def update(self, *, key: str, nonce: str) -> GenerateRootStatus:
        """PUT {prefix}/update: one share; the last returns encoded_token."""
        return GenerateRootStatus.from_api(self._t.request("PUT", f"{self.prefix}/update",
                                                           body={"key": key, "nonce": nonce},
                                                           auth=self._auth).data)

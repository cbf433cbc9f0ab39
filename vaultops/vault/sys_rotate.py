"""Changing the unseal shares: sys/rekey/* or sys/rotate/root/*.

Both families take the same bodies; only the prefix and authentication differ. Which one a
server offers, and which one vaultops uses, is stated ONCE, in ROTATION_APIS below: the
`rekey` help, the rekey ceremony and the README refer to it (field notes, "OpenBao releases
and key epochs").
"""

from __future__ import annotations

import re
from typing import Any

from vaultops.vault.http import HTTP
from vaultops.vault.models import RotationStatus, RotationUpdate, RotationVerification

REKEY = "sys/rekey"              # unauthenticated; HashiCorp Vault, and OpenBao while a listener allows it
ROTATE_ROOT = "sys/rotate/root"  # token-authenticated; OpenBao only (see ROTATION_APIS)

# The first OpenBao release whose sys/rotate/root keeps the Shamir shares intact.
ROTATE_ROOT_SAFE_SINCE = (2, 5, 2)
ROTATION_APIS = (
    "OpenBao added the token-authenticated sys/rotate/root in 2.4 and deprecated sys/rekey; since 2.5 "
    "the unauthenticated sys/rekey endpoints are off per listener (disable_unauthed_rekey_endpoints); "
    "sys/rotate/root before 2.5.2 wiped the Shamir shares. So vaultops uses sys/rotate/root on OpenBao "
    ">= 2.5.2, and sys/rekey on HashiCorp Vault and older OpenBao (where a listener still allows it); "
    "it refuses OpenBao 2.4.0-2.5.1 without sys/rekey rather than risk the shares. Detected, never chosen."
)


def rotate_root_is_safe(version: str) -> bool:
    """True when OpenBao *version* ('2.7.2', 'v2.5.2+ent') has a sys/rotate/root that keeps the shares."""
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", version.strip())
    return match is not None and tuple(int(g) for g in match.groups()) >= ROTATE_ROOT_SAFE_SINCE


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

"""sys/health, sys/leader, sys/ha-status, sys/step-down, sys/version-history."""

from __future__ import annotations

from vaultops.vault.http import HTTP
from vaultops.vault.models import HAStatus, Health, Leader

# Every status sys/health uses to describe a node (rather than fail).
_HEALTH_CODES = (200, 429, 472, 473, 501, 503)


class HAEndpoints:
    def __init__(self, transport: HTTP) -> None:
        self._t = transport

    def health(self) -> Health:
        """GET sys/health: 200 active, 429 standby, 501 uninitialised, 503 sealed."""
        resp = self._t.request("GET", "sys/health", ok=_HEALTH_CODES)
        return Health.from_api(resp.status, resp.data)

    def leader(self) -> Leader:
        """GET sys/leader (unauthenticated)."""
        return Leader.from_api(self._t.request("GET", "sys/leader").data)

    def ha_status(self) -> HAStatus:
        """GET sys/ha-status (token)."""
        return HAStatus.from_api(self._t.request("GET", "sys/ha-status", auth=True).data)

    def step_down(self) -> None:
        """PUT sys/step-down (token): the active node gives up leadership."""
        self._t.request("PUT", "sys/step-down", auth=True)

    def version_history(self) -> list[str]:
        """LIST sys/version-history (token): every version the cluster has run, oldest first."""
        data = self._t.request("GET", "sys/version-history?list=true", auth=True).data.get("data") or {}
        info = data.get("key_info") or {}
        return sorted(data.get("keys") or [], key=lambda v: str(info.get(v, {}).get("timestamp_installed")))

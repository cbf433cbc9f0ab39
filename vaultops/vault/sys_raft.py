"""sys/storage/raft/*: configuration, autopilot state, snapshots."""

from __future__ import annotations

from typing import IO

import urllib3

from vaultops.vault.http import HTTP
from vaultops.vault.models import AutopilotState, RaftConfiguration

SNAPSHOT_TIMEOUT = 600.0


class RaftEndpoints:
    def __init__(self, transport: HTTP) -> None:
        self._t = transport

    def configuration(self) -> RaftConfiguration:
        """GET sys/storage/raft/configuration (token)."""
        return RaftConfiguration.from_api(self._t.request("GET", "sys/storage/raft/configuration", auth=True).data)

    def autopilot_state(self) -> AutopilotState:
        """GET sys/storage/raft/autopilot/state (token)."""
        return AutopilotState.from_api(self._t.request("GET", "sys/storage/raft/autopilot/state", auth=True).data)

    def snapshot(self, *, timeout: float = SNAPSHOT_TIMEOUT) -> urllib3.BaseHTTPResponse:
        """GET sys/storage/raft/snapshot (token), streamed: read with .stream(n), then .release_conn()."""
        return self._t.stream("GET", "sys/storage/raft/snapshot", timeout=timeout)

    def restore(self, body: IO[bytes] | bytes, *, force: bool = False,
                timeout: float = SNAPSHOT_TIMEOUT) -> None:
        """POST sys/storage/raft/snapshot[-force] (token). -force accepts another cluster's snapshot."""
        path = "sys/storage/raft/snapshot-force" if force else "sys/storage/raft/snapshot"
        self._t.upload(path, body, timeout=timeout)

    def remove_peer(self, server_id: str) -> None:
        """POST sys/storage/raft/remove-peer (token)."""
        self._t.request("POST", "sys/storage/raft/remove-peer", body={"server_id": server_id}, auth=True)

"""raft/peers.json: the recovery file a stopped raft node reads at its next unseal, then deletes.

OpenBao (internal/physical/raft/raft.go, SetupCluster) looks for `<raft path>/raft/peers.json`
when it starts its raft backend — during the unseal, after the barrier key is checked — reads
it with hashicorp/raft's ReadConfigJSON, runs `raft.RecoverCluster` (the node's snapshot plus
EVERY entry of its log applied as committed, then a new snapshot with exactly this
membership), and removes the file. The format is the "new style" list:

    [{"id": "<raft server id>", "address": "<host:cluster port>", "non_voter": false}]

A file that is still there after the unseal means the recovery did not run (see the node's log).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from vaultops.errors import DriverError, UsageError
from vaultops.services.recovery.layout import NodeLayout

NAME = "peers.json"


@dataclass(frozen=True)
class Peer:
    id: str
    address: str
    non_voter: bool = False


def peers_for(layouts: Sequence[NodeLayout]) -> list[Peer]:
    """Every node of *layouts* as a voter; ids and addresses must be known and unique."""
    peers = [Peer(id=lay.raft_id, address=lay.need_address()) for lay in layouts]
    for what, values in (("id", [p.id for p in peers]), ("address", [p.address for p in peers])):
        dup = next((v for v in values if values.count(v) > 1), None)
        if dup is not None:
            raise UsageError(f"peers.json would list the raft {what} {dup!r} twice",
                             hint="check recovery.nodes in vaultops.yaml")
    for p in peers:
        host, _, port = p.address.rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(f"raft address {p.address!r} of {p.id} is not host:port",
                             hint="cluster_address is the host:port of cluster_addr, without a scheme")
    return peers


def render(peers: Sequence[Peer]) -> bytes:
    body = [{"id": p.id, "address": p.address, "non_voter": p.non_voter} for p in peers]
    return (json.dumps(body, indent=2) + "\n").encode()


def path_of(layout: NodeLayout) -> str:
    return str(PurePosixPath(layout.need_path()) / "raft" / NAME)


def write(driver: Any, layout: NodeLayout, peers: Sequence[Peer], *, owner: str | None = None,
          group: str | None = None) -> str:
    """peers.json on the (stopped) node, atomically, 0600; its path."""
    path = path_of(layout)
    driver.write_file(path, render(peers), mode=0o600, owner=owner, group=group).check(layout.node)
    return path


def present(driver: Any, layout: NodeLayout) -> bool:
    """Whether peers.json is still on the node (a DriverError other than 'no such file' is raised)."""
    try:
        driver.read_file(path_of(layout))
    except DriverError as exc:
        if _missing(exc):
            return False
        raise
    return True


def _missing(exc: DriverError) -> bool:
    text = f"{exc.message} {getattr(exc.result, 'stderr', '')}".lower()
    return "no such file" in text or "not found" in text


__all__ = ["NAME", "Peer", "path_of", "peers_for", "present", "render", "write"]

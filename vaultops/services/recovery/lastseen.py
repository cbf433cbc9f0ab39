"""The raft high-water mark: the indexes and membership `status` last saw while the cluster had a leader.

After an outage nobody can ask the lost nodes how far their logs went; what was seen before is
all there is. Every `vaultops status` (and the console's dashboard) that reaches an active raft
node records, per server, autopilot's last index and term, the leader's commit index, and the
membership (raft id -> cluster address, voter), in one small JSON file (atomic, 0600, no
secrets): `<state dir>/recovery/<cluster>-raft-seen.json`. `recover quorum` compares the chosen
survivor's log with it: what lies between the two is what could be lost. Running `status`
from monitoring keeps the mark fresh; writes after the newest record are not covered by it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vaultops.errors import VaultOpsError
from vaultops.files.atomic import atomic_write_text

log = logging.getLogger("vaultops.recovery")
VERSION = 1


@dataclass(frozen=True)
class SeenServer:
    raft_id: str
    name: str               # the vaultops node name (the raft id when no node matches)
    address: str            # the raft cluster address host:port
    voter: bool
    last_index: int
    last_term: int


@dataclass(frozen=True)
class Seen:
    cluster: str
    at: str
    leader: str
    commit_index: int
    servers: tuple[SeenServer, ...] = field(default_factory=tuple)

    @property
    def highest(self) -> tuple[int, str]:
        """The highest index any node reported, and who reported it (the leader's commit index counts)."""
        best = (self.commit_index, self.leader)
        for s in self.servers:
            if s.last_index > best[0]:
                best = (s.last_index, s.name)
        return best

    def voters(self) -> list[str]:
        return [s.name for s in self.servers if s.voter]

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {s.raft_id: asdict(s) for s in self.servers}

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(timezone.utc)) - datetime.fromisoformat(self.at)).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, **asdict(self)}


def seen_path(state_dir: Path, cluster: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cluster)
    return state_dir / "recovery" / f"{safe}-raft-seen.json"


def from_autopilot(cluster: str, ap: Any, *, commit_index: int | None, names: dict[str, str]) -> Seen:
    """A record from an AutopilotState; *names* maps raft ids to node names (unknown ids keep theirs)."""
    servers = tuple(SeenServer(raft_id=s.id, name=names.get(s.id, s.name or s.id), address=s.address,
                               voter=s.id in ap.voters, last_index=s.last_index, last_term=s.last_term)
                    for s in ap.servers.values())
    leader = names.get(ap.leader, ap.leader)
    return Seen(cluster=cluster, at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"), leader=leader,
                commit_index=int(commit_index or 0), servers=servers)


def record(path: Path, seen: Seen) -> bool:
    """Write the record; a read command must not fail for it (False, logged, when it cannot)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_text(path, json.dumps(seen.to_json(), indent=1, sort_keys=True) + "\n", mode=0o600)
    except (OSError, VaultOpsError) as exc:
        log.debug("could not record the raft high-water mark in %s: %s", path, exc)
        return False
    return True


def load(path: Path) -> Seen | None:
    """The last record, or None (none yet, or unreadable: said by the caller)."""
    from vaultops.files.loader import STATE_CAP, read_json, validate

    if not path.is_file():
        return None
    try:
        raw = read_json(path, cap=STATE_CAP, what="raft high-water mark")
        if not isinstance(raw, dict) or raw.get("version") != VERSION:
            return None
        body = {k: v for k, v in raw.items() if k != "version"}
        return validate(body, Seen, source=str(path), yaml=False)
    except VaultOpsError as exc:
        log.debug("ignoring %s: %s", path, exc)
        return None


__all__ = ["Seen", "SeenServer", "from_autopilot", "load", "record", "seen_path"]

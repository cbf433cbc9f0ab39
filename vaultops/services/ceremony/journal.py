"""The ceremony's side of the operator journal.

Writes every ceremony event (never share material) and reads back the
submissions other processes recorded in the same journal file, so two
keyholders on two terminals each see who submitted. A submission record names
the unseal attempt it joined on each node by that node's nonce: a node's
contributors are the records whose nonce equals the node's current nonce.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from vaultops.errors import JournalError
from vaultops.journal import Journal

log = logging.getLogger(__name__)

STARTED = "unseal.started"
SUBMITTED = "unseal.share-submitted"
REJECTED = "unseal.share-rejected"
THRESHOLD_FAILED = "unseal.threshold-failed"
RESET = "unseal.reset"
NONCE_CHANGED = "unseal.nonce-changed"
NODE_UNSEALED = "unseal.node-unsealed"
CLUSTER_UNSEALED = "unseal.cluster-unsealed"
FINISHED = "unseal.finished"
MANIFEST_UPDATED = "keyholders.cluster-id-recorded"

# Submissions older than this belong to an earlier ceremony.
WINDOW = timedelta(hours=2)


@dataclass(frozen=True)
class SubmissionRecord:
    keyholder: str
    share_index: int
    nonces: dict[str, str]  # node -> the node's unseal nonce right after this share
    session: str


class CeremonyJournal:
    """Writes ceremony entries; tails the file for other sessions' submissions."""

    def __init__(self, journal: Journal | None, *, session: str) -> None:
        self.journal = journal
        self.session = session
        self._offset = 0

    def write(self, action: str, message: str, *, outcome: str = "ok", node: str | None = None,
              **details: Any) -> str | None:
        """Append one entry; return a warning text instead of raising when it cannot."""
        if self.journal is None:
            return None
        try:
            self.journal.append(action, outcome=outcome, node=node,
                                details={"message": message, "session": self.session, **details})
        except (OSError, JournalError) as exc:
            log.debug("journal write failed", exc_info=True)
            return f"could not write the journal {self.journal.path} ({type(exc).__name__})"
        return None

    def poll(self) -> list[SubmissionRecord | None]:
        """New submissions by other sessions, in order; None marks a completed ceremony."""
        if self.journal is None:
            return []
        try:
            with open(self.journal.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # only whole lines: a writer may be mid-append
        self._offset += end
        records: list[SubmissionRecord | None] = []
        cutoff = datetime.now(timezone.utc) - WINDOW
        for raw in data[:end].splitlines():
            entry = _parse(raw)
            if entry is None or entry.get("cluster") != self.journal.cluster:
                continue
            if entry.get("action") == CLUSTER_UNSEALED:
                records.append(None)
            elif entry.get("action") == SUBMITTED and _newer(entry, cutoff):
                rec = _record(entry)
                if rec is not None and rec.session != self.session:
                    records.append(rec)
        return records


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _newer(entry: dict[str, Any], cutoff: datetime) -> bool:
    try:
        return datetime.fromisoformat(str(entry.get("time"))) >= cutoff
    except ValueError:
        return False


def _record(entry: dict[str, Any]) -> SubmissionRecord | None:
    d = entry.get("details") or {}
    nonces = d.get("nonces")
    if not isinstance(d.get("keyholder"), str) or not isinstance(nonces, dict):
        return None
    return SubmissionRecord(keyholder=d["keyholder"], share_index=int(d.get("share_index") or 0),
                            nonces={str(k): str(v) for k, v in nonces.items()},
                            session=str(d.get("session") or ""))

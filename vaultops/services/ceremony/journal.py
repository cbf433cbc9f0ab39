"""The ceremony's side of the operator journal.

Writes every ceremony event (never share material) and reads back the
submissions (and re-sends) other processes recorded in the same journal file, so two
keyholders on two terminals each see who submitted. A submission record names
the unseal attempt it joined on each node by that node's nonce: a node's
contributors are the records whose nonce equals the node's current nonce.

What a process *does* (a submission, a re-send, a reset) is journalled by that process. What it
only *sees* (a node unsealed, the cluster unsealed, a node's progress lost) every watching process
sees: such an entry carries a `Once` -- the lost attempt's nonce, or the span of time in which the
change happened -- and is written only if no entry in the journal's tail already describes the
same change (checked under the journal's lock: Journal.append_unless).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from vaultops.errors import JournalError
from vaultops.journal import Journal

log = logging.getLogger(__name__)

STARTED = "unseal.started"
SUBMITTED = "unseal.share-submitted"
RESENT = "unseal.share-resent"
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
    resent: bool = False    # a share this process held, sent again to a node that needed it


@dataclass(frozen=True)
class Once:
    """What makes an observed change the same change in every watching process's journal entry:
    the nonce of the attempt that was lost, or else the span (epoch seconds) in which it happened --
    from the last answer that did not show it to the first that did. Two processes' spans of one
    change overlap; spans of two different changes of one node do not (a change back lies between)."""

    lost_nonce: str = ""
    span: tuple[float, float] = field(default=(0.0, 0.0))

    def details(self) -> dict[str, Any]:
        if self.lost_nonce:
            return {"lost_nonce": self.lost_nonce}
        return {"seen_between": [round(self.span[0], 3), round(self.span[1], 3)]}

    def same(self, entry: dict[str, Any], *, action: str, node: str | None, cluster: str | None) -> bool:
        if entry.get("action") != action or entry.get("node") != node or entry.get("cluster") != cluster:
            return False
        d = entry.get("details") or {}
        if self.lost_nonce:
            return d.get("lost_nonce") == self.lost_nonce
        other = d.get("seen_between")
        if not (isinstance(other, list) and len(other) == 2 and all(isinstance(x, (int, float)) for x in other)):
            return False
        return other[0] <= self.span[1] and self.span[0] <= other[1]


class CeremonyJournal:
    """Writes ceremony entries; tails the file for other sessions' submissions."""

    def __init__(self, journal: Journal | None, *, session: str) -> None:
        self.journal = journal
        self.session = session
        self._offset = 0

    def write(self, action: str, message: str, *, outcome: str = "ok", node: str | None = None,
              once: Once | None = None, **details: Any) -> str | None:
        """Append one entry (with *once*: unless another process already did); return a warning
        text instead of raising when it cannot."""
        if self.journal is None:
            return None
        body = {"message": message, "session": self.session, **details}
        try:
            if once is None:
                self.journal.append(action, outcome=outcome, node=node, details=body)
            else:
                journal = self.journal

                def seen(entry: dict[str, Any]) -> bool:
                    return once.same(entry, action=action, node=node, cluster=journal.cluster)
                self.journal.append_unless(seen, action, outcome=outcome, node=node,
                                           details={**body, **once.details()})
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
            elif entry.get("action") in (SUBMITTED, RESENT) and _newer(entry, cutoff):
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
                            session=str(d.get("session") or ""), resent=entry.get("action") == RESENT)

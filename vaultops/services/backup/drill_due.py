"""Which key epochs are due for a restore drill, and which given share belongs to which of them.

`vaultops backup drill` without --name or --epoch drills every key epoch that retained backups belong
to and that no drill passed for within backup.drill.every_days (the journal's `backup.drill` entries
record the epoch drilled). The shares on stdin may then be of several epochs: each line goes to the
epoch whose verifiers confirm it (ceremony/epochs.EpochHistory.owners); a share of an epoch that is
not due is left out (and said so); a line no epoch claims goes to the first due epoch's checks, which
refuse it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from vaultops.errors import VaultOpsError
from vaultops.services.backup.epochs import epochs_report
from vaultops.services.backup.settings import BackupSettings
from vaultops.services.ceremony.share_lines import read_share_lines
from vaultops.storage.base import Sink

if TYPE_CHECKING:
    from vaultops.services.ceremony.epochs import EpochHistory


def drilled(entries: Iterable[dict[str, Any]]) -> dict[int, datetime]:
    """Key epoch -> time of the last drill that passed for it (from journal entries)."""
    out: dict[int, datetime] = {}
    for e in entries:
        details = e.get("details") or {}
        epoch = details.get("epoch") if isinstance(details, dict) else None
        if e.get("action") != "backup.drill" or e.get("outcome") != "ok" or not isinstance(epoch, int):
            continue
        try:
            when = datetime.fromisoformat(str(e.get("time")))
        except ValueError:
            continue
        out[epoch] = max(out.get(epoch, when), when)
    return out


def due_epochs(sink: Sink, settings: BackupSettings, history: EpochHistory, journal_entries: Iterable[dict[str, Any]],
               *, now: datetime | None = None) -> tuple[list[int], list[int]]:
    """(due epochs newest first, every known epoch with retained backups in *sink*)."""
    now = now or datetime.now(timezone.utc)
    every = timedelta(days=int(settings.drill.get("every_days") or 30))
    report = epochs_report([sink], cluster=settings.cluster, policy=settings.retention, history=history, now=now)
    known = sorted((r.epoch for r in report.rows if r.epoch is not None and r.backups), reverse=True)
    last = drilled(journal_entries)
    return [k for k in known if k not in last or now - last[k] > every], known


def split_lines(lines: Sequence[str | bytearray], history: EpochHistory,
                epochs: Sequence[int]) -> tuple[dict[int, list[Any]], list[int]]:
    """(the share lines of each epoch in *epochs*, the epochs of lines left out because their epoch is not
    due). A line no epoch's verifiers claim goes to the first due epoch, whose checks refuse it."""
    out: dict[int, list[Any]] = {k: [] for k in epochs}
    unused: list[int] = []
    for line in lines:
        owner = _owner(line, history)
        if owner is not None and owner not in out:
            unused.append(owner)
            continue
        out[owner if owner is not None else epochs[0]].append(line)
    return out, unused


def _owner(line: str | bytearray, history: EpochHistory) -> int | None:
    try:
        held = read_share_lines([line], manifest=None)
    except VaultOpsError:
        return None
    try:
        return next((ep.number for s in held.shares for ep, _ in history.owners(s)), None)
    finally:
        held.wipe()

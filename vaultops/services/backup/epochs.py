"""`vaultops backup epochs`: which unseal shares the retained backups need, and whether they still exist.

    report = epochs_report(sinks, settings, history, now=now)   # history: ceremony.epochs.load_epochs
    report.rows        # per key epoch: backups, oldest/newest, keyholders, reachable, when it ages out
    report.unopenable  # epochs with retained backups whose keyholders (minus departures) miss the threshold
    announce_retired(report, journal, cluster=...)   # once per epoch: its shares may be destroyed

A backup's epoch is the one its manifest records (`key_epoch`, read from the cluster at snapshot
time and matched against the keyholder manifest; keyepoch.py). A backup written before epochs were
recorded is placed by its time in the keyholder manifest's history and marked `inferred`; one
recorded as unknown stays unknown. When the last backup of an old epoch ages out the shares of that
epoch open nothing any more: the journal says so once (`keyholders.epoch_retired`), and only when
every sink was read and no backup of unknown epoch could still need them.

"Ages out" is an estimate from backup.retention: a backup kept by a daily/weekly/... slot leaves
when that many newer slots are filled (so, with backups continuing on schedule, at the slot's start
plus N periods); one kept only by keep_last/min_keep leaves after that many newer backups, no date.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from vaultops.errors import VaultOpsError
from vaultops.services.backup.catalog import list_backups, read_manifests
from vaultops.services.backup.manifest import BackupEntry, Manifest
from vaultops.services.backup.retention import RetentionPolicy, plan
from vaultops.storage.base import Sink

if TYPE_CHECKING:
    from vaultops.journal import Journal
    from vaultops.services.ceremony.epochs import Epoch, EpochHistory

RETIRED = "keyholders.epoch_retired"
_PERIOD = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1),
           "monthly": timedelta(days=31)}


@dataclass(frozen=True)
class Placed:
    """A retained backup and the key epoch it opens with."""

    entry: BackupEntry
    sink: str
    epoch: int | None            # None: unknown
    inferred: bool = False       # not recorded in its manifest: placed by its time
    ages_out: datetime | None = None
    kept_by_count: bool = False  # kept by keep_last/min_keep only: leaves after newer backups, no date


@dataclass
class EpochRow:
    epoch: int | None                       # None: the backups of unknown epoch
    current: bool = False
    backups: list[Placed] = field(default_factory=list)
    threshold: int | None = None
    shares: int | None = None
    keyholders: list[str] = field(default_factory=list)
    departed: list[str] = field(default_factory=list)
    started: datetime | None = None
    ended: datetime | None = None

    @property
    def reachable(self) -> bool | None:
        if self.epoch is None or self.threshold is None:
            return None
        return len([k for k in self.keyholders if k not in self.departed]) >= self.threshold

    @property
    def ages_out(self) -> datetime | None:
        """When the last of its backups leaves retention (None: not by date, or never before newer ones)."""
        if not self.backups or any(p.kept_by_count or p.ages_out is None for p in self.backups):
            return None
        return max(p.ages_out for p in self.backups if p.ages_out is not None)

    def to_dict(self) -> dict[str, Any]:
        times = sorted(p.entry.time for p in self.backups)
        return {"epoch": self.epoch, "current": self.current, "backups": len(self.backups),
                "names": [p.entry.name for p in sorted(self.backups, key=lambda p: p.entry.time)],
                "oldest": times[0].isoformat() if times else None,
                "newest": times[-1].isoformat() if times else None,
                "threshold": self.threshold, "shares": self.shares, "keyholders": self.keyholders,
                "departed": self.departed, "reachable": self.reachable,
                "ages_out": self.ages_out.isoformat() if self.ages_out else None,
                "ages_out_by_count": any(p.kept_by_count for p in self.backups),
                "inferred": sum(1 for p in self.backups if p.inferred),
                "started": self.started.isoformat() if self.started else None,
                "ended": self.ended.isoformat() if self.ended else None}


@dataclass
class EpochsReport:
    cluster: str
    sinks: list[str]
    rows: list[EpochRow]
    current: int | None
    retired: list[int] = field(default_factory=list)   # older epochs no retained backup needs
    problems: list[str] = field(default_factory=list)  # sinks that could not be read, no manifest...
    complete: bool = True                              # every sink was read

    @property
    def unopenable(self) -> list[int]:
        return [r.epoch for r in self.rows if r.epoch is not None and r.backups and r.reachable is False]

    @property
    def unknown(self) -> int:
        return sum(len(r.backups) for r in self.rows if r.epoch is None)

    def row(self, epoch: int | None) -> EpochRow | None:
        return next((r for r in self.rows if r.epoch == epoch), None)

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "sinks": self.sinks, "current_epoch": self.current,
                "epochs": [r.to_dict() for r in self.rows], "unopenable_epochs": self.unopenable,
                "unknown_epoch_backups": self.unknown, "retired_epochs": self.retired,
                "problems": self.problems, "complete": self.complete}


def epoch_of(manifest: Manifest | None, entry: BackupEntry, history: EpochHistory | None) -> tuple[int | None, bool]:
    """(epoch number or None, inferred from its time)."""
    if manifest is not None and manifest.key_epoch is not None:
        return manifest.key_epoch.number, False
    if history is None:
        return None, False
    found = history.at(entry.time)
    return (found.number, True) if found is not None else (None, False)


def epochs_report(sinks: Sequence[Sink], *, cluster: str, policy: RetentionPolicy, history: EpochHistory | None,
                  now: datetime | None = None, warn: Callable[[str], None] = lambda _m: None) -> EpochsReport:
    now = now or datetime.now(timezone.utc)
    report = EpochsReport(cluster, [s.name for s in sinks], [], history.current.number if history else None)
    if history is None:
        report.problems.append("no keyholder manifest: epochs are only what the backups recorded")
    placed: list[Placed] = []
    for sink in sinks:
        try:
            placed += _placed(sink, cluster, policy, history)
        except VaultOpsError as exc:
            report.complete = False
            report.problems.append(f"{sink.name}: not read: {exc}")
            warn(f"{sink.name}: not read: {exc}")
    report.rows = _rows(placed, history)
    report.retired = _retired(report, placed, history)
    return report


def _placed(sink: Sink, cluster: str, policy: RetentionPolicy, history: EpochHistory | None) -> list[Placed]:
    entries = list_backups(sink, cluster=cluster)
    kept = {d.entry.name: d for d in plan(entries, policy)}
    retained = [e for e in entries if e.verified and kept[e.name].keep]
    manifests = read_manifests(sink, retained)
    out = []
    for e in retained:
        number, inferred = epoch_of(manifests.get(e.name), e, history)
        until, by_count = _ages_out(e, kept[e.name].reasons, policy)
        out.append(Placed(e, sink.name, number, inferred, until, by_count))
    return out


def _ages_out(entry: BackupEntry, reasons: Sequence[str], policy: RetentionPolicy) -> tuple[datetime | None, bool]:
    """(estimated time it leaves retention, kept only by a count): see the module docstring."""
    dated = []
    for reason in reasons:
        tier = reason.split(" ", 1)[0]
        if tier in _PERIOD:
            dated.append(_slot_start(entry.time, tier) + _PERIOD[tier] * getattr(policy, tier))
    if dated:
        return max(dated), False
    return None, bool(reasons)


def _slot_start(t: datetime, tier: str) -> datetime:
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"hourly": t.replace(minute=0, second=0, microsecond=0), "daily": day,
            "weekly": day - timedelta(days=day.weekday()), "monthly": day.replace(day=1)}[tier]


def _rows(placed: list[Placed], history: EpochHistory | None) -> list[EpochRow]:
    rows: dict[int | None, EpochRow] = {}
    if history is not None:
        rows[history.current.number] = _row(history.current, history, current=True)
    for p in placed:
        if p.epoch not in rows:
            epoch = history.get(p.epoch) if history is not None and p.epoch is not None else None
            rows[p.epoch] = _row(epoch, history) if epoch is not None and history else EpochRow(p.epoch)
        rows[p.epoch].backups.append(p)
    return sorted(rows.values(), key=lambda r: (r.epoch is None, r.epoch or 0))


def _row(epoch: Epoch, history: EpochHistory, *, current: bool = False) -> EpochRow:
    names = [k.name for k in epoch.keyholders]
    return EpochRow(epoch.number, current, [], epoch.threshold, epoch.shares, names,
                    sorted(history.departed & set(names)), epoch.started, epoch.ended)


def _retired(report: EpochsReport, placed: list[Placed], history: EpochHistory | None) -> list[int]:
    """Older epochs whose shares no retained backup needs -- only when that is known for sure."""
    if history is None or not report.complete:
        return []
    needed = {p.epoch for p in placed}
    unknown_times = [p.entry.time for p in placed if p.epoch is None]
    out = []
    for ep in history.epochs[:-1]:
        if ep.number in needed or any(ep.ended is None or t < ep.ended for t in unknown_times):
            continue
        out.append(ep.number)
    return out


def announce_retired(report: EpochsReport, history: EpochHistory | None, journal: Journal, *,
                     cluster: str) -> list[int]:
    """Journal once per epoch that its shares may be destroyed; returns the epochs announced now."""
    if history is None or not report.retired:
        return []
    done = {e.get("details", {}).get("epoch") for e in journal.entries()
            if e.get("action") == RETIRED and e.get("cluster") == cluster}
    announced = []
    for number in report.retired:
        if number in done:
            continue
        ep = history.number(number)
        journal.append(RETIRED, cluster=cluster, details={
            "epoch": number, "keyholders": [k.name for k in ep.keyholders],
            "message": f"no retained backup needs the shares of key epoch {number} any more: its keyholders "
                       "may destroy those shares (the current epoch's shares are not affected)"})
        announced.append(number)
    return announced

"""Retention plans: keep-last / hourly / daily / weekly / monthly tiers, GFS style.

Each tier keeps the newest verified backup in each of its N most recent buckets (UTC hour,
day, ISO week, month); keep_last keeps the newest N outright. The newest `min_keep` verified
backups are never deleted, whatever the tiers say (and never fewer than one: the newest verified
backup is always kept). Unverified backups (a failed re-verify, an interrupted publish) are
deleted only when a newer verified backup exists. Pure functions: the plan is computed from a
listing, and applied elsewhere.

Times are the trusted times of manifest.entries_from_listing. An UNTRUSTED entry (dated in the
future, after the sink stored it, or impossibly) fills no slot, makes no other entry
deletable, and is itself kept and reported, never deleted: it may be a real backup from a host
whose clock was wrong, and deciding that is for a person (delete it by hand).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vaultops.errors import ConfigError
from vaultops.services.backup.manifest import BackupEntry, State

TIERS: dict[str, Callable[[datetime], tuple[int, ...]]] = {
    "hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: tuple(t.isocalendar()[:2]),
    "monthly": lambda t: (t.year, t.month),
}


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    min_keep: int = 1

    @classmethod
    def from_settings(cls, raw: dict[str, Any]) -> RetentionPolicy:
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"backup.retention: unknown key {sorted(unknown)[0]!r}",
                              hint="keys: keep_last, hourly, daily, weekly, monthly, min_keep")
        values: dict[str, int] = {}
        for key, value in raw.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"backup.retention.{key} must be a whole number >= 0", hint="e.g. daily: 7")
            values[key] = value
        policy = cls(**values)
        if policy.min_keep < 1:
            raise ConfigError("backup.retention.min_keep must be at least 1",
                              hint="retention never deletes the newest verified backup")
        return policy

    @property
    def empty(self) -> bool:
        return not (self.keep_last or self.hourly or self.daily or self.weekly or self.monthly)


@dataclass(frozen=True)
class Decision:
    entry: BackupEntry
    keep: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)


UNTRUSTED_REASON = "untrusted ({}): never counted nor deleted by retention; check it and delete it by hand"


def plan(entries: list[BackupEntry], policy: RetentionPolicy) -> list[Decision]:
    """A keep/delete decision for every entry, newest first."""
    ordered = sorted(entries, key=lambda e: e.time, reverse=True)
    verified = [e for e in ordered if e.verified]
    reasons: dict[str, list[str]] = {e.name: [] for e in ordered}
    min_keep = max(policy.min_keep, 1)
    for i, entry in enumerate(verified):
        if i < min_keep:
            reasons[entry.name].append(f"min_keep {i + 1}/{min_keep}")
        if i < policy.keep_last:
            reasons[entry.name].append(f"last {i + 1}/{policy.keep_last}")
    for tier, bucket_of in TIERS.items():
        limit = getattr(policy, tier)
        seen: list[tuple[int, ...]] = []
        for entry in verified:
            bucket = bucket_of(entry.time)
            if bucket in seen or len(seen) >= limit:
                continue
            seen.append(bucket)
            reasons[entry.name].append(f"{tier} {len(seen)}/{limit}")
    newest_verified = verified[0].time if verified else None
    decisions = []
    for entry in ordered:
        why = reasons[entry.name]
        if entry.state is State.UNTRUSTED:
            why.append(UNTRUSTED_REASON.format(entry.problem))
        elif not entry.verified:
            if newest_verified is None or entry.time >= newest_verified:
                why.append(f"{entry.state.value}, no newer verified backup")
        decisions.append(Decision(entry, keep=bool(why), reasons=tuple(why)))
    return decisions

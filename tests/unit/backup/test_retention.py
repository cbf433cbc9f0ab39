from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from vaultops.errors import ConfigError
from vaultops.services.backup.manifest import BackupEntry, State, backup_name, entries_from_listing, parse_name
from vaultops.services.backup.retention import RetentionPolicy, plan
from vaultops.storage.base import ObjectInfo

T0 = datetime(2025, 3, 31, 23, 0, tzinfo=timezone.utc)


def entry(i: int, *, hours: float, state: State = State.VERIFIED) -> BackupEntry:
    when = T0 - timedelta(hours=hours)
    return BackupEntry(backup_name("prod", when, "snap"), "prod", when, 100, state)


def kept(decisions) -> list[str]:
    return [d.entry.name for d in decisions if d.keep]


def test_names_sort_by_time_and_parse_back() -> None:
    times = [T0 + timedelta(milliseconds=ms) for ms in (5, 1000, 61_000, 3_600_000, 86_400_000 * 40)]
    names = [backup_name("prod-eu", t, "snap") for t in reversed(times)]
    assert sorted(names) == [backup_name("prod-eu", t, "snap") for t in times]
    assert parse_name(names[0]) == ("prod-eu", times[-1])
    assert parse_name("prod.snap") is None


def test_keep_last_and_min_keep() -> None:
    entries = [entry(i, hours=i) for i in range(10)]
    decisions = plan(entries, RetentionPolicy(keep_last=3, min_keep=1))
    assert kept(decisions) == [e.name for e in entries[:3]]
    decisions = plan(entries, RetentionPolicy(keep_last=1, min_keep=4))
    assert kept(decisions) == [e.name for e in entries[:4]]
    assert "min_keep 4/4" in decisions[3].reasons


def test_tiers_keep_newest_per_bucket() -> None:
    # one backup every 6 hours for 100 days
    entries = [entry(i, hours=6 * i) for i in range(400)]
    decisions = plan(entries, RetentionPolicy(daily=7, weekly=4, monthly=3, min_keep=1))
    names = kept(decisions)
    daily = [d for d in decisions if any(r.startswith("daily") for r in d.reasons)]
    assert len(daily) == 7
    days = [d.entry.time.date() for d in daily]
    assert len(set(days)) == 7
    # each kept daily is the newest backup of its day
    for d in daily:
        same_day = [e for e in entries if e.time.date() == d.entry.time.date()]
        assert d.entry.time == max(e.time for e in same_day)
    assert len([d for d in decisions if any(r.startswith("monthly") for r in d.reasons)]) == 3
    assert len(names) < 20


def test_plan_over_more_than_a_thousand_listed_objects() -> None:
    # 1,500 backups (3,000 objects with manifests), listed through pagination
    from vaultops.services.backup.catalog import list_backups
    from vaultops.testing.storage import FakeSink

    sink = FakeSink(page_size=1000)
    for i in range(1500):
        name = backup_name("prod", T0 - timedelta(hours=i), "snap")
        sink.objects[name] = (b"x", T0)
        sink.objects[name + ".manifest.json"] = (b"{}", T0)
    entries = list_backups(sink, cluster="prod")
    assert sink.pages_served == 3 and len(entries) == 1500
    decisions = plan(entries, RetentionPolicy(keep_last=24, daily=30, monthly=2, min_keep=3))
    keep = [d for d in decisions if d.keep]
    assert decisions[0].entry.time == T0 and decisions[0].keep
    assert 24 <= len(keep) <= 24 + 30 + 2
    assert len(decisions) == 1500
    # the oldest is only kept if a monthly bucket claims it
    assert all(d.keep == bool(d.reasons) for d in decisions)


def test_never_deletes_newest_verified_even_if_unverified_newer() -> None:
    entries = [entry(0, hours=0, state=State.FAILED), entry(1, hours=1, state=State.INCOMPLETE),
               entry(2, hours=2), entry(3, hours=3), entry(4, hours=30, state=State.FAILED)]
    decisions = plan(entries, RetentionPolicy(keep_last=1, min_keep=1))
    by = {d.entry.name: d for d in decisions}
    assert by[entries[0].name].keep and by[entries[1].name].keep  # nothing newer verified exists
    assert by[entries[2].name].keep
    assert not by[entries[3].name].keep
    assert not by[entries[4].name].keep   # failed, older than a verified backup


def test_policy_validation() -> None:
    assert RetentionPolicy.from_settings({"daily": 7}).daily == 7
    for bad in ({"daily": -1}, {"dailly": 3}, {"min_keep": 0}, {"daily": "7"}):
        with pytest.raises(ConfigError):
            RetentionPolicy.from_settings(bad)


def test_listing_states() -> None:
    n = [backup_name("c", T0 - timedelta(hours=h), "snap") for h in range(4)]
    objs = [ObjectInfo(k, 1, T0) for k in (
        n[0], n[0] + ".manifest.json",
        n[1], n[1] + ".manifest.json", n[1] + ".check-ok.json",
        n[2], n[2] + ".manifest.json", n[2] + ".check-failed.json",
        n[3], "other-20250101T000000.000Z.snap", "README")]
    states = {e.name: e.state for e in entries_from_listing(objs, cluster="c")}
    assert states == {n[0]: State.VERIFIED, n[1]: State.REVERIFIED, n[2]: State.FAILED, n[3]: State.INCOMPLETE}

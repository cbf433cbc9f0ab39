"""Key epochs of the keyholder manifest: explicit, derived from a legacy .history, departures, owners."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from vaultops.errors import UsageError
from vaultops.services.ceremony.epochs import load_epochs, record_departure
from vaultops.services.ceremony.manifest import Manifest, ScryptParams
from vaultops.services.ceremony.shares import Share

FAST = ScryptParams(n=2, r=1, p=1)
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def share(i: int, seed: int) -> Share:
    return Share(bytes([seed] * 32 + [i]))


def manifest(t: int, n: int, holders: dict[str, int], seed: int, **kw: object) -> Manifest:
    m = Manifest(cluster_id="c1", threshold=t, shares=n, **kw)  # type: ignore[arg-type]
    for name, i in holders.items():
        m = m.enroll(name, share(i, seed), params=FAST)
    return m


def test_a_manifest_without_history_is_epoch_1(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    manifest(3, 5, {"alice": 1, "bob": 2, "carol": 3}, seed=1).save(path)
    h = load_epochs(path)
    assert [e.number for e in h.epochs] == [1] and h.current.derived and h.current.started is None
    assert h.at(T0) is h.current


def test_legacy_history_is_read_as_epochs_without_migration(tmp_path: Path) -> None:
    """Three saved versions, none with `epoch`: enrolment (same epoch), then a rekey 5/3 -> 3/2."""
    path = tmp_path / "k.yaml"
    first = manifest(3, 5, {"alice": 1, "bob": 2}, seed=1)
    first.save(path, now=T0)
    first.enroll("carol", share(3, 1), params=FAST).save(path, now=T0 + timedelta(days=1))
    manifest(2, 3, {"alice": 1, "frank": 2}, seed=9).save(path, now=T0 + timedelta(days=2))
    h = load_epochs(path)
    assert [e.number for e in h.epochs] == [1, 2]
    one, two = h.epochs
    assert [k.name for k in one.keyholders] == ["alice", "bob", "carol"]  # the newest version of epoch 1
    assert one.ended == two.started == T0 + timedelta(days=2)  # when the last 5/3 version was replaced
    assert h.at(T0 + timedelta(hours=30)) is one and h.at(T0 + timedelta(days=3)) is two
    assert h.owners(share(2, 1)) == [(one, "bob")] and h.owners(share(2, 9)) == [(two, "frank")]
    assert h.owners(share(7, 1)) == []


def test_legacy_rekey_to_the_same_threshold_is_seen_by_its_new_verifiers(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    manifest(2, 3, {"alice": 1, "bob": 2}, seed=1).save(path, now=T0)
    manifest(2, 3, {"alice": 1, "bob": 2}, seed=5).save(path, now=T0 + timedelta(days=1))  # same t/n, new shares
    h = load_epochs(path)
    assert [e.number for e in h.epochs] == [1, 2] and h.owners(share(1, 1))[0][0].number == 1


def test_explicit_epoch_wins_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    started = T0 + timedelta(hours=5, milliseconds=250)
    manifest(2, 3, {"alice": 1}, seed=1, epoch=4, epoch_started=started).save(path)
    m = Manifest.load(path)
    assert (m.epoch, m.epoch_started) == (4, started)
    h = load_epochs(path)
    assert h.current.number == 4 and h.current.started == started and not h.current.derived
    assert h.at(started - timedelta(seconds=1)) is None
    with pytest.raises(UsageError, match="no key epoch 2"):
        h.number(2)


def test_departure_is_recorded_and_carried_by_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    manifest(3, 5, {"alice": 1, "bob": 2, "carol": 3}, seed=1).save(path, now=T0)
    manifest(2, 3, {"alice": 1, "frank": 2}, seed=9).save(path, now=T0 + timedelta(days=1))
    record_departure(path, "bob", left=date(2026, 2, 1))   # bob held an epoch-1 share only
    h = load_epochs(path)
    assert h.departed == {"bob"} and [e.number for e in h.epochs] == [1, 2]
    assert Manifest.load(path).epoch == 2                  # written explicitly now
    one = h.number(1)
    assert one.available(h.departed) == ["alice", "carol"] and not one.reachable(h.departed)
    assert h.current.reachable(h.departed)
    with pytest.raises(UsageError, match="held no share"):
        record_departure(path, "mallory")


def test_a_bad_epoch_value_names_the_key(tmp_path: Path) -> None:
    from vaultops.errors import ConfigError

    path = tmp_path / "k.yaml"
    manifest(1, 1, {"alice": 1}, seed=1).save(path)
    path.write_text(path.read_text() + "epoch: 0\n")
    with pytest.raises(ConfigError, match="epoch"):
        Manifest.load(path)

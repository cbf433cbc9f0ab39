"""`backup epochs` logic on a local sink: epochs placed, reachability, age-out, retirement, the metric."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

from vaultops.journal import Journal
from vaultops.services.backup import metrics
from vaultops.services.backup.epochs import RETIRED, announce_retired, epochs_report
from vaultops.services.backup.manifest import MANIFEST_SUFFIX, KeyEpoch, Manifest, backup_name
from vaultops.services.backup.retention import RetentionPolicy
from vaultops.services.ceremony.epochs import load_epochs, record_departure
from vaultops.services.ceremony.manifest import Manifest as Keyholders, ScryptParams
from vaultops.services.ceremony.shares import Share
from vaultops.storage.base import get_sink

NOW = datetime.now(timezone.utc).replace(microsecond=0)
FAST = ScryptParams(n=2, r=1, p=1)


def keyholders(tmp_path: Path) -> Path:
    """Epoch 1 (3 of 5: alice..erin) replaced 2 days ago by epoch 2 (2 of 3: alice, carol, frank)."""
    path = tmp_path / "keyholders.yaml"
    one = Keyholders(cluster_id="c1", threshold=3, shares=5)
    for i, name in enumerate(["alice", "bob", "carol", "dave", "erin"], 1):
        one = one.enroll(name, Share(bytes([1] * 32 + [i])), params=FAST)
    one.save(path)
    two = Keyholders(cluster_id="c1", threshold=2, shares=3, epoch=2, epoch_started=NOW - timedelta(days=2))
    for i, name in enumerate(["alice", "carol", "frank"], 1):
        two = two.enroll(name, Share(bytes([2] * 32 + [i])), params=FAST)
    two.save(path, now=NOW - timedelta(days=2))
    return path


def publish(sink, when: datetime, epoch: KeyEpoch | None) -> str:
    name = backup_name("prod", when, "snap")
    data = b"snapshot " + name.encode()
    sink.put_bytes(name, data)
    m = Manifest(name=name, kind="raft", cluster_name="prod", cluster_id="c1", server_version="2.7.2",
                 source_node="n1", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                 started_at=when.isoformat(timespec="milliseconds"), finished_at=when.isoformat(), key_epoch=epoch)
    sink.put_bytes(name + MANIFEST_SUFFIX, m.to_json())
    return name


def test_epochs_placed_reachability_and_age_out(tmp_path: Path) -> None:
    sink = get_sink({"type": "local", "path": str(tmp_path / "sink")})
    path = keyholders(tmp_path)
    old = publish(sink, NOW - timedelta(days=4), KeyEpoch(3, 5, number=1))
    legacy = publish(sink, NOW - timedelta(days=3), None)              # before epochs were recorded
    publish(sink, NOW - timedelta(days=1), KeyEpoch(2, 3, number=2))
    outside = publish(sink, NOW - timedelta(hours=1), KeyEpoch(2, 4, problem="rekeyed elsewhere"))
    policy = RetentionPolicy(daily=7)
    report = epochs_report([sink], cluster="prod", policy=policy, history=load_epochs(path), now=NOW)
    one, two, unknown = report.rows
    assert (one.epoch, len(one.backups), one.reachable, one.current) == (1, 2, True, False)
    assert [p.entry.name for p in one.backups if p.inferred] == [legacy]
    assert one.ages_out is not None and one.ages_out.date() == (NOW - timedelta(days=3) + timedelta(days=7)).date()
    assert (two.epoch, two.current, two.threshold, two.keyholders) == (2, True, 2, ["alice", "carol", "frank"])
    assert unknown.epoch is None and [p.entry.name for p in unknown.backups] == [outside]
    assert report.unopenable == [] and report.unknown == 1 and report.retired == []
    # bob and dave leave: epoch 1 has alice, carol, erin... erin too: 2 of 3 needed
    for name in ("bob", "dave", "erin"):
        record_departure(path, name)
    report = epochs_report([sink], cluster="prod", policy=policy, history=load_epochs(path), now=NOW)
    assert report.unopenable == [1] and report.rows[0].departed == ["bob", "dave", "erin"]
    assert report.to_dict()["epochs"][0]["names"] == [old, legacy]
    target = metrics.write_epochs(tmp_path / "backup.prom", cluster="prod", unopenable=1, unknown=1)
    assert 'vaultops_backup_unopenable_epochs{cluster="prod"} 1' in target.read_text()


def test_retired_epoch_announced_once_and_only_when_certain(tmp_path: Path) -> None:
    sink = get_sink({"type": "local", "path": str(tmp_path / "sink")})
    path = keyholders(tmp_path)
    publish(sink, NOW - timedelta(days=1), KeyEpoch(2, 3, number=2))
    journal = Journal(tmp_path / "journal.jsonl")
    history = load_epochs(path)
    unknown = publish(sink, NOW - timedelta(days=3), KeyEpoch(3, 5, problem="no keyholder manifest"))
    report = epochs_report([sink], cluster="prod", policy=RetentionPolicy(daily=7), history=history, now=NOW)
    assert report.retired == []            # an unknown backup from epoch 1's time may still need its shares
    sink.delete(unknown + MANIFEST_SUFFIX)
    sink.delete(unknown)
    report = epochs_report([sink], cluster="prod", policy=RetentionPolicy(daily=7), history=history, now=NOW)
    assert report.retired == [1] and report.unopenable == []
    assert announce_retired(report, history, journal, cluster="prod") == [1]
    assert announce_retired(report, history, journal, cluster="prod") == []
    (entry,) = [e for e in journal.entries() if e["action"] == RETIRED]
    assert entry["details"]["epoch"] == 1 and "may destroy" in entry["details"]["message"]
    assert epochs_report([sink], cluster="prod", policy=RetentionPolicy(daily=7), history=None).retired == []


def test_due_epochs_and_share_lines_split_by_epoch(tmp_path: Path) -> None:
    import base64

    from vaultops.services.backup.drill_due import due_epochs, split_lines
    from vaultops.services.backup.settings import BackupSettings

    sink = get_sink({"type": "local", "path": str(tmp_path / "sink")})
    history = load_epochs(keyholders(tmp_path))
    publish(sink, NOW - timedelta(days=4), KeyEpoch(3, 5, number=1))
    publish(sink, NOW - timedelta(days=1), KeyEpoch(2, 3, number=2))
    settings = BackupSettings(cluster="prod", source="raft", sinks=(), retention=RetentionPolicy(keep_last=5),
                              drill={"every_days": 7})
    drill = {"action": "backup.drill", "outcome": "ok", "details": {"epoch": 2}}
    assert due_epochs(sink, settings, history, [], now=NOW) == ([2, 1], [2, 1])
    assert due_epochs(sink, settings, history, [drill | {"time": (NOW - timedelta(days=1)).isoformat()}],
                      now=NOW)[0] == [1]
    assert due_epochs(sink, settings, history, [drill | {"time": (NOW - timedelta(days=9)).isoformat()},
                                                {**drill, "outcome": "failed", "time": NOW.isoformat()}],
                      now=NOW)[0] == [2, 1]
    old = f"bob: {base64.b64encode(bytes([1] * 32 + [2])).decode()}"
    new = f"frank: {base64.b64encode(bytes([2] * 32 + [3])).decode()}"
    stranger = base64.b64encode(bytes([7] * 32 + [9])).decode()
    assert split_lines([old, new, stranger], history, [2, 1]) == ({2: [new, stranger], 1: [old]}, [])
    assert split_lines([old, new], history, [2]) == ({2: [new]}, [1])


def test_key_epoch_matched_against_the_manifest_and_said_before_a_restore(tmp_path: Path) -> None:
    from vaultops.services.backup.keyepoch import match, restore_notice

    path = keyholders(tmp_path)
    warnings: list[str] = []
    assert match(KeyEpoch(2, 3), path, warn=warnings.append) == KeyEpoch(2, 3, number=2) and not warnings
    outside = match(KeyEpoch(2, 4), path, warn=warnings.append)
    assert outside.number is None and "reports 2 of 4 shares" in (outside.problem or "") and warnings
    sink = get_sink({"type": "local", "path": str(tmp_path / "sink")})
    from vaultops.services.backup.stored import read_manifest

    history = load_epochs(path)
    old = read_manifest(sink, publish(sink, NOW - timedelta(days=4), KeyEpoch(3, 5, number=1)))
    text, number = restore_notice(old, history)
    assert number == 1 and "ONLY with epoch-1 shares (3 of 5), held by alice, bob, carol, dave, erin" in text
    assert "NOT the current epoch (2)" in text
    legacy = read_manifest(sink, publish(sink, NOW - timedelta(days=1), None))   # placed by its time
    assert restore_notice(legacy, history)[1] == 2
    unknown = read_manifest(sink, publish(sink, NOW - timedelta(hours=1), outside))
    text, number = restore_notice(unknown, history)
    assert number is None and text.startswith("KEY EPOCH UNKNOWN") and "(2 of 4)" in text

"""Hostile clocks and names in a sink: retention and 'latest' go by trusted time, not by names.

An object's name is only a claim. Objects named in the future, named after the sink stored
them, named with impossible dates, or vouched for by a manifest that does not match, must
never take a keep slot, never make a real backup deletable, never be picked as the newest
(restore/verify/inspect latest, drill), and never crash list/prune/verify. They are reported.
Backups come from vaultops.testing.consul_double (no server to start).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from vaultops.cli import main
from vaultops.services.backup.catalog import newest
from vaultops.services.backup.manifest import SKEW, State, backup_name, entries_from_listing
from vaultops.services.backup.retention import RetentionPolicy, plan
from vaultops.storage.base import ObjectInfo
from vaultops.storage.local import LocalSink
from vaultops.testing.consul_double import ConsulDouble

FUTURE = ["unit-20990101T000000.000Z.snap", "unit-20990101T000001.000Z.snap"]
IMPOSSIBLE = ["unit-20251345T000000.000Z.snap", "unit-20250230T120000.000Z.snap", "unit-00000101T000000.000Z.snap",
              "unit-20250101T246060.000Z.snap"]


@pytest.fixture
def consul() -> Any:
    double = ConsulDouble().start()
    yield double
    double.stop()


class Setup:
    def __init__(self, tmp_path: Path, consul: ConsulDouble, backup: dict[str, Any]) -> None:
        self.consul, self.out = consul, tmp_path / "out"
        token = tmp_path / "consul-token"
        token.write_text(consul.token)
        self.cfg = tmp_path / "vaultops.yaml"
        self.cfg.write_text(yaml.safe_dump({
            "cluster": {"name": "unit", "storage": "consul"},
            "nodes": [{"name": "n1", "address": "http://127.0.0.1:9"}],
            "journal": {"path": str(tmp_path / "journal.jsonl")},
            "backup": {"sinks": [{"type": "local", "path": str(self.out)}],
                       "consul": {"address": consul.address, "token_file": str(token)},
                       "state_file": str(tmp_path / "last-run.json"), "lock_file": str(tmp_path / "lock"),
                       **backup}}))

    def cli(self, *argv: str) -> int:
        return main(["--config", str(self.cfg), *argv])

    def backup(self, value: bytes) -> str:
        self.consul.kv["vault/sentinel"] = value
        before = set(self.snaps())
        assert self.cli("backup", "run") == 0
        time.sleep(0.01)  # names have millisecond resolution
        made = [n for n in self.snaps() if n not in before]
        assert len(made) == 1
        return made[0]

    def snaps(self) -> list[str]:
        if not self.out.exists():
            return []
        return sorted(p.name for p in self.out.iterdir() if p.name.endswith(".snap"))

    def plant(self, name: str, *, like: str, manifest: bool = True, mtime: float | None = None) -> None:
        """A copy of the backup *like* under another name (its manifest copied as is)."""
        shutil.copy(self.out / like, self.out / name)
        if manifest:
            shutil.copy(self.out / f"{like}.manifest.json", self.out / f"{name}.manifest.json")
        if mtime is not None:
            os.utime(self.out / name, (mtime, mtime))


def events(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


@pytest.fixture
def setup(tmp_path: Path, consul: ConsulDouble) -> Setup:
    return Setup(tmp_path, consul, {"retention": {"keep_last": 2, "min_keep": 1}})


def test_future_names_take_no_keep_slot_and_are_not_deleted(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    real = [setup.backup(b"v%d" % i) for i in range(4)]
    for name in FUTURE:
        setup.plant(name, like=real[0])
    capsys.readouterr()
    assert setup.cli("backup", "prune", "--format", "json") == 0
    captured = capsys.readouterr()
    plan_rows = {p["name"]: p for p in json.loads(captured.out)[0]["plan"]}
    assert {n for n, p in plan_rows.items() if p["action"] == "keep"} == set(real[2:]) | set(FUTURE)
    assert all(plan_rows[n]["state"] == "untrusted" and "future" in plan_rows[n]["reasons"] for n in FUTURE)
    assert setup.snaps() == sorted(real[2:] + FUTURE)
    reported = [e["name"] for e in events(captured.err) if e["event"] == "prune.untrusted"]
    assert sorted(reported) == FUTURE


def test_prune_after_run_keeps_each_new_backup(tmp_path: Path, consul: ConsulDouble) -> None:
    setup = Setup(tmp_path, consul, {"retention": {"keep_last": 1, "min_keep": 1}, "prune_after_run": True})
    first = setup.backup(b"first")
    for name in FUTURE:
        setup.plant(name, like=first)
    for i in range(3):
        newest_name = setup.backup(b"run %d" % i)
        assert setup.snaps() == sorted([newest_name, *FUTURE]), "the new backup was pruned"


@pytest.mark.parametrize("command", ["verify", "inspect", "restore", "drill"])
def test_latest_ignores_untrusted_names_with_a_warning(setup: Setup, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    old = setup.backup(b"old")
    real = setup.backup(b"newest")
    for name in FUTURE:
        setup.plant(name, like=old)
    setup.plant(IMPOSSIBLE[0], like=old)
    capsys.readouterr()
    if command == "drill":  # the drill's newest selection; Consul backups then stop it with a named error
        monkeypatch.setattr("sys.stdin", io.StringIO("share\n"))
        assert setup.cli("backup", "drill", "--no-sentinels", "--no-manifest") == 2  # Consul: a named refusal
    else:
        argv = {"verify": ["verify", "--format", "json"], "inspect": ["inspect", "--format", "json"],
                "restore": ["restore", "latest", "--yes", "--format", "json"]}[command]
        assert setup.cli("backup", *argv) == 0
    captured = capsys.readouterr()
    assert real in captured.out + captured.err
    assert not any(name in captured.out for name in FUTURE)
    warnings = [e["message"] for e in events(captured.err) if e["event"] == "warning"]
    assert any(FUTURE[0] in w and "future" in w for w in warnings)
    assert any(IMPOSSIBLE[0] in w and "impossible" in w for w in warnings)
    if command == "restore":
        assert setup.consul.restores == 1 and setup.consul.kv["vault/sentinel"] == b"newest"


@pytest.mark.parametrize("name", IMPOSSIBLE)
def test_impossible_dates_are_reported_not_crashing(setup: Setup, capsys: pytest.CaptureFixture[str],
                                                    name: str) -> None:
    real = setup.backup(b"v")
    setup.plant(name, like=real)
    capsys.readouterr()
    assert setup.cli("backup", "list", "--format", "json") == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["backups"]}
    assert rows[name]["state"] == "untrusted" and "impossible" in rows[name]["problem"]
    assert setup.cli("backup", "prune", "--dry-run") == 0
    assert setup.cli("backup", "verify") == 0
    assert setup.cli("backup", "verify", name) == 0  # an explicit name is still verifiable
    assert "Traceback" not in capsys.readouterr().err


def test_a_plausible_name_with_a_borrowed_manifest_is_not_the_newest(setup: Setup,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Dated two seconds ahead (within the skew allowance), stored now, but its manifest belongs to
    another backup."""
    real = setup.backup(b"real")
    fake = backup_name("unit", datetime.now(timezone.utc) + timedelta(seconds=2), "snap")
    assert fake > real
    setup.plant(fake, like=real)
    capsys.readouterr()
    assert setup.cli("backup", "verify", "--format", "json") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["name"] == real
    assert any(fake in e["message"] and "manifest" in e["message"] for e in events(captured.err)
               if e["event"] == "warning")
    assert setup.cli("backup", "prune", "--dry-run", "--format", "json") == 0
    rows = {p["name"]: p for p in json.loads(capsys.readouterr().out)[0]["plan"]}
    assert rows[fake]["state"] == "untrusted" and rows[real]["action"] == "keep"


def test_a_name_dated_after_its_object_was_stored(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    """Named an hour ago but the file was written three hours ago: nothing is stored before it is taken."""
    real = setup.backup(b"real")
    now = datetime.now(timezone.utc)
    early = backup_name("unit", now - timedelta(hours=1), "snap")
    copied = backup_name("unit", now - timedelta(hours=5), "snap")
    setup.plant(early, like=real, mtime=(now - timedelta(hours=3)).timestamp())
    setup.plant(copied, like=real, mtime=(now - timedelta(hours=2)).timestamp())  # a copy: stored later, fine
    capsys.readouterr()
    assert setup.cli("backup", "list", "--format", "json") == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["backups"]}
    assert rows[early]["state"] == "untrusted" and "after the sink stored it" in rows[early]["problem"]
    assert rows[copied]["state"] == "verified"


# -- the rules, without a sink ------------------------------------------------------------------

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def listing(*items: tuple[datetime, datetime]) -> list[ObjectInfo]:
    objs = []
    for taken, stored in items:
        name = backup_name("c", taken, "snap")
        objs += [ObjectInfo(name, 10, stored), ObjectInfo(name + ".manifest.json", 1, stored)]
    return objs


@pytest.mark.parametrize(("ahead", "trusted"), [(timedelta(0), True), (SKEW - timedelta(seconds=1), True),
                                                (SKEW + timedelta(seconds=1), False), (timedelta(days=3), False)])
def test_clock_skew_allowance(ahead: timedelta, trusted: bool) -> None:
    """Our clock behind the writer's by less than SKEW is tolerated; more is not."""
    [entry] = entries_from_listing(listing((NOW + ahead, NOW + ahead)), cluster="c", now=NOW)
    assert (entry.state is State.VERIFIED) is trusted


def test_untrusted_entries_never_make_real_ones_deletable() -> None:
    real = listing(*[(NOW - timedelta(hours=h), NOW - timedelta(hours=h)) for h in range(1, 6)])
    hostile = listing((NOW + timedelta(days=365), NOW), (NOW - timedelta(minutes=1), NOW - timedelta(hours=9)))
    entries = entries_from_listing(real + hostile, cluster="c", now=NOW)
    decisions = plan(entries, RetentionPolicy(keep_last=2, daily=1, min_keep=1))
    kept = {d.entry.name for d in decisions if d.keep}
    untrusted = {e.name for e in entries if e.state is State.UNTRUSTED}
    assert len(untrusted) == 2 and untrusted <= kept
    newest_real = backup_name("c", NOW - timedelta(hours=1), "snap")
    assert newest_real in kept and backup_name("c", NOW - timedelta(hours=2), "snap") in kept
    assert backup_name("c", NOW - timedelta(hours=5), "snap") not in kept


def test_newest_of_a_sink_with_only_untrusted_entries_is_an_error(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path)
    for name in FUTURE:
        (tmp_path / name).write_bytes(b"x")
        (tmp_path / (name + ".manifest.json")).write_bytes(b"{}")
    seen: list[str] = []
    from vaultops.errors import BackupError
    with pytest.raises(BackupError, match="no verified backup"):
        newest(sink, cluster="unit", warn=seen.append)
    assert len(seen) == 2

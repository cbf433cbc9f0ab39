"""`backup drill` checks every input before anything is fetched or restored (issue 15, defect 3).

A Raft backup is published into a local sink by the real runner (a snapshot in the real archive
format); the drill's fetch and sandbox are replaced by tripwires, so any test that reaches them
fails: every refusal here happens before the restore would have started.
"""

from __future__ import annotations

import io
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from vaultops import releases
from vaultops.cli import main
from vaultops.config import parse_config_file
from vaultops.services.backup import drill
from vaultops.services.backup.runner import _run, build_sinks
from vaultops.services.backup.settings import load_settings
from vaultops.services.backup.sources import OpenSnapshot, SnapshotInfo
from vaultops.services.backup.verify import ArchiveKind, ArchiveVerifier
from vaultops.services.ceremony import shares as codec
from vaultops.services.ceremony.manifest import Keyholder, Manifest, ScryptParams, make_verifier
from vaultops.testing.snapshots import make_archive, raft_meta

FAST = ScryptParams(n=16, r=1, p=1)   # verifiers as real as any, cheap to compute
NAMES = ("alice", "bob", "carol")
RNG = random.Random(15)
ARCHIVE = make_archive(entries=[("logical/k", RNG.randbytes(500))], meta=raft_meta(index=9, term=2))


def share_bytes(index: int, rng: random.Random = RNG) -> bytes:
    return rng.randbytes(32) + bytes([index])


REAL_ENSURE = releases.ensure
OLD = {n: share_bytes(i) for i, n in enumerate(NAMES, 1)}


class ArchiveSource:
    kind, extension = "raft", "snap"

    def verifier(self, *, on_state: Any = None) -> ArchiveVerifier:
        return ArchiveVerifier(ArchiveKind.RAFT)

    def open(self) -> Any:
        import contextlib

        @contextlib.contextmanager
        def opened() -> Any:
            yield OpenSnapshot(SnapshotInfo(source_node="node1", cluster_id="cid-1", server_version="2.7.2"),
                               iter([ARCHIVE]))
        return opened()


def keyholder_manifest(raw: dict[str, bytes], *, cluster_id: str = "cid-1", threshold: int = 2) -> Manifest:
    return Manifest(cluster_id=cluster_id, threshold=threshold, shares=3,
                    keyholders=tuple(Keyholder(n, s[-1], make_verifier(s, params=FAST)) for n, s in raw.items()))


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A config with a local sink holding one verified Raft backup, a keyholder manifest, and tripwires."""
    import yaml

    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(tmp_path / "state"))
    doc = {"cluster": {"name": "unit", "storage": "raft"},
           "nodes": [{"name": "node1", "address": "http://127.0.0.1:1"}],
           "journal": {"path": str(tmp_path / "journal.jsonl")},
           "keyholders": {"manifest": str(tmp_path / "keyholders.yaml")},
           "backup": {"sinks": [{"type": "local", "path": str(tmp_path / "out")}],
                      "drill": {"sentinels": ["secret/data/sentinel"]}}}
    (tmp_path / "vaultops.yaml").write_text(yaml.safe_dump(doc))
    keyholder_manifest(OLD).save(tmp_path / "keyholders.yaml")
    cfg = parse_config_file(tmp_path / "vaultops.yaml")
    settings = load_settings(cfg)
    result = _run(settings, ArchiveSource(), build_sinks(cfg, settings), emit=lambda *_a, **_k: None)  # type: ignore[arg-type]
    assert result.ok
    reached: list[str] = []

    def tripwire(what: str) -> Any:
        def trip(*args: Any, **kwargs: Any) -> Any:
            reached.append(what)
            raise AssertionError(f"the drill reached {what}")
        return trip
    monkeypatch.setattr(drill, "fetched", tripwire("fetch"))
    monkeypatch.setattr(drill, "scratch_sandbox", tripwire("sandbox"))
    versions: list[str | None] = []
    monkeypatch.setattr("vaultops.releases.ensure", lambda v=None: versions.append(v))
    return {"dir": tmp_path, "config": str(tmp_path / "vaultops.yaml"), "reached": reached, "versions": versions,
            "settings": settings, "sink": build_sinks(cfg, settings)[0], "backup": result.name}


def run_drill_cli(setup: dict[str, Any], stdin: Any, *extra: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin) if isinstance(stdin, str) else stdin)
    return main(["--config", setup["config"], "backup", "drill", *extra])


def lines(raw: dict[str, bytes], fmt: str = "named", codec_name: str = "base64") -> str:
    out = []
    for name, s in raw.items():
        text = codec.encode(s, codec_name)
        out.append(f"{name}: {text}" if fmt == "named" else text)
    return "\n".join(out) + "\n"


# -- the share format of `unseal --share-stdin` -------------------------------------------------------


@pytest.mark.parametrize("fmt,codec_name", [("named", "base64"), ("bare", "base64"), ("named", "hex"),
                                            ("bare", "mnemonic")])
def test_shares_are_read_like_unseal_share_stdin_and_checked(setup: dict[str, Any], fmt: str,
                                                            codec_name: str) -> None:
    plan = drill.plan_drill(setup["settings"], setup["sink"], lines=lines(OLD, fmt, codec_name).splitlines(),
                            name=None, keyholder_manifest=setup["dir"] / "keyholders.yaml")
    try:
        assert plan.shares.keyholders == list(NAMES) and plan.shares.checked
        assert [bytes(s.raw) for s in plan.shares.shares] == list(OLD.values())
        assert plan.name == setup["backup"] and plan.version == "2.7.2" and setup["versions"] == ["2.7.2"]
        assert "alice" in repr(plan.shares) and codec.encode(OLD["alice"], "base64") not in repr(plan.shares)
    finally:
        plan.wipe()
    assert all(not any(s.raw) for s in plan.shares.shares)  # wiped


def test_a_share_of_the_wrong_keyholder_is_refused_before_the_restore(setup: dict[str, Any], capsys: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    swapped = {"alice": OLD["bob"], "bob": OLD["alice"]}
    assert run_drill_cli(setup, lines(swapped), monkeypatch=monkeypatch) == 3
    err = capsys.readouterr().err
    assert "line 1" in err and "belongs to keyholder bob, not to alice" in err
    assert codec.encode(OLD["bob"], "base64") not in err
    assert setup["reached"] == []


@pytest.mark.parametrize("stdin,needle", [
    ("", "no unseal shares given"),
    ("\n\n", "no unseal shares given"),
    ("alice: not-a-share\n", "line 1"),
])
def test_no_or_bad_shares_exit_2_at_once(setup: dict[str, Any], stdin: str, needle: str, capsys: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_drill_cli(setup, stdin, monkeypatch=monkeypatch) == 2
    assert needle in capsys.readouterr().err and setup["reached"] == []


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stdin,needle", [(None, "there is no stdin"), (Tty(""), "not from a terminal")])
def test_no_stdin_or_a_terminal_is_a_usage_error(setup: dict[str, Any], stdin: Any, needle: str, capsys: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_drill_cli(setup, stdin, monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err
    assert needle in err and "< shares.txt" in err and setup["reached"] == []


def test_fewer_shares_than_the_threshold_or_one_twice_exit_2(setup: dict[str, Any], capsys: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_drill_cli(setup, lines({"alice": OLD["alice"]}), monkeypatch=monkeypatch) == 2
    assert "1 share given; the backup's cluster needs 2" in capsys.readouterr().err
    twice = lines({"alice": OLD["alice"]}) + lines({"alice": OLD["alice"]}, "bare")
    assert run_drill_cli(setup, twice, monkeypatch=monkeypatch) == 2
    assert "line 2: share #1 is given twice" in capsys.readouterr().err
    assert setup["reached"] == []


def test_no_sentinels_exit_2_at_once_unless_no_sentinels_says_what_is_not_proven(
        setup: dict[str, Any], capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    doc = yaml.safe_load(Path(setup["config"]).read_text())
    doc["backup"]["drill"] = {}
    Path(setup["config"]).write_text(yaml.safe_dump(doc))
    assert run_drill_cli(setup, lines(OLD), monkeypatch=monkeypatch) == 2
    assert "backup.drill.sentinels is empty" in capsys.readouterr().err and setup["reached"] == []
    # --no-sentinels passes the checks: the next thing is the fetch (the tripwire)
    with pytest.raises(AssertionError, match="reached fetch"):
        run_drill_cli(setup, lines(OLD), "--no-sentinels", monkeypatch=monkeypatch)
    assert drill.NO_SENTINELS.startswith("the data")


def test_a_missing_or_unverified_backup_and_an_unavailable_version_stop_first(
        setup: dict[str, Any], capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_drill_cli(setup, lines(OLD), "--name", "unit-20200101T000000.000Z.snap", monkeypatch=monkeypatch) == 2
    assert "no backup named" in capsys.readouterr().err
    for p in (setup["dir"] / "out").iterdir():
        p.unlink()
    assert run_drill_cli(setup, lines(OLD), monkeypatch=monkeypatch) == 6
    assert "no verified backup found" in capsys.readouterr().err
    assert setup["reached"] == []


def test_an_unavailable_openbao_version_stops_before_the_fetch(setup: dict[str, Any], capsys: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    monkeypatch.setattr("vaultops.releases.ensure", REAL_ENSURE)  # "latest" is refused before any download
    doc = yaml.safe_load(Path(setup["config"]).read_text())
    doc["backup"]["drill"]["version"] = "latest"
    Path(setup["config"]).write_text(yaml.safe_dump(doc))
    assert run_drill_cli(setup, lines(OLD), monkeypatch=monkeypatch) == 10
    assert "is not X.Y.Z" in capsys.readouterr().err and setup["reached"] == []


def test_shares_are_checked_against_the_manifest_of_the_backups_key_epoch(
        setup: dict[str, Any], capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a rekey the manifest holds the new shares; a backup from before opens only with the old ones."""
    new = {n: share_bytes(i, random.Random(99)) for i, n in enumerate(NAMES, 1)}
    kept = keyholder_manifest(new).save(setup["dir"] / "keyholders.yaml")
    assert kept is not None and kept.parent.name == "keyholders.history"
    assert run_drill_cli(setup, lines(new), monkeypatch=monkeypatch) == 3
    assert "line 1" in capsys.readouterr().err
    with pytest.raises(AssertionError, match="reached fetch"):
        run_drill_cli(setup, lines(OLD), monkeypatch=monkeypatch)


def test_a_keyholder_manifest_of_another_cluster_is_refused(setup: dict[str, Any], capsys: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    keyholder_manifest(OLD, cluster_id="other").save(setup["dir"] / "other.yaml")
    assert run_drill_cli(setup, lines(OLD), "--manifest", str(setup["dir"] / "other.yaml"),
                         monkeypatch=monkeypatch) == 2
    assert "pass --manifest FILE of the backup's cluster" in capsys.readouterr().err
    with pytest.raises(AssertionError, match="reached fetch"):  # unchecked on request
        run_drill_cli(setup, lines(OLD), "--no-manifest", monkeypatch=monkeypatch)


def test_format_json_failure_is_one_json_document_on_stdout(setup: dict[str, Any], capsys: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_drill_cli(setup, "", "--format", "json", monkeypatch=monkeypatch) == 2
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["ok"] is False and doc["error"]["exit_code"] == 2 and "no unseal shares" in doc["error"]["message"]
    assert [json.loads(line)["event"] for line in out.err.splitlines()] == ["error"]


def test_help_says_the_shares_come_from_stdin(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        main(["backup", "drill", "--help"])
    text = capsys.readouterr().out
    assert "stdin" in text and "'NAME: share'" in text and "--no-sentinels" in text
    with pytest.raises(SystemExit):
        main(["backup", "--help"])
    assert "from stdin" in capsys.readouterr().out

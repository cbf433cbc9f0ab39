"""A journal rewritten by someone who can write the file: caught by the anchors kept outside it.

Each tamper class is tried against an anchor in a local sink (no server) and in a real OpenBao's
KV v2 (check-and-set): a fully recomputed chain, a forged append, the last entry removed, a middle
entry removed (with and without recomputing), reordered entries. Each gives exit 9 and one error
line. Bad lines (non-JSON, non-UTF-8, a JSON list) are one line naming the line number; a torn
last line is moved aside by the next append, never glued to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vaultops.cli import main
from vaultops.errors import JournalError
from vaultops.journal import GENESIS, TORN_ACTION, Journal

N = 6


def _dump(entry: dict) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()


def _rechain(lines: list[bytes]) -> list[bytes]:
    """What a careful forger does: fix every prev hash so the chain inside the file is valid again."""
    out, prev = [], GENESIS
    for raw in lines:
        entry = json.loads(raw)
        entry["prev"] = prev
        line = _dump(entry)
        out.append(line)
        prev = hashlib.sha256(line).hexdigest()
    return out


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def recomputed(lines: list[bytes]) -> list[bytes]:
    entry = json.loads(lines[1])
    entry["outcome"] = "failed"
    entry["operator"] = "mallory"
    return _rechain(lines[:1] + [_dump(entry)] + lines[2:])


def forged_tail(lines: list[bytes]) -> list[bytes]:
    """The last anchored entry replaced by a forged one, chained correctly."""
    entry = json.loads(lines[-1])
    entry["action"] = "backup.run"
    entry["details"] = {"forged": True}
    return _rechain(lines[:-1] + [_dump(entry)])


def backdated_append(lines: list[bytes]) -> list[bytes]:
    """A well-chained entry added after the anchor but dated before it: claims to be history."""
    entry = json.loads(lines[0])
    entry["action"] = "unseal.ceremony"
    entry["prev"] = hashlib.sha256(lines[-1]).hexdigest()
    return lines + [_dump(entry)]


def unchained_append(lines: list[bytes]) -> list[bytes]:
    entry = json.loads(lines[-1])
    entry["prev"] = "f" * 64
    return lines + [_dump(entry)]


def removed_last(lines: list[bytes]) -> list[bytes]:
    return lines[:-1]


def removed_last_recomputed(lines: list[bytes]) -> list[bytes]:
    return _rechain(lines[:-1])


def removed_middle(lines: list[bytes]) -> list[bytes]:
    return lines[:2] + lines[3:]


def removed_middle_recomputed(lines: list[bytes]) -> list[bytes]:
    return _rechain(lines[:2] + lines[3:])


def reordered(lines: list[bytes]) -> list[bytes]:
    return lines[:1] + [lines[2], lines[1]] + lines[3:]


def reordered_recomputed(lines: list[bytes]) -> list[bytes]:
    return _rechain(reordered(lines))


def truncated_file(lines: list[bytes]) -> list[bytes]:
    return []


TAMPERS: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    f.__name__: f for f in (recomputed, forged_tail, backdated_append, unchained_append, removed_last,
                            removed_last_recomputed, removed_middle, removed_middle_recomputed, reordered,
                            reordered_recomputed, truncated_file)
}
# Only an anchor can see these: the chain inside the file is valid.
ANCHOR_ONLY = {"recomputed", "forged_tail", "backdated_append", "removed_last", "removed_last_recomputed",
               "removed_middle_recomputed", "reordered_recomputed", "truncated_file"}


def _config(tmp_path: Path, anchor: str, *, nodes: str = '[{name: n1, address: "http://127.0.0.1:9"}]',
            extra: str = "") -> Path:
    cfg = tmp_path / "vaultops.yaml"
    cfg.write_text(textwrap.dedent(f"""
        cluster: {{name: prod}}
        nodes: {nodes}
        journal:
          path: {tmp_path}/state/journal.jsonl
          anchor: {anchor}
    """) + extra)
    return cfg


def _fill(cfg: Path, n: int = N) -> Journal:
    from vaultops.config import load_config
    from vaultops.journal import journal_for

    journal = journal_for(load_config(str(cfg)), operator="alice")
    for i in range(n):
        journal.append("test.event", node=f"node{i % 3}", details={"i": i})
    return journal


def _run(capsys: pytest.CaptureFixture[str], cfg: Path, *argv: str) -> tuple[int, str, str]:
    rc = main(["--config", str(cfg), *argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.out, out.err


def _assert_tampered(capsys: pytest.CaptureFixture[str], cfg: Path) -> str:
    rc, out, err = _run(capsys, cfg, "journal", "verify")
    assert rc == JournalError.exit_code, (out, err)
    assert err.count("\n") == 1 and err.startswith("vaultops: error: journal ") and "tampered" in err, err
    return out + err


# -- anchors in a local sink (no server) -------------------------------------------------------------
@pytest.fixture
def sink_cfg(tmp_path: Path) -> Path:
    return _config(tmp_path, f"{{kv: false, sinks: [{{type: local, path: {tmp_path}/anchors}}]}}")


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_sink_anchor_catches(tamper: str, sink_cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = _fill(sink_cfg)
    assert _run(capsys, sink_cfg, "journal", "anchor")[0] == 0
    assert _run(capsys, sink_cfg, "journal", "verify")[0] == 0
    _write(journal.path, TAMPERS[tamper](_lines(journal.path)))
    _assert_tampered(capsys, sink_cfg)
    if tamper in ANCHOR_ONLY:
        assert Journal(journal.path).verify() == []     # the file alone is fooled


def test_without_an_anchor_a_recomputed_chain_passes_and_verify_says_so(
        sink_cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The defect as it was: the file alone cannot tell. verify now says no anchor covers it."""
    journal = _fill(sink_cfg)
    _write(journal.path, recomputed(_lines(journal.path)))
    rc, out, _ = _run(capsys, sink_cfg, "journal", "verify")
    assert rc == 0 and "no anchor found" in out


def test_entries_after_the_anchor_are_reported_unanchored_not_tampered(
        sink_cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = _fill(sink_cfg)
    _run(capsys, sink_cfg, "journal", "anchor")
    journal.append("later.event")
    journal.append("later.event")
    rc, out, err = _run(capsys, sink_cfg, "journal", "verify")
    assert rc == 0 and "2 newer entries not anchored yet" in out and err == ""
    rc, out, _ = _run(capsys, sink_cfg, "journal", "verify", "--format", "json")
    report = json.loads(out)
    assert rc == 0 and report["intact"] and report["unanchored"] == 2 and report["entries"] == N + 2


def test_every_anchor_is_a_new_object_and_older_ones_still_count(
        sink_cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = _fill(sink_cfg, 3)
    _run(capsys, sink_cfg, "journal", "anchor")
    _fill(sink_cfg, 3)
    _run(capsys, sink_cfg, "journal", "anchor")
    objects = sorted(p.name for p in (tmp_path / "anchors").rglob("*.json"))
    assert len(objects) == 2 and objects[0] != objects[1]
    # a forger who also planted a matching newest anchor is still caught by the older one
    _write(journal.path, recomputed(_lines(journal.path)))
    newest = sorted((tmp_path / "anchors").rglob("*.json"))[-1]
    newest.unlink()
    _assert_tampered(capsys, sink_cfg)


def test_a_tampered_journal_is_never_anchored(sink_cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = _fill(sink_cfg)
    _run(capsys, sink_cfg, "journal", "anchor")
    _write(journal.path, removed_last(_lines(journal.path)))
    rc, _, err = _run(capsys, sink_cfg, "journal", "anchor")
    assert rc == JournalError.exit_code and err.count("\n") == 1 and "refusing to anchor" in err


# -- bad lines and torn writes ---------------------------------------------------------------------
BAD_LINES = {"not json": b"this is not json", "not utf-8": b'{"action": "\xff\xfe"}',
             "a json list": b'["an", "array"]', "a json number": b"5", "nul bytes": b"\x00\x00\x00"}


@pytest.mark.parametrize("bad", list(BAD_LINES))
def test_a_bad_line_is_one_line_naming_its_number(bad: str, sink_cfg: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    journal = _fill(sink_cfg)
    lines = _lines(journal.path)
    _write(journal.path, lines[:3] + [BAD_LINES[bad]] + lines[3:])
    rc, _, err = _run(capsys, sink_cfg, "journal", "show")
    assert rc == JournalError.exit_code and err.count("\n") == 1 and "journal.jsonl:4: " in err, err
    rc, out, err = _run(capsys, sink_cfg, "journal", "verify")
    assert rc == JournalError.exit_code and err.count("\n") == 1 and "line 4" in err
    assert "journal.jsonl:4: " in out


def test_a_torn_last_line_is_moved_aside_by_the_next_append(sink_cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = _fill(sink_cfg)
    whole = journal.path.read_bytes()
    torn = b'{"action":"backup.run","details":{"size":12'        # the writer died mid-line
    journal.path.write_bytes(whole + torn)
    rc, out, _ = _run(capsys, sink_cfg, "journal", "verify", "--no-anchors")
    assert rc == 0 and f"journal.jsonl:{N + 1}: an incomplete last line" in out
    rc, out, _ = _run(capsys, sink_cfg, "journal", "show")
    assert rc == 0 and out.count("\n") == N
    journal.append("after.crash")
    lines = _lines(journal.path)
    assert journal.path.read_bytes().startswith(whole) and len(lines) == N + 2
    repair, after = json.loads(lines[-2]), json.loads(lines[-1])
    assert repair["action"] == TORN_ACTION and repair["details"]["bytes"] == len(torn)
    assert after["action"] == "after.crash"
    aside = journal.path.with_name(repair["details"]["moved_to"])
    assert aside.read_bytes() == torn and stat.S_IMODE(aside.stat().st_mode) == 0o600
    assert hashlib.sha256(torn).hexdigest() == repair["details"]["sha256"]
    assert _run(capsys, sink_cfg, "journal", "verify")[0] == 0


def test_a_whole_entry_missing_only_its_newline_is_terminated(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.append("one")
    journal.append("two")
    journal.path.write_bytes(journal.path.read_bytes().rstrip(b"\n"))
    journal.append("three")
    assert [e["action"] for e in journal.entries()] == ["one", "two", "three"] and journal.verify() == []
    assert not list(tmp_path.glob("*.torn-*"))


def test_a_torn_line_of_garbage_bytes_then_many_appends(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.append("one")
    with open(journal.path, "ab") as fh:
        fh.write(b"\xff\xfe\x00garbage")
    for i in range(3):
        journal.append("more", details={"i": i})
    assert journal.verify() == [] and len(list(tmp_path.glob("*.torn-*"))) == 1
    assert [e["action"] for e in journal.entries()] == ["one", TORN_ACTION, "more", "more", "more"]


def test_an_endless_line_is_a_problem_not_a_memory_blowup(tmp_path: Path) -> None:
    from vaultops.journal import MAX_LINE

    journal = Journal(tmp_path / "j.jsonl")
    journal.append("one")
    with open(journal.path, "ab") as fh:
        fh.write(b"x" * (3 * MAX_LINE) + b"\n")
    journal.append("two")     # chains onto the long line's hash
    problems = journal.verify()
    assert [p.line for p in problems] == [2] and "longer than" in problems[0].reason


def test_under_umask_000_the_journal_folder_is_0700(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        Journal(tmp_path / "j" / "journal.jsonl").append("test")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "j").stat().st_mode) == 0o700


def test_a_journal_path_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "j.jsonl").symlink_to(victim)
    with pytest.raises(JournalError, match="it is a symlink"):
        Journal(tmp_path / "j.jsonl").append("x")
    assert victim.read_text() == "keep\n"


# -- anchoring after commands ------------------------------------------------------------------------
def test_anchored_commands_anchor_on_success_and_on_failure(
        sink_cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from vaultops.cli.journal_cmd import anchored
    from vaultops.errors import BackupError
    from vaultops.session import Session

    _fill(sink_cfg)
    args = argparse.Namespace(config=str(sink_cfg), operator=None, allow_insecure_http=False)
    session = Session.from_args(args)
    assert anchored(lambda s, a: 0)(session, args) == 0
    with pytest.raises(BackupError):
        anchored(lambda s, a: (_ for _ in ()).throw(BackupError("boom")))(session, args)
    assert len(list((tmp_path / "anchors").rglob("*.json"))) == 2


def test_anchoring_failure_after_a_command_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from vaultops.cli.journal_cmd import anchored
    from vaultops.session import Session

    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "journal-anchors").write_text("a file where a folder should be")
    cfg = _config(tmp_path, f"{{kv: false, sinks: [{{type: local, path: {tmp_path}/ro}}]}}")
    _fill(cfg)
    args = argparse.Namespace(config=str(cfg), operator=None, allow_insecure_http=False)
    assert anchored(lambda s, a: 0)(Session.from_args(args), args) == 0
    err = capsys.readouterr().err
    assert err.startswith("vaultops: warning: journal not anchored") and err.count("\n") == 1


def test_anchor_settings_are_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad, what in (("{kv: {mount: ../x}}", "mount"), ("{sinks: nope}", "sinks"), ("{colour: red}", "colour"),
                      ("{kv: [1]}", "kv"), ("{after_commands: maybe}", "after_commands"), ("5", "mapping")):
        _fill(_config(tmp_path, "{}"), 1)   # the journal exists; then the setting is broken
        cfg = _config(tmp_path, bad)
        rc, _, err = _run(capsys, cfg, "journal", "anchor")
        assert rc == 2 and err.count("\n") == 1 and what in err, (bad, err)


# -- anchors in a real OpenBao KV v2 ---------------------------------------------------------------
@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from vaultops.testing.sandbox import start_sandbox

    box = start_sandbox(tmp_path_factory.mktemp("anchors"), name="anchors", nodes=1)
    yield box
    box.stop()


@pytest.fixture
def kv_cfg(bao: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    box = bao
    node = box.config.nodes[0]   # type: ignore[attr-defined]
    monkeypatch.setenv("VAULT_TOKEN", box.root_token)   # type: ignore[attr-defined]
    return _config(tmp_path, "{kv: {mount: opsaudit, path: journal-anchors}}",
                   nodes=f'[{{name: {node.name}, address: "{node.address}"}}]')


@pytest.mark.integration
@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_kv_anchor_catches(tamper: str, kv_cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = _fill(kv_cfg)
    rc, out, err = _run(capsys, kv_cfg, "journal", "anchor")
    assert rc == 0 and "kv opsaudit/journal-anchors/" in out, err
    assert _run(capsys, kv_cfg, "journal", "verify")[0] == 0
    _write(journal.path, TAMPERS[tamper](_lines(journal.path)))
    _assert_tampered(capsys, kv_cfg)


@pytest.mark.integration
def test_kv_anchor_versions_are_all_checked(kv_cfg: Path, bao: object, capsys: pytest.CaptureFixture[str]) -> None:
    """Each anchor is a new KV version (check-and-set); an older version still catches a later rewrite."""
    journal = _fill(kv_cfg, 3)
    _run(capsys, kv_cfg, "journal", "anchor")
    _fill(kv_cfg, 3)
    rc, out, _ = _run(capsys, kv_cfg, "journal", "anchor")
    assert rc == 0 and out.rstrip().endswith("v2")
    _write(journal.path, _rechain(_lines(journal.path)[:2] + _lines(journal.path)[3:]))
    text = _assert_tampered(capsys, kv_cfg)
    assert "v1" in text or "v2" in text


@pytest.mark.integration
def test_kv_anchor_creates_its_mount_and_verify_reads_without_writing(
        kv_cfg: Path, bao: object, capsys: pytest.CaptureFixture[str]) -> None:
    journal = _fill(kv_cfg, 2)
    rc, out, _ = _run(capsys, kv_cfg, "journal", "verify")
    assert rc == 0
    assert _run(capsys, kv_cfg, "journal", "anchor")[0] == 0
    client = bao.clients()[0]   # type: ignore[attr-defined]
    assert client.transport.request("GET", "sys/mounts/opsaudit", auth=True).data["type"] == "kv"
    journal.append("after")
    rc, out, _ = _run(capsys, kv_cfg, "journal", "verify")
    assert rc == 0 and "1 newer entries not anchored yet" in out


@pytest.mark.integration
def test_kv_anchor_without_permission_is_one_line(kv_cfg: Path, bao: object, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    client = bao.clients()[0]   # type: ignore[attr-defined]
    token = client.write("auth/token/create", {"policies": ["default"], "ttl": "10m"})["auth"]["client_token"]
    monkeypatch.setenv("VAULT_TOKEN", token)
    cfg = kv_cfg.read_text().replace("mount: opsaudit", "mount: opsaudit-denied")
    kv_cfg.write_text(cfg)
    _fill(kv_cfg, 1)
    rc, _, err = _run(capsys, kv_cfg, "journal", "anchor")
    assert rc == 4 and err.count("\n") == 1 and "secrets enable -path=opsaudit-denied kv-v2" in err, err

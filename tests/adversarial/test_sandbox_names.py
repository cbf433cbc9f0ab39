"""Hostile sandbox names and planted folders: `sandbox up/down/status` refuse them and remove nothing.

Defect 1: `sandbox down --name X` removed whatever X named (an absolute path, ../../victim, '..'
took the whole state dir, journal included). Names are now checked in every sandbox command,
and `down` removes only a folder `up` made: marked, a real directory directly under the
sandboxes root.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vaultops.cli import main
from vaultops.services.sandbox.cluster import MARKER, create_folder


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state dir with a journal and a victim folder beside it: both must survive every attempt."""
    state = tmp_path / "state"
    (state / "sandboxes").mkdir(parents=True)
    (state / "journal.jsonl").write_text("{}\n")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep")
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(state))
    return state


def intact(state: Path) -> bool:
    victim = state.parent / "victim"
    return (victim / "precious").read_text() == "keep" and (state / "journal.jsonl").exists()


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr()
    err = out.err.strip()
    assert err.startswith("vaultops: error:") and "\n" not in err and "Traceback" not in err, err
    return err


HOSTILE = ["..", "../..", "../../victim", "../victim", ".", "", "-x", "--help-me", "a\0b", "a\nb", "a\x1b[2Jb",
           "sandboxes/../..", "a/b", "a b", "*", "~"]


@pytest.mark.parametrize("command", ["down", "up", "status"])
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_by_every_command(state: Path, capsys: pytest.CaptureFixture[str],
                                                   command: str, name: str) -> None:
    assert main(["sandbox", command, f"--name={name}"]) == 2
    err = one_line_error(capsys)
    assert "sandbox name" in err
    assert intact(state) and os.listdir(state / "sandboxes") == []


@pytest.mark.parametrize("command", ["down", "up", "status"])
def test_an_absolute_path_is_refused(state: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    victim = state.parent / "victim"
    assert main(["sandbox", command, "--name", str(victim)]) == 2
    assert "holds a '/'" in one_line_error(capsys)
    assert intact(state)


def test_a_symlink_planted_under_the_root_is_not_followed(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = state.parent / "victim"
    (victim / MARKER).write_text("forged")              # even a forged mark does not make it ours
    (victim / "sandbox.json").write_text("{}")
    link = state / "sandboxes" / "evil"
    link.symlink_to(victim)
    assert main(["sandbox", "down", "--name", "evil"]) == 10
    assert "symbolic link" in one_line_error(capsys)
    assert intact(state) and link.is_symlink()
    assert main(["sandbox", "up", "--name", "evil", "--nodes", "1"]) == 10     # nothing written through it
    assert "already exists" in one_line_error(capsys)
    assert sorted(os.listdir(victim)) == sorted([MARKER, "precious", "sandbox.json"])
    assert main(["sandbox", "status", "--format", "json"]) == 0
    assert "evil" not in capsys.readouterr().out


def test_a_folder_without_the_mark_is_left_alone(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = state / "sandboxes" / "plain"
    plain.mkdir()
    (plain / "sandbox.json").write_text('{"spec": {}, "nodes": [], "version": "x"}')
    (plain / "mine").write_text("keep")
    assert main(["sandbox", "down", "--name", "plain"]) == 10
    assert "not made by 'vaultops sandbox up'" in one_line_error(capsys)
    assert (plain / "mine").read_text() == "keep"


def test_a_mark_that_is_a_symlink_does_not_count(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = state / "sandboxes" / "linked"
    folder.mkdir()
    (state.parent / "victim" / "mark").write_text("x")
    (folder / MARKER).symlink_to(state.parent / "victim" / "mark")
    assert main(["sandbox", "down", "--name", "linked"]) == 10
    one_line_error(capsys)
    assert folder.is_dir() and intact(state)


def test_a_regular_file_named_like_a_sandbox_is_left_alone(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (state / "sandboxes" / "file").write_text("keep")
    assert main(["sandbox", "down", "--name", "file"]) == 10
    one_line_error(capsys)
    assert (state / "sandboxes" / "file").read_text() == "keep"


def test_a_folder_up_made_is_removed(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The control: a marked folder (here one whose `up` died before recording anything) goes."""
    create_folder(state / "sandboxes" / "half")
    assert main(["sandbox", "down", "--name", "half"]) == 0
    assert not (state / "sandboxes" / "half").exists() and intact(state)


def test_the_real_command_line_prints_one_line(state: Path) -> None:
    """Through argv and the console script's own exit path, not only main()."""
    env = {**os.environ, "VAULTOPS_STATE_DIR": str(state)}
    for name in ("..", "../../victim", str(state.parent / "victim"), "-oops"):
        proc = subprocess.run([sys.executable, "-m", "vaultops", "sandbox", "down", f"--name={name}"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert intact(state)

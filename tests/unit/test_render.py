"""Colour on a terminal only (NO_COLOR, --no-color, pipes: none), states always in words, and a
NOTE column that follows the terminal width or $COLUMNS instead of being cut (defect 6)."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from vaultops.cli import main
from vaultops.cli.render import colour_wanted, line_width, table
from vaultops.cli.runbook_cmd import render_plan

ANSI = re.compile(r"\033\[[0-9;]*m")
ERROR = "unreachable at http://127.0.0.1:1 (Failed to establish a new connection: [Errno 111] Connection refused)"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("env", "flag", "stream", "expected"), [
    ({}, False, Tty(), True),
    ({"NO_COLOR": "1"}, False, Tty(), False),
    ({"NO_COLOR": ""}, False, Tty(), True),          # no-color.org: set AND not empty
    ({}, True, Tty(), False),                         # --no-color
    ({"TERM": "dumb"}, False, Tty(), False),
    ({}, False, io.StringIO(), False),               # piped
])
def test_when_colour_is_on(env: dict[str, str], flag: bool, stream: io.StringIO, expected: bool,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NO_COLOR", "TERM"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert colour_wanted(stream, no_color=flag) is expected


def test_width_comes_from_columns_else_nothing_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "132")
    assert line_width(io.StringIO()) == 132
    monkeypatch.delenv("COLUMNS")
    assert line_width(io.StringIO()) is None


def test_the_last_column_wraps_to_the_width_and_loses_nothing() -> None:
    out = table(["NODE", "NOTE"], [["n1", ERROR]], width=50)
    assert all(len(line) <= 50 for line in out.splitlines())
    assert " ".join(" ".join(out.splitlines()[1:]).split()) == f"n1 {ERROR}"
    assert table(["NODE", "NOTE"], [["n1", ERROR]]).splitlines()[1] == f"n1    {ERROR}"


def test_a_plan_spells_every_action_and_colours_only_when_asked() -> None:
    steps = [SimpleNamespace(id=f"s{i}", action=a, params={"node": "node2"})
             for i, a in enumerate(("preflight", "stop_node", "install", "step_down"))]
    plain = render_plan(steps)
    coloured = render_plan(steps, colour=True)
    assert not ANSI.search(plain) and ANSI.sub("", coloured) == plain
    assert "\033[31mstop_node\033[0m" in coloured and "\033[33mstep_down\033[0m" in coloured
    assert "\033[" not in coloured.splitlines()[3].split("install")[0][-12:]   # install: no colour


@pytest.fixture
def two_unreachable(tmp_path: Path) -> Path:
    cfg = tmp_path / "vaultops.yaml"
    cfg.write_text("cluster: {name: c}\nnodes: [{name: n1, address: 'http://127.0.0.1:1'}, "
                   "{name: n2, address: 'http://127.0.0.1:2'}]\n")
    return cfg


def test_piped_status_with_a_wide_columns_cuts_nothing(two_unreachable: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["--config", str(two_unreachable), "status"]) == 12
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("n1")]
    assert len(rows) == 1 and rows[0].endswith("(check the address and that the server is running)")
    assert "NOTE" in out and not ANSI.search(out)


def test_narrow_columns_wrap_the_note(two_unreachable: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "110")
    main(["--config", str(two_unreachable), "status"])
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 110
    assert "server is running)" in "\n".join(lines)


def in_a_terminal(argv: list[str], env: dict[str, str]) -> str:
    """Run vaultops with stdout on a pseudo-terminal; return what it wrote."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vaultops", *argv], stdout=follower, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()


def test_status_in_a_terminal_is_coloured_unless_no_color(two_unreachable: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")} | {"TERM": "xterm"}
    argv = ["--config", str(two_unreachable), "status"]
    coloured = in_a_terminal(argv, env)
    assert "\033[31mUNREACHABLE\033[0m" in coloured and "\033[31munreachable\033[0m" in coloured
    assert not ANSI.search(in_a_terminal(argv, {**env, "NO_COLOR": "1"}))
    assert not ANSI.search(in_a_terminal([*argv, "--no-color"], env))
    assert "UNREACHABLE" in in_a_terminal([*argv, "--no-color"], env)


def test_sandbox_status_has_a_header_and_human_sizes(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from vaultops.services.sandbox.cluster import (NodeRecord, Sandbox, SandboxRecord, SandboxSpec, create_folder,
                                                   sandbox_dir)

    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(tmp_path / "state"))
    assert main(["sandbox", "status"]) == 0
    assert capsys.readouterr().out == "no sandboxes (start one: vaultops sandbox up)\n"
    folder = sandbox_dir("demo")
    create_folder(folder)
    (folder / "node1").mkdir()
    (folder / "node1" / "raft.db").write_bytes(os.urandom(3 * 1024 * 1024))   # 3 MiB of real blocks
    Sandbox(folder).save_record(SandboxRecord(spec=SandboxSpec(name="demo", nodes=1), version="2.7.2",
                                              nodes=[NodeRecord("node1", 1, 2, str(folder / "node1"))]))
    assert main(["sandbox", "status"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "STORAGE", "VERSION", "RUNNING", "DISK", "CONFIG"]
    assert re.match(r"demo\s+raft\s+2\.7\.2\s+0/1 nodes\s+3\.\d MiB\s+/", row), row
    assert main(["sandbox", "status", "--format", "json"]) == 0
    box = json.loads(capsys.readouterr().out)["sandboxes"][0]
    assert box["disk_bytes"] >= 3 * 1024 * 1024 and box["nodes"] == {"node1": False}

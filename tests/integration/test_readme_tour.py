"""The README's five-minute tour, run as written in a real terminal, so the tour cannot drift.

The commands are read from the fenced block under "## A five-minute tour" and run one after another
in one bash session inside tmux, with a fresh HOME (the tour's `~/.local/state/...` path is then the
sandbox's real folder). Each step's comment says which exit codes it documents (`exit N`, `exit N or
M`); a step without one must exit 0. An interactive step runs the `#   scripted: ...` line that
follows it in the README (the ceremony through `--share-stdin`); the console (`vaultops tui`) runs in
the pane itself and is quit with Ctrl-Q once it shows. Afterwards `sandbox down` must have left no
file of the sandbox behind.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vaultops.releases import cache_dir
from vaultops.testing.tmux import Tmux

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")]
README = Path(__file__).resolve().parents[2] / "README.md"
DONE = "TOUR-FINISHED"


@dataclass(frozen=True)
class Step:
    command: str
    comment: str
    exits: frozenset[int]


def tour_steps(text: str) -> list[Step]:
    """The commands of the tour's ```sh block; a `#   scripted: CMD` line replaces the command before it."""
    section = text.split("## A five-minute tour", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    steps: list[Step] = []
    for raw in block.splitlines():
        line = raw.strip()
        scripted = re.fullmatch(r"#\s+scripted:\s+(.+)", line)
        if scripted:
            steps[-1] = Step(scripted.group(1), steps[-1].comment, steps[-1].exits)
            continue
        if not line or line.startswith("#"):
            continue
        command, _, comment = (part.strip() for part in line.partition(" # "))
        codes = [int(n) for group in re.findall(r"exit (\d+(?:(?: or |, |/)\d+)*)", comment)
                 for n in re.findall(r"\d+", group)]
        steps.append(Step(command, comment, frozenset(codes or [0])))
    return steps


def test_the_tour_block_is_read_as_the_test_expects() -> None:
    steps = tour_steps(README.read_text())
    commands = [s.command for s in steps]
    assert commands[0] == ". .venv/bin/activate" and commands[-1].startswith("vaultops sandbox down")
    assert "vaultops unseal" not in commands, "the ceremony runs its scripted form"
    assert any(c.endswith("| vaultops unseal --share-stdin") for c in commands)
    assert next(s for s in steps if s.command == "vaultops status").exits == {11}
    assert any("upgrade plan --to 2.7.2" in c for c in commands) and "vaultops tui" in commands


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path / "tmux.sock", target="tour")
    yield t
    t.kill()


def _script(steps: list[Step], work: Path) -> Path:
    """One bash session: each step's output and exit code into steps/N.*; the console in the pane itself."""
    lines = ["set -u", f"cd {shlex.quote(str(work))}"]
    for i, step in enumerate(steps):
        if step.command == "vaultops tui":
            lines.append(f": > steps/{i}.tui; {step.command}; echo $? > steps/{i}.rc")
        else:
            lines.append(f"{{ {step.command} ; }} > steps/{i}.out 2>&1; echo $? > steps/{i}.rc")
    lines.append(f"echo {DONE}")
    path = work / "tour.sh"
    path.write_text("\n".join(lines) + "\n")
    return path


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VAULTOPS_", "VAULT_", "BAO_")) and k != "XDG_STATE_HOME"}
    return {**env, "HOME": str(home), "VAULTOPS_CACHE_DIR": str(cache_dir().parent), "TERM": "xterm-256color"}


def _wait_for(path: Path, timeout: float, tmux: Tmux) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared; screen:\n{tmux.screen()}"
        time.sleep(0.2)


def test_the_readme_tour_runs_as_written(tmp_path: Path, tmux: Tmux) -> None:
    steps = tour_steps(README.read_text())
    work, home = tmp_path / "work", tmp_path / "home"
    (work / "steps").mkdir(parents=True)
    home.mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix))     # the checkout's .venv, which runs this test
    script = _script(steps, work)
    env = _env(home)
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k in ("HOME", "VAULTOPS_CACHE_DIR", "PATH",
                                                                                  "TERM", "LANG"))
    try:
        tmux("new-session", "-d", "-s", "tour", "-x", "120", "-y", "40",
             f"env -i {exports} bash {shlex.quote(str(script))}; sleep 60")
        tui = next(i for i, s in enumerate(steps) if s.command == "vaultops tui")
        _wait_for(work / "steps" / f"{tui}.tui", 600, tmux)
        tmux.wait("[F6] Journal", timeout=60)
        tmux.keys("C-q")
        tmux.wait(DONE, timeout=300)
    finally:
        subprocess.run([str(work / ".venv" / "bin" / "vaultops"), "sandbox", "down", "--name", "tour"],
                       env=env, capture_output=True, timeout=120)
    failures = []
    for i, step in enumerate(steps):
        rc = int((work / "steps" / f"{i}.rc").read_text())
        out = (work / "steps" / f"{i}.out").read_text() if (work / "steps" / f"{i}.out").exists() else ""
        if rc not in step.exits:
            failures.append(f"{step.command!r}: exit {rc}, documented {sorted(step.exits)}\n{out[-1500:]}")
    assert not failures, "\n\n".join(failures)
    outputs = {s.command: (work / "steps" / f"{i}.out") for i, s in enumerate(steps)}
    plan = outputs["vaultops upgrade plan --to 2.7.2"].read_text()
    assert "2.6.2 -> 2.7.2" in plan and "stop_node" in plan
    assert "drill" in outputs["vaultops keyholders drill --keyholder alice < share.txt"].read_text().lower()
    # `sandbox down` removed everything the sandbox made: its folder, and with it run state and backups
    state = home / ".local" / "state" / "vaultops"
    left = sorted(str(p.relative_to(state)) for p in state.rglob("*")) if state.exists() else []
    assert left in ([], ["sandboxes"]), left

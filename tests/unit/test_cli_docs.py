"""What is generated from the parser: help texts, shell completion, the man page.

The parser is walked (vaultops.cli.tree), so a new command or option is covered without being
listed here: it must have help text, it completes in bash, zsh and fish, and it is in vaultops(1).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vaultops.cli import build_parser, description
from vaultops.cli.tree import levels, parser_at

ROOT = Path(__file__).resolve().parents[2]
MAN = ROOT / "vaultops" / "data" / "vaultops.1"
SCRIPT = Path(sys.executable).parent / "vaultops"


def vaultops() -> list[str]:
    """The installed console script (what a user's shell runs), else the module."""
    return [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "vaultops"]


def shell_command() -> str:
    return " ".join(f"'{part}'" for part in vaultops())


PARSER = build_parser()
LEVELS = list(levels(PARSER))


# -- help texts ---------------------------------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS, ids=lambda lv: " ".join(lv.path) or "vaultops")
def test_every_argument_and_command_has_help(level: object) -> None:
    path = level.path  # type: ignore[attr-defined]
    parser = parser_at(PARSER, path)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"vaultops {' '.join(path)} {choice.dest}: a command without help"
        else:
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help.strip(), f"vaultops {' '.join(path)} {name}: no help text"


@pytest.mark.parametrize("level", LEVELS, ids=lambda lv: " ".join(lv.path) or "vaultops")
def test_every_help_renders_and_names_no_none_default(level: object) -> None:
    parser = parser_at(PARSER, level.path)  # type: ignore[attr-defined]
    text = parser.format_help()
    assert "default: None" not in text and "%(" not in text, text
    if parser.description is not None:
        assert description(parser)


# -- completion ---------------------------------------------------------------------------------

def generate(shell: str) -> str:
    proc = subprocess.run([*vaultops(), "completion", shell], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


def test_bash_completion_in_a_real_bash() -> None:
    probes = {
        "back": ["backup"],                                 # vaultops back<TAB>
        "backup r": ["restore", "run"],                     # vaultops backup r<TAB>
        "status --f": ["--format"],
        "status --format ''": ["json", "table"],
        "config example t": ["tls"],
        "--config x.yaml upgrade pl": ["plan"],
    }
    script = "source <(" + shell_command() + " completion bash)\ncomplete -p vaultops\n"
    for typed in probes:
        script += (f"COMP_WORDS=(vaultops {typed}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); "
                   "COMP_LINE=\"${COMP_WORDS[*]}\"; COMP_POINT=${#COMP_LINE}; COMPREPLY=(); "
                   "$(complete -p vaultops | sed -E 's/.* -F ([^ ]+) .*/\\1/') vaultops; "
                   "echo \"REPLY ${COMPREPLY[*]}\"\n")
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.match(r"complete .*-F \S+ vaultops$", lines[0]), lines[0]
    replies = [sorted(line.split()[1:]) for line in lines if line.startswith("REPLY")]
    assert replies == list(probes.values())


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (scripts/test installs it)")
def test_zsh_completion_registers_with_compinit(tmp_path: Path) -> None:
    (tmp_path / "_vaultops").write_text(generate("zsh"))
    proc = subprocess.run(["zsh", "-n", str(tmp_path / "_vaultops")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(["zsh", "-fc", f"fpath=({tmp_path} $fpath); autoload -U compinit && compinit -u -D; "
                           "print -r -- $_comps[vaultops]"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert proc.stdout.strip() == "_vaultops", proc.stderr
    text = (tmp_path / "_vaultops").read_text()
    for command in ("backup", "completion", "config"):
        assert re.search(rf"^\s+{command}:'", text, re.MULTILINE), command


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (scripts/test installs it)")
def test_fish_completion_in_a_real_fish(tmp_path: Path) -> None:
    script = tmp_path / "vaultops.fish"
    script.write_text(generate("fish"))
    probes = {"vaultops back": ["backup"], "vaultops backup r": ["restore", "run"],
              "vaultops status --format ": ["json", "table"], "vaultops --config x.yaml backup run --l": ["--lock-wait"],
              "vaultops config example t": ["tls"], "vaultops completion ": ["bash", "fish", "zsh"]}
    body = f"source {script}\n" + "".join(f"complete -C '{typed}'; echo ---\n" for typed in probes)
    proc = subprocess.run(["fish", "--no-config", "-c", body], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    found = [sorted(line.split("\t")[0] for line in chunk.strip().splitlines())
             for chunk in proc.stdout.split("---")[:-1]]
    assert found == list(probes.values())


def test_completion_does_not_slow_down_help() -> None:
    """shtab is imported only by `vaultops completion` (`vaultops --help` speed: scripts/bench)."""
    code = "import sys; from vaultops.cli import build_parser; build_parser(); print('shtab' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "False"


# -- the man page -------------------------------------------------------------------------------

def test_the_shipped_man_page_is_the_parser() -> None:
    from vaultops.cli.manpage import roff

    assert MAN.read_text() == roff(build_parser()), \
        "vaultops/data/vaultops.1 is stale: run `vaultops man > vaultops/data/vaultops.1`"
    assert (ROOT / "docs" / "man" / "vaultops.1").resolve() == MAN.resolve()


def test_the_man_page_names_every_command_and_option() -> None:
    text = MAN.read_text().replace("\\-", "-")
    for level in LEVELS[1:]:
        assert f'.SS "vaultops {" ".join(level.path)}"' in text
        for action in level.options:
            assert action.option_strings[-1] in text


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_renders_it_without_warnings() -> None:
    proc = subprocess.run(["man", "--warnings", "-l", str(MAN)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MANWIDTH": "100", "MANPAGER": "cat", "PAGER": "cat"})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "vaultops backup run" in proc.stdout and "EXIT STATUS" in proc.stdout


def test_the_wheel_ships_the_man_page() -> None:
    """Package data (vaultops/data/*) and a data file under the prefix, where man finds it for a venv."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "data/*" in project["package-data"]["vaultops"]
    assert project["data-files"]["share/man/man1"] == ["vaultops/data/vaultops.1"]

"""Every `--format json` command prints exactly one JSON document on stdout, success or failure.

The commands are found by walking the parser, so a new one is covered without being listed here.
Each is run in process in failing situations (no config, a bad config, an unreachable node) and,
where it is cheap, in a succeeding one; stderr then carries JSON lines only, and a command that
stopped with an error adds exactly one error line whose exit code is the process's.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from vaultops.cli import build_parser, main
from vaultops.cli.tree import levels

# What each command needs besides --format to get past argparse (a new command with a required
# argument fails test_every_json_command_has_its_arguments until it is added here).
ARGUMENTS: dict[tuple[str, ...], list[str]] = {
    ("upgrade", "plan"): ["--to", "2.7.2"],
    ("upgrade", "rehearse"): ["--to", "2.7.2", "--share-stdin"],
    ("shares", "check"): ["--keyholder", "alice"],
    ("keyholders", "drill"): ["--keyholder", "alice"],
    ("runbook", "status"): ["runbook.yaml"],
    ("config", "from-terraform"): ["tf.json"],
    ("unseal",): ["--share-stdin", "--no-manifest"],
}
# Commands that need no vaultops.yaml, and how they end without one.
NO_CONFIG_NEEDED = {("sandbox", "status"): 0, ("journal", "show"): 0, ("journal", "verify"): 0,
                    ("config", "from-terraform"): 2}   # its input, tf.json, is missing
# Exit codes with one node at a closed port (and a token), as the README and --help document them.
UNREACHABLE = {
    ("status",): 12,                      # some node unreachable (the result says which)
    ("unseal",): 12,
    ("upgrade", "plan"): 8,               # runbook halted: no active node to plan from
    ("backup", "run"): 6,                 # backup failure (the run is recorded as failed)
}
ERROR_KEYS = {"message", "hint", "exit_code", "type"}


def json_commands() -> list[tuple[str, ...]]:
    found = []
    for level in levels(build_parser()):
        fmt = [a for a in level.options if "--format" in a.option_strings]
        if fmt and "json" in (fmt[0].choices or ()):
            found.append(level.path)
    return found


COMMANDS = json_commands()


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str,
        stdin: str = "") -> tuple[int, Any, list[dict[str, Any]]]:
    """Run vaultops in process; return the exit code, THE stdout document and the stderr JSON lines."""
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    document = json.loads(out)  # exactly one document: anything before or after it is a JSONDecodeError
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # every stderr line is JSON
    assert all(isinstance(line, dict) for line in lines), err
    check_contract(code, document, lines)
    return code, document, lines


def check_contract(code: int, document: Any, lines: list[dict[str, Any]]) -> None:
    errors = [line for line in lines if line.get("level") == "error"]
    assert len(errors) <= 1, lines
    if errors:
        assert code != 0 and errors[0]["exit_code"] == code and ERROR_KEYS <= set(errors[0]), errors
    if isinstance(document, dict) and isinstance(document.get("error"), dict):  # the error document
        assert code != 0 and set(document["error"]) == ERROR_KEYS and document["error"]["exit_code"] == code
        assert errors and errors[0]["message"] == document["error"]["message"]
    if code == 0:
        assert not errors and not (isinstance(document, dict) and isinstance(document.get("error"), dict))


def argv_for(path: tuple[str, ...], *before: str) -> list[str]:
    return [*before, *path, *ARGUMENTS.get(path, []), "--format", "json"]


def test_the_walk_finds_the_read_commands() -> None:
    assert {("status",), ("backup", "run"), ("unseal",), ("tls", "renew"), ("config", "check")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_json_command_has_its_arguments(path: tuple[str, ...]) -> None:
    build_parser().parse_args(argv_for(path))  # a ParseError here: add the command to ARGUMENTS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_without_a_config(path: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                          no_config_dir: Path) -> None:
    code, document, lines = run(capsys, monkeypatch, *argv_for(path))
    if path in NO_CONFIG_NEEDED:
        assert code == NO_CONFIG_NEEDED[path], document
        return
    assert code == 2, document
    assert document["ok"] is False and document["error"]["type"] in ("ConfigError", "UsageError")
    assert len(lines) == 1 and "vaultops.yaml" in lines[0]["message"] + (lines[0]["hint"] or "")


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_with_a_bad_config(path: tuple[str, ...], capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "vaultops.yaml"
    cfg.write_text("nodes:\n  - {name: n1, address: 'http://127.0.0.1:1', colour: blue}\n")
    code, document, lines = run(capsys, monkeypatch, *argv_for(path, "--config", str(cfg)))
    if path in (("sandbox", "status"), ("config", "from-terraform")):  # they do not read the file
        assert code == NO_CONFIG_NEEDED[path]
        return
    assert code == 2 and document["error"]["type"] == "ConfigError", document
    assert "colour" in document["error"]["message"] and len(lines) == 1


@pytest.fixture
def unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(tmp_path / "state"))  # this test's own journal and locks
    monkeypatch.setenv("VAULT_TOKEN", "s.not-a-real-token")
    cfg = tmp_path / "vaultops.yaml"
    cfg.write_text(f"cluster: {{name: c}}\nnodes: [{{name: n1, address: 'http://127.0.0.1:1'}}]\n"
                   f"backup: {{sinks: [{{type: local, path: '{tmp_path / 'sink'}'}}]}}\n")
    return cfg


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_with_an_unreachable_node(path: tuple[str, ...], capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch, unreachable: Path) -> None:
    code, document, _ = run(capsys, monkeypatch, *argv_for(path, "--config", str(unreachable)))
    if path in UNREACHABLE:
        assert code == UNREACHABLE[path], document


def test_status_result_names_the_unreachable_node(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch, unreachable: Path) -> None:
    code, document, lines = run(capsys, monkeypatch, "--config", str(unreachable), "status", "--format", "json")
    assert code == 12 and document["nodes"][0]["reachable"] is False and not lines


def test_a_backup_run_refused_by_the_lock_says_so_on_stdout(capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             unreachable: Path) -> None:
    """Defect 8: the refusal used to leave stdout empty and put plain text on stderr."""
    from vaultops.config import default_state_dir
    from vaultops.services.backup.lock import run_lock

    with run_lock(default_state_dir() / "backup-c.lock"):
        code, document, lines = run(capsys, monkeypatch, "--config", str(unreachable), "backup", "run",
                                    "--format", "json")
    assert code == 6 and document["ok"] is False
    assert "holds the lock" in document["error"]["message"] and "--lock-wait" in document["error"]["hint"]
    assert lines[-1]["level"] == "error" and lines[-1]["type"] == "BackupError"


def test_succeeding_commands_print_their_result(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                                unreachable: Path) -> None:
    assert run(capsys, monkeypatch, "sandbox", "status", "--format", "json")[1] == {"sandboxes": []}
    assert run(capsys, monkeypatch, "journal", "show", "--format", "json")[1] == []
    code, document, _ = run(capsys, monkeypatch, "--config", str(unreachable), "backup", "list", "--format", "json")
    assert code == 0 and document["backups"] == []
    code, document, _ = run(capsys, monkeypatch, "config", "check", "--config", str(unreachable), "--format", "json")
    assert code == 0 and document["ok"] is True


def test_argparse_errors_are_json_too(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, document, lines = run(capsys, monkeypatch, "upgrade", "plan", "--format", "json")
    assert code == 2 and "--to" in document["error"]["message"] and len(lines) == 1
    code, document, _ = run(capsys, monkeypatch, "status", "--format", "json", "--colour")
    assert code == 2 and "not shown" in document["error"]["message"]


def test_an_interrupt_is_one_json_error(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                        unreachable: Path) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("vaultops.services.status.cluster_status", interrupted)
    code, document, lines = run(capsys, monkeypatch, "--config", str(unreachable), "status", "--format", "json")
    assert code == 130 and document["error"]["type"] == "Interrupted" and len(lines) == 1


def test_a_result_printed_before_the_error_stays_the_one_document(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_text('{"not": "a journal entry"}\n')
    code, document, lines = run(capsys, monkeypatch, "journal", "verify", "--journal", str(journal),
                                "--no-anchors", "--format", "json")
    assert code == 9 and document["intact"] is False and "ok" not in document
    assert [line["type"] for line in lines] == ["JournalError"]


def test_text_mode_errors_stay_one_plain_line(capsys: pytest.CaptureFixture[str], no_config_dir: Path) -> None:
    assert main(["backup", "list"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("vaultops: error: ") and err.count("\n") == 1


def test_tls_renew_for_timers_reports_errors_as_json_lines(capsys: pytest.CaptureFixture[str],
                                                           unreachable: Path) -> None:
    """Its events are JSON lines on stderr (the journal), so is its error, without --format json."""
    assert main(["--config", str(unreachable), "tls", "renew"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and json.loads(err)["message"].endswith("has no tls: section")

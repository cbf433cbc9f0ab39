from __future__ import annotations

import pytest

from vaultops.cli import main

SECRET = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcdEF"


def test_unknown_argument_is_not_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", SECRET]) == 2
    captured = capsys.readouterr()
    assert SECRET not in captured.err + captured.out
    assert "not shown" in captured.err


def test_error_is_one_line_and_traceback_only_with_debug(capsys: pytest.CaptureFixture[str],
                                                         no_config_dir: object) -> None:
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "VAULT_ADDR" in err and "Traceback" not in err
    assert main(["status", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_help_lists_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "13 raft degraded" in capsys.readouterr().out


def _registered(parser: object) -> set[str]:
    import argparse

    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # type: ignore[attr-defined]
    return set(actions[0].choices)


def test_every_command_module_registers_the_name_it_is_listed_under() -> None:
    from vaultops.cli import COMMANDS, build_parser

    assert _registered(build_parser()) == set(COMMANDS)
    for command in COMMANDS:
        assert _registered(build_parser([command])) == {command}


@pytest.mark.parametrize(("argv", "expected"), [
    (["backup", "run"], {"backup"}),
    (["--config", "status", "backup", "run"], {"backup"}),      # --config takes a value
    (["--debug", "tls", "status"], {"tls"}),
    (["--help"], None),
    (["bakup", "run"], None),                                    # a typo gets the full list of choices
    ([], None),
])
def test_only_the_named_command_is_loaded(argv: list[str], expected: set[str] | None) -> None:
    from vaultops.cli import COMMANDS, build_parser

    assert _registered(build_parser(argv)) == (expected or set(COMMANDS))


def test_a_misspelt_command_still_lists_every_choice(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bakup", "run"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "backup" in err and "keyholders" in err


def test_bare_vaultops_without_a_cluster_says_how_to_start(capsys: pytest.CaptureFixture[str],
                                                           no_config_dir: object) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "vaultops sandbox up" in out and "vaultops --help" in out and "VAULT_ADDR" in out


def test_bare_vaultops_in_a_terminal_without_a_cluster_does_not_open_the_console(tmp_path: object) -> None:
    """In a terminal too: how to start, not a console with nothing to show (nor a bare error)."""
    import os
    import pty
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("VAULT_ADDR", "BAO_ADDR", "VAULTOPS_CONFIG")}
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vaultops"], stdin=follower, stdout=follower,
                            stderr=follower, cwd=str(tmp_path), env={**env, "HOME": str(tmp_path)})
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=60) == 2
    os.close(leader)
    assert b"vaultops sandbox up" in out and b"Traceback" not in out


def test_tls_status_without_a_tls_section_says_what_to_add(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: object) -> None:
    from pathlib import Path

    cfg = Path(str(tmp_path)) / "vaultops.yaml"
    cfg.write_text("nodes: [{name: n1, address: 'https://vault-1.example.com:8200'}]\n")
    assert main(["--config", str(cfg), "tls", "status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no tls: section" in err and "vaultops config example tls" in err
    with pytest.raises(SystemExit):
        main(["tls", "--help"])
    helptext = capsys.readouterr().out
    assert "vaultops.services" not in helptext and "config example tls" in helptext

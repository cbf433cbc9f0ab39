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

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

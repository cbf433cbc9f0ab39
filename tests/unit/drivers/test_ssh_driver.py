"""The ssh driver's command lines and error mapping, with a stand-in `ssh` that records its argv and stdin.
The real OpenSSH round trip is in tests/integration/upgrade/test_ssh_driver.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaultops.drivers import get_driver
from vaultops.drivers.base import Result
from vaultops.errors import ConfigError, DriverError



@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "ssh"
    # ssh sees no test variables (an allow-listed environment): its answers come from files beside it.
    d = tmp_path
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {d}/rec.argv\ncat > {d}/rec.stdin\n"
                      f"cat {d}/FAKE_OUT 2>/dev/null; echo\ncat {d}/FAKE_ERR >&2 2>/dev/null\n"
                      f"exit $(cat {d}/FAKE_RC 2>/dev/null || echo 0)\n")
    script.chmod(0o755)
    return script


def _answer(fake_ssh: Path, **values: str) -> None:
    for key, value in values.items():
        (fake_ssh.parent / key).write_text(value)


def _argv(tmp: Path) -> list[str]:
    return (tmp / "rec.argv").read_text().splitlines()


def test_defaults_are_systemd_and_batch_mode(fake_ssh: Path, tmp_path: Path) -> None:
    drv = get_driver("vault-1", {"type": "ssh", "ssh": str(fake_ssh), "host": "ops@vault-1", "port": 2222})
    res = drv.stop()
    argv = _argv(tmp_path)
    assert argv[:2] == ["-o", "BatchMode=yes"] and "-p" in argv and "2222" in argv
    assert argv[-3:] == ["--", "ops@vault-1", "sudo systemctl stop vault"]
    assert isinstance(res, Result) and res.ok


def test_configured_commands_and_version_substitution(fake_ssh: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    drv = get_driver("n", {"type": "ssh", "ssh": str(fake_ssh), "service": "openbao", "binary": "bao",
                           "commands": {"install": "sudo /opt/swap {version}"}})
    drv.install("2.7.2")
    assert _argv(tmp_path)[-1] == "sudo /opt/swap 2.7.2"
    _answer(fake_ssh, FAKE_OUT="OpenBao v2.7.2 (abc), built 2025")
    assert drv.installed_version() == "2.7.2"
    assert _argv(tmp_path)[-1] == "bao version"
    with pytest.raises(DriverError, match="is not a version"):
        drv.install("2.7.2; rm -rf /")


def test_file_contents_go_through_stdin_never_argv(fake_ssh: Path, tmp_path: Path) -> None:
    drv = get_driver("n", {"type": "ssh", "ssh": str(fake_ssh)})
    secret = b"s3cr3t-key-material"
    drv.write_file("/etc/vault/tls key.pem", secret, mode=0o600)
    assert (tmp_path / "rec.stdin").read_bytes() == secret
    argv = "\n".join(_argv(tmp_path))
    assert "s3cr3t" not in argv and "chmod 600" in argv and "mv -f" in argv


def test_owner_and_group_are_set_on_the_temp_file_before_the_rename(fake_ssh: Path, tmp_path: Path) -> None:
    drv = get_driver("n", {"type": "ssh", "ssh": str(fake_ssh)})
    drv.write_file("/etc/vault/key.pem", b"k", owner="openbao", group="995")
    script = _argv(tmp_path)[-1]
    assert script.index("chown openbao:995") < script.index("chmod 600") < script.index("mv -f")
    drv.write_file("/etc/vault/key.pem", b"k", group="openbao")
    assert "chgrp openbao" in _argv(tmp_path)[-1] and "chown" not in _argv(tmp_path)[-1]
    drv.write_file("/etc/vault/key.pem", b"k")
    assert "chown" not in _argv(tmp_path)[-1] and "chgrp" not in _argv(tmp_path)[-1]


@pytest.mark.parametrize("owner, group", [("root; reboot", None), ("x$(id)", None), (None, "a b"),
                                          ("Vault", None), (None, "'q'")])
def test_odd_owner_or_group_is_refused_before_anything_runs(fake_ssh: Path, tmp_path: Path,
                                                           owner: str | None, group: str | None) -> None:
    drv = get_driver("n", {"type": "ssh", "ssh": str(fake_ssh)})
    with pytest.raises(DriverError, match="is not a user/group name or numeric id"):
        drv.write_file("/etc/vault/key.pem", b"k", owner=owner, group=group)
    assert not (tmp_path / "rec.argv").exists()


def test_a_failing_command_raises_with_its_result(fake_ssh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drv = get_driver("n", {"type": "ssh", "ssh": str(fake_ssh)})
    _answer(fake_ssh, FAKE_RC="3")
    _answer(fake_ssh, FAKE_ERR="Failed to stop vault.service: Access denied")
    with pytest.raises(DriverError, match="Access denied") as err:
        drv.stop()
    assert err.value.result.exit_code == 3
    assert drv.is_running() is False        # is-active answering non-zero means "not running"


def test_ssh_failure_is_named_as_such(fake_ssh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drv = get_driver("n", {"type": "ssh", "ssh": str(fake_ssh), "host": "nowhere"})
    _answer(fake_ssh, FAKE_RC="255")
    _answer(fake_ssh, FAKE_ERR="ssh: connect to host nowhere port 22: Connection refused")
    with pytest.raises(DriverError, match="ssh to nowhere failed: ssh: connect") as err:
        drv.is_running()
    assert "non-interactively" in (err.value.hint or "")


def test_unknown_keys_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown ssh driver key 'hots'"):
        get_driver("n", {"type": "ssh", "hots": "x"})
    with pytest.raises(ConfigError, match="unknown driver command 'restart'"):
        get_driver("n", {"type": "ssh", "commands": {"restart": "x"}})


def test_set_aside_is_one_quoted_mv_that_never_deletes(fake_ssh: Path, tmp_path: Path) -> None:
    import shlex

    drv = get_driver("n", {"type": "ssh", "ssh": str(fake_ssh)})
    res = drv.set_aside("/opt/openbao/data dir/raft", suffix=".vaultops-aside-1")
    script = shlex.split(_argv(tmp_path)[-1])
    assert script[:2] == ["sh", "-c"] and "rm" not in script[2]
    assert "mv -- '/opt/openbao/data dir/raft' '/opt/openbao/data dir/raft.vaultops-aside-1'" in script[2]
    assert res.ok
    for bad in ("; rm -rf /", ".x y", "../up"):
        with pytest.raises(DriverError):
            drv.set_aside("/opt/openbao/data/raft", suffix=bad)
    with pytest.raises(DriverError, match="absolute"):
        drv.set_aside("relative/raft", suffix=".a")

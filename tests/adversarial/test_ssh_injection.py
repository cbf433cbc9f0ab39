"""ssh injection: hostile host, user, node, service, binary and package values run nothing, here or remote.

Defect 7: a host or node name starting with '-' (`-oProxyCommand=...`) ran a local command, and
{service} {binary} {package} went into remote shell commands unquoted. Each value is now a
checked name (a ConfigError naming node and key when the driver is built), every value filled
into a template is shell-quoted, and `--` comes before the host. Each attempt below then drives
the driver through the real OpenSSH client against a real sshd on 127.0.0.1, so an injection that
slipped through would create the marker file.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from vaultops.drivers import get_driver
from vaultops.errors import ConfigError, VaultOpsError
from vaultops.testing.sshd import SSHServer

PAYLOADS = ["-oProxyCommand=touch {pwn}", "x;touch {pwn}", "$(touch {pwn})", "`touch {pwn}`", "x && touch {pwn}",
            "x|touch {pwn}", "x\ntouch {pwn}", "x' ; touch {pwn}; '", "-x"]


def _settings(sshd: SSHServer, **extra: Any) -> dict[str, Any]:
    # A one-word command too (a wrapper script on the node): after the old `HOST -- COMMAND` order a host
    # like -oProxyCommand=... was an option and that word became the host ssh connected to.
    return {"type": "ssh", "host": "127.0.0.1", "port": sshd.port, "options": sshd.options(),
            "commands": {"reload": "/usr/local/bin/vault-reload"}, **extra}


def _attempt(node: str, settings: dict[str, Any]) -> ConfigError | None:
    """Build the driver; if that is allowed, run everything it can run. The refusal, or None."""
    try:
        drv = get_driver(node, settings)
    except ConfigError as exc:
        return exc
    for call in (drv.is_running, drv.installed_version, drv.stop, drv.reload, lambda: drv.install("2.7.2")):
        with contextlib.suppress(VaultOpsError):
            call()
    return None


@pytest.mark.integration
@pytest.mark.parametrize("key", ["host", "user", "service", "binary", "package"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_driver_values_are_refused_and_run_nothing(sshd: SSHServer, tmp_path: Path, key: str,
                                                           payload: str) -> None:
    pwn = tmp_path / "pwn"
    value = payload.format(pwn=pwn)
    refused = _attempt("vault-1", _settings(sshd, **{key: value}))
    assert not pwn.exists(), f"{key}={value!r} ran a command"
    assert isinstance(refused, ConfigError)
    message = str(refused)
    assert f"node vault-1: driver.{key}" in message and "\n" not in message


@pytest.mark.integration
@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_hostile_node_name_is_no_ssh_option(sshd: SSHServer, tmp_path: Path, payload: str) -> None:
    """With no driver.host the node name is the host: it is checked as both."""
    pwn = tmp_path / "pwn"
    settings = _settings(sshd)
    del settings["host"]
    refused = _attempt(payload.format(pwn=pwn), settings)
    assert not pwn.exists() and isinstance(refused, ConfigError)


def test_a_hostile_node_name_never_reaches_the_local_driver(tmp_path: Path) -> None:
    for node in ("../../victim", "-x", "a/b", "a\nb"):
        with pytest.raises(ConfigError, match="node name"):
            get_driver(node, {"type": "local", "dir": str(tmp_path)})


@pytest.mark.integration
def test_filled_in_values_reach_the_remote_shell_quoted(sshd: SSHServer, tmp_path: Path) -> None:
    """Quoting holds even for a value that got past the name check: the remote shell gets it literally."""
    pwn = tmp_path / "pwn"
    drv = get_driver("vault-1", _settings(sshd, commands={"is_running": "printf '%s\\n' {service} {binary} {package}"}))
    hostile = {"service": f"x;touch {pwn}", "binary": f"$(touch {pwn})", "package": f"`touch {pwn}` 'q'"}
    drv.fill.update(hostile)                                     # as if validation had been bypassed
    res = drv.run(drv._command("is_running"))
    assert res.ok and res.stdout.splitlines() == list(hostile.values())
    assert not pwn.exists()


@pytest.mark.integration
def test_operator_ssh_options_still_apply_and_precede_the_host(sshd: SSHServer, tmp_path: Path) -> None:
    """driver.options are the operator's own ssh arguments: they keep working, before `--` and the host."""
    marker = tmp_path / "via-option"
    options = [*sshd.options(), "-o", f"LocalCommand=touch {marker}", "-o", "PermitLocalCommand=yes"]
    drv = get_driver("vault-1", {"type": "ssh", "host": "127.0.0.1", "port": sshd.port, "options": options})
    assert drv.run("echo ok").stdout.strip() == "ok"
    assert marker.exists()                                    # the operator asked for it: it ran
    argv = drv._argv("true")
    end = argv.index("--")
    assert argv[end + 1:] == ["127.0.0.1", "true"] and end > argv.index("PermitLocalCommand=yes")


@pytest.mark.parametrize("template", ["{service.__class__}", "{token}", "{version}", "{service!r}", "{0}", "{"])
def test_command_templates_use_only_the_known_fields(template: str) -> None:
    with pytest.raises(ConfigError, match="driver.commands.start"):
        get_driver("vault-1", {"type": "ssh", "commands": {"start": f"sudo systemctl start {template}"}})

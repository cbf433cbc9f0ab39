"""The ssh driver: node operations through the OpenSSH client, so ~/.ssh/config, agents,
ProxyJump bastions and known_hosts work exactly as they do for the operator.

    driver:
      type: ssh
      host: vault-1                  # anything `ssh` accepts: alias, user@host
      port: 22                       # optional
      user: ops                      # optional
      options: [ "-F", "/path/ssh_config" ]   # extra ssh arguments, optional
      service: vault                 # systemd unit (default vault)
      binary: vault                  # server binary for `version` (default vault)
      package: vault                 # package for the default install command
      config_file: /etc/vault.d/vault.hcl   # the server's HCL file: the upgrade preflight's release checks read it
      commands:                      # each optional; {service} {binary} {package} {version} are filled in
        stop: sudo systemctl stop {service}
        start: sudo systemctl start {service}
        reload: sudo systemctl reload {service}
        kill: sudo systemctl kill --signal=SIGKILL {service}
        is_running: systemctl is-active --quiet {service}
        version: "{binary} version"
        install: sudo apt-get install -y {package}={version}

Commands run as `ssh -o BatchMode=yes [-p PORT] [-l USER] [options] -- HOST COMMAND` (never a
password prompt; after `--` nothing is read as an ssh option). host, user, service, binary and
package are checked as names when the driver is built (a value like `-oProxyCommand=...` or
`x;reboot` is a ConfigError naming the node and key), and every value filled into a command
template is shell-quoted besides. File contents go through stdin, never argv. ssh sees only the
base environment, SSH_AUTH_SOCK (its agent) and KRB5CCNAME: no Vault token or cloud credential.
"""

from __future__ import annotations

import re
import shlex
import string
from pathlib import PurePosixPath
from typing import Any

from vaultops import process
from vaultops.drivers.base import Result, check_account, check_suffix
from vaultops.errors import ConfigError, DriverError
from vaultops.names import Kind, check_name

DEFAULT_COMMANDS = {
    "stop": "sudo systemctl stop {service}",
    "start": "sudo systemctl start {service}",
    "reload": "sudo systemctl reload {service}",
    "kill": "sudo systemctl kill --signal=SIGKILL {service}",
    "is_running": "systemctl is-active --quiet {service}",
    "version": "{binary} version",
    "install": "sudo apt-get install -y {package}={version}",
}
SSH_FAILED = 255
_VERSION = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$")
_REPORTED = re.compile(r"v?(\d+\.\d+\.\d+)")
# The agent, and a Kerberos ticket cache for GSSAPI logins (a path); the rest ssh reads is ~/.ssh (HOME).
SSH_ENV = ("SSH_AUTH_SOCK", "KRB5CCNAME")
_FILLED = {"service": Kind.SERVICE, "binary": Kind.BINARY, "package": Kind.PACKAGE}
_KEYS = {"type", "host", "port", "user", "options", "service", "binary", "package", "commands", "ssh",
         "connect_timeout", "config_file"}


class SSHDriver:
    def __init__(self, node: str, settings: dict[str, Any]) -> None:
        self.node = check_name(Kind.NODE, node, where="node", error=ConfigError)
        unknown = set(settings) - _KEYS
        if unknown:
            raise ConfigError(f"node {node}: unknown ssh driver key {sorted(unknown)[0]!r}",
                              hint=f"known keys: {', '.join(sorted(_KEYS))}")
        self.host = self._name(Kind.HOST, "host", settings.get("host") or node)
        self.config_file = self._config_file(settings.get("config_file"))
        commands = settings.get("commands") or {}
        bad = set(commands) - set(DEFAULT_COMMANDS)
        if bad:
            raise ConfigError(f"node {node}: unknown driver command {sorted(bad)[0]!r}",
                              hint=f"known: {', '.join(DEFAULT_COMMANDS)}")
        self.commands = {**DEFAULT_COMMANDS, **{k: _template(node, k, v) for k, v in commands.items()}}
        self.fill = {key: self._name(kind, key, settings.get(key) or "vault") for key, kind in _FILLED.items()}
        self.base = self._base_argv(settings)

    def _name(self, kind: Kind, key: str, value: Any) -> str:
        return check_name(kind, value, where=f"node {self.node}: driver.{key}", error=ConfigError)

    def _config_file(self, value: Any) -> str | None:
        """An absolute path without control characters (it reaches a shell-quoted `cat`), or None."""
        if value is None:
            return None
        if not isinstance(value, str) or not value.startswith("/") or any(ord(c) < 32 for c in value):
            raise ConfigError(f"node {self.node}: driver.config_file must be an absolute path",
                              hint="e.g. /etc/openbao/openbao.hcl")
        return value

    def _base_argv(self, settings: dict[str, Any]) -> list[str]:
        argv = [str(settings.get("ssh") or "ssh"), "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={_number(self.node, settings, 'connect_timeout', 10)}"]
        if settings.get("port"):
            argv += ["-p", str(_number(self.node, settings, "port", 22))]
        if settings.get("user"):
            argv += ["-l", self._name(Kind.ACCOUNT, "user", settings["user"])]
        options = settings.get("options") or []
        if not isinstance(options, list):
            raise ConfigError(f"node {self.node}: driver.options must be a list of ssh arguments")
        # The operator's own ssh arguments, as written; then `--`, so the host is never an option.
        return argv + [str(o) for o in options]

    def _argv(self, command: str) -> list[str]:
        return [*self.base, "--", self.host, command]

    # -- running commands ---------------------------------------------------------
    def run(self, command: str, *, stdin: bytes | None = None, timeout: float = 120.0) -> Result:
        """Run COMMAND on the node; returns its Result (non-zero exit is not raised here)."""
        res = self._ssh(command, stdin=stdin, timeout=timeout)
        if res.exit_code == SSH_FAILED:
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise DriverError(f"{self.node}: ssh to {self.host} failed: {last[:200]}",
                              hint=f"check that `ssh {self.host}` works non-interactively (keys, agent, "
                                   "known_hosts)", result=res)
        return res

    def _ssh(self, command: str, *, stdin: bytes | None, timeout: float, keep_stdout: bool = False) -> Result:
        try:
            return process.run(self._argv(command), input=stdin if stdin is not None else b"", timeout=timeout,
                               env=SSH_ENV, command=command, keep_stdout=keep_stdout, label=self.node)
        except process.ProcessError as exc:
            if exc.timed_out:
                raise DriverError(f"{self.node}: '{command}' did not finish in {timeout:g}s",
                                  hint=f"check the node by hand: ssh {self.host}", result=exc.result) from None
            raise DriverError(f"{self.node}: cannot run ssh ({exc.message})",
                              hint="install the OpenSSH client") from None

    def _command(self, name: str, **extra: str) -> str:
        """The remote command: each value filled in is shell-quoted (they are checked names too)."""
        values = {k: shlex.quote(v) for k, v in {**self.fill, **extra}.items()}
        return self.commands[name].format_map(values)

    def _checked(self, name: str, *, timeout: float = 120.0, **extra: str) -> Result:
        return self.run(self._command(name, **extra), timeout=timeout).check(self.node)

    # -- NodeDriver ----------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.run(self._command("is_running"), timeout=30).ok

    def start(self) -> Result:
        return self._checked("start")

    def stop(self, *, timeout: float = 30.0) -> Result:
        return self._checked("stop", timeout=timeout + 30)

    def kill(self) -> Result:
        return self._checked("kill")

    def reload(self) -> Result:
        return self._checked("reload")

    def installed_version(self) -> str:
        res = self._checked("version", timeout=30)
        match = _REPORTED.search(res.stdout)
        if not match:
            raise DriverError(f"{self.node}: '{res.command}' printed no version",
                              hint="set driver.commands.version to a command printing it", result=res)
        return match.group(1)

    def install(self, version: str) -> Result:
        if not _VERSION.match(version):
            raise DriverError(f"{self.node}: {version!r} is not a version", hint="e.g. 2.7.2")
        return self._checked("install", timeout=900, version=version)

    def write_file(self, path: str, data: bytes, *, mode: int = 0o600, owner: str | None = None,
                   group: str | None = None) -> Result:
        chown = _chown(check_account(self.node, owner, "owner"), check_account(self.node, group, "group"))
        p = PurePosixPath(path)
        # The trap removes the temp file whatever fails (chown included); the old file stays until the mv.
        script = (f"set -e; umask 077; tmp=$(mktemp {shlex.quote(str(p.parent))}/.{shlex.quote(p.name)}.XXXXXX); "
                  f"trap 'rm -f \"$tmp\"' EXIT; cat > \"$tmp\"; {chown}chmod {mode:o} \"$tmp\"; "
                  f"mv -f \"$tmp\" {shlex.quote(str(p))}; trap - EXIT")
        res = self.run(f"sh -c {shlex.quote(script)}", stdin=data, timeout=120)
        res = Result(f"write {path}", res.exit_code, res.stdout, res.stderr)
        if not res.ok and chown and ("chown:" in res.stderr or "chgrp:" in res.stderr):
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise DriverError(f"{self.node}: '{res.command}' exited {res.exit_code}: {last[:200]}",
                              hint=f"giving files away needs root on {self.host}: log in as root (driver.user), "
                                   "or drop tls.owner/tls.group", result=res)
        return res.check(self.node)

    def read_file(self, path: str) -> bytes:
        try:
            res = self._ssh(f"cat -- {shlex.quote(path)}", stdin=None, timeout=120, keep_stdout=True)
        except DriverError as exc:
            raise DriverError(f"{self.node}: cannot read {path} ({exc.message})",
                              hint=f"try: ssh {self.host}") from None
        if not res.ok:
            Result(f"cat {path}", res.exit_code, "", res.stderr).check(self.node)
        return res.output

    def set_aside(self, path: str, *, suffix: str) -> Result:
        p, target = shlex.quote(path), shlex.quote(path + check_suffix(self.node, suffix))
        if not path.startswith("/"):
            raise DriverError(f"{self.node}: {path!r} is not an absolute path", hint="check the raft path")
        script = (f"if [ -e {p} ] || [ -L {p} ]; then [ ! -e {target} ] && mv -- {p} {target}; "
                  "else echo 'nothing there'; fi")
        res = self.run(f"sh -c {shlex.quote(script)}", timeout=120)
        return Result(f"mv {path} {path + suffix}", res.exit_code, res.stdout, res.stderr).check(self.node)


def _chown(owner: str | None, group: str | None) -> str:
    """The script's chown/chgrp of "$tmp" (with a trailing "; "), or "" when ownership is left alone."""
    if owner is None and group is None:
        return ""
    if owner is None:
        return f"chgrp {shlex.quote(str(group))} \"$tmp\"; "
    spec = owner if group is None else f"{owner}:{group}"
    return f"chown {shlex.quote(spec)} \"$tmp\"; "


def _template(node: str, name: str, value: Any) -> str:
    """A command template whose only fields are plain {service} {binary} {package} ({version} in install)."""
    allowed = {*_FILLED, *(("version",) if name == "install" else ())}
    text = str(value)
    try:
        fields = [(f, spec or conv) for _, f, spec, conv in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"node {node}: driver.commands.{name}: {exc}", hint="write {{ and }} for braces") from None
    for field, extra in fields:
        if field not in allowed or extra:
            raise ConfigError(f"node {node}: driver.commands.{name} uses {{{field}}} (or a format in it)",
                              hint=f"the fields it may use: {', '.join('{%s}' % f for f in sorted(allowed))}")
    return text


def _number(node: str, settings: dict[str, Any], key: str, default: int) -> int:
    value = settings.get(key) or default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"node {node}: driver.{key} must be a number, got {str(value)[:40]!r}",
                          hint=f"e.g. {key}: {default}") from None

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
      commands:                      # each optional; {service} {binary} {package} {version} are filled in
        stop: sudo systemctl stop {service}
        start: sudo systemctl start {service}
        reload: sudo systemctl reload {service}
        kill: sudo systemctl kill --signal=SIGKILL {service}
        is_running: systemctl is-active --quiet {service}
        version: "{binary} version"
        install: sudo apt-get install -y {package}={version}

Commands run as `ssh -o BatchMode=yes [options] HOST -- COMMAND` (never a
password prompt). File contents go through stdin, never argv.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import PurePosixPath
from typing import Any

from vaultops.drivers.base import Result, check_account
from vaultops.errors import ConfigError, DriverError
from vaultops.childenv import clean_env

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
_KEYS = {"type", "host", "port", "user", "options", "service", "binary", "package", "commands", "ssh",
         "connect_timeout"}


class SSHDriver:
    def __init__(self, node: str, settings: dict[str, Any]) -> None:
        self.node = node
        unknown = set(settings) - _KEYS
        if unknown:
            raise ConfigError(f"node {node}: unknown ssh driver key {sorted(unknown)[0]!r}",
                              hint=f"known keys: {', '.join(sorted(_KEYS))}")
        self.host = str(settings.get("host") or node)
        commands = settings.get("commands") or {}
        bad = set(commands) - set(DEFAULT_COMMANDS)
        if bad:
            raise ConfigError(f"node {node}: unknown driver command {sorted(bad)[0]!r}",
                              hint=f"known: {', '.join(DEFAULT_COMMANDS)}")
        self.commands = {**DEFAULT_COMMANDS, **{k: str(v) for k, v in commands.items()}}
        self.fill = {"service": str(settings.get("service") or "vault"),
                     "binary": str(settings.get("binary") or "vault"),
                     "package": str(settings.get("package") or "vault")}
        self.base = self._base_argv(settings)

    def _base_argv(self, settings: dict[str, Any]) -> list[str]:
        argv = [str(settings.get("ssh") or "ssh"), "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={int(settings.get('connect_timeout') or 10)}"]
        if settings.get("port"):
            argv += ["-p", str(int(settings["port"]))]
        if settings.get("user"):
            argv += ["-l", str(settings["user"])]
        options = settings.get("options") or []
        if not isinstance(options, list):
            raise ConfigError(f"node {self.node}: driver.options must be a list of ssh arguments")
        return argv + [str(o) for o in options]

    # -- running commands ---------------------------------------------------------
    def run(self, command: str, *, stdin: bytes | None = None, timeout: float = 120.0) -> Result:
        """Run COMMAND on the node; returns its Result (non-zero exit is not raised here)."""
        argv = [*self.base, self.host, "--", command]
        try:
            proc = subprocess.run(argv, input=stdin if stdin is not None else b"", capture_output=True,
                                  timeout=timeout, env=clean_env())
        except subprocess.TimeoutExpired as exc:
            raise DriverError(f"{self.node}: '{command}' did not finish in {timeout:g}s",
                              hint=f"check the node by hand: ssh {self.host}",
                              result=Result.of(command, -1, exc.stdout or b"", exc.stderr or b"")) from None
        except OSError as exc:
            raise DriverError(f"{self.node}: cannot run ssh ({exc.strerror})",
                              hint="install the OpenSSH client") from None
        res = Result.of(command, proc.returncode, proc.stdout, proc.stderr)
        if proc.returncode == SSH_FAILED:
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise DriverError(f"{self.node}: ssh to {self.host} failed: {last[:200]}",
                              hint=f"check that `ssh {self.host}` works non-interactively (keys, agent, "
                                   "known_hosts)", result=res)
        return res

    def _command(self, name: str, **extra: str) -> str:
        return self.commands[name].format(**self.fill, **extra)

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
        argv = [*self.base, self.host, "--", f"cat -- {shlex.quote(path)}"]
        try:
            proc = subprocess.run(argv, input=b"", capture_output=True, timeout=120, env=clean_env())
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DriverError(f"{self.node}: cannot read {path} ({exc})", hint=f"try: ssh {self.host}") from None
        if proc.returncode != 0:
            Result.of(f"cat {path}", proc.returncode, b"", proc.stderr).check(self.node)
        return proc.stdout


def _chown(owner: str | None, group: str | None) -> str:
    """The script's chown/chgrp of "$tmp" (with a trailing "; "), or "" when ownership is left alone."""
    if owner is None and group is None:
        return ""
    if owner is None:
        return f"chgrp {shlex.quote(str(group))} \"$tmp\"; "
    spec = owner if group is None else f"{owner}:{group}"
    return f"chown {shlex.quote(spec)} \"$tmp\"; "

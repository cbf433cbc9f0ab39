"""The node driver contract: how vaultops stops, starts, upgrades and reloads one node.

A driver is one module implementing NodeDriver; it is chosen by name
(`driver: {type: local|ssh}` in vaultops.yaml) through vaultops.drivers.get_driver.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vaultops.errors import DriverError

TAIL = 2000
# A user or group for chown: a portable POSIX-ish name (adduser's NAME_REGEX) or a numeric id.
ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]*[$]?|[0-9]+")


@dataclass(frozen=True)
class Result:
    """What a driver command did. Output is only the tail, and never holds secrets we sent."""

    command: str
    exit_code: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @classmethod
    def of(cls, command: str, exit_code: int, stdout: str | bytes = "", stderr: str | bytes = "") -> Result:
        def tail(v: str | bytes) -> str:
            text = v.decode(errors="replace") if isinstance(v, bytes) else v
            return text[-TAIL:]
        return cls(command, exit_code, tail(stdout), tail(stderr))

    def check(self, node: str) -> Result:
        if not self.ok:
            last = (self.stderr or self.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DriverError(f"{node}: '{self.command}' exited {self.exit_code}: {last[0][:200]}",
                              hint="see the node's service log", result=self)
        return self


@runtime_checkable
class NodeDriver(Protocol):
    node: str

    def is_running(self) -> bool: ...

    def start(self) -> Result: ...

    def stop(self, *, timeout: float = 30.0) -> Result:
        """Graceful stop (SIGTERM / systemctl stop), waiting until the process is gone."""
        ...

    def kill(self) -> Result:
        """Hard stop (SIGKILL): for fault injection and stuck nodes."""
        ...

    def reload(self) -> Result:
        """Ask the server to reload (SIGHUP): re-reads its TLS certificate and key."""
        ...

    def installed_version(self) -> str: ...

    def install(self, version: str) -> Result:
        """Put the given server version in place; takes effect at the next start."""
        ...

    def write_file(self, path: str, data: bytes, *, mode: int = 0o600, owner: str | None = None,
                   group: str | None = None) -> Result:
        """Write atomically on the node (data through stdin, never argv).

        *owner*/*group* (name or numeric id; None keeps the writing user's) are set on the
        temp file before the rename, so the target never exists with the wrong owner.
        """
        ...

    def read_file(self, path: str) -> bytes: ...


def check_account(node: str, value: str | None, what: str) -> str | None:
    """*value* if it is a plain user/group name or id; anything else is refused before it reaches a shell."""
    if value is None or ACCOUNT.fullmatch(value):
        return value
    raise DriverError(f"{node}: {what} {value[:40]!r} is not a user/group name or numeric id",
                      hint=f"use a name like vault or a number like 995 for tls.{what}")

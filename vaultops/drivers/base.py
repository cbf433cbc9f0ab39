"""The node driver contract: how vaultops stops, starts, upgrades and reloads one node.

A driver is one module implementing NodeDriver; it is chosen by name
(`driver: {type: local|ssh}` in vaultops.yaml) through vaultops.drivers.get_driver.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from vaultops.errors import DriverError
from vaultops.process import Result  # the one result type; re-exported for drivers and their tests

# A user or group for chown: a portable POSIX-ish name (adduser's NAME_REGEX) or a numeric id.
ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]*[$]?|[0-9]+")


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

    def set_aside(self, path: str, *, suffix: str) -> Result:
        """Rename *path* (a file or folder) on the node to *path* + *suffix*, never deleting anything;
        nothing there is success ("nothing there"). Disaster recovery moves a node's stale raft data
        away with it before the node joins again."""
        ...


SUFFIX = re.compile(r"\.[A-Za-z0-9_-]{1,64}")


def check_suffix(node: str, suffix: str) -> str:
    """A set-aside suffix: a dot and a plain word (it reaches a path and a remote shell)."""
    if SUFFIX.fullmatch(suffix):
        return suffix
    raise DriverError(f"{node}: {suffix[:40]!r} is not a plain suffix", hint="e.g. .vaultops-1a2b3c")


def check_account(node: str, value: str | None, what: str) -> str | None:
    """*value* if it is a plain user/group name or id; anything else is refused before it reaches a shell."""
    if value is None or ACCOUNT.fullmatch(value):
        return value
    raise DriverError(f"{node}: {what} {value[:40]!r} is not a user/group name or numeric id",
                      hint=f"use a name like vault or a number like 995 for tls.{what}")


__all__ = ["ACCOUNT", "NodeDriver", "Result", "check_account", "check_suffix"]

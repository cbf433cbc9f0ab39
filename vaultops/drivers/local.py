"""The local driver: OpenBao processes started on this machine by the sandbox.

A node folder holds `config.hcl`, `binary` (the path of the bao binary to
run), `bao.pid` and `bao.log`. A pid is trusted only while its command line
still names this node's config, so a reused pid is never signalled.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path
from typing import Any

from vaultops import process
from vaultops.drivers.base import Result, check_account, check_suffix
from vaultops.errors import ConfigError, DriverError
from vaultops.files.atomic import atomic_write_bytes, atomic_write_text
from vaultops.names import Kind, check_name
from vaultops.retry import TimedOut, poll


class LocalDriver:
    def __init__(self, node: str, settings: dict[str, Any]) -> None:
        self.node = check_name(Kind.NODE, node, where=f"node {node!r}", error=ConfigError)
        if "dir" not in settings:
            raise DriverError(f"{node}: local driver needs driver.dir", hint="the node folder made by the sandbox")
        self.dir = Path(settings["dir"])
        self.config = self.dir / "config.hcl"
        self.config_file = str(self.config)     # read by the upgrade preflight's release checks
        self.pid_file = self.dir / "bao.pid"
        self.log_file = self.dir / "bao.log"

    # -- process state ---------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        if str(self.config).encode() not in cmdline:
            return None
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None
        return None if state == "Z" else pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def binary(self) -> Path:
        return Path((self.dir / "binary").read_text().strip())

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> Result:
        if self.is_running():
            return Result.of("start", 0, "already running")
        cmd = [str(self.binary()), "server", f"-config={self.config}"]
        # Its own session, no descriptor of ours (a cron `flock` wrapper's lock), no credential in its env.
        pid = process.spawn_detached(cmd, log=self.log_file, label=self.node)
        atomic_write_text(self.pid_file, f"{pid}\n")
        time.sleep(0.05)   # a grace period, not a wait: a bad config makes bao exit at once; catch that here
        if self.pid() is None:
            tail = self.log_file.read_bytes()[-600:].decode(errors="replace")
            process.reap(pid)
            raise DriverError(f"{self.node}: bao exited at start", hint=f"see {self.log_file}",
                              result=Result.of("start", 1, "", tail))
        return Result.of(" ".join(cmd), 0, f"pid {pid}")

    def stop(self, *, timeout: float = 30.0) -> Result:
        return self._signal_and_wait(signal.SIGTERM, timeout, "stop")

    def kill(self) -> Result:
        return self._signal_and_wait(signal.SIGKILL, 10.0, "kill")

    def reload(self) -> Result:
        pid = self.pid()
        if pid is None:
            raise DriverError(f"{self.node}: not running, cannot reload", hint="start it first")
        os.kill(pid, signal.SIGHUP)
        return Result.of(f"kill -HUP {pid}", 0)

    def _signal_and_wait(self, sig: signal.Signals, timeout: float, what: str) -> Result:
        pid = self.pid()
        if pid is None:
            return Result.of(what, 0, "not running")
        os.kill(pid, sig)
        if self._gone(pid, timeout):
            return Result.of(f"kill -{sig.name} {pid}", 0)
        if sig != signal.SIGKILL:
            os.kill(pid, signal.SIGKILL)
            self._gone(pid, 0.2)
            return Result.of(f"kill -{sig.name} {pid}", 1, "", f"did not exit in {timeout:g}s; killed")
        raise DriverError(f"{self.node}: pid {pid} survived SIGKILL", hint="check the process by hand")

    def _gone(self, pid: int, timeout: float) -> bool:
        """Whether *pid* has exited (and is reaped) within *timeout* seconds."""
        def exited() -> bool | None:
            process.reap(pid)
            return True if self.pid() is None else None
        try:
            return poll(exited, timeout=timeout, interval=0.05, what=f"{self.node}: pid {pid} to exit", tolerate=())
        except TimedOut:
            return False

    # -- versions ------------------------------------------------------------
    def installed_version(self) -> str:
        from vaultops.releases import binary_version

        return binary_version(self.binary())

    def install(self, version: str) -> Result:
        from vaultops.releases import ensure

        path = ensure(version)
        atomic_write_text(self.dir / "binary", f"{path}\n")
        return Result.of(f"install openbao {version}", 0, str(path))

    def set_aside_storage(self, label: str) -> Result:
        """Move the node's raft data folder aside (kept as data.LABEL) and leave an empty one: the
        node starts as a fresh, uninitialised server (`upgrade rollback` restores into it)."""
        data = self.dir / "data"
        if self.is_running():
            raise DriverError(f"{self.node}: running; refusing to move its storage", hint="stop it first")
        if not data.exists() or not any(data.iterdir()):
            data.mkdir(mode=0o700, exist_ok=True)
            return Result.of(f"set aside {data}", 0, "already empty")
        if not label.replace("-", "").isalnum():
            raise DriverError(f"{self.node}: bad storage label {label[:40]!r}", hint="letters, digits and '-' only")
        kept = data.with_name(f"data.{label}")
        data.rename(kept)
        data.mkdir(mode=0o700)
        return Result.of(f"mv {data} {kept}", 0, str(kept))

    # -- files -----------------------------------------------------------------
    def write_file(self, path: str, data: bytes, *, mode: int = 0o600, owner: str | None = None,
                   group: str | None = None) -> Result:
        ids = self._ids(path, owner, group)
        try:
            atomic_write_bytes(path, data, mode=mode, owner=ids)
        except OSError as exc:  # every one: a caller rolling back must see a DriverError, not a traceback
            raise DriverError(f"{self.node}: cannot write {path}: {exc.strerror or type(exc).__name__}",
                              hint=_write_hint(exc)) from None
        return Result.of(f"write {path}", 0)

    def _ids(self, path: str, owner: str | None, group: str | None) -> tuple[int, int] | None:
        """(uid, gid) for chown, -1 keeping either; refused up front when we may not give the file away."""
        if owner is None and group is None:
            return None
        uid = _account_id(self.node, owner, "owner")
        gid = _account_id(self.node, group, "group")
        if os.geteuid() == 0:
            return uid, gid
        if uid not in (-1, os.geteuid()):
            raise DriverError(f"{self.node}: cannot make {owner} the owner of {path} as uid {os.geteuid()}",
                              hint=f"run vaultops as root or as {owner}, or drop tls.owner")
        if gid not in (-1, os.getegid(), *os.getgroups()):
            raise DriverError(f"{self.node}: cannot give {path} to group {group}: not a member",
                              hint=f"run vaultops as root or as a member of {group}, or drop tls.group")
        return uid, gid

    def read_file(self, path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise DriverError(f"{self.node}: cannot read {path}: {exc.strerror}", hint="check the path") from None

    def set_aside(self, path: str, *, suffix: str) -> Result:
        target = path + check_suffix(self.node, suffix)
        if not os.path.isabs(path):
            raise DriverError(f"{self.node}: {path!r} is not an absolute path", hint="check the raft path")
        if not os.path.lexists(path):
            return Result.of(f"mv {path} {target}", 0, "nothing there")
        if os.path.lexists(target):
            raise DriverError(f"{self.node}: {target} exists already", hint="move it away by hand, then retry")
        try:
            os.rename(path, target)
        except OSError as exc:
            raise DriverError(f"{self.node}: cannot move {path} aside: {exc.strerror}",
                              hint=_write_hint(exc)) from None
        return Result.of(f"mv {path} {target}", 0)


def _account_id(node: str, value: str | None, what: str) -> int:
    """Numeric id of a user (owner) or group name; digits are taken as they are; None is -1 (keep)."""
    import grp
    import pwd

    name = check_account(node, value, what)
    if name is None:
        return -1
    if name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid if what == "owner" else grp.getgrnam(name).gr_gid
    except KeyError:
        raise DriverError(f"{node}: no {'user' if what == 'owner' else 'group'} {name!r} on this machine",
                          hint=f"create it or fix tls.{what}") from None


def _write_hint(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "run vaultops as root or as the file's owner, or drop tls.owner/tls.group"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free space (or quota) on the file system that holds it, then try again"
    if exc.errno == errno.EROFS:
        return "its file system is mounted read-only: remount it read-write, then try again"
    return "check the path (its folder must exist or be creatable) and the file system"


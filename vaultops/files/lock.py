"""The one lock helper, and the one way vaultops creates a directory.

    with exclusive_lock(path, what="backup run", error=BackupError, busy=lambda h: BackupError(...)):
        ...

The lock is an flock on a small file: the kernel drops it when the holder dies (even SIGKILL), so
a crashed run never leaves a stale lock. The file is opened with O_NOFOLLOW and must be a regular
file owned by us with one link, so a symlink or hard link planted at the lock path cannot make us
truncate someone else's file; a directory or FIFO there is refused rather than waited on. The
holder writes who it is (pid, host, user, since, what) into the file for the busy message.
Lock files are never unlinked: removing a lock file while someone waits on it would let two
processes hold "the" lock at once.

Directories vaultops creates are 0700 whatever the umask (`private_dir`); an existing directory
that others may write to without the sticky bit is refused for a lock (anyone could swap the file).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import os
import socket
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from vaultops.errors import VaultOpsError
from vaultops.retry import TimedOut
from vaultops.retry import poll as wait_until

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_HOLDER_MAX = 4096


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a lock, as recorded in the lock file."""

    pid: int | None = None
    host: str = ""
    user: str = ""
    since: str = ""
    what: str = ""

    def describe(self) -> str:
        if self.pid is None:
            return "holder unknown"
        parts = [f"pid {self.pid}"]
        if self.host:
            parts.append(f"on {self.user + '@' if self.user else ''}{self.host}")
        if self.since:
            parts.append(f"since {self.since}")
        if self.what:
            parts.append(f"({self.what})")
        return " ".join(parts)

    def to_bytes(self) -> bytes:
        return (json.dumps({"pid": self.pid, "host": self.host, "user": self.user, "since": self.since,
                            "what": self.what}, sort_keys=True) + "\n").encode()

    @classmethod
    def parse(cls, raw: bytes) -> Holder:
        """The record in a lock file; an old bare-pid file or garbage gives what can be read."""
        text = raw.decode(errors="replace").strip()
        if text.isdigit():
            return cls(pid=int(text))
        try:
            data = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
            return cls()
        return cls(pid=data["pid"], **{k: _printable(data.get(k)) for k in ("host", "user", "since", "what")})

    @classmethod
    def me(cls, what: str) -> Holder:
        return cls(pid=os.getpid(), host=socket.gethostname(), user=os_user(), what=what,
                   since=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def private_dir(path: str | os.PathLike[str], *, owner: tuple[int, int] | None = None) -> Path:
    """Create *path* and any missing parents as 0700 (whatever the umask); existing ones are left alone.

    *owner* (uid, gid; -1 keeps either) is applied to the directories created here, so a service
    user can reach files vaultops installs for it.
    """
    target = Path(path)
    missing: list[Path] = []
    probe = target
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue
        os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask; 0700 is meant literally
        if owner is not None:
            os.chown(directory, *owner)
    return target


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str], *, what: str, error: type[VaultOpsError],
                   busy: Callable[[Holder], VaultOpsError] | None = None, wait: float = 0.0,
                   poll: float = 0.2) -> Iterator[Holder]:
    """Hold an exclusive flock on *path* for the block; yields the record written for us.

    *error* is the caller's error class for an unusable lock path; *busy(holder)* builds the error
    raised when another process keeps the lock for longer than *wait* seconds.
    """
    lock_path = Path(path)
    fd = _open_lock(lock_path, error)
    try:
        _acquire(fd, lock_path, wait=wait, poll=poll, busy=busy or _default_busy(lock_path, what, error))
        me = Holder.me(what)
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.to_bytes(), 0)
        yield me
    finally:
        os.close(fd)  # closing drops the flock


def _open_lock(path: Path, error: type[VaultOpsError]) -> int:
    try:
        directory = private_dir(path.parent)
    except OSError as exc:
        raise _unusable(path, error, f"cannot have its folder created ({exc.strerror})") from None
    _check_dir(directory, error)
    try:
        fd = os.open(path, _OPEN_FLAGS, 0o600)
    except OSError as exc:
        raise _unusable(path, error, _why(exc)) from None
    try:
        st = os.fstat(fd)
        problem = _file_problem(st)
        if problem:
            raise _unusable(path, error, problem)
        if stat.S_IMODE(st.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _acquire(fd: int, path: Path, *, wait: float, poll: float,
             busy: Callable[[Holder], VaultOpsError]) -> None:
    def locked() -> bool | None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        return True
    try:
        wait_until(locked, timeout=wait, interval=poll, what=f"the lock {path}", tolerate=())
    except TimedOut:
        raise busy(Holder.parse(os.pread(fd, _HOLDER_MAX, 0))) from None


def _check_dir(directory: Path, error: type[VaultOpsError]) -> None:
    st = directory.stat()
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        raise error(f"refusing a lock in {directory}: others may write to it (mode {stat.S_IMODE(st.st_mode):o}), "
                    "so anyone could swap the lock file",
                    hint=f"use a directory only you can write to (chmod 700 {directory}), or set the lock path")


def _file_problem(st: os.stat_result) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}, not by us"
    if st.st_nlink != 1:
        return "has other hard links"
    return None


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symlink"
    if exc.errno == errno.EISDIR:
        return "is a directory"
    return f"cannot be opened ({exc.strerror})"


def _unusable(path: Path, error: type[VaultOpsError], problem: str) -> VaultOpsError:
    return error(f"refusing the lock file {path}: it {problem}",
                 hint="remove whatever is at that path (vaultops creates its own lock file there)")


def _default_busy(path: Path, what: str, error: type[VaultOpsError]) -> Callable[[Holder], VaultOpsError]:
    return lambda holder: error(f"another {what} holds {path} ({holder.describe()})", hint="wait for it to finish")


def _printable(value: object) -> str:
    text = str(value or "")[:120]
    return "".join(c if c.isprintable() else "?" for c in text)


def os_user() -> str:
    """The OS user name (a uid where there is no passwd entry)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return str(os.getuid())

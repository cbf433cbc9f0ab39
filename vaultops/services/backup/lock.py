"""One backup run (or prune) at a time per cluster: an flock on a lock file.

flock is released by the kernel when the process dies, so a crashed run never leaves a stale
lock behind. The holder's pid is written into the file for the error message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from vaultops.errors import BackupError


@contextlib.contextmanager
def run_lock(path: Path, *, wait: float = 0.0) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _acquire(fd, path, wait)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _acquire(fd: int, path: Path, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise BackupError(f"another backup run holds the lock {path} (pid {holder})",
                                  hint="wait for it to finish, or pass --lock-wait SECONDS") from None
            time.sleep(0.2)

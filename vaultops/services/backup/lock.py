"""One backup run (or prune) at a time per cluster: the shared flock helper (vaultops/files/lock.py).

The kernel releases the lock when the process dies, so a crashed run never leaves a stale lock;
the holder's pid, host and start time are in the file for the busy message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from vaultops.errors import BackupError
from vaultops.files.lock import Holder, exclusive_lock


@contextlib.contextmanager
def run_lock(path: Path, *, wait: float = 0.0) -> Iterator[None]:
    def busy(holder: Holder) -> BackupError:
        return BackupError(f"another backup run holds the lock {path} ({holder.describe()})",
                           hint="wait for it to finish, or pass --lock-wait SECONDS")

    with exclusive_lock(path, what="backup run", error=BackupError, busy=busy, wait=wait):
        yield

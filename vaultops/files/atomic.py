"""Atomic, permission-aware file writes: nothing half-written, secrets born 0600."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from vaultops.files.lock import private_dir


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], *, mode: int = 0o644,
                  binary: bool = False, owner: tuple[int, int] | None = None) -> Iterator[IO]:
    """Write to a temp file beside *path*, fsync, then rename over it.

    The temp file is created with *mode* from the start (never world-readable
    for 0600 material) and removed if the block raises. *owner* is (uid, gid),
    -1 keeping either: applied to the temp file, so the target never has the wrong owner.
    Missing parent folders are created 0700 whatever the umask (and given *owner*).
    """
    target = Path(path)
    private_dir(target.parent, owner=owner)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:  # opened first: a failing chown closes it
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int = 0o644) -> None:
    with atomic_writer(path, mode=mode) as fh:
        fh.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644,
                       owner: tuple[int, int] | None = None) -> None:
    with atomic_writer(path, mode=mode, binary=True, owner=owner) as fh:
        fh.write(data)

"""The operator journal: append-only JSON lines, each carrying the sha256 of the previous line.

An entry records who (OS user, optional --operator), what, when, cluster,
node and outcome — never secret material. `verify()` walks the chain and
names the first entry that was edited, removed or reordered.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from vaultops.errors import JournalError

GENESIS = "0" * 64


def _line_hash(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


@dataclass(frozen=True)
class Problem:
    line: int
    reason: str


class Journal:
    def __init__(self, path: str | os.PathLike[str], *, operator: str | None = None,
                 cluster: str | None = None) -> None:
        self.path = Path(path)
        self.operator = operator
        self.cluster = cluster

    def append(self, action: str, *, outcome: str = "ok", node: str | None = None,
               cluster: str | None = None, details: dict[str, Any] | None = None) -> dict[str, Any]:
        """Add one entry under an exclusive lock so concurrent writers keep the chain intact."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        with os.fdopen(fd, "rb+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            last = _last_line(fh)
            entry = {
                "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "user": _os_user(), "operator": self.operator or _os_user(), "host": socket.gethostname(),
                "cluster": cluster or self.cluster, "node": node, "action": action, "outcome": outcome,
                "details": details or {}, "prev": _line_hash(last) if last else GENESIS,
            }
            fh.seek(0, os.SEEK_END)
            fh.write((json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode())
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def entries(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path) as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError:
                    raise JournalError(f"{self.path}:{n}: not valid JSON",
                                       hint="the journal was edited by hand: run `vaultops journal verify`") from None

    def verify(self) -> list[Problem]:
        """Check the hash chain; an empty list means intact."""
        if not self.path.exists():
            return []
        problems: list[Problem] = []
        prev_hash = GENESIS
        with open(self.path) as fh:
            for n, raw in enumerate(fh, 1):
                line = raw.rstrip("\n")
                if not line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    problems.append(Problem(n, "not valid JSON (edited)"))
                    prev_hash = _line_hash(line)
                    continue
                if entry.get("prev") != prev_hash:
                    problems.append(Problem(n, "chain broken: the entry before it was edited, removed or "
                                               "reordered, or this one was moved"))
                prev_hash = _line_hash(line)
        return problems


def _last_line(fh: BinaryIO, block: int = 4096) -> str:
    """The last non-empty line, read backwards from the end: appends stay O(1) as the journal grows."""
    end = fh.seek(0, os.SEEK_END)
    buf = b""
    pos = end
    while pos > 0:
        step = min(block, pos)
        pos -= step
        fh.seek(pos)
        buf = fh.read(step) + buf
        stripped = buf.rstrip(b"\n")
        if b"\n" in stripped or (pos == 0 and stripped):
            return stripped.rsplit(b"\n", 1)[-1].decode()
    return ""


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return str(os.getuid())


def journal_for(cfg: Any, *, operator: str | None = None) -> Journal:
    """The journal of a loaded Config."""
    return Journal(cfg.journal_path, operator=operator, cluster=cfg.cluster_name)

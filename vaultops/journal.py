"""The operator journal: append-only JSON lines, each carrying the sha256 of the previous line.

An entry records who (OS user, optional --operator), what, when, cluster,
node and outcome — never secret material. `verify()` walks the chain and
names the first entry that was edited, removed or reordered.

The chain alone cannot catch a writer who recomputes it, drops the newest
entries or appends forged ones: for that, `verify(anchors)` compares the file
with anchors kept outside it (entry count + head hash, see
vaultops/services/journal_anchor.py). A line that is not JSON or not UTF-8 is
a problem with its line number, never a traceback. A write torn by a crash
(a last line without its newline) is moved aside to a `.torn-*` file and
recorded by the next append, never glued to the next entry.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from vaultops.errors import JournalError
from vaultops.files.lock import os_user, private_dir

GENESIS = "0" * 64
MAX_LINE = 1 << 20          # longer lines are hashed but never parsed
TAIL = 1 << 18              # append_unless() looks this far back (about 500 entries)
TORN_ACTION = "journal.torn_line"


def line_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Problem:
    line: int
    reason: str


@dataclass(frozen=True)
class Line:
    """One line of the file as read: its number, its bytes (cut at MAX_LINE) and its hash."""

    number: int
    data: bytes
    digest: str
    complete: bool          # ended with a newline
    oversize: bool = False

    def parse(self) -> tuple[dict[str, Any] | None, str | None]:
        """(entry, None) or (None, what is wrong with the line)."""
        if self.oversize:
            return None, f"longer than {MAX_LINE} bytes (not a journal entry)"
        try:
            text = self.data.decode()
        except UnicodeDecodeError:
            return None, "not UTF-8 text (edited)"
        try:
            entry = json.loads(text)
        except ValueError:
            return None, "not valid JSON (edited)"
        if not isinstance(entry, dict):
            return None, f"a JSON {type(entry).__name__}, not a journal entry (edited)"
        return entry, None


@dataclass(frozen=True)
class Anchor:
    """What an anchor outside the file recorded: the first `count` entries end in `head`."""

    journal_id: str
    count: int
    head: str
    head_time: str = ""
    anchored_at: str = ""
    host: str = ""
    source: str = ""         # where it was read from, for messages

    def where(self) -> str:
        return f"the anchor of {self.anchored_at or '?'} in {self.source or '?'}"


@dataclass(frozen=True)
class Scan:
    """One pass over the file: the chain as it stands, and what is wrong with it."""

    hashes: tuple[str, ...]          # hash of entry n at hashes[n-1]
    numbers: tuple[int, ...]         # its line number in the file
    times: tuple[str, ...]           # its recorded time ('' if unreadable)
    problems: tuple[Problem, ...]
    torn_line: int | None = None     # the line number of an incomplete last line

    @property
    def count(self) -> int:
        return len(self.hashes)

    @property
    def head(self) -> str:
        return self.hashes[-1] if self.hashes else GENESIS

    @property
    def head_time(self) -> str:
        return self.times[-1] if self.times else ""


class Journal:
    def __init__(self, path: str | os.PathLike[str], *, operator: str | None = None,
                 cluster: str | None = None) -> None:
        self.path = Path(path)
        self.operator = operator
        self.cluster = cluster

    def append(self, action: str, *, outcome: str = "ok", node: str | None = None,
               cluster: str | None = None, details: dict[str, Any] | None = None) -> dict[str, Any]:
        """Add one entry under an exclusive lock so concurrent writers keep the chain intact."""
        entry = self._append(action, outcome=outcome, node=node, cluster=cluster, details=details)
        assert entry is not None
        return entry

    def append_unless(self, seen: Callable[[dict[str, Any]], bool], action: str, *, outcome: str = "ok",
                      node: str | None = None, cluster: str | None = None,
                      details: dict[str, Any] | None = None, tail: int = TAIL) -> dict[str, Any] | None:
        """append(), unless an entry among the last *tail* bytes satisfies *seen* (then None).

        Checked and written under the one lock: of several processes recording the same event
        (two keyholders' terminals both watching a node unseal), only the first writes it."""
        return self._append(action, outcome=outcome, node=node, cluster=cluster, details=details,
                            unless=seen, tail=tail)

    def _append(self, action: str, *, outcome: str, node: str | None, cluster: str | None,
                details: dict[str, Any] | None, unless: Callable[[dict[str, Any]], bool] | None = None,
                tail: int = TAIL) -> dict[str, Any] | None:
        fd = self._open_for_append()
        with os.fdopen(fd, "rb+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            repair = self._repair_torn(fh)
            if repair is not None:
                self._write(fh, self._entry(TORN_ACTION, outcome="repaired", node=None, cluster=cluster,
                                            details=repair, prev=_last_hash(fh)))
            if unless is not None and any(unless(e) for e in _tail_entries(fh, tail)):
                return None
            entry = self._entry(action, outcome=outcome, node=node, cluster=cluster, details=details or {},
                                prev=_last_hash(fh))
            self._write(fh, entry)
        return entry

    def _open_for_append(self) -> int:
        """Never through a symlink planted at the journal path (entries would land in its target)."""
        try:
            private_dir(self.path.parent)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            why = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror
            raise JournalError(f"cannot write the journal {self.path}: {why}",
                               hint="point journal.path at a regular file in a folder only you can write to") from None

    def _entry(self, action: str, *, outcome: str, node: str | None, cluster: str | None,
               details: dict[str, Any], prev: str) -> dict[str, Any]:
        return {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "user": os_user(), "operator": self.operator or os_user(), "host": socket.gethostname(),
                "cluster": cluster or self.cluster, "node": node, "action": action, "outcome": outcome,
                "details": details, "prev": prev}

    @staticmethod
    def _write(fh: BinaryIO, entry: dict[str, Any]) -> None:
        fh.seek(0, os.SEEK_END)
        fh.write((json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode())
        fh.flush()
        os.fsync(fh.fileno())

    def _repair_torn(self, fh: BinaryIO) -> dict[str, Any] | None:
        """A last line without its newline (a crash mid-write): terminate it if it is a whole entry
        that chains, else move it to a side file and cut it off. Returns what to record, if anything."""
        end = fh.seek(0, os.SEEK_END)
        if end == 0 or _byte_at(fh, end - 1) == b"\n":
            return None
        start = _start_of_last_line(fh, end)
        if end - start <= MAX_LINE:
            fh.seek(start)
            whole, _ = Line(0, fh.read(end - start), "", True).parse()
            if whole is not None and whole.get("prev") == _last_hash(fh, end=start):
                fh.write(b"\n")
                fh.flush()
                os.fsync(fh.fileno())
                return None
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        aside = self.path.with_name(f"{self.path.name}.torn-{stamp}")
        digest = _copy_range(fh, start, end, aside)
        os.truncate(fh.fileno(), start)
        os.fsync(fh.fileno())
        return {"bytes": end - start, "offset": start, "sha256": digest, "moved_to": aside.name,
                "message": "an incomplete last line (a torn write) was moved aside"}

    # -- reading -------------------------------------------------------------------------
    def lines(self) -> Iterator[Line]:
        """Every non-blank line, as bytes; the last may be incomplete (complete=False)."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise JournalError(f"cannot read the journal {self.path} ({exc.strerror})",
                               hint="check the path and its permissions") from None
        with fh:
            yield from _read_lines(fh)

    def entries(self) -> Iterator[dict[str, Any]]:
        """The entries in order; a bad line is a one-line JournalError naming it. A torn last line is skipped."""
        for line in self.lines():
            if not line.complete:
                continue
            entry, problem = line.parse()
            if entry is None:
                raise JournalError(f"{self.path}:{line.number}: {problem}",
                                   hint="the journal was edited by hand: run `vaultops journal verify`")
            yield entry

    def scan(self) -> Scan:
        hashes: list[str] = []
        numbers: list[int] = []
        times: list[str] = []
        problems: list[Problem] = []
        torn: int | None = None
        prev = GENESIS
        for line in self.lines():
            if not line.complete:
                torn = line.number
                break
            entry, problem = line.parse()
            if problem is not None:
                problems.append(Problem(line.number, problem))
            elif entry is not None and entry.get("prev") != prev:
                problems.append(Problem(line.number, "chain broken: the entry before it was edited, removed or "
                                                     "reordered, or this one was moved"))
            prev = line.digest
            hashes.append(line.digest)
            numbers.append(line.number)
            times.append(str(entry.get("time") or "") if entry is not None else "")
        return Scan(tuple(hashes), tuple(numbers), tuple(times), tuple(problems), torn)

    def verify(self, anchors: Sequence[Anchor] = ()) -> list[Problem]:
        """Check the hash chain, and the file against *anchors*; an empty list means intact."""
        scan = self.scan()
        return list(scan.problems) + check_anchors(scan, anchors)


def check_anchors(scan: Scan, anchors: Sequence[Anchor]) -> list[Problem]:
    """What the anchors say about the file: removed entries, a rewritten chain, backdated appends."""
    problems: list[Problem] = []
    end = (scan.numbers[-1] + 1) if scan.numbers else 1
    for anchor in anchors:
        if anchor.count > scan.count:
            problems.append(Problem(end, f"entries removed: {anchor.where()} recorded {anchor.count} entries, "
                                         f"the journal has {scan.count}"))
        elif anchor.count and not _same_head(scan.hashes[anchor.count - 1], anchor.head):
            problems.append(Problem(scan.numbers[anchor.count - 1],
                                    f"rewritten: entry {anchor.count} does not match {anchor.where()} "
                                    "(the entries up to it were edited, or the chain was recomputed)"))
    newest = newest_anchor(anchors)
    if newest is not None and newest.count <= scan.count and not problems:
        problems += _backdated(scan, newest)
    return problems


def _backdated(scan: Scan, anchor: Anchor) -> list[Problem]:
    """Entries after the anchor that claim to be older than the anchored head: appended later, dated earlier."""
    out = []
    for i in range(anchor.count, scan.count):
        if scan.times[i] and anchor.head_time and scan.times[i] < anchor.head_time:
            out.append(Problem(scan.numbers[i], f"forged append? dated {scan.times[i]}, before entry "
                                                f"{anchor.count} ({anchor.head_time}) that {anchor.where()} covers"))
    return out


def _same_head(digest: str, head: str) -> bool:
    """An anchor may carry the full hash or (in an object name) a prefix of at least 16 hex digits."""
    return digest == head or (16 <= len(head) < len(digest) and digest.startswith(head))


def newest_anchor(anchors: Sequence[Anchor]) -> Anchor | None:
    return max(anchors, key=lambda a: (a.count, bool(a.head_time), a.anchored_at), default=None)


def _read_lines(fh: BinaryIO) -> Iterator[Line]:
    number = 0
    while head := fh.readline(MAX_LINE + 1):
        number += 1
        if head.endswith(b"\n") or len(head) <= MAX_LINE:
            complete = head.endswith(b"\n")
            body = head[:-1] if complete else head
            if body.strip():
                yield Line(number, body, line_hash(body), complete)
            continue
        digest, complete = _hash_rest(fh, head)   # an endless line: hashed for the chain, never kept
        yield Line(number, head[:MAX_LINE], digest, complete, oversize=True)


def _hash_rest(fh: BinaryIO, head: bytes) -> tuple[str, bool]:
    digest = hashlib.sha256(head)
    while piece := fh.readline(MAX_LINE + 1):
        if piece.endswith(b"\n"):
            digest.update(piece[:-1])
            return digest.hexdigest(), True
        digest.update(piece)
    return digest.hexdigest(), False


def _tail_entries(fh: BinaryIO, size: int) -> Iterator[dict[str, Any]]:
    """The entries in the last *size* bytes, newest first (a line cut by the window is skipped)."""
    end = fh.seek(0, os.SEEK_END)
    start = max(end - size, 0)
    fh.seek(start)
    lines = fh.read(end - start).split(b"\n")
    if start > 0:
        lines = lines[1:]
    for raw in reversed(lines):
        entry, _ = Line(0, raw, "", True).parse() if raw.strip() else (None, None)
        if entry is not None:
            yield entry


def _byte_at(fh: BinaryIO, pos: int) -> bytes:
    fh.seek(pos)
    return fh.read(1)


def _start_of_last_line(fh: BinaryIO, stop: int, block: int = 1 << 16) -> int:
    """The offset just after the last newline before *stop* (0 if none)."""
    pos = stop
    while pos > 0:
        step = min(block, pos)
        pos -= step
        fh.seek(pos)
        cut = fh.read(step).rfind(b"\n")
        if cut >= 0:
            return pos + cut + 1
    return 0


def _scan_range(fh: BinaryIO, start: int, stop: int, sink: BinaryIO | None = None) -> tuple[str, bool]:
    """sha256 of bytes [start, stop) and whether they are all whitespace; copied to *sink* if given."""
    digest, blank = hashlib.sha256(), True
    fh.seek(start)
    left = stop - start
    while left > 0:
        chunk = fh.read(min(left, 1 << 20))
        if not chunk:
            break
        left -= len(chunk)
        digest.update(chunk)
        blank = blank and not chunk.strip()
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest(), blank


def _copy_range(fh: BinaryIO, start: int, stop: int, target: Path) -> str:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        digest, _ = _scan_range(fh, start, stop, out)
        out.flush()
        os.fsync(out.fileno())
    return digest


def _last_hash(fh: BinaryIO, *, end: int | None = None) -> str:
    """The hash of the last non-blank line ending before *end*, found from the end: appends stay O(1)."""
    end = fh.seek(0, os.SEEK_END) if end is None else end
    while end > 0:
        stop = end - 1 if _byte_at(fh, end - 1) == b"\n" else end
        start = _start_of_last_line(fh, stop)
        digest, blank = _scan_range(fh, start, stop)
        if not blank:
            return digest
        end = start
    return GENESIS


def journal_for(cfg: Any, *, operator: str | None = None) -> Journal:
    """The journal of a loaded Config."""
    return Journal(cfg.journal_path, operator=operator, cluster=cfg.cluster_name)

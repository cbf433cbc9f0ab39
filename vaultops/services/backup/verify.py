"""Offline, keyless integrity check of a snapshot archive, done while it streams past.

A Raft snapshot (GET sys/storage/raft/snapshot) and a Consul snapshot (GET /v1/snapshot) are
gzipped tars. An archive passes only if:
  * the gzip stream is read to its end, trailer (CRC32 + length) included, nothing after it;
  * the tar holds exactly the expected members, each once (Raft: meta.json, state.bin,
    SHA256SUMS, SHA256SUMS.sealed; Consul: the same without SHA256SUMS.sealed), and ends
    with its end-of-archive marker;
  * SHA256SUMS lists meta.json and state.bin and their recomputed SHA-256 match;
  * SHA256SUMS.sealed is non-empty (Raft), and meta.json is a JSON object.

Memory is constant: decompression output is bounded per call and state.bin is hashed, not kept.

Reads are bounded too (the mechanism every verify/inspect/restore goes through): the tar reader
refuses any header that could make it loop or read without end (see tarstream), the gzip
stream may not weigh much more than what it inflates to (an endless run of empty deflate
blocks) nor inflate beyond MAX_RATIO (a bomb), and `bounded()` reads a stored object under a
byte budget (its manifest's size) and a time budget (BASE_SECONDS plus one second per MIN_RATE
bytes, and at most STALL_SECONDS without a byte), so a stalled or endless source ends in one
line instead of a hang.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from vaultops.errors import VerificationError
from vaultops.services.backup.heap import keep_heap
from vaultops.services.backup.tarstream import DAMAGED, TarStream

SMALL_MEMBER_LIMIT = 1 << 20
OUT_CHUNK = 1 << 20
MAX_RATIO = 256               # inflated/stored: encrypted Raft values and msgpack stay far below
RATIO_FREE = 64 << 20         # inflated bytes before the ratio is judged
OVERHEAD_FREE = 1 << 20       # stored bytes a gzip stream may carry beyond what it inflates to
STALL_SECONDS = 120.0         # longest wait for the next chunk of a stored object
BASE_SECONDS = 600.0          # time budget of one read: this plus one second per MIN_RATE bytes
MIN_RATE = 1 << 20


class ArchiveKind(str, Enum):
    RAFT = "raft"
    CONSUL = "consul"


EXPECTED_MEMBERS: dict[ArchiveKind, tuple[str, ...]] = {
    ArchiveKind.RAFT: ("meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"),
    ArchiveKind.CONSUL: ("meta.json", "state.bin", "SHA256SUMS"),
}
HASHED = ("meta.json", "state.bin")


@dataclass(frozen=True)
class VerifyReport:
    kind: str
    size: int                       # bytes of the archive as stored
    sha256: str                     # of the archive as stored
    members: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


class Verifier:
    """feed(chunk) as bytes arrive; finish() returns a VerifyReport or raises VerificationError."""

    kind: str

    def feed(self, chunk: bytes | bytearray) -> None:
        raise NotImplementedError

    def finish(self) -> VerifyReport:
        raise NotImplementedError

    def feeders(self) -> list[Callable[[bytes | bytearray], None]]:
        """Independent parts of feed(), each to be given every chunk in order; they may run in
        parallel threads (hashing and zlib release the GIL)."""
        return [self.feed]

    def abort(self) -> None:
        """Release resources when the stream is abandoned before finish()."""


class ArchiveVerifier(Verifier):
    def __init__(self, kind: ArchiveKind, *, on_state: Callable[[bytes], None] | None = None) -> None:
        self.kind = kind.value
        self._expected = EXPECTED_MEMBERS[kind]
        self._on_state = on_state
        self._outer = hashlib.sha256()
        self._size = 0
        self._z = zlib.decompressobj(wbits=31)  # gzip wrapper: zlib checks the CRC32/ISIZE trailer
        self._inflated = 0
        self._consumed = 0  # counted apart from _size: _digest may run ahead in another thread
        self._tar = TarStream(on_start=self._start, on_data=self._data, on_end=self._end)
        self._members: dict[str, int] = {}
        self._hashes: dict[str, Any] = {}
        self._small: dict[str, bytearray] = {}
        self._done: set[str] = set()

    def feed(self, chunk: bytes | bytearray) -> None:
        self._digest(chunk)
        self._unpack(chunk)

    def feeders(self) -> list[Callable[[bytes | bytearray], None]]:
        return [self._digest, self._unpack]

    def _digest(self, chunk: bytes | bytearray) -> None:
        self._outer.update(chunk)
        self._size += len(chunk)

    def _unpack(self, chunk: bytes | bytearray) -> None:
        if self._z.eof:
            if chunk:
                raise VerificationError("data after the end of the gzip stream", hint=DAMAGED)
            return
        self._consumed += len(chunk)
        try:
            self._inflate(chunk)
            while self._z.unconsumed_tail:
                self._inflate(self._z.unconsumed_tail)
        except zlib.error as exc:
            raise VerificationError(f"corrupted gzip stream ({exc})", hint=DAMAGED) from None
        if self._z.eof and self._z.unused_data:
            raise VerificationError("data after the end of the gzip stream", hint=DAMAGED)
        if self._consumed > self._inflated + self._inflated // 64 + OVERHEAD_FREE:
            raise VerificationError("the gzip stream weighs far more than it inflates to", hint=DAMAGED)

    def _inflate(self, data: bytes | bytearray) -> None:
        out = self._z.decompress(data, OUT_CHUNK)
        self._inflated += len(out)
        if self._inflated > RATIO_FREE and self._inflated > MAX_RATIO * self._consumed:
            raise VerificationError(f"the archive inflates more than {MAX_RATIO}-fold (a decompression bomb?)",
                                    hint=DAMAGED)
        self._tar.feed(out)

    def _start(self, name: str, size: int) -> None:
        if name not in self._expected:
            raise VerificationError(f"unexpected member {name!r} in the archive",
                                    hint=f"a {self.kind} snapshot holds only {', '.join(self._expected)}")
        if name in self._members:
            raise VerificationError(f"member {name!r} appears twice", hint=DAMAGED)
        if name != "state.bin" and size > SMALL_MEMBER_LIMIT:
            raise VerificationError(f"member {name!r} is implausibly large ({size} bytes)", hint=DAMAGED)
        self._members[name] = size
        if name in HASHED:
            self._hashes[name] = hashlib.sha256()
        if name != "state.bin":
            self._small[name] = bytearray()

    def _data(self, name: str, chunk: memoryview) -> None:
        if name in self._hashes:
            self._hashes[name].update(chunk)
        if name in self._small:
            self._small[name] += chunk
        elif self._on_state is not None:
            self._on_state(bytes(chunk))

    def _end(self, name: str) -> None:
        self._done.add(name)

    def finish(self) -> VerifyReport:
        if self._size == 0:
            raise VerificationError("the snapshot is empty (0 bytes)",
                                    hint="the server sent nothing: check its log and take a new snapshot")
        if not self._z.eof:
            raise VerificationError("the snapshot is truncated: the gzip stream ends before its trailer",
                                    hint=DAMAGED)
        if not self._tar.complete:
            raise VerificationError("the snapshot is truncated: no tar end-of-archive marker", hint=DAMAGED)
        missing = [m for m in self._expected if m not in self._done]
        if missing:
            raise VerificationError(f"the archive lacks {', '.join(missing)}", hint=DAMAGED)
        self._check_sums()
        return VerifyReport(kind=self.kind, size=self._size, sha256=self._outer.hexdigest(),
                            members=dict(self._members), meta=self._meta())

    def _check_sums(self) -> None:
        listed = parse_sha256sums(bytes(self._small["SHA256SUMS"]))
        for name in HASHED:
            if name not in listed:
                raise VerificationError(f"SHA256SUMS does not list {name}", hint=DAMAGED)
            if listed[name] != self._hashes[name].hexdigest():
                raise VerificationError(f"SHA-256 of {name} does not match SHA256SUMS", hint=DAMAGED)
        extra = set(listed) - set(HASHED)
        if extra:
            raise VerificationError(f"SHA256SUMS lists unexpected files {sorted(extra)}", hint=DAMAGED)
        if "SHA256SUMS.sealed" in self._expected and not bytes(self._small["SHA256SUMS.sealed"]).strip(b"\0 \n"):
            raise VerificationError("SHA256SUMS.sealed is empty", hint=DAMAGED)

    def _meta(self) -> dict[str, Any]:
        try:
            meta = json.loads(bytes(self._small["meta.json"]))
        except ValueError:
            raise VerificationError("meta.json is not valid JSON", hint=DAMAGED) from None
        if not isinstance(meta, dict):
            raise VerificationError("meta.json is not a JSON object", hint=DAMAGED)
        return meta


def parse_sha256sums(data: bytes) -> dict[str, str]:
    """Lines of '<64 hex>  <name>' (sha256sum format, '*' marks binary mode)."""
    out: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition(" ")
        name = name.strip().lstrip("*")
        if len(digest) != 64 or not name or any(c not in "0123456789abcdef" for c in digest.lower()):
            raise VerificationError(f"unreadable SHA256SUMS line {line[:80]!r}", hint=DAMAGED)
        out[name] = digest.lower()
    return out


def verify_chunks(chunks: Iterable[bytes | bytearray], verifier: Verifier, *,
                  tee: Callable[[bytes | bytearray], object] | None = None) -> VerifyReport:
    """The one feed loop: every chunk to *verifier* (and to *tee*, e.g. a file's write), then
    finish(); on any error or interruption the verifier is aborted and the error goes on.
    (A live backup run feeds its verifier from threads instead: see pipeline.)"""
    keep_heap()
    try:
        for chunk in chunks:
            verifier.feed(chunk)
            if tee is not None:
                tee(chunk)
        return verifier.finish()
    except BaseException:
        verifier.abort()
        raise


class ReadIncomplete(VerificationError):
    """The object could not be read within its time budget: no verdict on its content."""


@dataclass(frozen=True)
class Budget:
    max_bytes: int | None       # stored bytes allowed (the manifest's size); None: unknown
    seconds: float              # for the whole read
    stall: float                # without a single byte

    @classmethod
    def for_size(cls, size: int | None) -> Budget:
        return cls(max_bytes=size, seconds=BASE_SECONDS + (size or 0) / MIN_RATE, stall=STALL_SECONDS)


def bounded(chunks: Iterable[bytes], budget: Budget, *, what: str) -> Iterator[bytes]:
    """Yield *chunks* read in a helper thread, cut off by *budget* with one line.

    A read blocked in the kernel cannot be interrupted from Python: on a stall the helper
    thread (a daemon) is left behind and the caller goes on with the error.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=2)
    stop = threading.Event()
    threading.Thread(target=_pump, args=(chunks, q, stop), name="bounded-read", daemon=True).start()
    deadline, total = time.monotonic() + budget.seconds, 0
    try:
        while True:
            kind, item = _next(q, budget, deadline, what)
            if kind == "end":
                return
            if kind == "error":
                raise item
            total += len(item)
            if budget.max_bytes is not None and total > budget.max_bytes:
                raise VerificationError(f"{what}: more than the {budget.max_bytes} bytes expected",
                                        hint="the stored copy changed after publication: use another copy")
            yield item
    finally:
        stop.set()


def _next(q: queue.Queue[tuple[str, Any]], budget: Budget, deadline: float, what: str) -> tuple[str, Any]:
    left = deadline - time.monotonic()
    try:
        if left <= 0:
            raise queue.Empty
        return q.get(timeout=min(budget.stall, left))
    except queue.Empty:
        why = (f"no data for {budget.stall:g}s" if left > budget.stall
               else f"not read within its {budget.seconds:.0f}s time budget")
        raise ReadIncomplete(f"{what}: {why}; gave up",
                             hint="check the sink (a stalled disk or network?) and try again") from None


def _pump(chunks: Iterable[bytes], q: queue.Queue[tuple[str, Any]], stop: threading.Event) -> None:
    it = iter(chunks)
    try:
        for chunk in it:
            if not _put(q, ("data", chunk), stop):
                return
        _put(q, ("end", None), stop)
    except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, which raises it
        _put(q, ("error", exc), stop)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _put(q: queue.Queue[tuple[str, Any]], item: tuple[str, Any], stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False

"""One pass over a snapshot stream: download, verification and every upload overlap.

The caller's thread reads the source; each consumer (each independent part of the verifier,
each sink's upload) runs in its own thread behind a bounded queue, so memory stays at about
depth x chunk size per consumer whatever the snapshot size, and the slowest consumer paces
the download. Chunks are shared, not copied, between queues.

Nothing is committed before the verifier has seen the whole stream and passed it; a failed
verification, a failed source or an interruption aborts every upload.

With a *transform* (backup encryption: crypt.seal.Sealer) the sinks get its output instead of
the source's bytes: one more thread between the source and the sinks turns each plaintext chunk
into ciphertext, in order, while the verifier's threads check the same plaintext chunks. What the
transform must see of its own output (the Sealer's ciphertext SHA-256) runs in one more thread
beside the sinks, off the relay's critical path.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from vaultops import interrupt
from vaultops.errors import BackupError, VaultOpsError
from vaultops.services.backup.heap import keep_heap
from vaultops.services.backup.verify import Verifier, VerifyReport
from vaultops.storage.base import CommitResult, Upload

DEPTH = 4
BLOCK = 1 << 20
_END = None


def rechunk(chunks: Iterable[bytes | bytearray], size: int = BLOCK) -> Iterator[bytes | bytearray]:
    """Coalesce small pieces into blocks of about *size* bytes.

    urllib3 yields a chunked HTTP body (Vault's snapshot) one transfer chunk at a time, ~32 KiB:
    handing those one by one to every consumer thread costs more than the work itself.
    """
    pending: list[bytes | bytearray] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            yield pending[0] if len(pending) == 1 else b"".join(pending)
            pending, held = [], 0
    if held:
        yield b"".join(pending)


class _Worker(threading.Thread):
    def __init__(self, name: str, feed: Callable[[bytes | bytearray], None], depth: int) -> None:
        super().__init__(name=f"backup-{name}", daemon=True)
        self.q: queue.Queue[bytes | bytearray | None] = queue.Queue(maxsize=depth)
        self.feed = feed
        self.error: BaseException | None = None

    def run(self) -> None:
        while (chunk := self.q.get()) is not _END:
            if self.error is None:
                try:
                    self.feed(chunk)
                except BaseException as exc:  # noqa: BLE001 - reported to the caller, which decides
                    self.error = exc
            # after a failure keep draining, so the producer never blocks on this queue


class Transform(Protocol):
    def update(self, chunk: bytes | bytearray) -> bytes: ...

    def finish(self) -> bytes: ...

    def observers(self) -> list[Callable[[bytes | bytearray], None]]:
        """Each to be given every piece of output in order (e.g. its hash), in a thread of its own."""
        ...


def _forward(data: bytes, sinks: list[_Worker]) -> None:
    if data:
        for w in sinks:
            if w.error is None:
                w.q.put(data)


@dataclass(frozen=True)
class SinkOutcome:
    sink: str
    result: CommitResult | None = None
    error: VaultOpsError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def stream_and_publish(chunks: Iterable[bytes | bytearray], verifier: Verifier, uploads: dict[str, Upload], *,
                       depth: int = DEPTH, transform: Transform | None = None) -> tuple[VerifyReport, list[SinkOutcome]]:
    """Tee *chunks* to the verifier and every upload (through *transform* if given); commit only a
    verified stream.

    Raises the source's error or VerificationError (all uploads aborted). Otherwise returns
    the report and one outcome per sink: a sink that failed mid-stream is aborted and reported
    while the others are still committed.
    """
    keep_heap()
    checks = [_Worker(f"verify-{i}", feed, depth) for i, feed in enumerate(verifier.feeders())]
    sinks = {name: _Worker(f"sink-{i}", up.write, depth) for i, (name, up) in enumerate(uploads.items())}
    watchers = [] if transform is None else [_Worker(f"seal-watch-{i}", f, depth)
                                             for i, f in enumerate(transform.observers())]
    outs = [*sinks.values(), *watchers]
    relay = None if transform is None else _Worker("seal", lambda c: _forward(transform.update(c), outs), depth)
    fed = [*checks, *([relay] if relay else outs)]   # what the source's chunks go to
    for w in dict.fromkeys([*fed, *outs]):
        w.start()
    try:
        _produce(chunks, checks, fed)
        _stop(fed)
        if relay is not None and transform is not None:
            if relay.error is not None:
                raise relay.error
            _forward(transform.finish(), outs)
        _stop(outs)
        for check in [*checks, *watchers]:
            if check.error is not None:
                raise check.error
        report = verifier.finish()
        interrupt.check()           # a stop whose KeyboardInterrupt was swallowed: never publish after it
    except BaseException:
        _stop([*fed, *outs])
        verifier.abort()
        for up in uploads.values():
            up.abort()
        raise
    return report, [_commit(name, uploads[name], sinks[name].error) for name in uploads]


def _produce(chunks: Iterable[bytes | bytearray], checks: list[_Worker], workers: list[_Worker]) -> None:
    for chunk in rechunk(chunks):
        interrupt.check()
        if any(c.error is not None for c in checks):
            return  # the snapshot is already known bad: stop downloading
        if not chunk:
            continue
        for w in workers:
            if w.error is None:
                w.q.put(chunk)


def _stop(workers: list[_Worker]) -> None:
    for w in workers:
        if w.is_alive():
            w.q.put(_END)
    for w in workers:
        if w.is_alive():
            w.join()


def _commit(name: str, upload: Upload, error: BaseException | None) -> SinkOutcome:
    if error is None:
        try:
            return SinkOutcome(name, result=upload.commit())
        except VaultOpsError as exc:
            return SinkOutcome(name, error=exc)
        except Exception as exc:  # noqa: BLE001 - one sink's bug must not hide the others' results
            return SinkOutcome(name, error=BackupError(f"{name}: commit failed: {type(exc).__name__}: {exc}",
                                                       hint="see --debug output"))
    upload.abort()
    if isinstance(error, VaultOpsError):
        return SinkOutcome(name, error=error)
    return SinkOutcome(name, error=BackupError(f"{name}: upload failed: {type(error).__name__}: {error}",
                                               hint="check the sink and run the backup again"))

"""`vaultops backup run`: snapshot -> verify + upload in one pass -> manifests -> state, metrics, journal.

Cron-grade: no prompts, every step reported through `emit(event, **fields)` (the CLI prints
JSON lines on stderr), success only when every sink published, one run at a time (flock).

Commit points, and what a failure leaves:
  * a sink that cannot be built, cannot start its upload, fails mid-stream, on commit or on its
    manifest is aborted (its temp file / multipart upload removed) and reported; the other
    sinks go on, and each that succeeded gets its manifest: a run is per sink, not all-or-nothing;
  * a source or verification failure aborts every upload: nothing unverified is published;
  * whatever happened inside the lock (login refused, interrupt, a bug), the run is recorded:
    state file, metrics (success 0 on any failure) and journal, and exactly one terminal event,
    `run.done` or `run.failed` (with `sinks`: sink -> "ok" or its error, and `published`);
  * uploads a sink could not abort are recorded in the state file (`left_open`) and aborted
    by the next run, which also aborts stale open uploads (catalog.sweep_open_uploads).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from vaultops.config import Config
from vaultops.errors import BackupError, VaultOpsError
from vaultops.journal import Journal
from vaultops.services.backup import identity
from vaultops.services.backup.catalog import prune, sweep_open_uploads
from vaultops.services.backup.formats import get_format, make_source
from vaultops.services.backup.lock import run_lock
from vaultops.services.backup.manifest import ENCRYPTED_SUFFIX, MANIFEST_SUFFIX, Manifest, backup_name, now_iso
from vaultops.services.backup.pipeline import SinkOutcome, stream_and_publish
from vaultops.services.backup.record import last_run, record_run
from vaultops.services.backup.settings import BackupSettings, require_sinks
from vaultops.services.backup.sources import SnapshotInfo, Source
from vaultops.services.backup.verify import VerifyReport
from vaultops.storage.base import Sink, Upload, get_sink
from vaultops.vault import NodeClient

if TYPE_CHECKING:
    from vaultops.services.backup.crypt.seal import Sealer

Emit = Callable[..., None]
PROGRESS_EVERY = 0.25  # seconds between snapshot.progress events


@dataclass(frozen=True)
class RunResult:
    name: str
    ok: bool
    verified: bool
    size: int
    duration: float
    sinks: dict[str, str] = field(default_factory=dict)     # sink -> "ok" or the error
    manifest: Manifest | None = None
    error: str | None = None


def build_sinks(cfg: Config, settings: BackupSettings) -> list[Sink]:
    require_sinks(settings)
    return [get_sink(s, resolve_path=cfg.resolve_path) for s in settings.sinks]


def _build_each(cfg: Config, settings: BackupSettings) -> tuple[list[Sink], list[SinkOutcome]]:
    """Every sink that can be built, and a failed outcome for each that cannot."""
    sinks, broken = [], []
    for i, raw in enumerate(settings.sinks):
        try:
            sinks.append(get_sink(raw, resolve_path=cfg.resolve_path))
        except VaultOpsError as exc:
            broken.append(SinkOutcome(f"sink {i} ({raw.get('type')}: {raw.get('path') or raw.get('bucket')})",
                                      error=exc))
    return sinks, broken


def run_backup(cfg: Config, settings: BackupSettings, *, emit: Emit, connect: Callable[[], list[NodeClient]],
               journal: Journal, lock_wait: float = 0.0) -> RunResult:
    """*connect()* gives the clients to snapshot through (the run logs in on them): called inside the
    lock, so a refusal there is a recorded failed run like any other."""
    require_sinks(settings)
    with run_lock(settings.lock_file, wait=lock_wait):
        started = datetime.now(timezone.utc)
        name = backup_name(settings.cluster, started, _extension(settings, get_format(settings.source).extension))
        previous = last_run(settings) or {}
        sinks: list[Sink] = []
        try:
            result = _login_and_run(cfg, settings, sinks, started=started, emit=emit, connect=connect,
                                    previous=previous)
        except BaseException as exc:
            # login refused, a bad source setting, an interrupt, a bug: still one event and a record
            error = str(exc) if isinstance(exc, VaultOpsError) else f"{type(exc).__name__}: {exc}".rstrip(": ")
            result = RunResult(name, ok=False, verified=False, size=0,
                               duration=(datetime.now(timezone.utc) - started).total_seconds(),
                               sinks={s.name: "not published" for s in sinks}, error=error)
            emit("run.failed", name=name, error=error, sinks=result.sinks, published=[])
            record_run(cfg, settings, result, sinks, emit=emit, journal=journal)
            raise
        record_run(cfg, settings, result, sinks, emit=emit, journal=journal)
        if result.ok and settings.prune_after_run and settings.retention_configured:
            _prune_after(sinks, settings, emit=emit)
    return result


def _login_and_run(cfg: Config, settings: BackupSettings, sinks: list[Sink], *, started: datetime, emit: Emit,
                   connect: Callable[[], list[NodeClient]], previous: dict[str, Any]) -> RunResult:
    with ThreadPoolExecutor(1, thread_name_prefix="sinks") as pool:
        pending = pool.submit(_build_each, cfg, settings)  # boto3 start-up overlaps the login
        clients = connect()
        ident = identity.login(clients, settings.auth, cfg, warn=lambda m: emit("warning", message=m)) \
            if get_format(settings.source).reads_through_vault else None
        try:
            built, broken = pending.result()
            sinks.extend(built)
            source = make_source(settings.source, clients=clients, settings=settings)
            for sink in sinks:  # before our own upload starts: nothing of this run is touched
                sweep_open_uploads(sink, cluster=settings.cluster, emit=emit, recorded=previous.get("left_open"))
            return _run(settings, source, sinks, emit=emit, started=started, broken=broken)
        finally:
            if ident is not None:
                identity.logout(clients, ident)


def _prune_after(sinks: list[Sink], settings: BackupSettings, *, emit: Emit) -> None:
    for sink in sinks:
        try:
            prune(sink, settings, dry_run=False, emit=emit)
        except VaultOpsError as exc:  # the backup itself succeeded and is recorded as such
            emit("warning", message=f"{sink.name}: prune after the run failed: {exc}")


def _sealer(settings: BackupSettings) -> Sealer | None:
    if not settings.encrypted:
        return None
    from vaultops.services.backup.crypt.seal import Sealer, configured_recipients  # cryptography: only then

    return Sealer(configured_recipients(settings.encryption))


def _extension(settings: BackupSettings, extension: str) -> str:
    return extension + ENCRYPTED_SUFFIX if settings.encrypted else extension


def _run(settings: BackupSettings, source: Source, sinks: list[Sink], *, emit: Emit,
         started: datetime | None = None, broken: list[SinkOutcome] | None = None) -> RunResult:
    t0, started = time.monotonic(), started or datetime.now(timezone.utc)
    name = backup_name(settings.cluster, started, _extension(settings, source.extension))
    sealer = _sealer(settings)
    emit("run.start", name=name, source=source.kind, sinks=[s.name for s in sinks], encrypted=sealer is not None)
    early: list[SinkOutcome] = list(broken or [])
    with _uploads(sinks, name, early) as uploads:
        try:
            if not uploads:
                raise BackupError("no sink could start an upload", hint="see the sink errors in this event")
            with source.open() as snap:
                emit("snapshot.open", node=snap.info.source_node, version=snap.info.server_version)
                report, outcomes = stream_and_publish(metered(snap.chunks, emit), source.verifier(), uploads,
                                                      transform=sealer)
        except VaultOpsError as exc:
            for up in uploads.values():
                up.abort()  # idempotent; nothing of a failed run is ever published
            sinks_state = {o.sink: str(o.error) for o in early} | {s: "aborted" for s in uploads}
            emit("run.failed", name=name, error=str(exc), sinks=sinks_state, published=[])
            return RunResult(name, ok=False, verified=False, size=0, duration=time.monotonic() - t0,
                             sinks=sinks_state, error=str(exc))
    emit("snapshot.verified", name=name, size=report.size, sha256=report.sha256)
    manifest = _manifest(name, source, snap.info, report, started, sealer)
    by_name = {s.name: s for s in sinks}
    outcomes = early + [_publish_manifest(by_name[o.sink], o, manifest, emit=emit) for o in outcomes]
    ok = all(o.ok for o in outcomes)
    states = {o.sink: "ok" if o.ok else str(o.error) for o in outcomes}
    if ok:
        emit("run.done", name=name, ok=True, size=report.size)
    else:
        emit("run.failed", name=name, error="some sinks failed", size=report.size, sinks=states,
             published=[o.sink for o in outcomes if o.ok])
    return RunResult(name, ok=ok, verified=True, size=report.size, duration=time.monotonic() - t0,
                     sinks=states, manifest=manifest, error=None if ok else "some sinks failed")


def metered(chunks: Iterable[bytes | bytearray], emit: Emit, *, every: float | None = None
            ) -> Iterator[bytes | bytearray]:
    """The same chunks, with `snapshot.progress` (bytes so far) emitted at most every *every* seconds
    (default PROGRESS_EVERY): a person's progress bar (the CLI leaves it out of its JSON lines)."""
    every = PROGRESS_EVERY if every is None else every
    done, last = 0, time.monotonic()
    for chunk in chunks:
        done += len(chunk)
        if time.monotonic() - last >= every:
            emit("snapshot.progress", bytes=done)
            last = time.monotonic()
        yield chunk


@contextlib.contextmanager
def _uploads(sinks: list[Sink], name: str, failed: list[SinkOutcome]) -> Iterator[dict[str, Upload]]:
    uploads: dict[str, Upload] = {}
    try:
        for sink in sinks:
            try:
                uploads[sink.name] = sink.open_upload(name)
            except VaultOpsError as exc:
                failed.append(SinkOutcome(sink.name, error=exc))
        yield uploads
    except BaseException:
        for up in uploads.values():
            up.abort()
        raise


def _manifest(name: str, source: Source, info: SnapshotInfo, report: VerifyReport, started: datetime,
              sealer: Sealer | None) -> Manifest:
    return Manifest(name=name, kind=source.kind, cluster_name=info.cluster_name or "", cluster_id=info.cluster_id,
                    server_version=info.server_version, source_node=info.source_node, size=report.size,
                    sha256=report.sha256, started_at=started.isoformat(timespec="milliseconds"),
                    finished_at=now_iso(), consul_index=info.consul_index, members=dict(report.members),
                    encryption=sealer.record() if sealer else None,
                    **get_format(source.kind).manifest_fields(report.meta))


def _publish_manifest(sink: Sink, outcome: SinkOutcome, manifest: Manifest, *, emit: Emit) -> SinkOutcome:
    if not outcome.ok:
        return outcome
    try:
        sink.put_bytes(manifest.name + MANIFEST_SUFFIX, manifest.to_json())
    except VaultOpsError as exc:
        with contextlib.suppress(VaultOpsError):
            sink.delete(manifest.name)  # unpublished data would only confuse a restore
        return SinkOutcome(sink.name, error=exc)
    emit("sink.published", sink=sink.name, location=outcome.result.location if outcome.result else None)
    return outcome

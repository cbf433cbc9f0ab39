"""`vaultops backup run`: snapshot -> verify + upload in one pass -> manifests -> state, metrics, journal.

Cron-grade: no prompts, every step reported through `emit(event, **fields)` (the CLI prints
JSON lines on stderr), success only when every sink published, one run at a time (flock).
"""

from __future__ import annotations

import contextlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from vaultops.config import Config
from vaultops.errors import BackupError, VaultOpsError
from vaultops.fsutil import atomic_write_text
from vaultops.services.backup import identity, metrics
from vaultops.services.backup.lock import run_lock
from vaultops.services.backup.manifest import MANIFEST_SUFFIX, Manifest, backup_name, manifest_fields, now_iso
from vaultops.services.backup.pipeline import SinkOutcome, stream_and_publish
from vaultops.services.backup.settings import BackupSettings, require_sinks
from vaultops.services.backup.sources import Source, make_source
from vaultops.services.backup.verify import VerifyReport
from vaultops.storage.base import Sink, Upload, get_sink
from vaultops.vault import NodeClient, cluster_clients

Emit = Callable[..., None]


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


def run_backup(cfg: Config, settings: BackupSettings, *, emit: Emit, lock_wait: float = 0.0,
               clients: list[NodeClient] | None = None, allow_insecure_http: bool = False) -> RunResult:
    require_sinks(settings)
    with run_lock(settings.lock_file, wait=lock_wait), ThreadPoolExecutor(1, thread_name_prefix="sinks") as pool:
        pending = pool.submit(build_sinks, cfg, settings)  # boto3 start-up overlaps the login
        clients = clients or cluster_clients(cfg, use_token=False, allow_insecure_http=allow_insecure_http)
        ident = identity.login(clients, settings.auth, cfg, warn=lambda m: emit("warning", message=m)) \
            if settings.source == "raft" else None
        try:
            sinks = pending.result()
            source = make_source(settings.source, clients=clients, settings=settings)
            result = _run(settings, source, sinks, emit=emit)
        finally:
            if ident is not None:
                identity.logout(clients, ident)
        _record(cfg, settings, result, emit=emit)
        if result.ok and settings.prune_after_run and settings.retention_configured:
            from vaultops.services.backup.catalog import prune
            for sink in sinks:
                prune(sink, settings, dry_run=False, emit=emit)
    return result


def _run(settings: BackupSettings, source: Source, sinks: list[Sink], *, emit: Emit) -> RunResult:
    t0, started = time.monotonic(), datetime.now(timezone.utc)
    name = backup_name(settings.cluster, started, source.extension)
    emit("run.start", name=name, source=source.kind, sinks=[s.name for s in sinks])
    early: list[SinkOutcome] = []
    with _uploads(sinks, name, early) as uploads:
        try:
            if not uploads:
                raise BackupError("no sink could start an upload", hint="see the sink errors above")
            with source.open() as snap:
                emit("snapshot.open", node=snap.info.source_node, version=snap.info.server_version)
                report, outcomes = stream_and_publish(snap.chunks, source.verifier(), uploads)
        except VaultOpsError as exc:
            for up in uploads.values():
                up.abort()  # idempotent; nothing of a failed run is ever published
            emit("run.failed", name=name, error=str(exc))
            return RunResult(name, ok=False, verified=False, size=0, duration=time.monotonic() - t0,
                             sinks={o.sink: str(o.error) for o in early} | {s: "aborted" for s in uploads},
                             error=str(exc))
    emit("snapshot.verified", name=name, size=report.size, sha256=report.sha256)
    manifest = _manifest(name, source, snap.info, report, started)
    by_name = {s.name: s for s in sinks}
    outcomes = early + [_publish_manifest(by_name[o.sink], o, manifest, emit=emit) for o in outcomes]
    ok = all(o.ok for o in outcomes)
    emit("run.done" if ok else "run.partial", name=name, ok=ok, size=report.size)
    return RunResult(name, ok=ok, verified=True, size=report.size, duration=time.monotonic() - t0,
                     sinks={o.sink: "ok" if o.ok else str(o.error) for o in outcomes}, manifest=manifest,
                     error=None if ok else "some sinks failed")


@contextlib.contextmanager
def _uploads(sinks: list[Sink], name: str, failed: list[SinkOutcome]) -> Iterator[dict[str, Upload]]:
    uploads: dict[str, Upload] = {}
    for sink in sinks:
        try:
            uploads[sink.name] = sink.open_upload(name)
        except VaultOpsError as exc:
            failed.append(SinkOutcome(sink.name, error=exc))
    try:
        yield uploads
    except BaseException:
        for up in uploads.values():
            up.abort()
        raise


def _manifest(name: str, source: Source, info: Any, report: VerifyReport, started: datetime) -> Manifest:
    return Manifest(name=name, kind=source.kind, cluster_name=info.cluster_name or "", cluster_id=info.cluster_id,
                    server_version=info.server_version, source_node=info.source_node, size=report.size,
                    sha256=report.sha256, started_at=started.isoformat(timespec="milliseconds"),
                    finished_at=now_iso(), consul_index=info.consul_index, members=dict(report.members),
                    **(manifest_fields(report.meta) if source.kind == "raft" else {}))


def _publish_manifest(sink: Sink, outcome: SinkOutcome, manifest: Manifest, *, emit: Emit) -> SinkOutcome:
    if not outcome.ok:
        emit("sink.failed", sink=sink.name, error=str(outcome.error))
        return outcome
    try:
        sink.put_bytes(manifest.name + MANIFEST_SUFFIX, manifest.to_json())
    except VaultOpsError as exc:
        with contextlib.suppress(VaultOpsError):
            sink.delete(manifest.name)  # unpublished data would only confuse a restore
        emit("sink.failed", sink=sink.name, error=str(exc))
        return SinkOutcome(sink.name, error=exc)
    emit("sink.published", sink=sink.name, location=outcome.result.location if outcome.result else None)
    return outcome


def _record(cfg: Config, settings: BackupSettings, result: RunResult, *, emit: Emit) -> None:
    state = {k: v for k, v in asdict(result).items() if k != "manifest"}
    state["finished"] = time.time()
    atomic_write_text(settings.state_file, json.dumps(state, indent=2) + "\n", mode=0o600)
    if settings.metrics_file:
        metrics.write(settings.metrics_file, metrics.RunMetrics(
            cluster=settings.cluster, finished=state["finished"], success=result.ok, size=result.size,
            duration=result.duration, verified=result.verified))
    try:
        from vaultops.journal import journal_for
        journal_for(cfg).append("backup.run", outcome="ok" if result.ok else "failed",
                                cluster=cfg.cluster_name,
                                node=result.manifest.source_node if result.manifest else None,
                                details={"name": result.name, "size": result.size, "sinks": result.sinks,
                                         "sha256": result.manifest.sha256 if result.manifest else None})
    except VaultOpsError as exc:
        emit("warning", message=f"journal not written: {exc}")


def last_run(settings: BackupSettings) -> dict[str, Any] | None:
    try:
        return json.loads(settings.state_file.read_text())
    except (OSError, ValueError):
        return None

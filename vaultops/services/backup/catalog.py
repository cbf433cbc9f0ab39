"""What is in the sinks: list, verify (re-read), inspect, prune."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from vaultops.errors import BackupError, VerificationError
from vaultops.services.backup.inspect import StateStats, describe_meta
from vaultops.services.backup.lock import run_lock
from vaultops.services.backup.manifest import (CHECK_FAILED, CHECK_OK, MANIFEST_SUFFIX, BackupEntry, Manifest,
                                               check_marker, entries_from_listing)
from vaultops.services.backup.retention import Decision, plan
from vaultops.services.backup.settings import BackupSettings
from vaultops.services.backup.verify import ArchiveKind, ArchiveVerifier, Verifier, VerifyReport
from vaultops.storage.base import Sink

Emit = Callable[..., None]


def list_backups(sink: Sink, *, cluster: str | None) -> list[BackupEntry]:
    """Newest first, from one fully paginated listing (no per-object reads)."""
    return entries_from_listing(list(sink.list(f"{cluster}-" if cluster else "")), cluster=cluster)


def newest(sink: Sink, *, cluster: str | None) -> BackupEntry:
    for entry in list_backups(sink, cluster=cluster):
        if entry.verified:
            return entry
    raise BackupError(f"{sink.name}: no verified backup found", hint="run 'vaultops backup run' first")


def read_manifest(sink: Sink, name: str) -> Manifest:
    return Manifest.from_json(sink.get_bytes(name + MANIFEST_SUFFIX), where=f"{sink.name}/{name}{MANIFEST_SUFFIX}")


def verifier_for(kind: str, *, on_state: Callable[[bytes], None] | None = None,
                 settings: BackupSettings | None = None) -> Verifier:
    if kind == "postgresql":
        from vaultops.services.backup.pgdump import PgDumpVerifier
        return PgDumpVerifier.from_settings((settings.postgresql if settings else {}))
    return ArchiveVerifier(ArchiveKind(kind), on_state=on_state)


def check_against_manifest(report: VerifyReport, manifest: Manifest) -> None:
    if report.size != manifest.size or report.sha256 != manifest.sha256:
        raise VerificationError(
            f"{manifest.name}: stored bytes differ from the manifest (size {report.size} vs {manifest.size})",
            hint="the stored copy changed after publication: use another sink's copy or an older backup")


@dataclass(frozen=True)
class CheckResult:
    name: str
    sink: str
    ok: bool
    detail: str
    report: VerifyReport | None = None


def verify_backup(sink: Sink, name: str, *, settings: BackupSettings | None = None,
                  record: bool = True) -> CheckResult:
    """Re-read a stored backup, verify it and compare it with its manifest; record the verdict."""
    try:
        manifest = read_manifest(sink, name)
        verifier = verifier_for(manifest.kind, settings=settings)
        try:
            for chunk in sink.read_chunks(name):
                verifier.feed(chunk)
            report = verifier.finish()
        except BaseException:
            verifier.abort()
            raise
        check_against_manifest(report, manifest)
        result = CheckResult(name, sink.name, True, f"sha256 {report.sha256[:16]}…, {report.size} bytes", report)
    except VerificationError as exc:
        result = CheckResult(name, sink.name, False, str(exc))
    if record:
        when = datetime.now(timezone.utc)
        sink.put_bytes(name + (CHECK_OK if result.ok else CHECK_FAILED),
                       check_marker(ok=result.ok, detail=result.detail, when=when))
        sink.delete(name + (CHECK_FAILED if result.ok else CHECK_OK))
    return result


@dataclass(frozen=True)
class Inspection:
    manifest: Manifest
    meta: dict[str, Any]
    prefixes: list[dict[str, Any]] = field(default_factory=list)
    entries: int = 0


def inspect_backup(sink: Sink, name: str, *, depth: int = 1, settings: BackupSettings | None = None) -> Inspection:
    manifest = read_manifest(sink, name)
    if manifest.kind == "postgresql":
        from vaultops.services.backup.pgdump import inspect_dump
        return Inspection(manifest, {}, inspect_dump(sink, name, settings=settings), 0)
    stats = StateStats(depth=depth)
    # Only Raft's state.bin (protobuf StorageEntry stream) is parsed; Consul's is msgpack.
    verifier = verifier_for(manifest.kind, on_state=stats.feed if manifest.kind == "raft" else None)
    for chunk in sink.read_chunks(name):
        verifier.feed(chunk)
    report = verifier.finish()
    stats.finish()
    meta = describe_meta(report.meta, source=f"{sink.name}/{name}: meta.json") if manifest.kind == "raft" else report.meta
    return Inspection(manifest, meta, stats.table(), stats.entries)


def prune(sink: Sink, settings: BackupSettings, *, dry_run: bool, emit: Emit,
          lock: bool = False) -> list[Decision]:
    """Apply the retention plan to one sink. Refuses when the newest run failed."""
    from vaultops.services.backup.runner import last_run

    state = last_run(settings)
    if state is not None and not state.get("ok"):
        raise BackupError(f"the newest backup run ({state.get('name')}) failed: not pruning",
                          hint="fix the backup run first; the next successful run re-enables pruning")
    if settings.retention.empty and not dry_run:
        raise BackupError("backup.retention keeps nothing beyond min_keep: refusing to prune",
                          hint="set keep_last/hourly/daily/weekly/monthly in backup.retention")
    decisions = plan(list_backups(sink, cluster=settings.cluster), settings.retention)
    if dry_run:
        return decisions
    if lock:
        with run_lock(settings.lock_file):
            _apply(sink, decisions, emit)
    else:
        _apply(sink, decisions, emit)
    return decisions


def _apply(sink: Sink, decisions: list[Decision], emit: Emit) -> None:
    for d in decisions:
        if d.keep:
            continue
        # Manifest first: a half-deleted backup shows as incomplete, never as published.
        for key in (d.entry.name + MANIFEST_SUFFIX, d.entry.name, d.entry.name + CHECK_OK,
                    d.entry.name + CHECK_FAILED):
            sink.delete(key)
        emit("prune.deleted", sink=sink.name, name=d.entry.name)

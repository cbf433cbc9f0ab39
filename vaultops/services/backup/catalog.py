"""What is in the sinks: list, verify (re-read), inspect, prune, open uploads.

Which backup is "the newest" (restore/verify/inspect latest, drill, prune's never-delete) is
decided by `newest_confirmed`: the listing's trusted times (see manifest.py) pick the
candidates, and the candidate's manifest must agree with its name and times; untrusted entries
and candidates whose manifest disagrees are skipped with a warning. Only the entries that
matter are read (usually one manifest), so a listing of thousands of objects stays cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from vaultops.errors import BackupError, VaultOpsError, VerificationError
from vaultops.services.backup.formats import get_format
from vaultops.services.backup.lock import run_lock
from vaultops.services.backup.manifest import (CHECK_FAILED, CHECK_OK, MANIFEST_SUFFIX, BackupEntry, Manifest,
                                               State, check_marker, entries_from_listing, manifest_problem)
from vaultops.services.backup.record import last_run
from vaultops.services.backup.retention import Decision, plan
from vaultops.services.backup.settings import BackupSettings
from vaultops.services.backup.stored import check_against_manifest, read_manifest, verify_stored
from vaultops.services.backup.verify import ReadIncomplete, VerifyReport
from vaultops.storage.base import OpenUpload, Sink, SinkError, SweepsUploads

if TYPE_CHECKING:
    from vaultops.crypto.agekeys import Identity

Emit = Callable[..., None]
Warn = Callable[[str], None]
MAX_SKIPPED = 10   # candidates with a disagreeing manifest looked at before giving up


def list_backups(sink: Sink, *, cluster: str | None) -> list[BackupEntry]:
    """Newest first, from one fully paginated listing (no per-object reads)."""
    return entries_from_listing(list(sink.list(f"{cluster}-" if cluster else "")), cluster=cluster)


def newest(sink: Sink, *, cluster: str | None, warn: Warn | None = None) -> BackupEntry:
    """The newest verified backup whose time and manifest can be trusted."""
    entries = list_backups(sink, cluster=cluster)
    _warn_untrusted(sink, entries, warn)
    return newest_confirmed(sink, entries, warn=warn)[0]


def newest_confirmed(sink: Sink, entries: list[BackupEntry], *,
                     warn: Warn | None = None) -> tuple[BackupEntry, list[BackupEntry]]:
    """(the newest verified entry whose manifest agrees, the newer ones whose manifest did not)."""
    rejected: list[BackupEntry] = []
    now = datetime.now(timezone.utc)
    for entry in (e for e in entries if e.verified):
        problem = _manifest_problem(sink, entry, now)
        if problem is None:
            return entry, rejected
        if warn is not None:
            warn(f"{sink.name}: ignoring {entry.name}: {problem}")
        rejected.append(dataclasses.replace(entry, state=State.UNTRUSTED, problem=problem))
        if len(rejected) >= MAX_SKIPPED:
            break
    raise BackupError(f"{sink.name}: no verified backup found" + (
        f" ({len(rejected)} newest have manifests that disagree with them)" if rejected else ""),
        hint="run 'vaultops backup run' first" if not rejected else "inspect the sink: the backups listed above "
             "were not written by vaultops as named")


def _manifest_problem(sink: Sink, entry: BackupEntry, now: datetime) -> str | None:
    data = sink.get_bytes(entry.name + MANIFEST_SUFFIX)  # a sink that cannot answer is not a verdict
    try:
        manifest = Manifest.from_json(data, where=f"{sink.name}/{entry.name}")
    except VaultOpsError as exc:
        return f"its manifest is unreadable ({exc.message})"
    return manifest_problem(manifest, entry, now=now)


def _warn_untrusted(sink: Sink, entries: Iterable[BackupEntry], warn: Warn | None, *, most: int = 5) -> None:
    untrusted = [e for e in entries if e.state is State.UNTRUSTED]
    if warn is None:
        return
    for entry in untrusted[:most]:
        warn(f"{sink.name}: ignoring {entry.name}: {entry.problem}")
    if len(untrusted) > most:
        warn(f"{sink.name}: ignoring {len(untrusted) - most} more untrusted objects (see 'vaultops backup list')")


@dataclass(frozen=True)
class CheckResult:
    name: str
    sink: str
    ok: bool
    detail: str
    report: VerifyReport | None = None
    encrypted: bool = False
    decrypted: bool = False           # encrypted, and the snapshot inside was verified too
    orphaned: bool = False            # encrypted to none of the recipients configured now


def verify_backup(sink: Sink, name: str, *, settings: BackupSettings | None = None, record: bool = True,
                  identities: Sequence[Identity] | None = None) -> CheckResult:
    """Re-read a stored backup, verify it and compare it with its manifest; record the verdict.

    An encrypted backup without *identities*: its ciphertext only (crypt/__init__.py says what
    that proves); with them, decrypted as it streams and its snapshot verified as for a plain one."""
    from vaultops.services.backup.crypt.reveal import WrongIdentity  # cryptography: only when asked
    from vaultops.services.backup.crypt.seal import fingerprints

    manifest: Manifest | None = None
    try:
        manifest = read_manifest(sink, name)
        result = _check(sink, name, manifest, settings, identities)
    except (ReadIncomplete, WrongIdentity):
        raise  # no verdict: the backup may be fine (a slow sink, a key that is not one of its recipients)
    except VerificationError as exc:
        result = CheckResult(name, sink.name, False, str(exc), encrypted=bool(manifest and manifest.encryption))
    if manifest is not None and manifest.encryption is not None and settings is not None:
        result = dataclasses.replace(result, orphaned=is_orphaned(manifest, fingerprints(settings.encryption)))
    if record:
        when = datetime.now(timezone.utc)
        sink.put_bytes(name + (CHECK_OK if result.ok else CHECK_FAILED),
                       check_marker(ok=result.ok, detail=result.detail, when=when))
        sink.delete(name + (CHECK_FAILED if result.ok else CHECK_OK))
    return result


def _check(sink: Sink, name: str, manifest: Manifest, settings: BackupSettings | None,
           identities: Sequence[Identity] | None) -> CheckResult:
    from vaultops.services.backup.crypt.reveal import CiphertextVerifier, revealed

    if manifest.encryption is not None and not identities:
        report = verify_stored(sink, name, manifest, CiphertextVerifier(manifest))
        check_against_manifest(report, manifest, stored=True)
        return CheckResult(name, sink.name, True, f"ciphertext sha256 {report.sha256[:16]}…, {report.size} bytes, "
                           "not decrypted (no identity given)", report, encrypted=True)
    view = revealed(sink, manifest, identities)
    report = verify_stored(view, name, manifest, get_format(manifest.kind, settings).verifier())
    check_against_manifest(report, manifest)
    return CheckResult(name, sink.name, True, f"sha256 {report.sha256[:16]}…, {report.size} bytes"
                       + (", decrypted" if manifest.encryption else ""), report,
                       encrypted=manifest.encryption is not None, decrypted=manifest.encryption is not None)


def is_orphaned(manifest: Manifest, configured: set[str]) -> bool:
    """Encrypted, and to none of the *configured* recipients' fingerprints."""
    enc = manifest.encryption
    return enc is not None and not any(r.fingerprint in configured for r in enc.recipients)


class Sealed(str, Enum):
    PLAIN = "-"                 # not encrypted
    OK = "yes"                  # encrypted to at least one recipient configured now
    ORPHANED = "ORPHANED"       # encrypted to none of them: only keys kept elsewhere open it
    UNKNOWN = "?"               # its manifest could not be read


def encryption_states(sink: Sink, entries: list[BackupEntry], configured: set[str]) -> dict[str, Sealed]:
    """Per published entry: plain, encrypted to a configured recipient, or orphaned. Reads each
    manifest (a few at a time): the one thing a listing cannot tell."""
    from concurrent.futures import ThreadPoolExecutor

    def state(entry: BackupEntry) -> Sealed:
        try:
            manifest = read_manifest(sink, entry.name)
        except VaultOpsError:
            return Sealed.UNKNOWN
        if manifest.encryption is None:
            return Sealed.PLAIN
        return Sealed.ORPHANED if is_orphaned(manifest, configured) else Sealed.OK

    published = [e for e in entries if e.state not in (State.INCOMPLETE, State.UNTRUSTED)]
    with ThreadPoolExecutor(8, thread_name_prefix="manifests") as pool:
        return dict(zip((e.name for e in published), pool.map(state, published), strict=True))


@dataclass(frozen=True)
class Inspection:
    manifest: Manifest
    meta: dict[str, Any]
    prefixes: list[dict[str, Any]] = field(default_factory=list)
    entries: int = 0


def inspect_backup(sink: Sink, name: str, *, depth: int = 1, settings: BackupSettings | None = None,
                   identities: Sequence[Identity] | None = None) -> Inspection:
    """The manifest, and what the backup's format reads from the verified (decrypted) bytes."""
    from vaultops.services.backup.crypt.reveal import revealed

    manifest = read_manifest(sink, name)
    contents = get_format(manifest.kind, settings).inspect(revealed(sink, manifest, identities), name, manifest,
                                                           depth=depth)
    return Inspection(manifest, contents.meta, contents.prefixes, contents.entries)


def prune(sink: Sink, settings: BackupSettings, *, dry_run: bool, emit: Emit,
          lock: bool = False) -> list[Decision]:
    """Apply the retention plan to one sink. Refuses when the newest run failed.

    The newest verified backup's manifest is checked first (newer entries whose manifest
    disagrees become untrusted): it is the one backup retention must never lose.
    """
    state = last_run(settings)
    if state is not None and not state.get("ok"):
        raise BackupError(f"the newest backup run ({state.get('name')}) failed: not pruning",
                          hint="fix the backup run first; the next successful run re-enables pruning")
    if settings.retention.empty and not dry_run:
        raise BackupError("backup.retention keeps nothing beyond min_keep: refusing to prune",
                          hint="set keep_last/hourly/daily/weekly/monthly in backup.retention")
    with run_lock(settings.lock_file) if lock else contextlib.nullcontext():
        entries = list_backups(sink, cluster=settings.cluster)
        decisions = plan(_confirm_newest(sink, entries), settings.retention)
        for d in decisions:
            if d.entry.state is State.UNTRUSTED:
                emit("prune.untrusted", sink=sink.name, name=d.entry.name, problem=d.entry.problem)
        if not dry_run:
            sweep_open_uploads(sink, cluster=settings.cluster, recorded=(state or {}).get("left_open"), emit=emit)
            _apply(sink, decisions, emit)
    return decisions


def _confirm_newest(sink: Sink, entries: list[BackupEntry]) -> list[BackupEntry]:
    if not any(e.verified for e in entries):
        return entries
    _, rejected = newest_confirmed(sink, entries)
    replaced = {e.name: e for e in rejected}
    return [replaced.get(e.name, e) for e in entries]


def open_uploads(sink: Sink, *, cluster: str | None) -> list[OpenUpload]:
    """Uploads under this cluster's names that were never committed nor aborted."""
    if not isinstance(sink, SweepsUploads):
        return []
    return sorted(sink.open_uploads(f"{cluster}-" if cluster else ""), key=lambda u: u.started)


def sweep_open_uploads(sink: Sink, *, cluster: str | None, emit: Emit, recorded: Any = None) -> list[OpenUpload]:
    """Abort open uploads older than the sink's stale_after, or recorded by an earlier run as left
    open (*recorded*: the state file's `left_open`); report each. Returns those still open.
    Never raises: a sweep must not fail a run. A recorded upload that still cannot be aborted
    goes back into sink.left_open, so the run records it again."""
    if not isinstance(sink, SweepsUploads):
        return []
    known = _recorded(sink, recorded)
    try:
        found = open_uploads(sink, cluster=cluster)
    except SinkError as exc:
        emit("warning", message=f"{sink.name}: open uploads not checked: {exc}")
        sink.left_open.extend(known.values())
        return []
    now, still = datetime.now(timezone.utc), []
    for up in found:
        age = now - up.started
        if up.upload_id not in known and age < sink.stale_after:
            still.append(up)
            continue
        try:
            sink.abort_open_upload(up)
        except SinkError as exc:
            emit("warning", message=f"{sink.name}: open upload of {up.key} not aborted: {exc}")
            still.append(up)
            if up.upload_id in known:
                sink.left_open.append(up)
            continue
        emit("sink.upload_aborted", sink=sink.name, key=up.key, upload_id=up.upload_id,
             age_hours=round(age.total_seconds() / 3600, 2),
             reason="left open by an earlier run" if up.upload_id in known else "stale")
    return still


def _recorded(sink: SweepsUploads, recorded: Any) -> dict[str, OpenUpload]:
    out: dict[str, OpenUpload] = {}
    for r in recorded if isinstance(recorded, list) else ():
        if not (isinstance(r, dict) and r.get("sink") == sink.name and isinstance(r.get("upload_id"), str)
                and isinstance(r.get("key"), str)):
            continue
        try:
            started = datetime.fromisoformat(str(r.get("started")))
        except ValueError:
            started = datetime.now(timezone.utc)
        out[r["upload_id"]] = OpenUpload(r["key"], r["upload_id"], started)
    return out


def _apply(sink: Sink, decisions: list[Decision], emit: Emit) -> None:
    for d in decisions:
        if d.keep:
            continue
        # Manifest first: a half-deleted backup shows as incomplete, never as published.
        for key in (d.entry.name + MANIFEST_SUFFIX, d.entry.name, d.entry.name + CHECK_OK,
                    d.entry.name + CHECK_FAILED):
            sink.delete(key)
        emit("prune.deleted", sink=sink.name, name=d.entry.name)

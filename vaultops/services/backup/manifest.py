"""Backup names and manifests.

A backup is published as two objects in a sink:
    <cluster>-<YYYYmmddTHHMMSS.fff>Z.<ext>                 the snapshot (ext: snap | pgdump, + .age
                                                           when encrypted: `age -d` opens it as is)
    <cluster>-<YYYYmmddTHHMMSS.fff>Z.<ext>.manifest.json   written last: its presence = published
and optionally `<name>.check-ok.json` or `<name>.check-failed.json`: the outcome of the latest
`vaultops backup verify` (the verdict is in the name, so a listing alone shows it).
Names of one cluster sort by time. Listing and retention work from one listing (names plus the
sink's own timestamps), so thousands of objects need no per-object reads.

A name is only a claim: whoever can write to the sink can name an object anything. So a
name's time is trusted only when it is not in the future (beyond SKEW) and not later (beyond
SKEW) than the sink's own timestamp of the object (S3 LastModified, a file's mtime) - nothing
can be taken after it was stored. An entry failing either check, or whose name holds an
impossible date, is UNTRUSTED: listed with the reason, never counted by retention, never
picked as the newest backup. Within those bounds the name's time orders entries (a copy or a
re-upload makes the sink's timestamp later than the snapshot, never earlier); the manifest
of the backup actually picked is cross-checked as well (see catalog.newest / manifest_problem).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum

from vaultops.errors import BackupError
from vaultops.services.backup.formats import FORMATS
from vaultops.storage.base import ObjectInfo

FORMAT = "vaultops-backup/1"
ENCRYPTION_FORMAT = "age-v1"
MANIFEST_SUFFIX = ".manifest.json"
CHECK_OK = ".check-ok.json"
CHECK_FAILED = ".check-failed.json"
EXTENSIONS = ("snap", "pgdump")
ENCRYPTED_SUFFIX = ".age"
_NAME = re.compile(r"^(?P<cluster>.+)-(?P<ts>\d{8}T\d{6}\.\d{3})Z\.(?P<ext>snap|pgdump)(?:\.age)?$")
SKEW = timedelta(minutes=5)     # clock difference tolerated between us, the sink and the writer


def backup_name(cluster: str, when: datetime, ext: str) -> str:
    when = when.astimezone(timezone.utc)
    return f"{cluster}-{when:%Y%m%dT%H%M%S}.{when.microsecond // 1000:03d}Z.{ext}"


def parse_name(name: str) -> tuple[str, datetime] | None:
    """(cluster, time) of a backup name; None if it is not one or its date is impossible."""
    parsed = _match_name(name)
    return None if parsed is None or parsed[1] is None else (parsed[0], parsed[1])


def _match_name(name: str) -> tuple[str, datetime | None] | None:
    m = _NAME.match(name)
    if not m:
        return None
    try:
        when = datetime.strptime(m["ts"], "%Y%m%dT%H%M%S.%f").replace(tzinfo=timezone.utc)
    except ValueError:  # month 13, February 30, year 0000 ...
        return m["cluster"], None
    return m["cluster"], when


def name_problem(when: datetime | None, stored: datetime, now: datetime) -> str | None:
    """Why the time in a name cannot be trusted, or None."""
    if when is None:
        return "the date in its name is impossible"
    if when > now + SKEW:
        return f"its name is dated {when:%Y-%m-%d %H:%M} UTC, in the future"
    if when > stored + SKEW:
        return f"its name is dated {when:%Y-%m-%d %H:%M} UTC, after the sink stored it ({stored:%Y-%m-%d %H:%M})"
    return None


@dataclass(frozen=True)
class RecipientInfo:
    type: str                     # X25519 | ssh-ed25519 | ssh-rsa
    fingerprint: str              # age1… (X25519) or SHA256:… as ssh-keygen -l prints it


@dataclass(frozen=True)
class Encryption:
    """How the stored object is encrypted. The manifest's size/sha256 stay the snapshot's (the
    plaintext, verified in flight before it was encrypted); these are the stored bytes'."""

    format: str                   # age-v1 (age-encryption.org/v1)
    recipients: list[RecipientInfo]
    ciphertext_size: int
    ciphertext_sha256: str


@dataclass(frozen=True)
class Manifest:
    name: str
    kind: str                     # raft | consul | postgresql
    cluster_name: str
    cluster_id: str | None
    server_version: str | None
    source_node: str | None
    size: int
    sha256: str
    started_at: str
    finished_at: str
    raft_index: int | None = None
    raft_term: int | None = None
    consul_index: int | None = None
    members: dict[str, int] = field(default_factory=dict)
    verified: bool = True
    format: str = FORMAT
    encryption: Encryption | None = None      # additive: absent in manifests of plain backups

    @property
    def stored_size(self) -> int:
        """Bytes of the stored object (the ciphertext when encrypted)."""
        return self.encryption.ciphertext_size if self.encryption else self.size

    @property
    def stored_sha256(self) -> str:
        return self.encryption.ciphertext_sha256 if self.encryption else self.sha256

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, *, where: str) -> Manifest:
        """A manifest read back: typed, unknown keys refused, format, kind, digest and times checked."""
        from vaultops.files.loader import CONFIG_CAP, parse_json, too_big, validate

        hint = "the manifest is damaged: re-verify the backup or delete it"
        if len(data) > CONFIG_CAP:
            raise too_big(where, len_=len(data), cap=CONFIG_CAP, error=BackupError, what="backup manifest")
        raw = parse_json(data, source=where, error=BackupError)
        if isinstance(raw, dict) and raw.get("format") != FORMAT:
            raise BackupError(f"{where}: format: {str(raw.get('format'))[:40]!r} is not {FORMAT!r}", hint=hint)
        manifest = validate(raw, cls, source=where, error=BackupError, hint=hint, yaml=False)
        problem = _problem(manifest)
        if problem:
            raise BackupError(f"{where}: {problem}", hint=hint)
        return manifest


def _problem(m: Manifest) -> str | None:
    """What a well-typed manifest may still get wrong, as 'key: problem'."""
    if m.kind not in KINDS:
        return f"kind: {m.kind[:20]!r} is not one of: {', '.join(KINDS)}"
    if not _hex64(m.sha256):
        return "sha256: expected 64 lowercase hex digits"
    if m.size < 0:
        return "size: expected an integer >= 0"
    if m.encryption is not None:
        problem = _encryption_problem(m.encryption)
        if problem:
            return f"encryption.{problem}"
    for key in ("started_at", "finished_at"):
        value = getattr(m, key)
        try:
            if datetime.fromisoformat(value).tzinfo is None:
                return f"{key}: expected a timestamp with a time zone, got {value[:40]!r}"
        except ValueError:
            return f"{key}: expected an ISO timestamp, got {value[:40]!r}"
    return None


def _hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _encryption_problem(e: Encryption) -> str | None:
    if e.format != ENCRYPTION_FORMAT:
        return f"format: {e.format[:20]!r} is not {ENCRYPTION_FORMAT!r}"
    if not _hex64(e.ciphertext_sha256):
        return "ciphertext_sha256: expected 64 lowercase hex digits"
    if e.ciphertext_size < 0:
        return "ciphertext_size: expected an integer >= 0"
    if not e.recipients:
        return "recipients: expected at least one"
    return None


KINDS = tuple(FORMATS)   # the names of the backup formats (formats/)


class State(str, Enum):
    VERIFIED = "verified"           # manifest present (only verified snapshots are published)
    REVERIFIED = "re-verified"      # and the latest `backup verify` passed
    FAILED = "failed"               # the latest `backup verify` failed
    INCOMPLETE = "incomplete"       # data without manifest: an interrupted publish
    UNTRUSTED = "untrusted"         # its time cannot be trusted (see the module docstring)


@dataclass(frozen=True)
class BackupEntry:
    name: str
    cluster: str
    time: datetime
    size: int
    state: State
    check_time: datetime | None = None
    problem: str | None = None       # why it is UNTRUSTED

    @property
    def verified(self) -> bool:
        return self.state in (State.VERIFIED, State.REVERIFIED)


def entries_from_listing(objects: list[ObjectInfo], *, cluster: str | None = None,
                         now: datetime | None = None) -> list[BackupEntry]:
    """Group a sink listing into backups, newest first; untrusted times are flagged, not believed."""
    now = now or datetime.now(timezone.utc)
    by_key = {o.key: o for o in objects}
    out: list[BackupEntry] = []
    for obj in objects:
        parsed = _match_name(obj.key)
        if parsed is None or (cluster is not None and parsed[0] != cluster):
            continue
        ok, failed = by_key.get(obj.key + CHECK_OK), by_key.get(obj.key + CHECK_FAILED)
        check = failed or ok
        problem = name_problem(parsed[1], obj.modified, now)
        if problem is not None:
            state = State.UNTRUSTED
        elif obj.key + MANIFEST_SUFFIX not in by_key:
            state = State.INCOMPLETE
        elif failed is not None:
            state = State.FAILED
        elif ok is not None:
            state = State.REVERIFIED
        else:
            state = State.VERIFIED
        out.append(BackupEntry(obj.key, parsed[0], parsed[1] or obj.modified, obj.size, state,
                               check.modified if check else None, problem))
    return sorted(out, key=lambda e: e.time, reverse=True)


def manifest_problem(manifest: Manifest, entry: BackupEntry, *, now: datetime) -> str | None:
    """Why a manifest does not vouch for *entry* (name and times must agree), or None."""
    if manifest.name != entry.name:
        return f"its manifest is for {manifest.name!r}"
    started, finished = _instant(manifest.started_at), _instant(manifest.finished_at)
    if started is None or finished is None:
        return "its manifest holds unreadable times"
    if abs(started - entry.time) > timedelta(seconds=1):
        return f"its manifest says it was started at {manifest.started_at}, not as its name says"
    if finished < started or finished > now + SKEW:
        return f"its manifest says it finished at {manifest.finished_at}"
    return None


def _instant(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def check_marker(*, ok: bool, detail: str, when: datetime) -> bytes:
    return json.dumps({"ok": ok, "detail": detail, "time": when.isoformat()}).encode()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")

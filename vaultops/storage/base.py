"""The sink contract: where backups are published, listed, read back and deleted.

A sink stores opaque objects under string keys. Writing is streamed through an
Upload that becomes visible only on commit(); abort() leaves nothing behind
(local: the temp file is removed; S3: the multipart upload is aborted).

    sink = get_sink({"type": "local", "path": "/var/backups/vault"})
    up = sink.open_upload("prod-20250101T000000Z.snap")
    for chunk in chunks: up.write(chunk)
    up.commit()            # or up.abort()

Implementations are chosen by name from config (`type:`), see SINKS.

An upload that was neither committed nor aborted (a run killed mid-stream, an abort that
could not reach S3) stays behind as an *open upload*: a multipart upload on S3 (billed), a
temp file in a local directory. Sinks that can have them also implement SweepsUploads, so a
run and `backup prune` list them and abort the stale ones, and `backup list` shows them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from vaultops.errors import BackupError, ConfigError

CHUNK = 1 << 20
STALE_AFTER_HOURS = 24.0   # default age at which an open upload counts as abandoned


class SinkError(BackupError):
    """A sink operation failed (disk full, S3 unreachable, object missing)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class CommitResult:
    key: str
    size: int
    location: str
    checksum: str | None = None   # the sink's own full-object checksum, e.g. "crc32:r/UrfQ=="


@dataclass(frozen=True)
class OpenUpload:
    """An upload begun and never committed nor aborted."""

    key: str            # the object it was meant to become
    upload_id: str      # S3: the multipart UploadId; local: the temp file's name
    started: datetime   # S3: Initiated; local: the temp file's last write


@runtime_checkable
class Upload(Protocol):
    def write(self, chunk: bytes | bytearray) -> None: ...

    def commit(self) -> CommitResult: ...

    def abort(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    name: str

    def open_upload(self, key: str) -> Upload: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def read_chunks(self, key: str, *, chunk_size: int = CHUNK) -> Iterator[bytes]: ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


@runtime_checkable
class SweepsUploads(Protocol):
    """Optional sink capability: list and abort open uploads."""

    name: str
    stale_after: timedelta          # an open upload this old belongs to no run in progress
    left_open: list[OpenUpload]     # uploads this process tried to abort and could not

    def open_uploads(self, prefix: str = "") -> Iterator[OpenUpload]: ...

    def abort_open_upload(self, upload: OpenUpload) -> None:
        """Abort it; an upload that is already gone counts as aborted."""
        ...


def number_setting(settings: dict[str, Any], key: str, default: float, *, minimum: float = 0.0) -> float:
    """A numeric sink setting, checked (YAML may hold a string or a boolean there)."""
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"backup.sinks: {key} must be a number >= {minimum:g}, not {value!r}",
                          hint=f"e.g. {key}: {default:g}")
    return float(value)


def stale_after(settings: dict[str, Any]) -> timedelta:
    hours = number_setting(settings, "abort_stale_after_hours", STALE_AFTER_HOURS, minimum=0.0)
    return timedelta(hours=hours)


# name -> "module:Class"; imported on use so boto3 loads only for S3.
SINKS: dict[str, str] = {
    "local": "vaultops.storage.local:LocalSink",
    "s3": "vaultops.storage.s3:S3Sink",
}


def get_sink(settings: dict[str, Any], *, resolve_path: Callable[[str], Path] | None = None) -> Sink:
    """Build the sink named by settings['type'] from its settings mapping."""
    kind = settings.get("type")
    target = SINKS.get(str(kind))
    if target is None:
        raise ConfigError(f"backup.sinks: unknown sink type {kind!r}", hint=f"use one of {', '.join(SINKS)}")
    module, cls = target.split(":")
    factory = getattr(importlib.import_module(module), cls)
    return factory.from_settings(settings, resolve_path=resolve_path or (lambda p: Path(p).expanduser()))


def check_key(key: str) -> str:
    """Keys are relative, slash-separated, without '..' (they become file paths)."""
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise SinkError(f"invalid object key {key!r}", hint="use a relative name like prod-2025.snap")
    return key

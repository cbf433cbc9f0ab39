"""A local directory sink. Uploads go to a hidden temp file and are renamed on commit."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from vaultops.errors import ConfigError
from vaultops.fsutil import atomic_write_bytes
from vaultops.storage.base import CHUNK, CommitResult, ObjectInfo, SinkError, check_key

TEMP_PREFIX = ".partial-"


class LocalUpload:
    def __init__(self, root: Path, key: str) -> None:
        self._target = root / key
        self._target.parent.mkdir(parents=True, exist_ok=True)
        # Backups hold barrier-encrypted data (and Consul ACL tokens): 0600 from birth.
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self._target.parent)
        os.fchmod(fd, 0o600)
        self._tmp = Path(tmp)
        self._fh: IO[bytes] | None = os.fdopen(fd, "wb")
        self._size = 0
        self.key = key

    def write(self, chunk: bytes | bytearray) -> None:
        assert self._fh is not None, "upload already finished"
        try:
            self._fh.write(chunk)
        except OSError as exc:
            self.abort()
            raise SinkError(f"local: cannot write {self._target}: {exc.strerror}",
                            hint="check free space and permissions of the backup directory") from exc
        self._size += len(chunk)

    def commit(self) -> CommitResult:
        assert self._fh is not None, "upload already finished"
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
            os.replace(self._tmp, self._target)
            _fsync_dir(self._target.parent)
        except OSError as exc:
            self.abort()
            raise SinkError(f"local: cannot publish {self._target}: {exc.strerror}",
                            hint="check free space and permissions of the backup directory") from exc
        return CommitResult(key=self.key, size=self._size, location=str(self._target))

    def abort(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


class LocalSink:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"local:{root}"

    @classmethod
    def from_settings(cls, settings: dict[str, Any], *, resolve_path: Callable[[str], Path]) -> LocalSink:
        path = settings.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError("backup.sinks: a local sink needs 'path'", hint="e.g. {type: local, path: /var/backups}")
        root = resolve_path(path)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def open_upload(self, key: str) -> LocalUpload:
        check_key(key)
        return LocalUpload(self.root, key)

    def put_bytes(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self._path(key), data, mode=0o600)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise SinkError(f"{self.name}: {key} not found", hint="run 'vaultops backup list'") from None

    def read_chunks(self, key: str, *, chunk_size: int = CHUNK) -> Iterator[bytes]:
        try:
            fh = self._path(key).open("rb")
        except FileNotFoundError:
            raise SinkError(f"{self.name}: {key} not found", hint="run 'vaultops backup list'") from None
        with fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if not path.is_file() or path.name.startswith(TEMP_PREFIX) or path.name.startswith("."):
                continue
            if rel.startswith(prefix):
                st = path.stat()
                yield ObjectInfo(rel, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Reading a published backup back: its manifest, and its bytes, bounded and verified.

Every read goes through verify.bounded (a stored object that grows past its manifest's size,
stalls, or outlasts its time budget ends in one line) and through the one feed loop,
verify.verify_chunks. A download lands in a private 0600 temp file only while it is verified
and compared with its manifest, so nothing unverified reaches a server.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from vaultops.errors import BackupError, VerificationError
from vaultops.services.backup.manifest import MANIFEST_SUFFIX, Manifest
from vaultops.services.backup.verify import Budget, Verifier, VerifyReport, bounded, verify_chunks
from vaultops.storage.base import Sink


def read_manifest(sink: Sink, name: str) -> Manifest:
    return Manifest.from_json(sink.get_bytes(name + MANIFEST_SUFFIX), where=f"{sink.name}/{name}{MANIFEST_SUFFIX}")


def read_stored(sink: Sink, name: str, manifest: Manifest) -> Iterable[bytes]:
    """The stored bytes of *name*, cut off past the manifest's size or the time budget. (Through
    crypt.reveal.revealed's view of an encrypted backup: its plaintext.)"""
    return bounded(sink.read_chunks(name), Budget.for_size(manifest.stored_size), what=f"{sink.name}/{name}")


def check_against_manifest(report: VerifyReport, manifest: Manifest, *, stored: bool = False) -> None:
    """The verified snapshot (or with *stored*, the stored bytes, e.g. a ciphertext) is the published one."""
    size, sha = (manifest.stored_size, manifest.stored_sha256) if stored else (manifest.size, manifest.sha256)
    if report.size != size or report.sha256 != sha:
        raise VerificationError(
            f"{manifest.name}: stored bytes differ from the manifest (size {report.size} vs {size})",
            hint="the stored copy changed after publication: use another sink's copy or an older backup")


def verify_stored(sink: Sink, name: str, manifest: Manifest, verifier: Verifier) -> VerifyReport:
    """Re-read *name* through *verifier* (not yet compared with the manifest)."""
    return verify_chunks(read_stored(sink, name, manifest), verifier)


@contextlib.contextmanager
def downloaded(sink: Sink, name: str, manifest: Manifest, verifier: Verifier) -> Iterator[Path]:
    """Download to a 0600 temp file, verifying in the same pass and comparing with the manifest;
    the file is removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="vaultops-restore-"))
    path = folder / name
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                report = verify_chunks(read_stored(sink, name, manifest), verifier, tee=fh.write)
        except OSError as exc:
            verifier.abort()  # idempotent: verify_chunks has already aborted it unless the open failed
            raise BackupError(f"cannot write the downloaded copy to {folder} ({exc.strerror})",
                              hint="free space in the temp directory (TMPDIR) and try again") from None
        check_against_manifest(report, manifest)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        folder.rmdir()

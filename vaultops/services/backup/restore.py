"""`vaultops backup restore`: fetch a published backup, verify it again, hand it to the source.

The backup is downloaded to a private temp file while it is verified and compared with its
manifest, so nothing unverified ever reaches the server. Every read goes through
verify.bounded: a stored object that grows past its manifest's size, stalls, or takes longer
than its time budget ends the restore with one line. Restoring another cluster's snapshot
needs force; see FORCE_WARNING for what that does.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vaultops.errors import BackupError, UsageError
from vaultops.services.backup.formats import get_format
from vaultops.services.backup.manifest import Manifest
from vaultops.services.backup.settings import BackupSettings
from vaultops.services.backup.sources import Source
from vaultops.services.backup.stored import downloaded, read_manifest
from vaultops.services.backup.verify import Budget, VerifyReport, bounded, verify_chunks
from vaultops.storage.base import Sink
from vaultops.vault import NodeClient
from vaultops.vault.cluster import active

if TYPE_CHECKING:
    from vaultops.crypto.agekeys import Identity

FORCE_WARNING = (
    "FORCED RESTORE: every secret, policy, token and mount of the target cluster {target} is replaced "
    "by the data of {source} as of {time}. The target's own keyring is discarded: within seconds the "
    "nodes seal themselves, and from then on only the ORIGINAL cluster's ({source}) unseal shares unseal "
    "them and only its tokens work. The target's current data is lost unless you backed it up.")
SAME_WARNING = ("RESTORE: cluster {target} is rolled back to {time}; every write made since then is lost.")


@dataclass(frozen=True)
class RestorePlan:
    name: str
    sink: str
    manifest: Manifest
    target_cluster_id: str | None
    same_cluster: bool

    def warning(self, target_label: str) -> str:
        tmpl = SAME_WARNING if self.same_cluster else FORCE_WARNING
        return tmpl.format(target=target_label, source=self.manifest.cluster_name or self.manifest.cluster_id,
                           time=self.manifest.finished_at)


@dataclass(frozen=True)
class RestoreResult:
    name: str
    node: str
    forced: bool
    seconds: float


def plan_restore(sink: Sink, name: str, clients: list[NodeClient]) -> RestorePlan:
    manifest = read_manifest(sink, name)
    checks = get_format(manifest.kind).checks_cluster
    target_id: str | None = None
    if checks:
        target_id = active(clients, error=BackupError,
                           hint="unseal the cluster or wait for a leader election, then try again").health.cluster_id
    same = not checks or (bool(target_id) and target_id == manifest.cluster_id)
    return RestorePlan(name=name, sink=sink.name, manifest=manifest, target_cluster_id=target_id,
                       same_cluster=same)


@contextlib.contextmanager
def fetched(sink: Sink, name: str, manifest: Manifest, *, settings: BackupSettings | None = None,
            identities: Sequence[Identity] | None = None) -> Iterator[Path]:
    """A verified private copy of a stored backup (see stored.downloaded; an encrypted one decrypted
    as it streams, with *identities*); removed afterwards."""
    from vaultops.services.backup.crypt.reveal import revealed  # cryptography: only when asked

    verifier = get_format(manifest.kind, settings).verifier()
    with downloaded(revealed(sink, manifest, identities), name, manifest, verifier) as path:
        yield path


def restore(plan: RestorePlan, sink: Sink, source: Source, *, force: bool,
            settings: BackupSettings | None = None, identities: Sequence[Identity] | None = None) -> RestoreResult:
    if not plan.same_cluster and not force:
        raise UsageError(
            f"{plan.name} comes from cluster {plan.manifest.cluster_id}, not this one ({plan.target_cluster_id})",
            hint="pass --force to replace this cluster's data (read the warning it prints first)")
    if plan.manifest.kind != source.kind:
        raise BackupError(f"{plan.name} is a {plan.manifest.kind} backup but the source is {source.kind}",
                          hint="set backup.source to match, or pick another backup")
    with fetched(sink, plan.name, plan.manifest, settings=settings, identities=identities) as path:
        t0 = time.monotonic()
        with path.open("rb") as fh:
            node = source.restore(fh, force=force or not plan.same_cluster)
    return RestoreResult(plan.name, node, force, time.monotonic() - t0)


def verify_file(path: Path, kind: str, *, settings: BackupSettings | None = None) -> VerifyReport:
    """Verify a snapshot file that vaultops did not publish (e.g. from `bao operator raft snapshot save`)."""
    size = None
    with contextlib.suppress(OSError):
        size = path.stat().st_size if path.is_file() else None
    chunks = bounded(_file_chunks(path), Budget.for_size(size), what=str(path))
    return verify_chunks(chunks, get_format(kind, settings).verifier())


def _file_chunks(path: Path) -> Iterator[bytes]:
    """Opened lazily, inside bounded()'s reader: opening a FIFO with no writer blocks too."""
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                yield chunk
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({exc.strerror})", hint="check the path") from None


def restore_file(path: Path, source: Source, *, force: bool,
                 settings: BackupSettings | None = None) -> RestoreResult:
    """Verify a foreign snapshot file, then restore it (Vault itself refuses another cluster's
    snapshot without force: 'could not verify hash file')."""
    verify_file(path, source.kind, settings=settings)
    t0 = time.monotonic()
    with path.open("rb") as fh:
        node = source.restore(fh, force=force)
    return RestoreResult(path.name, node, force, time.monotonic() - t0)

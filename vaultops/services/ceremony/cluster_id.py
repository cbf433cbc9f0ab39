"""Filling in the keyholder manifest's cluster id at the first unseal: once, whoever sees it first.

`vaultops init` cannot know the id of a sealed cluster, so the manifest says PENDING_CLUSTER_ID
until some unseal ceremony sees the unsealed nodes report it. Several ceremonies (keyholders on
several terminals) see that at the same moment: the id is compared and written under the
manifest's lock, so exactly one of them writes the file (and journals it); the others adopt it.

    manifest, wrote = record_cluster_id(path, cid)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from vaultops.errors import ConfigError
from vaultops.files.lock import exclusive_lock
from vaultops.services.ceremony.init import PENDING_CLUSTER_ID
from vaultops.services.ceremony.manifest import Manifest

LOCK_WAIT = 10.0  # another ceremony writes a few KiB: seconds at most


def lock_path(manifest: Path) -> Path:
    """The lock beside the manifest (lock files are never removed: see files/lock.py)."""
    return manifest.with_name(f".{manifest.name}.lock")


def record_cluster_id(path: Path, cluster_id: str, *, loaded: Manifest) -> tuple[Manifest, bool]:
    """The manifest at *path* with *cluster_id* recorded, and whether this call wrote it.

    Under the lock the file is read again: if it is still pending it is written with the id; if
    another process already recorded an id, that manifest is returned untouched (the caller
    compares the ids). *loaded* is what the caller read before; it is written if the file is gone."""
    with exclusive_lock(lock_path(path), what="keyholder manifest update", error=ConfigError, wait=LOCK_WAIT):
        current = Manifest.load(path) if path.exists() else loaded
        if current.cluster_id != PENDING_CLUSTER_ID:
            return current, False
        updated = replace(current, cluster_id=cluster_id)
        updated.save(path)
        return updated, True


__all__ = ["lock_path", "record_cluster_id"]

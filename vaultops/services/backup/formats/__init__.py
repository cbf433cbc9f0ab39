"""Backup formats as plugins, found by name (backup.source, a manifest's kind) like dns.PROVIDERS.

Each module provides one Format (base.py): its source (where snapshots come from and go back
to), its verifier (checks a stream as it passes), its inspector (what `backup inspect` shows),
and the few facts the services ask about it (extension, does a run log in to Vault, does a
restore check the cluster, can a drill restore it into a throwaway sandbox). A new format is a
new module and one line here; no service tests a format's name.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vaultops.errors import BackupError

if TYPE_CHECKING:
    from vaultops.services.backup.formats.base import Format
    from vaultops.services.backup.settings import BackupSettings
    from vaultops.services.backup.sources import Source
    from vaultops.vault import NodeClient

FORMATS: dict[str, str] = {
    "raft": "vaultops.services.backup.formats.raft:RaftFormat",
    "consul": "vaultops.services.backup.formats.consul:ConsulFormat",
    "postgresql": "vaultops.services.backup.formats.postgresql:PostgresqlFormat",
}


def get_format(name: str, settings: BackupSettings | None = None) -> Format:
    """The format called *name*, imported on use; *settings* is the backup: section (or None)."""
    target = FORMATS.get(str(name))
    if target is None:
        raise BackupError(f"unknown backup format {str(name)[:40]!r}", hint=f"use one of {', '.join(FORMATS)}")
    module, cls = target.split(":")
    fmt: Format = getattr(importlib.import_module(module), cls)(settings)
    return fmt


def make_source(name: str, *, clients: Sequence[NodeClient], settings: BackupSettings | None) -> Source:
    """The source of format *name* (Consul allows plain http only where the Vault *clients* were allowed it)."""
    return get_format(name, settings).source(list(clients))


__all__ = ["FORMATS", "get_format", "make_source"]

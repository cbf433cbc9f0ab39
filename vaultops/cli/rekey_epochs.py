"""The rekey commands' view of the backups (services/backup/rekey_epochs.py), built from the session."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from vaultops.services.backup.rekey_epochs import RekeyBackups
    from vaultops.session import Session


def rekey_backups(session: Session, manifest: Path) -> RekeyBackups:
    from vaultops.services.backup.rekey_epochs import RekeyBackups

    has_sinks = bool(session.config.section("backup").get("sinks"))
    return RekeyBackups(session.config, session.journal, session.new_clients, manifest,
                        session.backup_settings if has_sinks else None)

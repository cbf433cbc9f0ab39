"""The preflight backup: a snapshot that has been verified, or no upgrade.

With `backup.sinks` configured this is exactly `vaultops backup run` (the
backup service: stream, verify while streaming, publish with a manifest).
Without it, a raft cluster's snapshot is streamed from the active node into
the state folder (0600) and verified offline on the way (gzip trailer, tar
members, SHA256SUMS) with the backup service's verifier. External storage
without a configured backup halts: its backup is the storage's own (pg_dump).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.errors import BackupError, RunbookError, VaultError
from vaultops.files.atomic import atomic_writer

if TYPE_CHECKING:
    from vaultops.config import Config
    from vaultops.services.upgrade.context import UpgradeContext


def take_verified_backup(ctx: UpgradeContext) -> dict[str, Any]:
    if ctx.backup == "skip":
        return {"summary": "skipped: the operator passed --no-backup", "skipped": True}
    if ctx.cfg.section("backup").get("sinks"):
        return _backup_service(ctx)
    if ctx.storage == "raft":
        return _local_raft_snapshot(ctx)
    raise RunbookError(f"no backup configured for {ctx.storage} storage",
                       hint="configure backup.sinks (see `vaultops backup --help`), or pass --no-backup "
                            "if you have a verified backup of the storage already")


def _backup_service(ctx: UpgradeContext) -> dict[str, Any]:
    from vaultops.services.backup.runner import run_backup
    from vaultops.services.backup.settings import load_settings

    if ctx.connect is None:
        raise RunbookError("no clients for the pre-upgrade backup were given to this run",
                           hint="resume with --no-backup after taking a backup by hand (`vaultops backup run`)")
    events: list[str] = []
    result = run_backup(ctx.cfg, load_settings(ctx.cfg), emit=lambda ev, **kw: events.append(ev),
                        connect=ctx.connect, journal=ctx.journal)
    if not result.ok or not result.verified:
        raise RunbookError(f"backup {result.name} failed: {result.error or 'not verified'}",
                           hint="fix the backup (`vaultops backup run`), then resume", evidence={"sinks": result.sinks})
    return {"summary": f"backup {result.name} verified ({result.size} bytes)", "name": result.name,
            "size": result.size, "sinks": result.sinks, "verified": True}


def _local_raft_snapshot(ctx: UpgradeContext) -> dict[str, Any]:
    from vaultops.services.backup.formats.raft import RaftSource
    from vaultops.services.backup.verify import verify_chunks

    folder = snapshot_dir(ctx.cfg)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"{_safe(ctx.cfg.cluster_name)}-{stamp}.snap"
    source = RaftSource(list(ctx.clients.values()))
    try:
        with source.open() as snap, atomic_writer(target, mode=0o600, binary=True) as fh:
            report = verify_chunks(snap.chunks, source.verifier(), tee=fh.write)
    except (BackupError, VaultError) as exc:
        raise RunbookError(f"snapshot failed: {exc.message}", hint=exc.hint) from exc
    return {"summary": f"raft snapshot verified: {target.name} ({report.size} bytes)", "path": str(target),
            "size": report.size, "sha256": report.sha256, "source_node": snap.info.source_node, "verified": True}


def snapshot_dir(cfg: Config) -> Path:
    return Path(cfg.state_dir) / "upgrade-snapshots"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)

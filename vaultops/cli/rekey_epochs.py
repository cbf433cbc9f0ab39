"""What a rekey means for the backups: before it completes, the retained backups that stay on the old
key epoch; after it completes, a fresh verified backup on the new epoch (where a backup section exists).
Both are journaled. (The ceremony itself, services/ceremony/rekey.py, knows nothing of backups.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vaultops.session import Session


def old_epoch_notice(session: Session, *, journal: bool) -> list[str]:
    """Lines saying which retained backups stay on the current epoch and until when its shares are needed."""
    from vaultops.cli.keyholders_epochs import backups_report
    from vaultops.errors import VaultOpsError

    try:
        report = backups_report(session)
    except VaultOpsError as exc:
        return [f"note: the backups were not read ({exc}): check `vaultops backup epochs` before discarding "
                "the current shares"]
    if report is None or report.current is None:
        return []
    row = report.row(report.current)
    if row is None or not row.backups:
        return [f"no retained backup is on key epoch {report.current}: the current shares open no backup"]
    times = sorted(p.entry.time for p in row.backups)
    until = (f"~{row.ages_out:%Y-%m-%d}, when the last of them ages out" if row.ages_out
             else "newer backups have pushed the last of them out (keep_last/min_keep: `vaultops backup epochs`)")
    lines = [f"{len(row.backups)} retained backup(s) ({times[0]:%Y-%m-%d %H:%M} .. {times[-1]:%Y-%m-%d %H:%M}) stay "
             f"on key epoch {report.current}: after this rekey they open ONLY with the current shares.",
             f"Keepers of the current shares: keep them sealed until {until}."]
    if journal:
        session.journal.append("rekey.backups_on_old_epoch", cluster=session.config.cluster_name,
                               details={"epoch": report.current, "backups": len(row.backups),
                                        "oldest": times[0].isoformat(), "newest": times[-1].isoformat(),
                                        "keep_shares_until": row.ages_out.isoformat() if row.ages_out else None})
    return lines


def backup_after_rekey(session: Session) -> list[str]:
    """A fresh verified backup on the new epoch, so the newest backup opens with today's shares."""
    from vaultops.errors import VaultOpsError
    from vaultops.services.backup.runner import run_backup

    if not session.config.section("backup").get("sinks"):
        return ["no backup section: no backup taken on the new key epoch (run `vaultops backup run` soon)"]
    warnings: list[str] = []

    def emit(event: str, **fields: Any) -> None:
        if event == "warning":
            warnings.append(str(fields.get("message")))

    result, error = None, None
    try:
        result = run_backup(session.config, session.backup_settings, emit=emit, connect=session.new_clients,
                            journal=session.journal)
        error = result.error
    except VaultOpsError as exc:
        error = str(exc)
    epoch = result.manifest.key_epoch if result and result.manifest else None
    ok = bool(result and result.ok)
    session.journal.append("rekey.post_backup", outcome="ok" if ok else "failed", cluster=session.config.cluster_name,
                           details={"name": result.name if result else None, "error": error,
                                    "epoch": epoch.number if epoch else None})
    if not ok:
        return [f"WARNING: the backup on the new key epoch failed ({error}): run `vaultops backup run` now"]
    label = f"epoch {epoch.number}" if epoch and epoch.number else "an UNKNOWN epoch"
    return [f"backup {result.name if result else '?'} taken and verified on {label}"] + [f"  warning: {w}" for w in warnings]

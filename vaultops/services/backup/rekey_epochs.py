"""What a rekey means for the backups (issue 16): before it completes, the retained backups that stay on
the old key epoch and until when its shares are needed; after it completes, a fresh verified backup on
the new epoch, so the newest backup always opens with today's shares. Both are journaled.

The rekey ceremony (services/ceremony/rekey.py) knows nothing of backups; its front ends (the CLI's
`rekey start/verify`, the rekey screen) call these around it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.errors import VaultOpsError

if TYPE_CHECKING:
    from vaultops.config import Config
    from vaultops.journal import Journal
    from vaultops.services.backup.settings import BackupSettings
    from vaultops.vault import NodeClient


@dataclass(frozen=True)
class RekeyBackups:
    cfg: Config
    journal: Journal
    connect: Callable[[], list[NodeClient]]
    keyholders: Path
    settings: BackupSettings | None     # None: vaultops.yaml has no backup sinks

    def before(self, *, record: bool) -> list[str]:
        """Which retained backups stay on the current epoch, and until when its shares are needed."""
        from vaultops.services.backup.epochs import epochs_report
        from vaultops.services.backup.runner import build_sinks
        from vaultops.services.ceremony.epochs import load_epochs

        if self.settings is None:
            return []
        try:
            history = load_epochs(self.keyholders)
            report = epochs_report(build_sinks(self.cfg, self.settings), cluster=self.settings.cluster,
                                   policy=self.settings.retention, history=history)
        except VaultOpsError as exc:
            return [f"note: the backups were not read ({exc}): check `vaultops backup epochs` before discarding "
                    "the current shares"]
        row = report.row(history.current.number)
        if row is None or not row.backups:
            return [f"no retained backup is on key epoch {history.current.number}: the current shares open no backup"]
        times = sorted(p.entry.time for p in row.backups)
        until = (f"~{row.ages_out:%Y-%m-%d}, when the last of them ages out" if row.ages_out else
                 "newer backups have pushed the last of them out (keep_last/min_keep: `vaultops backup epochs`)")
        if record:
            self.journal.append("rekey.backups_on_old_epoch", cluster=self.cfg.cluster_name, details={
                "epoch": row.epoch, "backups": len(row.backups), "oldest": times[0].isoformat(),
                "newest": times[-1].isoformat(), "keep_shares_until": row.ages_out.isoformat() if row.ages_out else None})
        return [f"{len(row.backups)} retained backup(s) ({times[0]:%Y-%m-%d %H:%M} .. {times[-1]:%Y-%m-%d %H:%M}) stay "
                f"on key epoch {row.epoch}: after this rekey they open ONLY with the current shares.",
                f"Keepers of the current shares: keep them sealed until {until}."]

    def after(self) -> list[str]:
        """A fresh verified backup on the new epoch (journaled as rekey.post_backup)."""
        from vaultops.services.backup.runner import run_backup

        if self.settings is None:
            return ["no backup sinks configured: no backup taken on the new key epoch (run `vaultops backup run` soon)"]
        warnings: list[str] = []

        def emit(event: str, **fields: Any) -> None:
            if event == "warning":
                warnings.append(str(fields.get("message")))

        result, error = None, None
        try:
            result = run_backup(self.cfg, self.settings, emit=emit, connect=self.connect, journal=self.journal,
                                keyholders=self.keyholders)
            error = result.error
        except VaultOpsError as exc:
            error = str(exc)
        epoch = result.manifest.key_epoch if result is not None and result.manifest else None
        ok = result is not None and result.ok
        self.journal.append("rekey.post_backup", outcome="ok" if ok else "failed", cluster=self.cfg.cluster_name,
                            details={"name": result.name if result else None, "error": error,
                                     "epoch": epoch.number if epoch else None})
        if result is None or not ok:
            return [f"WARNING: the backup on the new key epoch failed ({error}): run `vaultops backup run` now"]
        label = f"epoch {epoch.number}" if epoch and epoch.number else "an UNKNOWN epoch"
        return [f"backup {result.name} taken and verified on {label}"] + [f"  warning: {w}" for w in warnings]

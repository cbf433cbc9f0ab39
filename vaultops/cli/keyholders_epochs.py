"""`vaultops keyholders list --epochs` and the key-epoch section of `keyholders check`: per epoch, each
keyholder's share and until when the retained backups still need it (services/backup/epochs.py)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vaultops.services.backup.epochs import EpochRow, EpochsReport
    from vaultops.session import Session


def backups_report(session: Session) -> EpochsReport | None:
    """The `backup epochs` report, or None when vaultops.yaml has no backup section."""
    from vaultops.cli.backup_epochs import compute, record
    from vaultops.errors import ConfigError

    try:
        if not session.config.section("backup").get("sinks"):
            return None
    except ConfigError:  # keyholder commands also run without a vaultops.yaml
        return None
    report, history = compute(session)
    record(session, report, history)   # an epoch found retired here is announced here too
    return report


def custody(session: Session, manifest_arg: str | None) -> list[dict[str, Any]]:
    """One row per (epoch, keyholder): share, state and until when the share is needed."""
    from vaultops.services.ceremony.epochs import load_epochs

    history = load_epochs(session.required_manifest_path(manifest_arg))
    report = backups_report(session)
    rows = []
    for ep in reversed(history.epochs):
        row = report.row(ep.number) if report else None
        needed = _needed(ep.number == history.current.number, row, report)
        for kh in ep.keyholders:
            rows.append({"epoch": ep.number, "threshold": ep.threshold, "shares": ep.shares,
                         "keyholder": kh.name, "share_index": kh.share_index,
                         "departed": kh.name in history.departed, "needed": needed,
                         "started": ep.started.isoformat() if ep.started else None,
                         "ended": ep.ended.isoformat() if ep.ended else None})
    return rows


def _needed(current: bool, row: EpochRow | None, report: EpochsReport | None) -> str:
    if current:
        return "current: unseals the cluster"
    if report is None:
        return "no backup section: unknown"
    if row is None or not row.backups:
        return "no retained backup needs it: may be destroyed"
    if row.ages_out is not None:
        return f"until ~{row.ages_out:%Y-%m-%d} (its last backup ages out), then may be destroyed"
    return "until newer backups push its last one out (keep_last/min_keep): keep it sealed"


def list_epochs(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli.render import table

    rows = custody(session, args.manifest)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    print(table(("EPOCH", "T/N", "KEYHOLDER", "SHARE", "STILL NEEDED"),
                [(r["epoch"], f"{r['threshold']}/{r['shares']}", r["keyholder"] + (" (departed)" if r["departed"]
                                                                                  else ""),
                  f"#{r['share_index']}", r["needed"]) for r in rows]))
    return 0


def check_section(session: Session) -> tuple[list[str], dict[str, Any] | None, bool]:
    """(text lines, JSON, ok) of the key epochs the retained backups need; ok False when one is unopenable."""
    report = backups_report(session)
    if report is None:
        return [], None, True
    lines = ["key epochs of retained backups:"]
    for r in report.rows:
        label = "unknown epoch" if r.epoch is None else f"epoch {r.epoch}{' (current)' if r.current else ''}"
        state = {None: "?", True: "reachable", False: "UNOPENABLE: its keyholders cannot reach the threshold"}
        lines.append(f"  {label}: {len(r.backups)} backup(s), {state[r.reachable]}")
    lines += [f"  epoch {e}: no retained backup needs its shares: they may be destroyed" for e in report.retired]
    return lines, report.to_dict(), not report.unopenable

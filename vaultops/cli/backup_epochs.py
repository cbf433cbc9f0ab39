"""vaultops backup epochs: which shares the retained backups need (its parser is in backup_cmd.py)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vaultops.services.backup.epochs import EpochRow, EpochsReport
    from vaultops.session import Session

UNOPENABLE_EXIT = 3   # a retained backup's key epoch can no longer reach its threshold
UNKNOWN_EXIT = 1      # retained backups of unknown epoch (and none unopenable)

EPOCHS_DOC = """For each key epoch that retained backups belong to: how many backups, oldest and newest,
the epoch's threshold and keyholders (departed ones marked), whether they can still reach the
threshold, and when its last backup ages out under backup.retention (an estimate; after that the
epoch's shares open nothing and the journal says they may be destroyed). Reads every sink unless
--sink is given. With backup.metrics_file, writes vaultops_backup_unopenable_epochs beside it.

exit codes: 0 every epoch reachable, 3 a retained backup's epoch cannot reach its threshold,
1 retained backups of unknown epoch (a rekey done outside vaultops?)."""


def compute(session: Session, sink_choice: str | None = None) -> tuple[EpochsReport, Any]:
    """(report, keyholder history or None) over every sink, or the one chosen."""
    from vaultops.cli.backup_cmd import _emit, _pick_sink
    from vaultops.services.backup.epochs import epochs_report
    from vaultops.services.backup.runner import build_sinks

    cfg, settings = session.config, session.backup_settings
    sinks = [_pick_sink(cfg, settings, sink_choice)] if sink_choice else build_sinks(cfg, settings)
    history = load_history(session)
    report = epochs_report(sinks, cluster=settings.cluster, policy=settings.retention, history=history,
                           warn=lambda m: _emit("warning", message=m))
    if sink_choice:
        report.complete = False  # one sink is not every sink: nothing is announced from it
    return report, history


def load_history(session: Session) -> Any:
    from vaultops.services.ceremony.epochs import load_epochs

    path = session.manifest_path()
    return load_epochs(path) if path is not None and path.exists() else None


def record(session: Session, report: EpochsReport, history: Any) -> list[int]:
    """The metric beside backup.metrics_file, and the journal's retirement notices (once each)."""
    from vaultops.cli.backup_cmd import _emit
    from vaultops.services.backup import metrics
    from vaultops.services.backup.epochs import announce_retired

    settings = session.backup_settings
    if settings.metrics_file and report.complete:
        try:
            metrics.write_epochs(settings.metrics_file, cluster=settings.cluster, unopenable=len(report.unopenable),
                                 unknown=report.unknown)
        except OSError as exc:
            _emit("warning", message=f"key-epoch metric not written: {exc}")
    return announce_retired(report, history, session.journal, cluster=session.config.cluster_name)


def cmd_epochs(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli.backup_cmd import _out

    report, history = compute(session, args.sink)
    announced = record(session, report, history)
    _out(args, report.to_dict() | {"announced": announced}, render(report, announced))
    return exit_code(report)


def exit_code(report: EpochsReport) -> int:
    if report.unopenable:
        return UNOPENABLE_EXIT
    return UNKNOWN_EXIT if report.unknown else 0


def render(report: EpochsReport, announced: list[int]) -> str:
    from vaultops.cli.render import table

    rows = [[_label(r), f"{r.threshold}/{r.shares}" if r.threshold else "?", len(r.backups), _when(r, 0),
             _when(r, -1), _holders(r), _reach(r), _ages(r)] for r in report.rows]
    text = f"{report.cluster}: key epochs of retained backups ({', '.join(report.sinks)})\n"
    text += table(["EPOCH", "T/N", "BACKUPS", "OLDEST", "NEWEST", "KEYHOLDERS", "REACHABLE", "LAST AGES OUT"], rows)
    notes = [_unopenable(r) for r in report.rows if r.epoch in report.unopenable]
    if report.unknown:
        notes.append(f"{report.unknown} backup(s) of UNKNOWN epoch: the cluster's threshold/shares did not match "
                     "the keyholder manifest (a rekey done outside vaultops?)")
    notes += [f"epoch {e}: no retained backup needs its shares: they may be destroyed" for e in report.retired]
    notes += [f"journal: announced that epoch {e}'s shares may be destroyed" for e in announced]
    notes += [f"note: {p}" for p in report.problems]
    return text + "".join(f"\n{n}" for n in notes)


def _label(r: EpochRow) -> str:
    if r.epoch is None:
        return "unknown"
    return f"{r.epoch}{' (current)' if r.current else ''}" + ("*" if any(p.inferred for p in r.backups) else "")


def _when(r: EpochRow, i: int) -> str:
    times = sorted(p.entry.time for p in r.backups)
    return _fmt(times[i]) if times else "-"


def _fmt(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M}"


def _holders(r: EpochRow) -> str:
    return ", ".join(f"{k} (departed)" if k in r.departed else k for k in r.keyholders) or "-"


def _reach(r: EpochRow) -> str:
    if r.reachable is None:
        return "?"
    left = len([k for k in r.keyholders if k not in r.departed])
    return f"{'yes' if r.reachable else 'NO'} ({left} left, {r.threshold} needed)"


def _unopenable(r: EpochRow) -> str:
    left = [k for k in r.keyholders if k not in r.departed]
    return (f"epoch {r.epoch}: UNOPENABLE - {len(r.backups)} retained backup(s) need {r.threshold} of its shares and "
            f"only {len(left)} keyholder(s) remain ({', '.join(left) or 'none'}): those backups cannot be restored; "
            "find any other holder of an epoch-" + f"{r.epoch} share, or rely on newer backups")


def _ages(r: EpochRow) -> str:
    if not r.backups:
        return "-"
    if r.current:
        return "current epoch"
    if r.ages_out is not None:
        return f"~{_fmt(r.ages_out)}"
    return "after newer backups (keep_last/min_keep)"

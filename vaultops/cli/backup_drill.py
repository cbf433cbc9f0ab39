"""vaultops backup drill: the handler (its parser and help are in backup_cmd.py).

Reads the shares from stdin at once (no stdin or a terminal is a usage error before anything
runs), has every input checked by services/backup/drill.plan_drill, then runs the drill with a
live progress line at a terminal, or JSON lines on stderr for cron and --format json.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from vaultops.cli.backup_cmd import (_context, _emit, _identities, _interactive, _out, _pick_sink,
                                     _reporting)

if TYPE_CHECKING:
    from pathlib import Path

    from vaultops.session import Session

DRILL_DOC = """Restore a backup into a throwaway local sandbox, unseal it, read the sentinels, report RTO/RPO.

The ORIGINAL cluster's unseal shares are read from stdin (never argv), one per line, as
`vaultops unseal --share-stdin` reads them: 'NAME: share' or the share alone, base64, hex or a
SLIP-39 mnemonic. Before anything is fetched or restored: the shares are decoded and checked
against the keyholder manifest's key epoch of the backup (enough of them, each its keyholder's share
of THAT epoch: a backup taken before a rekey opens only with the shares from before it, and a share
of another epoch is refused naming its epoch), backup.drill.sentinels is set (or --no-sentinels),
the backup exists and is verified, and the OpenBao version to restore into is available.

  vaultops backup drill < shares.txt             # e.g. 'alice: <base64>' lines
  vaultops backup drill --epoch 1 < old.txt      # the newest backup of key epoch 1, its shares

Without --name or --epoch, and with a keyholder manifest: every key epoch that retained backups
belong to and that passed no drill within backup.drill.every_days (default 30) is drilled, each
with the given shares of that epoch (stdin may hold shares of several epochs); nothing due: exit 0.

exit codes: 0 passed, 2 bad input (no stdin, a terminal, no/bad shares, no sentinels), 3 a share
refused by the manifest, 6 the drill failed, 10 no sandbox of that version."""


def cmd_drill(session: Session, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from vaultops.cli.progress import DrillProgress
    from vaultops.services.backup.drill import run_drill

    cfg, settings = _context(session)
    identities = _identities(args, stdin_taken="the unseal shares")  # a file: stdin carries the shares
    lines = _share_lines()
    sink = _pick_sink(cfg, settings, args.sink)
    keyholders = _keyholders(session, args)
    targets = _targets(session, args, settings, sink, keyholders, lines)
    if not targets:
        _out(args, {"ok": True, "drills": [], "due": []}, "nothing due: every key epoch with retained backups passed "
             f"a drill within backup.drill.every_days ({settings.drill.get('every_days') or 30}); --epoch K drills one now")
        return 0
    plans = _plans(args, settings, sink, keyholders, targets, identities)
    reports = []
    for plan in plans:
        with _reporting(args, DrillProgress) as emit:
            reports.append(run_drill(cfg, settings, sink, plan, keep=args.keep, emit=emit, journal=session.journal))
    if len(reports) == 1:
        _show(args, reports[0], asdict(reports[0]))
    else:
        _out(args, {"ok": all(r.ok for r in reports), "drills": [asdict(r) for r in reports]},
             "\n\n".join(_text(r) for r in reports))
    return 0 if all(r.ok for r in reports) else 6


def _targets(session: Session, args: argparse.Namespace, settings: Any, sink: Any, keyholders: Path | None,
             lines: list[str]) -> list[tuple[int | None, list[Any]]]:
    """(key epoch or None, its share lines) to drill: --name/--epoch as given, else each epoch due
    (services/backup/drill_due.py), else the newest backup when no epoch is known."""
    from vaultops.errors import UsageError
    from vaultops.services.backup.drill_due import due_epochs, split_lines
    from vaultops.services.ceremony.epochs import load_epochs

    if args.name or args.epoch is not None or keyholders is None:
        return [(args.epoch, lines)]
    history = load_epochs(keyholders)
    due, known = due_epochs(sink, settings, history, session.journal.entries())
    if not known:
        return [(None, lines)]
    if not due:
        return []
    groups, unused = split_lines(lines, history, due)
    missing = [k for k in due if not groups[k]]
    if missing and len(due) == 1:
        return [(due[0], lines)]  # its checks refuse what was given, naming the epoch each share is of
    for epoch in sorted(set(unused)):
        _emit("warning", message=f"shares of key epoch {epoch} left out: that epoch is not due for a drill")
    if missing:
        raise UsageError(f"key epochs {', '.join(map(str, due))} are due for a drill, and no share of epoch "
                         f"{missing[0]} was given", hint="give the shares of each due epoch (`vaultops keyholders list "
                                                         "--epochs`), or drill one with --epoch K")
    return [(k, groups[k]) for k in due]


def _plans(args: argparse.Namespace, settings: Any, sink: Any, keyholders: Path | None,
           targets: list[tuple[int | None, list[Any]]], identities: Any) -> list[Any]:
    """Every drill planned (all inputs checked) before the first restore; on a refusal the others are wiped."""
    from vaultops.services.backup.drill import plan_drill

    plans: list[Any] = []
    try:
        for epoch, lines in targets:
            plans.append(plan_drill(settings, sink, lines=lines, name=args.name, keyholder_manifest=keyholders,
                                    no_sentinels=args.no_sentinels, allow_unverified=args.allow_unverified,
                                    warn=lambda m: _emit("warning", message=m), identities=identities, epoch=epoch))
    except BaseException:
        for plan in plans:
            plan.wipe()
        raise
    return plans


def _show(args: argparse.Namespace, report: Any, data: dict[str, Any]) -> None:
    from vaultops.cli.progress import drill_summary

    if _interactive(args):
        print(drill_summary(report))
    else:
        _out(args, data, _text(report))


def _text(report: Any) -> str:
    text = [f"drill of {report.name}: {'PASSED' if report.ok else 'FAILED'}",
            f"  key epoch           {report.epoch if report.epoch is not None else 'not checked'}",
            f"  restore time (RTO)  {report.rto_seconds:.1f}s", f"  data age (RPO)      {report.rpo_seconds:.0f}s"]
    text += [f"  sentinel {p}: {state}" for p, state in report.sentinels.items()]
    text += [f"  not proven: {report.not_proven}"] if report.not_proven else []
    text += [f"  error: {report.error}"] if report.error else []
    return "\n".join(text)


MAX_SHARE_LINE = 4096


def _share_lines() -> list[str]:
    """The drill's stdin, at once: no stdin or a terminal is a usage error before anything else runs."""
    from vaultops.errors import UsageError
    from vaultops.services.ceremony.share_lines import MAX_LINES

    how = "pipe the ORIGINAL cluster's unseal shares, one per line ('NAME: share' or the share alone): " \
          "vaultops backup drill < shares.txt"
    if sys.stdin is None or sys.stdin.closed:
        raise UsageError("backup drill reads the unseal shares from stdin, and there is no stdin", hint=how)
    if sys.stdin.isatty():
        raise UsageError("backup drill reads the unseal shares from stdin, not from a terminal", hint=how)
    lines: list[str] = []
    while line := sys.stdin.readline(MAX_SHARE_LINE + 1):
        if len(line) > MAX_SHARE_LINE or len(lines) > MAX_LINES:
            raise UsageError(f"stdin line {len(lines) + 1} is far longer than a share, or there are too many lines",
                             hint="one share per line")
        lines.append(line.rstrip("\r\n"))
    return lines


def _keyholders(session: Session, args: argparse.Namespace) -> Path | None:
    """The keyholder manifest the shares are checked against; None with --no-manifest or none configured."""
    from vaultops.errors import ConfigError

    if args.no_manifest:
        return None
    path = session.manifest_path(args.manifest)
    if path is not None and not path.exists() and not args.manifest:
        raise ConfigError(f"keyholder manifest {path} (from vaultops.yaml) does not exist",
                          hint="restore it, pass --manifest FILE, or --no-manifest to drill without checking shares")
    return path

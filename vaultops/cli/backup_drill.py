"""vaultops backup drill: the handler (its parser and help are in backup_cmd.py).

Reads the shares from stdin at once (no stdin or a terminal is a usage error before anything
runs), has every input checked by services/backup/drill.plan_drill, then runs the drill with a
live progress line at a terminal, or JSON lines on stderr for cron and --format json.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from vaultops.cli.backup_cmd import (_context, _emit, _identities, _interactive, _out, _pick_sink,
                                     _reporting)

if TYPE_CHECKING:
    from pathlib import Path

    from vaultops.session import Session

DRILL_DOC = """Restore a backup into a throwaway local sandbox, unseal it, read the sentinels, report RTO/RPO.

The ORIGINAL cluster's unseal shares are read from stdin (never argv), one per line, as
`vaultops unseal --share-stdin` reads them: 'NAME: share' or the share alone, base64, hex or a
SLIP-39 mnemonic. Before anything is fetched or restored: the shares are decoded and checked
against the keyholder manifest as it was when the backup was taken (enough of them, each its
keyholder's), backup.drill.sentinels is set (or --no-sentinels), the backup exists and is verified,
and the OpenBao version to restore into is available.

  vaultops backup drill < shares.txt        # e.g. 'alice: <base64>' lines

exit codes: 0 passed, 2 bad input (no stdin, a terminal, no/bad shares, no sentinels), 3 a share
refused by the manifest, 6 the drill failed, 10 no sandbox of that version."""


def cmd_drill(session: Session, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from vaultops.cli.progress import DrillProgress, drill_summary
    from vaultops.services.backup.drill import plan_drill, run_drill

    cfg, settings = _context(session)
    identities = _identities(args, stdin_taken="the unseal shares")  # a file: stdin carries the shares
    lines = _share_lines()
    sink = _pick_sink(cfg, settings, args.sink)
    plan = plan_drill(settings, sink, lines=lines, name=args.name, keyholder_manifest=_keyholders(session, args),
                      no_sentinels=args.no_sentinels, allow_unverified=args.allow_unverified,
                      warn=lambda m: _emit("warning", message=m), identities=identities)
    with _reporting(args, DrillProgress) as emit:
        report = run_drill(cfg, settings, sink, plan, keep=args.keep, emit=emit, journal=session.journal)
    if _interactive(args):
        print(drill_summary(report))
    else:
        text = [f"drill of {report.name}: {'PASSED' if report.ok else 'FAILED'}",
                f"  restore time (RTO)  {report.rto_seconds:.1f}s", f"  data age (RPO)      {report.rpo_seconds:.0f}s"]
        text += [f"  sentinel {p}: {state}" for p, state in report.sentinels.items()]
        text += [f"  not proven: {report.not_proven}"] if report.not_proven else []
        text += [f"  error: {report.error}"] if report.error else []
        _out(args, asdict(report), "\n".join(text))
    return 0 if report.ok else 6


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

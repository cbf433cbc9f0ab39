"""vaultops tui: the operator console (also what bare `vaultops` opens in a terminal).

Screens: dashboard (every node live, raft health, certificate days, newest
backup, journal), the unseal ceremony, backup now and restore drill, the
upgrade runbook with the keyholder prompt, certificate renewal, the journal.
F1..F6 switch screens, ? lists every key, Ctrl-Q quits. Shares are typed or
pasted into hidden inputs only, never taken from argv.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from vaultops.cli import command_parser

if TYPE_CHECKING:
    from vaultops.session import Session


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "tui", help="the operator console (full screen)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-color", action="store_true", help="monochrome (also when NO_COLOR is set)")
    p.add_argument("--manifest", metavar="FILE",
                   help="keyholder manifest (default: keyholders.manifest in vaultops.yaml)")
    p.add_argument("--no-manifest", action="store_true",
                   help="unseal without checking shares (a wrong share is found only at the threshold)")
    p.add_argument("--allow-unverified", action="store_true",
                   help="accept shares of keyholders that have no verifier yet (unchecked)")
    p.set_defaults(handler=cmd_tui)


def cmd_tui(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import UsageError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the console needs a terminal", hint="use `vaultops status` and the other commands in scripts")
    from vaultops.cli.unseal_cmd import build_ceremony
    from vaultops.tui.console import run_console

    run_console(session, ceremony=build_ceremony(session, args), no_color=args.no_color)
    return 0

"""vaultops upgrade rollback [--resume]: back to the old version after the point of no return,
and the --no-auto-rollback switch of `upgrade run|resume` (services/upgrade/rollback.py)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from vaultops.cli import command_parser
from vaultops.cli.identity_input import add_identity, identities_from
from vaultops.cli.journal_cmd import anchored
from vaultops.cli.runbook_cmd import add_run_options, context_for, finish, progress, read_shares

if TYPE_CHECKING:
    from vaultops.session import Session


def add_auto_rollback(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-auto-rollback", action="store_true",
                   help="when a gate fails before the point of no return, halt instead of rolling the "
                        "upgraded standbys back to the old version")


def register(usub: argparse._SubParsersAction) -> None:
    rb = command_parser(usub, "rollback", help="after the point of no return: reinstall the old version on every "
                                               "node and restore the upgrade's pre-upgrade snapshot (writes made "
                                               "after it are lost)")
    add_run_options(rb, backup=False, resume=True)
    rb.add_argument("--resume", action="store_true", help="continue the halted, paused or killed rollback")
    rb.add_argument("--restart", action="store_true", help="abandon an unfinished rollback run and start over")
    add_identity(rb, "age identity or ssh private key that opens an encrypted pre-upgrade backup (a file: stdin "
                     "carries the shares); needed again on --resume")
    rb.set_defaults(handler=cmd_rollback)


@anchored
def cmd_rollback(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.upgrade.rollback import loss_report, resume_rollback, start_rollback

    identities = identities_from(args)   # before the shares: a bad identity file refuses with nothing read
    ctx = context_for(session, args, read_shares(args))
    ctx.identities = identities
    if args.resume:
        state = resume_rollback(session.config, ctx, operator=session.operator, emit=progress,
                                accept_changed_runbook=args.accept_changed_runbook)
    else:
        state = start_rollback(session.config, ctx, operator=session.operator, emit=progress, restart=args.restart)
    print(loss_report(state))
    return finish(state)

"""vaultops node remove|replace|resume|status NODE: a dead or retired node (runbooks/node-*.yaml)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from vaultops.cli import command_parser
from vaultops.cli.journal_cmd import anchored
from vaultops.cli.recover_cmd import add_resume_status, finish, recovery_context, resume_unfinished, show_last
from vaultops.cli.runbook_cmd import read_shares

if TYPE_CHECKING:
    from vaultops.services.recovery.context import RecoveryContext
    from vaultops.session import Session

REMOVE, REPLACE = "node-remove", "node-replace"


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "node", help="remove or replace a dead node (resumable runbooks)")
    nsub = p.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    rm = command_parser(nsub, "remove", help="remove NODE from the raft configuration (quorum must hold); shows "
                                             "what the failure tolerance becomes first")
    _options(rm)
    rm.set_defaults(handler=cmd_remove)
    rp = command_parser(nsub, "replace", help="remove NODE, start its replacement through its driver, join, unseal, "
                                              "wait until it is a healthy voter (external storage: start, unseal)")
    _options(rp)
    rp.add_argument("--share-stdin", action="store_true", help="unseal shares on stdin, one per line")
    rp.set_defaults(handler=cmd_replace)
    add_resume_status(nsub, "node", resume=cmd_resume, status=cmd_status)


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument("node", metavar="NODE", help="the node's name in vaultops.yaml")
    p.add_argument("--allow-active", action="store_true", help="also when NODE is the active node")
    p.add_argument("--allow-reachable", action="store_true", help="also when NODE still answers as a member")
    p.add_argument("--yes", action="store_true", help="answer yes to the confirmation")
    p.add_argument("--restart", action="store_true", help="abandon an unfinished run of this runbook")


def _ask(question: str, yes: bool) -> None:
    from vaultops.errors import UsageError

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"needs confirmation: {question}", hint="pass --yes to confirm non-interactively")
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise UsageError("not confirmed: nothing was changed", hint="run it again when ready")


@anchored
def cmd_remove(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import SecurityError
    from vaultops.services.recovery import membership, service

    ctx = recovery_context(session, args, REMOVE, shares=None)
    if ctx.storage != "raft":
        raise SecurityError(f"{ctx.storage} storage has no raft configuration: nothing to remove",
                            hint="drop the node from vaultops.yaml; its standby role ends with its process")
    plan = membership.removal_plan(ctx, args.node, allow_active=args.allow_active,
                                   allow_reachable=args.allow_reachable)    # exit 3: nothing changed
    print(plan.describe())
    if not plan.member:
        return 0
    _ask(f"Remove {args.node} from cluster {ctx.cfg.cluster_name}?", args.yes)
    return finish(service.start(ctx, REMOVE, _params(args), restart=args.restart, operator=session.operator))


@anchored
def cmd_replace(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.recovery import service

    ctx = recovery_context(session, args, REPLACE, shares=None)
    ctx.cfg.node(args.node)                  # a configured node: its driver starts the replacement
    print(_replace_plan(ctx, args))          # the refusals (exit 3) come first: nothing changed
    _ask(f"Replace {args.node} in cluster {ctx.cfg.cluster_name}?", args.yes)
    ctx = recovery_context(session, args, REPLACE, shares=read_shares(args))
    return finish(service.start(ctx, REPLACE, _params(args), restart=args.restart, operator=session.operator))


def _replace_plan(ctx: RecoveryContext, args: argparse.Namespace) -> str:
    from vaultops.errors import SecurityError
    from vaultops.services.recovery import membership

    node = args.node
    if ctx.storage != "raft":
        client = ctx.clients[node]
        if membership.answers(client) and not client.seal.status().sealed and not args.allow_reachable:
            raise SecurityError(f"refusing to replace {node}: it answers unsealed",
                                hint="nothing to replace; pass --allow-reachable to restart it anyway")
        return (f"{ctx.storage} storage: no quorum to lose and no raft configuration; {node} is started through its "
                "driver and unsealed, and rejoins as a standby")
    plan = membership.removal_plan(ctx, node, allow_active=args.allow_active, allow_reachable=args.allow_reachable)
    return "\n".join([plan.describe(),
                      f"then {node} is stopped if it hangs, its stale raft data set aside (renamed), started blank "
                      "through its driver, joined, unsealed, and awaited as a healthy voter"])


def _params(args: argparse.Namespace) -> dict[str, object]:
    return {"node": args.node, "allow_active": args.allow_active, "allow_reachable": args.allow_reachable}


@anchored
def cmd_resume(session: Session, args: argparse.Namespace) -> int:
    return resume_unfinished(session, args, (REPLACE, REMOVE), what="node")


def cmd_status(session: Session, args: argparse.Namespace) -> int:
    return show_last(session, args, (REPLACE, REMOVE), what="node")

"""vaultops upgrade plan|run|resume|status|rehearse --to VERSION: the rolling upgrade runbook."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from vaultops.cli import add_format, add_no_color, command_parser, output
from vaultops.cli.identity_input import add_identity, identities_from
from vaultops.cli.journal_cmd import anchored
from vaultops.cli.runbook_cmd import (add_run_options, context_for, finish, progress, read_shares, render_plan,
                                     show_state)
from vaultops.cli.upgrade_rollback_cmd import add_auto_rollback, register as register_rollback

if TYPE_CHECKING:
    from collections.abc import Callable

    from vaultops.services.upgrade.context import UpgradeContext
    from vaultops.session import Session

TO_HELP = "the version to upgrade every node to, e.g. 2.7.2"


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "upgrade", help="rolling upgrade: standbys first, leadership moved, old active last",
                       description="Runs runbooks/upgrade.yaml. State is saved after every step; a halted, "
                                   "paused or killed run continues with `vaultops upgrade resume`.")
    usub = p.add_subparsers(dest="upgrade_command", metavar="ACTION", required=True)
    plan = command_parser(usub, "plan", help="check the target and print the resolved plan; touch nothing")
    plan.add_argument("--to", required=True, metavar="VERSION", help=TO_HELP)
    add_format(plan)
    add_no_color(plan)
    plan.set_defaults(handler=cmd_plan)
    run = command_parser(usub, "run", help="upgrade every node to VERSION")
    run.add_argument("--to", required=True, metavar="VERSION", help=TO_HELP)
    run.add_argument("--restart", action="store_true", help="abandon an unfinished upgrade run and start over")
    add_run_options(run)
    add_auto_rollback(run)
    run.set_defaults(handler=cmd_run)
    res = command_parser(usub, "resume", help="resume the halted, paused or killed upgrade")
    add_run_options(res, backup=False, resume=True)
    add_auto_rollback(res)
    res.set_defaults(handler=cmd_resume)
    register_rollback(usub)
    st = command_parser(usub, "status", help="the recorded state of the upgrade run")
    add_format(st)
    st.set_defaults(handler=cmd_status)
    reh = command_parser(usub, "rehearse", help="dress rehearsal: restore the newest verified backup into a "
                                                "throwaway sandbox, upgrade it, run the postflight")
    reh.add_argument("--to", required=True, metavar="VERSION", help=TO_HELP)
    reh.add_argument("--share-stdin", action="store_true", required=True,
                     help="the ORIGINAL cluster's unseal shares on stdin, one per line")
    reh.add_argument("--backup", metavar="NAME", help="a backup name (default: the newest verified)")
    reh.add_argument("--keep", action="store_true", help="keep the rehearsal sandbox for inspection")
    add_identity(reh, "age identity or ssh private key that opens an encrypted backup (a file: stdin carries "
                      "the shares)")
    add_format(reh)
    reh.set_defaults(handler=cmd_rehearse)


def _precheck(ctx: UpgradeContext) -> Callable[[dict[str, Any]], None]:
    """Refuse downgrades and no-ops before a run is recorded (exit 3)."""
    from vaultops.errors import VaultOpsError
    from vaultops.services.upgrade.preflight import check_target

    def check(variables: dict[str, Any]) -> None:
        if "," in variables["current_version"]:
            from vaultops.errors import RunbookError
            raise RunbookError(f"the nodes run different versions: {variables['current_version']}",
                               hint="an interrupted upgrade? `vaultops upgrade status`, then `vaultops upgrade resume`")
        client = ctx.clients[variables["leader"]]
        try:
            history = client.ha.version_history()
        except VaultOpsError:
            history = []
        check_target(variables["current_version"], variables["to"], history)
    return check


def cmd_plan(session: Session, args: argparse.Namespace) -> int:
    import json

    from vaultops.services.upgrade.service import default_runbook, make_plan

    cfg = session.config
    args.yes, args.gate_timeout = False, None
    ctx = context_for(session, args, None)
    _, variables, plan = make_plan(ctx, default_runbook(cfg), {"to": args.to})
    if variables["current_version"] == args.to:
        # A plan answers "what would an upgrade do": nothing (`run` still refuses, exit 3).
        note = f"every node already runs {args.to}: nothing to do"
        print(json.dumps({"variables": variables, "steps": [], "note": note}, indent=2) if args.format == "json"
              else f"upgrade {cfg.cluster_name}: {note}")
        return 0
    _precheck(ctx)(variables)
    from vaultops.services.upgrade.pnr import MEANING, pnr_index
    from vaultops.services.upgrade.releases_known import checks_for

    release = checks_for(variables["current_version"], args.to)
    pnr = pnr_index(plan)
    if args.format == "json":
        marker = None if pnr is None else {"index": pnr, "step": plan[pnr].id, "meaning": MEANING}
        print(json.dumps({"variables": variables, "steps": [s.__dict__ for s in plan],
                          "release": release.to_json(), "point_of_no_return": marker}, indent=2))
    else:
        import sys

        from vaultops.cli.render import BOLD, GREEN, colour_wanted, line_width, paint

        on = colour_wanted(sys.stdout, no_color=args.no_color)
        print(f"upgrade {cfg.cluster_name} {paint(variables['current_version'] + ' -> ' + args.to, BOLD, on)}; "
              f"active {paint(variables['leader'], GREEN, on)}")
        print("\n".join(release.render()))
        print(render_plan(plan, colour=on, width=line_width(sys.stdout), pnr=pnr))
        if pnr is not None:
            print(f"point of no return: step {pnr + 1} ({plan[pnr].id}): {MEANING}")
    return 0


@anchored
def cmd_run(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.upgrade.rollback import run_upgrade
    from vaultops.services.upgrade.service import default_runbook

    cfg = session.config
    ctx = context_for(session, args, read_shares(args))
    state = run_upgrade(cfg, ctx, runbook_path=default_runbook(cfg), params={"to": args.to}, restart=args.restart,
                        operator=session.operator, emit=progress, precheck=_precheck(ctx),
                        auto_rollback=not args.no_auto_rollback)
    return finish(state)


@anchored
def cmd_resume(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.upgrade.rollback import resume_upgrade

    cfg = session.config
    ctx = context_for(session, args, read_shares(args))
    return finish(resume_upgrade(cfg, ctx, operator=session.operator, emit=progress,
                                 accept_changed_runbook=args.accept_changed_runbook,
                                 auto_rollback=not args.no_auto_rollback))


def cmd_status(session: Session, args: argparse.Namespace) -> int:
    from vaultops.runbook.state import load_state
    from vaultops.services.upgrade.service import state_path

    return show_state(load_state(state_path(session.config, "upgrade")), args.format)


def cmd_rehearse(session: Session, args: argparse.Namespace) -> int:
    import json

    from vaultops.services.upgrade.rehearse import rehearse

    cfg = session.config
    identities = identities_from(args)
    shares = read_shares(args) or []
    report = rehearse(cfg, clients=session.clients(token=False), token=session.token, journal=session.journal,
                      to=args.to, shares=shares, backup=args.backup, keep=args.keep, identities=identities,
                      emit=lambda message: output.info(args, message))  # JSON lines on stderr with --format json
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.render())
    return 0 if report.ok else 8

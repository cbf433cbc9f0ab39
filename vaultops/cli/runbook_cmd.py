"""vaultops runbook run|resume|status FILE: any runbook from runbooks/, resumable, journaled."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.cli import add_format, command_parser

if TYPE_CHECKING:
    from vaultops.session import Session

RUNBOOK_HELP = "the runbook, a YAML file (e.g. runbooks/upgrade.yaml)"


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "runbook", help="run, resume or inspect a runbook (YAML steps, resumable)")
    rsub = p.add_subparsers(dest="runbook_command", metavar="ACTION", required=True)
    run = command_parser(rsub, "run", help="start a run of FILE")
    run.add_argument("file", metavar="FILE", help=RUNBOOK_HELP)
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a runbook parameter")
    run.add_argument("--dry-run", action="store_true", help="print the resolved plan; touch nothing")
    run.add_argument("--restart", action="store_true", help="abandon an unfinished run of FILE and start over")
    add_run_options(run)
    run.set_defaults(handler=cmd_run)
    res = command_parser(rsub, "resume", help="resume the halted, paused or killed run of FILE")
    res.add_argument("file", metavar="FILE", help=RUNBOOK_HELP)
    add_run_options(res, backup=False, resume=True)
    res.set_defaults(handler=cmd_resume)
    st = command_parser(rsub, "status", help="the recorded state of the run of FILE")
    st.add_argument("file", metavar="FILE", help=RUNBOOK_HELP)
    add_format(st)
    st.set_defaults(handler=cmd_status)


def add_run_options(p: argparse.ArgumentParser, *, backup: bool = True, resume: bool = False) -> None:
    p.add_argument("--share-stdin", action="store_true",
                   help="read unseal shares from stdin, one per line (kept in memory for this run only)")
    p.add_argument("--yes", action="store_true", help="answer yes to confirmations")
    p.add_argument("--gate-timeout", type=float, metavar="SECONDS", help="longest wait for a gate (default 120)")
    if resume:
        p.add_argument("--accept-changed-runbook", action="store_true",
                       help="resume even though the runbook was edited since the run started (its new plan runs)")
    if backup:
        p.add_argument("--no-backup", action="store_true",
                       help="skip the preflight backup (you hold a verified one already); journaled")


def read_shares(args: argparse.Namespace) -> list[str] | None:
    if not getattr(args, "share_stdin", False):
        return None
    shares = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
    if not shares:
        from vaultops.errors import UsageError
        raise UsageError("--share-stdin given but stdin held no shares", hint="pipe one share per line")
    return shares


def context_for(session: Session, args: argparse.Namespace, shares: list[str] | None) -> Any:
    from vaultops.cli.upgrade_terminal import at_terminal, terminal_confirm, terminal_unsealer
    from vaultops.services.upgrade.context import Prompter, build_context
    from vaultops.services.upgrade.service import make_unsealer
    from vaultops.services.upgrade.unseal import KeyholderPause, Unsealer

    cfg = session.config
    unsealer: Unsealer = make_unsealer(cfg, shares, clients=session.clients(token=False), journal=session.journal)
    interactive = at_terminal() and not getattr(args, "share_stdin", False)
    if interactive and isinstance(unsealer, KeyholderPause):
        # At a terminal the keyholders submit here and the run goes on; only a run without one pauses.
        unsealer = terminal_unsealer(cfg, journal=session.journal, keyholders=unsealer.keyholders)
    from vaultops.services.recovery.layout import RaftData

    drivers = session.drivers()
    return build_context(cfg, clients=session.clients(), drivers=drivers, journal=session.journal,
                         unsealer=unsealer, raft_data=RaftData(cfg, drivers),
                         prompter=Prompter(assume_yes=args.yes, ask=terminal_confirm if interactive else None),
                         emit=progress,
                         backup="skip" if getattr(args, "no_backup", False) else "required",
                         consul=session.consul(), connect=lambda: session.new_clients(token=True),
                         gate_timeout=args.gate_timeout)


def progress(message: str) -> None:
    print(message, flush=True)


def parse_sets(items: list[str]) -> dict[str, str]:
    from vaultops.errors import UsageError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r} is not KEY=VALUE", hint="e.g. --set to=2.7.2")
        out[key] = value
    return out


def cmd_run(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.upgrade.service import make_plan, start_run

    cfg = session.config
    shares = read_shares(args)
    ctx = context_for(session, args, shares)
    params = parse_sets(args.set)
    if args.dry_run:
        _, _, plan = make_plan(ctx, Path(args.file), params)
        print(render_plan(plan))
        return 0
    state = start_run(cfg, ctx, runbook_path=Path(args.file), params=params, restart=args.restart,
                      operator=session.operator, emit=progress)
    return finish(state)


def cmd_resume(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.upgrade.service import load_upgrade_runbook, resume_run

    cfg = session.config
    ctx = context_for(session, args, read_shares(args))
    runbook = load_upgrade_runbook(Path(args.file)).name
    state = resume_run(cfg, ctx, runbook=runbook, operator=session.operator, emit=progress,
                       runbook_path=Path(args.file), accept_changed_runbook=args.accept_changed_runbook)
    return finish(state)


def cmd_status(session: Session, args: argparse.Namespace) -> int:
    from vaultops.runbook.state import load_state
    from vaultops.services.upgrade.service import load_upgrade_runbook, state_path

    state = load_state(state_path(session.config, load_upgrade_runbook(Path(args.file)).name))
    return show_state(state, args.format)


def show_state(state: Any, fmt: str) -> int:
    if fmt == "json":
        print(json.dumps(state.to_json(), indent=2))
    else:
        print(render_state(state))
    return 0 if state.status.value == "done" else 8


def finish(state: Any) -> int:
    print(f"run {state.run_id}: {state.status.value}")
    return 0


PNR_MARK = "<- point of no return"


def render_plan(plan: list[Any], *, colour: bool = False, width: int | None = None,
                pnr: int | None = None) -> str:
    """One row per step; actions that take a node out or move leadership stand out on a terminal;
    the step at index *pnr* is marked as the point of no return."""
    from vaultops.cli.render import state, table

    rows = [[i + 1, s.id, state(s.action), ", ".join(f"{k}={v}" for k, v in s.params.items()),
             PNR_MARK if i == pnr else ""] for i, s in enumerate(plan)]
    return table(["#", "STEP", "ACTION", "PARAMETERS", ""], rows, colour=colour, width=width)


def render_state(state: Any) -> str:
    from vaultops.cli.render import table

    head = (f"run {state.run_id}  runbook {state.runbook}  cluster {state.cluster}  {state.status.value}  "
            f"{state.done_count}/{len(state.steps)} steps done")
    from vaultops.services.upgrade.pnr import pnr_index

    pnr = pnr_index(state.steps)
    rows = [[i + 1, s.id, s.status.value, s.finished_at or s.started_at or "",
             (PNR_MARK + " " if i == pnr else "") + s.message[:70]] for i, s in enumerate(state.steps)]
    out = [head, table(["#", "STEP", "STATUS", "AT", "NOTE"], rows)]
    if state.nodes:
        out.append(table(["NODE", "ROLE", "VERSION", "SEALED"],
                         [[n, v.get("role"), v.get("version"), v.get("sealed")] for n, v in state.nodes.items()]))
    if state.halt:
        out.append(f"{state.status.value}: {state.halt.get('message')}\n  next: {state.halt.get('hint')}")
        rollback = state.halt.get("rollback")
        if rollback:   # services/upgrade/rollback.py: the automatic or restore rollback of this run
            out.append(f"rollback ({rollback.get('runbook')} run {rollback.get('run', 'not started')}): "
                       f"{rollback.get('summary') or 'in progress: `vaultops upgrade resume` continues it'}")
    return "\n".join(out)

"""vaultops recover quorum|from-backup|resume|status: guided disaster recovery (runbooks/recover-*.yaml).

Both recoveries explain what happened and what they will do, then ask for the cluster's name
typed back (`--confirm NAME` for scripts, whose stdin holds the shares) before anything changes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vaultops.cli import add_format, command_parser
from vaultops.cli.identity_input import add_identity, identities_from
from vaultops.cli.journal_cmd import anchored
from vaultops.cli.runbook_cmd import progress, read_shares, show_state
from vaultops.errors import VaultOpsError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from concurrent.futures import Future

    from vaultops.crypto.agekeys import Identity
    from vaultops.services.recovery.context import RecoveryContext
    from vaultops.services.upgrade.unseal import CeremonyUnsealer, Unsealer
    from vaultops.session import Session

QUORUM, BACKUP = "recover-quorum", "recover-from-backup"
IDENTITY_HELP = "age identity or ssh private key that opens an encrypted backup (a file: stdin carries the shares)"


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "recover", help="disaster recovery: lost quorum, or every node lost",
                       description="Resumable runbooks: state after every step, every step journalled; "
                                   "`vaultops recover resume` continues a halted, paused or killed run.")
    rsub = p.add_subparsers(dest="recover_command", metavar="ACTION", required=True)
    q = command_parser(rsub, "quorum", help="a raft cluster that lost quorum: restart the survivor with the "
                                             "most recent log alone (peers.json), join the others")
    _run_options(q)
    q.set_defaults(handler=cmd_quorum)
    b = command_parser(rsub, "from-backup", help="every node lost: fresh nodes, the newest verified backup "
                                                  "restored, the others joined; reports RTO/RPO")
    b.add_argument("--name", metavar="BACKUP", help="a backup name (default: the newest verified)")
    b.add_argument("--rehearse", action="store_true", help="dress rehearsal on a throwaway sandbox; the cluster "
                                                           "is not touched")
    b.add_argument("--keep", action="store_true", help="with --rehearse: keep the sandbox for inspection")
    _run_options(b)
    add_identity(b, IDENTITY_HELP)
    b.set_defaults(handler=cmd_from_backup)
    resume, _ = add_resume_status(rsub, "recovery", resume=cmd_resume, status=cmd_status)
    add_identity(resume, IDENTITY_HELP + "; needed again to resume a from-backup run")


def add_resume_status(sub: argparse._SubParsersAction, what: str, *, resume: Any,
                      status: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """`resume` (shares again on stdin) and `status` of the last run, for `recover` and `node`."""
    r = command_parser(sub, "resume", help=f"continue the unfinished {what} run")
    r.add_argument("--share-stdin", action="store_true", help="unseal shares on stdin, one per line")
    r.add_argument("--accept-changed-runbook", action="store_true",
                   help="resume even though the runbook was edited since the run started")
    r.set_defaults(handler=resume)
    s = command_parser(sub, "status", help=f"the recorded state of the last {what} run")
    add_format(s)
    s.set_defaults(handler=status)
    return r, s


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--share-stdin", action="store_true",
                   help="unseal shares on stdin, one per line ('NAME: share' or bare; checked against the manifest)")
    p.add_argument("--confirm", metavar="CLUSTER", help="the cluster's name, typed back (for scripts)")
    p.add_argument("--plan", action="store_true", help="explain what would be done; touch nothing")
    p.add_argument("--restart", action="store_true", help="abandon an unfinished run of this recovery")


@dataclass
class Early:
    """Shares read from stdin at the start, and their check against the keyholder manifest under way."""

    shares: list[str]
    unsealer: CeremonyUnsealer | None = None    # None: no keyholder manifest (nothing to check)
    check: Future[Any] | None = None

    def wait(self) -> None:
        """Until the shares are checked (raise: a share refused, and nothing held)."""
        if self.check is not None:
            try:
                self.check.result()
            except BaseException:
                self.drop()
                raise

    def drop(self) -> None:
        if self.check is not None:
            with contextlib.suppress(Exception):   # its refusal does not matter any more
                self.check.result()
        if self.unsealer is not None:
            self.unsealer.wipe()


def checking(session: Session, args: argparse.Namespace) -> Early | None:
    """With the shares on stdin now (--confirm given, or stdin no terminal), each checked against the keyholder
    manifest (scrypt, ~0.1 s each, 2 at a time; it releases the GIL) in the background while the cluster is
    assessed: off the critical path of the recovery, and still before anything is changed."""
    from concurrent.futures import ThreadPoolExecutor

    from vaultops.services.ceremony.manifest import Manifest, manifest_path
    from vaultops.services.upgrade.unseal import CeremonyUnsealer

    if not getattr(args, "share_stdin", False) or (args.confirm is None and sys.stdin.isatty()):
        return None
    early = Early(read_shares(args) or [])
    try:
        path = manifest_path(session.config)
        manifest = Manifest.load(path)
    except VaultOpsError:
        return early
    early.unsealer = CeremonyUnsealer(early.shares, manifest=manifest, manifest_path=path, journal=session.journal)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="share-check")
    try:
        early.check = pool.submit(early.unsealer.check)
    finally:
        pool.shutdown(wait=False)   # the check goes on; Early.wait() waits for it
    return early


def checked(unsealer: Unsealer) -> Unsealer:
    """The shares checked now (a CeremonyUnsealer; the others check nothing before sending)."""
    from vaultops.services.upgrade.unseal import CeremonyUnsealer

    if isinstance(unsealer, CeremonyUnsealer):
        try:
            unsealer.check()
        except BaseException:
            unsealer.wipe()
            raise
    return unsealer


def recovery_context(session: Session, args: argparse.Namespace, runbook: str, *,
                     shares: list[str] | None, early: Early | None = None,
                     identities: Sequence[Identity] | None = None) -> RecoveryContext:
    """The context a recovery runs on, wired from the Session (clients, drivers, journal, manifest);
    *early*: the shares read and checked at the start (used when the nodes' seal takes shares)."""
    from vaultops.services.recovery.context import RecoveryContext
    from vaultops.services.recovery.lastseen import load, seen_path
    from vaultops.services.recovery.service import state_path
    from vaultops.services.recovery.settings import recovery_section
    from vaultops.services.upgrade.context import Prompter
    from vaultops.services.upgrade.service import make_unsealer
    from vaultops.services.upgrade.unseal import CeremonyUnsealer

    cfg = session.config
    unsealer = make_unsealer(cfg, early.shares if early else shares, clients=session.clients(token=False, timeout=3),
                             journal=session.journal)
    if early is not None and early.unsealer is not None:
        if isinstance(unsealer, CeremonyUnsealer):   # the same shares and manifest, already checked
            unsealer.wipe()
            unsealer = early.unsealer
        else:
            early.drop()
    return RecoveryContext(
        cfg=cfg, clients={c.name: c for c in session.clients(timeout=5)}, drivers=session.drivers(),
        unsealer=unsealer, journal=session.journal, settings=recovery_section(cfg),
        state_path=state_path(cfg, runbook), seen=load(seen_path(cfg.state_dir, cfg.cluster_name)),
        prompter=Prompter(assume_yes=bool(getattr(args, "yes", False))), emit=progress,
        backup=session.backup_settings if cfg.section("backup") else None, token=session.token,
        identities=identities)


def confirm_cluster(cluster: str, given: str | None) -> None:
    """The cluster's name typed back, or UsageError (nothing has changed)."""
    from vaultops.errors import UsageError

    if given is None:
        if not sys.stdin.isatty():
            raise UsageError("this changes the cluster: type its name back",
                             hint=f"pass --confirm {cluster} (stdin holds the shares)")
        given = input(f"Type the cluster's name ({cluster}) to go on: ").strip()
    if given != cluster:
        raise UsageError(f"the name typed ({given[:40]!r}) is not the cluster's ({cluster}): nothing was changed",
                         hint="type the cluster name exactly as vaultops.yaml has it")


@anchored
def cmd_quorum(session: Session, args: argparse.Namespace) -> int:
    early = checking(session, args)          # first: the shares are checked while the rest is imported and
    try:                                     # the cluster assessed
        from vaultops.services.recovery import quorum, service

        ctx = recovery_context(session, args, QUORUM, shares=None)
        found = quorum.assess(ctx)           # exit 3 while quorum holds: nothing changed
        print(found.explain())
        if args.plan:
            if early is not None:
                early.drop()
            return 0
        confirm_cluster(ctx.cfg.cluster_name, args.confirm)
        if early is not None:
            early.wait()                     # wrong shares refused before anything is stopped
    except BaseException:
        if early is not None:
            early.drop()
        raise
    ctx = recovery_context(session, args, QUORUM, shares=None if early else read_shares(args), early=early)
    checked(ctx.unsealer)                    # (without an early check: checked here, still before any stop)
    state = service.start(ctx, QUORUM, {"survivors": found.survivors, "lost": list(found.lost)},
                          restart=args.restart, operator=session.operator)
    return finish(state)


@anchored
def cmd_from_backup(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.recovery import service
    from vaultops.services.recovery.backup_steps import assess_all_lost

    identities = identities_from(args)       # a bad identity file: refused before anything else
    if args.rehearse:
        return _rehearse(session, args, identities)
    ctx = recovery_context(session, args, BACKUP, shares=None)
    cfg = ctx.cfg
    assess_all_lost.run(ctx)                 # exit 3 while any node answers or has data: nothing changed
    print(_backup_plan(cfg.cluster_name, [n.name for n in cfg.nodes], args.name))
    if args.plan:
        return 0
    confirm_cluster(cfg.cluster_name, args.confirm)
    ctx = recovery_context(session, args, BACKUP, shares=read_shares(args), identities=identities)
    names = [n.name for n in cfg.nodes]
    state = service.start(ctx, BACKUP, {"nodes": names, "first": names[0], "others": names[1:],
                                        "backup": args.name}, restart=args.restart, operator=session.operator)
    return finish(state)


def _backup_plan(cluster: str, names: list[str], backup: str | None) -> str:
    return "\n".join([
        f"cluster {cluster}: every node is lost. `recover from-backup` will, step by step (journalled; "
        "`vaultops recover resume` continues it):",
        f"  1. pick {backup or 'the newest verified backup'} from the backup sinks;",
        f"  2. stop {', '.join(names)} and set aside whatever is left of their raft data (renamed);",
        f"  3. start {names[0]} blank, initialise it with a throwaway seal (kept in memory only), force-restore the",
        "     backup into it (verified again against its manifest on the way) and unseal it with the backup's shares;",
        f"  4. start {', '.join(names[1:]) or 'no other node'} blank, join and unseal them, wait for healthy voters;",
        "  5. read the sentinel paths and report RTO and RPO."])


def _rehearse(session: Session, args: argparse.Namespace, identities: Sequence[Identity] | None) -> int:
    from vaultops.services.recovery.rehearse import rehearse

    report = rehearse(session.config, shares=read_shares(args) or [], journal=session.journal, token=session.token,
                      backup=session.backup_settings, name=args.name, keep=args.keep, emit=progress,
                      identities=identities)
    print(report.render())
    return 0 if report.ok else 8


@anchored
def cmd_resume(session: Session, args: argparse.Namespace) -> int:
    return resume_unfinished(session, args, (QUORUM, BACKUP), what="recovery")


def cmd_status(session: Session, args: argparse.Namespace) -> int:
    return show_last(session, args, (QUORUM, BACKUP), what="recovery")


def resume_unfinished(session: Session, args: argparse.Namespace, names: tuple[str, ...], *, what: str) -> int:
    """Resume the unfinished run of one of *names* (shares again on stdin: they were never stored)."""
    from vaultops.errors import RunbookError
    from vaultops.services.recovery import service

    runs = service.unfinished(session.config, names)
    if not runs:
        raise RunbookError(f"no unfinished {what} run", hint=f"`vaultops {args.command} status` shows the last one")
    name = runs[0][0]
    identities = identities_from(args)
    ctx = recovery_context(session, args, name, shares=read_shares(args), identities=identities)
    return finish(service.resume(ctx, name, operator=session.operator,
                                 accept_changed_runbook=args.accept_changed_runbook))


def show_last(session: Session, args: argparse.Namespace, names: tuple[str, ...], *, what: str) -> int:
    """The recorded state of the most recent run of one of *names*."""
    from vaultops.errors import RunbookError
    from vaultops.runbook.state import load_state
    from vaultops.services.recovery import service

    found = [p for p in (service.state_path(session.config, n) for n in names) if p.exists()]
    if not found:
        raise RunbookError(f"no {what} run recorded", hint="`vaultops status` names the condition and its command")
    return show_state(load_state(max(found, key=lambda p: p.stat().st_mtime)), args.format)


def finish(state: Any) -> int:
    """The run's outcome, the closing evidence (choice, what could be lost, what to run next)."""
    for step in state.steps:
        if step.action in ("choose_survivor", "offer_replace", "report_recovery") and step.evidence:
            print(f"{step.id}: {step.evidence.get('summary', '')}")
            for command in step.evidence.get("commands") or []:
                print(f"  next: {command}")
    print(f"run {state.run_id}: {state.status.value}")
    return 0

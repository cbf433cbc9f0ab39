"""vaultops journal show|verify|anchor, and `anchored`: anchor the journal after a ceremony, backup or upgrade."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vaultops.cli import add_format, command_parser, output
from vaultops.errors import VaultOpsError

if TYPE_CHECKING:
    from vaultops.session import Session

JOURNAL_HELP = "journal file (default: journal.path in vaultops.yaml, else <state dir>/journal.jsonl)"
Handler = Callable[["Session", argparse.Namespace], int]


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "journal", help="the append-only, hash-chained operator journal")
    jsub = p.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    show = command_parser(jsub, "show", help="print journal entries")
    add_format(show)
    show.add_argument("--last", type=int, metavar="N", help="only the last N entries")
    show.add_argument("--journal", metavar="FILE", help=JOURNAL_HELP)
    show.set_defaults(handler=cmd_show)
    ver = command_parser(jsub, "verify", help="check the hash chain and the anchors; names any edited, removed, "
                                              "moved or forged entry")
    ver.add_argument("--journal", metavar="FILE", help=JOURNAL_HELP)
    add_format(ver)
    ver.add_argument("--no-anchors", action="store_true", help="check only the chain inside the file")
    ver.set_defaults(handler=cmd_verify)
    anc = command_parser(jsub, "anchor", help="write the entry count and head hash where the journal's writer "
                                              "cannot quietly rewrite them (journal.anchor in vaultops.yaml)")
    anc.add_argument("--journal", metavar="FILE", help=JOURNAL_HELP)
    anc.set_defaults(handler=cmd_anchor)


def _config(session: Session) -> Any:
    """The loaded vaultops.yaml; None only when there is none at all (the default journal).

    A config that exists but is broken is an error, never silently 'no config'."""
    import os

    from vaultops.config import find_config_file

    if find_config_file(session.config_path) is None and not (os.environ.get("VAULT_ADDR")
                                                             or os.environ.get("BAO_ADDR")):
        return None
    return session.config


def _places(session: Session, cfg: Any, journal: Any, settings: Any) -> Any:
    from vaultops.services.journal_anchor import places

    return places(cfg, journal, settings, connect=session.authenticated if cfg is not None else None)


def _journal(args: argparse.Namespace, cfg: Any):  # type: ignore[no-untyped-def]
    from vaultops.config import default_state_dir
    from vaultops.journal import Journal

    if args.journal:
        return Journal(args.journal)
    return Journal(cfg.journal_path if cfg is not None else default_state_dir() / "journal.jsonl")


def cmd_show(session: Session, args: argparse.Namespace) -> int:
    from collections import deque

    journal = _journal(args, _config(session))
    entries = list(deque(journal.entries(), maxlen=args.last) if args.last else journal.entries())
    if args.format == "json":
        print(json.dumps(entries, indent=2))
        return 0
    for e in entries:
        node = f" [{e.get('node')}]" if e.get("node") else ""
        details = " ".join(f"{k}={v}" for k, v in (e.get("details") or {}).items()) \
            if isinstance(e.get("details"), dict) else ""
        print(f"{e.get('time', '?')}  {e.get('operator', '?')!s:<10} {e.get('action', '?')}{node} "
              f"{e.get('outcome', '?')}  {details}".rstrip())
    return 0


def cmd_verify(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import JournalError
    from vaultops.services.journal_anchor import Places, anchor_settings, check

    cfg = _config(session)
    journal = _journal(args, cfg)
    settings = anchor_settings(cfg)
    where = Places() if args.no_anchors else _places(session, cfg, journal, settings)
    report = check(journal, where)
    if args.format == "json":
        print(json.dumps(_report_json(journal, report), indent=2))
    else:
        _print_report(journal, report)
    if report.problems:
        first = report.problems[0]
        raise JournalError(f"journal {journal.path} has been tampered with at line {first.line}: {first.reason}",
                           hint="restore it from a backup copy and find out who edited it")
    if report.unreadable and settings.configured:
        raise JournalError(f"journal {journal.path}: chain intact, but anchors could not be read "
                           f"({report.unreadable[0]})", hint="check the anchor destinations, then verify again")
    return 0


def _print_report(journal: Any, report: Any) -> None:
    for p in report.problems:
        print(f"{journal.path}:{p.line}: {p.reason}")
    if report.scan.torn_line is not None:
        print(f"{journal.path}:{report.scan.torn_line}: an incomplete last line (a torn write); "
              "the next append moves it aside")
    for why in report.unreadable:
        print(f"{journal.path}: not checked against {why}")
    if report.problems:
        return
    if not report.anchors:
        print(f"{journal.path}: chain intact ({report.scan.count} entries); no anchor found, so a rewrite of the "
              "whole chain would not show: run `vaultops journal anchor`")
        return
    newest = max(a.count for a in report.anchors)
    tail = f"; {report.unanchored} newer entries not anchored yet" if report.unanchored else ""
    print(f"{journal.path}: intact ({report.scan.count} entries; {len(report.anchors)} anchors agree, "
          f"the newest covers {newest}{tail})")


def _report_json(journal: Any, report: Any) -> dict[str, Any]:
    return {"path": str(journal.path), "intact": report.intact, "entries": report.scan.count,
            "head": report.scan.head, "torn_line": report.scan.torn_line, "unanchored": report.unanchored,
            "problems": [{"line": p.line, "reason": p.reason} for p in report.problems],
            "anchors": [{"source": a.source, "count": a.count, "head": a.head, "anchored_at": a.anchored_at}
                        for a in report.anchors],
            "unreadable": list(report.unreadable)}


def cmd_anchor(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.journal_anchor import anchor, anchor_settings

    cfg = _config(session)
    journal = _journal(args, cfg)
    settings = anchor_settings(cfg)
    where = _places(session, cfg, journal, settings)
    for note in where.unavailable:
        output.warn(args, f"not anchored in {note}")
    done = anchor(journal, settings, where)
    for written in done.written:
        print(f"anchored {journal.path} in {written}")
    if done.failed:
        raise done.failed[0]
    return 0


# -- after ceremonies, backups and upgrades ------------------------------------------------------
def anchored(handler: Handler | None = None, *,
             warn: Callable[[str], None] | None = None) -> Any:
    """Decorate a command handler: after it returns or fails with a VaultOpsError, anchor the journal.

    Anchoring never changes the command's outcome: a failure is a warning (see journal_anchor)."""
    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        def run(session: Session, args: argparse.Namespace) -> int:
            try:
                result = fn(session, args)
            except VaultOpsError:
                _anchor_quietly(session, args, warn)
                raise
            _anchor_quietly(session, args, warn)
            return result
        return run
    return wrap(handler) if handler is not None else wrap


def _anchor_quietly(session: Session, args: argparse.Namespace, warn: Callable[[str], None] | None) -> None:
    from vaultops.services.journal_anchor import anchor_after_command

    try:
        cfg = session.config
    except VaultOpsError:
        return
    for message in anchor_after_command(cfg, operator=session.operator, connect=session.authenticated):
        if warn is not None:
            warn(message)
        else:
            output.warn(args, message)

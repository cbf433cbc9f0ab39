"""vaultops journal show|verify."""

from __future__ import annotations

import argparse
import json

from vaultops.cli import command_parser


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "journal", help="the append-only, hash-chained operator journal")
    jsub = p.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    show = command_parser(jsub, "show", help="print journal entries")
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.add_argument("--last", type=int, metavar="N", help="only the last N entries")
    show.add_argument("--journal", metavar="FILE", help="journal file (default: from the config)")
    show.set_defaults(handler=cmd_show)
    ver = command_parser(jsub, "verify", help="check the hash chain; names any edited, removed or moved entry")
    ver.add_argument("--journal", metavar="FILE")
    ver.add_argument("--format", choices=("table", "json"), default="table")
    ver.set_defaults(handler=cmd_verify)


def _journal(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from vaultops.config import default_state_dir, load_config
    from vaultops.errors import ConfigError
    from vaultops.journal import Journal

    if args.journal:
        return Journal(args.journal)
    try:
        return Journal(load_config(args.config).journal_path)
    except ConfigError:
        return Journal(default_state_dir() / "journal.jsonl")


def cmd_show(args: argparse.Namespace) -> int:
    entries = list(_journal(args).entries())
    if args.last:
        entries = entries[-args.last:]
    if args.format == "json":
        print(json.dumps(entries, indent=2))
        return 0
    for e in entries:
        node = f" [{e['node']}]" if e.get("node") else ""
        details = " ".join(f"{k}={v}" for k, v in (e.get("details") or {}).items())
        print(f"{e['time']}  {e['operator']:<10} {e['action']}{node} {e['outcome']}  {details}".rstrip())
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from vaultops.errors import JournalError

    journal = _journal(args)
    problems = journal.verify()
    if args.format == "json":
        print(json.dumps({"path": str(journal.path), "intact": not problems,
                          "problems": [{"line": p.line, "reason": p.reason} for p in problems]}, indent=2))
        return 0 if not problems else JournalError.exit_code
    if not problems:
        print(f"{journal.path}: intact ({sum(1 for _ in journal.entries())} entries)")
        return 0
    for p in problems:
        print(f"{journal.path}:{p.line}: {p.reason}")
    raise JournalError(f"journal {journal.path} has been tampered with at line {problems[0].line}",
                       hint="restore it from a backup copy and find out who edited it")

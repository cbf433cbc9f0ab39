"""The command line: parse, call a service, render, exit code.

`main(argv) -> int` is the one exit point. Each command lives in its own
module of this package exposing `register(subparsers)`; the module is named
in COMMANDS. Every handler is called as `handler(session, args)` with the one
Session (vaultops.session) built here. Command modules import heavy libraries only inside their
handlers so `vaultops --help` stays fast, and when argv names a command only
its module is imported (cron runs `vaultops backup run` every hour).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from vaultops import __version__
from vaultops.errors import VaultOpsError

# Command name -> the module under vaultops.cli that registers it.
COMMANDS: dict[str, str] = {
    "status": "status",
    "sandbox": "sandbox_cmd",
    "journal": "journal_cmd",
    "shares": "shares_cmd",
    "config": "config_cmd",
    "tls": "tls_cmd",
    "backup": "backup_cmd",
    "runbook": "runbook_cmd",
    "upgrade": "upgrade_cmd",
    "unseal": "unseal_cmd",
    "init": "init_cmd",
    "rekey": "rekey_cmd",
    "generate-root": "generate_root_cmd",
    "keyholders": "keyholders_cmd",
    "tui": "tui_cmd",
    "node": "node_cmd",
    "recover": "recover_cmd",
}
# Global options that take a value: skipped when looking for the command name in argv.
_VALUED = ("--config", "--operator")

EXIT_CODES_DOC = """exit codes:
  0  success / cluster healthy
  1  generic failure            2  usage or config error
  3  refused for safety         4  Vault/OpenBao error
  5  node driver failure        6  backup failure
  7  DNS/ACME failure           8  runbook halted
  9  journal tampered/broken   10  sandbox failure
 status: 0 healthy, 11 some node sealed, 12 some node unreachable, 13 raft degraded,
         14 token rejected (raft health not checked)
 130 interrupted"""

log = logging.getLogger("vaultops")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser, or, when *argv* names a command, one with only that command."""
    parser = argparse.ArgumentParser(
        prog="vaultops",
        description="Guided, safe operations for Vault and OpenBao clusters.",
        epilog=EXIT_CODES_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vaultops {__version__}")
    add_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = _command_in(argv)
    for command, module in COMMANDS.items():
        if wanted is None or command == wanted:
            importlib.import_module(f"vaultops.cli.{module}").register(sub)
    return parser


def _command_in(argv: Sequence[str] | None) -> str | None:
    if argv is None:
        return None
    args = iter(argv)
    for arg in args:
        if arg in _VALUED:
            next(args, None)
        elif arg == "--" or arg in ("-h", "--help"):
            return None
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def add_common(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """Options accepted before or after the subcommand name."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", metavar="FILE", default=default,
                        help="vaultops.yaml (default: $VAULTOPS_CONFIG, ./vaultops.yaml, ~/.config/vaultops/)")
    parser.add_argument("--operator", metavar="NAME", default=default,
                        help="who is operating, recorded in the journal (default: OS user)")
    parser.add_argument("--allow-insecure-http", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="allow plain http to non-loopback addresses")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="show tracebacks and debug logs")


def command_parser(sub: argparse._SubParsersAction, name: str, **kwargs: object) -> argparse.ArgumentParser:
    """Create a subcommand parser that also accepts the common options."""
    p = sub.add_parser(name, **kwargs)  # type: ignore[arg-type]
    add_common(p, suppress=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        # argparse would echo them; a share pasted on the command line must not reach stderr or logs.
        parser.print_usage(sys.stderr)
        print(f"vaultops: error: {len(extra)} unrecognized argument(s), not shown in case they hold a secret "
              "(shares and tokens are read from stdin or files, never argv)", file=sys.stderr)
        return 2
    _setup_logging(args.debug)
    if not getattr(args, "handler", None):
        if args.command is None and sys.stdin.isatty() and sys.stdout.isatty():
            args = parser.parse_args(["tui"])
        else:
            parser.print_help()
            return 2
    from vaultops.session import Session

    session = Session.from_args(args)  # the one place config, flags and clients are wired
    try:
        return int(args.handler(session, args) or 0)
    except VaultOpsError as exc:
        log.debug("failed", exc_info=True)
        print(f"vaultops: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vaultops: interrupted", file=sys.stderr)
        return 130
    finally:
        session.close()


def _setup_logging(debug: bool) -> None:
    level = logging.DEBUG if debug or os.environ.get("VAULTOPS_DEBUG") else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("vaultops")
    root.handlers[:] = [handler]
    root.setLevel(level)


def run() -> None:
    sys.exit(main())

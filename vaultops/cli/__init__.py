"""The command line: parse, call a service, render, exit code.

`main(argv) -> int` is the one exit point. Each command lives in its own
module of this package exposing `register(subparsers)`; the module is named
in COMMANDS. Every handler is called as `handler(session, args)` with the one
Session (vaultops.session) built here. Command modules import heavy libraries only inside their
handlers so `vaultops --help` stays fast, and when argv names a command only
its module is imported (cron runs `vaultops backup run` every hour).

Failures leave through main() only: one plain line, or with --format json the one JSON document
and JSON error line that vaultops.cli.output describes (argparse's own errors included). What is
generated from the parser: completion scripts (completion.py), the man page (manpage.py).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from vaultops import __version__
from vaultops.cli import output
from vaultops.errors import UsageError, VaultOpsError

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
    "completion": "completion_cmd",
    "man": "man_cmd",
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

GETTING_STARTED = """vaultops: no cluster to work with: no vaultops.yaml found and VAULT_ADDR is not set.
  try it on a local sandbox:  vaultops sandbox up --sealed   (then follow the `try:` line it prints)
  use your own cluster:       export VAULT_ADDR=https://vault.example.com:8200
                              or write vaultops.yaml: `vaultops config example` prints one
  every command:              vaultops --help"""

log = logging.getLogger("vaultops")


class ParseError(UsageError):
    """argparse's own complaint (a missing or bad argument), raised instead of argparse's exit."""

    def __init__(self, message: str, *, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        super().__init__(message, hint=f"see `{parser.prog} --help`")


class Parser(argparse.ArgumentParser):
    """argparse's errors become a ParseError, so main() reports them like every other error
    (one JSON line with --format json); subcommand parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        raise ParseError(message, parser=self)

    def format_help(self) -> str:
        self.description = description(self)
        return super().format_help()


def description(parser: argparse.ArgumentParser) -> str | None:
    """A parser's description; a callable one is built now (its facts may need a heavy import:
    `rekey`'s comes from vaultops.vault, which `vaultops --help` must not load)."""
    text: object = parser.description
    return str(text()) if callable(text) else parser.description


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser, or, when *argv* names a command, one with only that command."""
    parser = Parser(
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


FORMAT_HELP = ("table: lines for people (default); json: one JSON document on stdout, stderr as JSON lines "
               "(see JSON OUTPUT in `vaultops man`)")


def add_format(p: argparse.ArgumentParser, *, default: str | None = "table", help: str = FORMAT_HELP) -> None:
    """The --format option every read command takes (the JSON contract is in vaultops.cli.output)."""
    p.add_argument("--format", choices=("table", "json"), default=default, help=help)


def add_no_color(p: argparse.ArgumentParser) -> None:
    """--no-color for commands that colour their table (vaultops.cli.render says when colour is on)."""
    p.add_argument("--no-color", action="store_true",
                   help="no colour (also when NO_COLOR is set or stdout is not a terminal); states are words either way")


def command_parser(sub: argparse._SubParsersAction, name: str, **kwargs: object) -> argparse.ArgumentParser:
    """Create a subcommand parser that also accepts the common options."""
    p = sub.add_parser(name, **kwargs)  # type: ignore[arg-type]
    add_common(p, suppress=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            # argparse would echo them; a share pasted on the command line must not reach stderr or logs.
            raise ParseError(f"{len(extra)} unrecognized argument(s), not shown in case they hold a secret "
                             "(shares and tokens are read from stdin or files, never argv)", parser=parser)
    except ParseError as exc:
        return _refused(exc, argv)
    _setup_logging(args.debug, as_json=output.stderr_json(args))
    if not getattr(args, "handler", None):
        chosen = _no_command(parser, args, argv)
        if isinstance(chosen, int):
            return chosen
        args = chosen
    return _run(args)


def _refused(exc: ParseError, argv: Sequence[str]) -> int:
    """A command line argparse refused: its usage and the problem, or the JSON error (exit 2)."""
    as_json = output.json_requested(argv)
    if not as_json:
        exc.parser.print_usage(sys.stderr)
    fields = output.error_fields(message=exc.message, hint=exc.hint, exit_code=exc.exit_code, kind="UsageError")
    return output.fail(fields, json_stdout=as_json, json_stderr=as_json, stdout_used=False,
                       plain=f"{exc.parser.prog}: error: {exc.message}")


def _no_command(parser: argparse.ArgumentParser, args: argparse.Namespace,
                argv: Sequence[str]) -> argparse.Namespace | int:
    """Bare `vaultops`: the console in a terminal when there is a cluster to show, else how to start."""
    from vaultops.config import find_config_file

    try:
        configured = find_config_file(args.config) is not None or bool(os.environ.get("VAULT_ADDR")
                                                                        or os.environ.get("BAO_ADDR"))
    except VaultOpsError as exc:  # --config or VAULTOPS_CONFIG names a missing file
        print(f"vaultops: error: {exc}", file=sys.stderr)
        return exc.exit_code
    if not configured:
        print(GETTING_STARTED)
        return 2
    if sys.stdin.isatty() and sys.stdout.isatty():
        return parser.parse_args([*argv, "tui"])  # the global options given, then the console
    parser.print_help()
    return 2


def _run(args: argparse.Namespace) -> int:
    """Call the handler with the one Session; every failure leaves through here (house style 4)."""
    from vaultops.session import Session

    json_out = output.wants_json(args)
    watched = output.WatchedStdout(sys.stdout) if json_out else None
    if watched is not None:
        sys.stdout = watched  # type: ignore[assignment]  # it forwards everything to the real stdout
    session = Session.from_args(args)  # the one place config, flags and clients are wired
    fields: dict[str, object] | None = None
    try:
        code = int(args.handler(session, args) or 0)
    except VaultOpsError as exc:
        log.debug("failed", exc_info=True)
        fields = output.error_fields(message=exc.message, hint=exc.hint, exit_code=exc.exit_code,
                                     kind=type(exc).__name__)
        plain = f"vaultops: error: {exc}"
    except KeyboardInterrupt:
        fields = output.error_fields(message="interrupted", hint=None, exit_code=output.INTERRUPTED,
                                     kind="Interrupted")
        plain = "vaultops: interrupted"
    finally:
        session.close()
        if watched is not None and sys.stdout is watched:
            sys.stdout = watched.stream
    if fields is None and json_out and code and watched is not None and not watched.used:
        # a handler that failed without a result or an exception: the one document is still printed
        fields = output.error_fields(message=f"vaultops {args.command} failed (exit {code})", hint="see stderr",
                                     exit_code=code, kind="Failed")
        plain = ""
    if fields is None:
        return code
    return output.fail(fields, json_stdout=json_out, json_stderr=output.stderr_json(args),
                       stdout_used=watched is not None and watched.used, plain=plain)


def _setup_logging(debug: bool, *, as_json: bool = False) -> None:
    level = logging.DEBUG if debug or os.environ.get("VAULTOPS_DEBUG") else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLogFormatter() if as_json else
                         logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("vaultops")
    root.handlers[:] = [handler]
    root.setLevel(level)


class _JsonLogFormatter(logging.Formatter):
    """Log records as the JSON lines stderr carries with --format json (tracebacks with --debug)."""

    def format(self, record: logging.LogRecord) -> str:
        extra = {"traceback": self.formatException(record.exc_info)} if record.exc_info else {}
        return output.event_line(record.levelname.lower(), "log", logger=record.name,
                                 message=record.getMessage(), **extra)


def run() -> None:
    sys.exit(main())

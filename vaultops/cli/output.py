"""How a command's outcome reaches its reader: plain lines for people, JSON for programs.

With `--format json` a command prints exactly ONE JSON document on stdout, whatever happens:

    success   the command's own result document (its shape is the command's)
    failure   the command's result if it printed one before failing (e.g. `journal verify`'s
              report), else {"ok": false, "error": {"message", "hint", "exit_code", "type"}}

and its stderr carries JSON lines only: progress events, warnings, and on failure exactly one
error line {"time", "level": "error", "event": "error", "message", "hint", "exit_code", "type"}.
The exit code is the same as in text mode. Commands written for cron (`tls renew`) set
`stderr_json` and get JSON error lines on stderr without `--format json`.

`main()` (vaultops.cli) is the only caller of `fail()`: handlers raise, they never print errors.
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # json and datetime are imported when used: `vaultops --help` never needs them
    import argparse
    from collections.abc import Sequence

INTERRUPTED = 130


def json_requested(argv: Sequence[str]) -> bool:
    """`--format json` in *argv*: for errors raised before argparse has produced a Namespace."""
    args = list(argv)
    pairs = zip(args, args[1:])
    return "--format=json" in args or any(a == "--format" and b == "json" for a, b in pairs)


def wants_json(args: argparse.Namespace | None, argv: Sequence[str] = ()) -> bool:
    if args is None:
        return json_requested(argv)
    return getattr(args, "format", None) == "json"


def stderr_json(args: argparse.Namespace | None, argv: Sequence[str] = ()) -> bool:
    """Errors and warnings go to stderr as JSON lines (with --format json, or for a cron command)."""
    return wants_json(args, argv) or bool(getattr(args, "stderr_json", False))


def event_line(level: str, event: str, **fields: Any) -> str:
    """One JSON line for stderr: the shape of the cron log (see backup_cmd._emit)."""
    import json
    from datetime import datetime, timezone

    record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "level": level,
              "event": event, **fields}
    return json.dumps(record, default=str)


def error_fields(*, message: str, hint: str | None, exit_code: int, kind: str) -> dict[str, Any]:
    return {"message": message, "hint": hint, "exit_code": exit_code, "type": kind}


def fail(fields: dict[str, Any], *, json_stdout: bool, json_stderr: bool, stdout_used: bool,
         plain: str) -> int:
    """Report a failed command: *plain* (one line) for people, or the JSON documented above."""
    import json

    if json_stdout and not stdout_used:
        print(json.dumps({"ok": False, "error": fields}, indent=2), flush=True)
    if json_stderr:
        print(event_line("error", "error", **fields), file=sys.stderr, flush=True)
    else:
        print(plain, file=sys.stderr, flush=True)
    return int(fields["exit_code"])


def warn(args: argparse.Namespace | None, message: str) -> None:
    """A warning on stderr: a JSON line when stderr carries JSON, else `vaultops: warning: ...`."""
    if stderr_json(args):
        print(event_line("warning", "warning", message=message), file=sys.stderr, flush=True)
    else:
        print(f"vaultops: warning: {message}", file=sys.stderr, flush=True)


def notice(args: argparse.Namespace | None, text: str) -> None:
    """Something the operator must read (a restore's warning) on stderr: as is, or a JSON line."""
    if wants_json(args):
        print(event_line("warning", "notice", message=text), file=sys.stderr, flush=True)
    else:
        print(text, file=sys.stderr, flush=True)


def ask(prompt: str) -> str:
    """A question at the terminal, asked on stderr: stdout carries only the result (and JSON)."""
    print(prompt, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().rstrip("\n")


def info(args: argparse.Namespace | None, message: str) -> None:
    """A progress line for people: stdout in text mode, a JSON line on stderr with --format json."""
    if wants_json(args):
        print(event_line("info", "progress", message=message), file=sys.stderr, flush=True)
    else:
        print(message, flush=True)


class WatchedStdout:
    """stdout as it is, remembering whether the command wrote anything to it.

    main() wraps sys.stdout in it with --format json: a command that printed its result before
    failing keeps it as the one document, and no error document is added after it."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.used = False

    def write(self, text: str) -> int:
        if text.strip():
            self.used = True
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:   # isatty, fileno, flush, encoding ...
        return getattr(self.stream, name)

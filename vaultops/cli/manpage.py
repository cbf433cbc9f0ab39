"""vaultops(1) in roff, generated from the argparse parser (so it cannot drift from `--help`).

    roff(parser) -> str

Every command level gets a section with its help, description, positionals and options (the
common options once, under OPTIONS). The output is deterministic (no date): the copy shipped in
the wheel (vaultops/data/vaultops.1, docs/man/vaultops.1) is checked against it by a test.
"""

from __future__ import annotations

import argparse
import re

from vaultops import __version__
from vaultops.cli import description
from vaultops.cli.tree import Level, levels, parser_at

COMMON = {"--config", "--operator", "--allow-insecure-http", "--debug", "-h"}

ENVIRONMENT = (
    ("VAULTOPS_CONFIG", "vaultops.yaml to use when --config is not given"),
    ("VAULT_ADDR, BAO_ADDR", "the one node to use when there is no vaultops.yaml"),
    ("VAULT_TOKEN, BAO_TOKEN", "the token (then cluster.token_file, then ~/.vault-token)"),
    ("VAULT_CACERT, BAO_CACERT", "the CA bundle (then cluster.ca_cert)"),
    ("VAULTOPS_STATE_DIR", "state: journal, locks, run state (default $XDG_STATE_HOME/vaultops, "
                           "~/.local/state/vaultops)"),
    ("NO_COLOR", "when set (to anything), no colour in status and plan output (also --no-color)"),
    ("COLUMNS", "the width tables are fitted to when stdout is not a terminal"),
    ("VAULTOPS_DEBUG", "debug logs, as --debug"),
)

FILES = (
    ("./vaultops.yaml, ~/.config/vaultops/vaultops.yaml", "the configuration, searched in this order after "
     "--config and $VAULTOPS_CONFIG; every key: `vaultops config reference`, an example: `vaultops config example`"),
    ("~/.local/state/vaultops/journal.jsonl", "the operator journal (journal.path)"),
)

JSON_OUTPUT = """With --format json a command prints exactly one JSON document on stdout and JSON lines
only on stderr; the exit code is that of text mode. The document is the command's result (which
may itself report a failure, e.g. status 11-14), or, when the command stops with an error,
{"ok": false, "error": {"message", "hint", "exit_code", "type"}} (unless it had already printed
its result) with exactly one stderr line {"time", "level": "error", "event": "error", "message",
"hint", "exit_code", "type"}. tls renew reports its events and errors as JSON lines on stderr
without --format json."""


def roff(parser: argparse.ArgumentParser) -> str:
    from vaultops.cli import EXIT_CODES_DOC

    all_levels = list(levels(parser))
    top = all_levels[0]
    out = [f'.TH VAULTOPS 1 "" "vaultops {__version__}" "User Commands"', ".SH NAME",
           f"vaultops \\- {_esc(_first_lower(parser.description or ''))}", ".SH SYNOPSIS",
           ".B vaultops", "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIACTION\\fR] [\\fIARGUMENTS\\fR]",
           ".SH DESCRIPTION", _esc(parser.description or ""), ".PP",
           "Bare \\fBvaultops\\fR opens the operator console in a terminal (\\fBvaultops tui\\fR).",
           ".SH OPTIONS", "These options are accepted before or after any command."]
    out += [_option(parser, a) for a in top.options]
    out.append(".SH COMMANDS")
    for level in all_levels[1:]:
        out += _level(parser, level)
    out += [".SH EXIT STATUS", ".nf", _esc(EXIT_CODES_DOC.split("\n", 1)[1]), ".fi",
            ".SH JSON OUTPUT", _esc(JSON_OUTPUT), ".SH ENVIRONMENT"]
    out += [f".TP\n.B {_esc(name)}\n{_esc(text)}" for name, text in ENVIRONMENT]
    out.append(".SH FILES")
    out += [f".TP\n.I {_esc(name)}\n{_esc(text)}" for name, text in FILES]
    out += [".SH SEE ALSO", ".BR bao (1),", ".BR vault (1).",
            "The configuration reference is docs/configuration.md in the source, or \\fBvaultops config "
            "reference\\fR."]
    return "\n".join(out) + "\n"


def _level(parser: argparse.ArgumentParser, level: Level) -> list[str]:
    sub = parser_at(parser, level.path)
    out = [f'.SS "vaultops {" ".join(level.path)}"', _esc(_sentence(level.help))]
    text = description(sub)
    if text:
        raw = sub.formatter_class is argparse.RawDescriptionHelpFormatter
        out += [".PP", ".nf" if raw else "", _esc(text), ".fi" if raw else ""]
    if level.commands:
        out += [".PP", "Actions: " + ", ".join(f"\\fB{_esc(n)}\\fR" for n in level.commands) + "."]
    positionals = [a for a in sub._actions if not a.option_strings and
                   not isinstance(a, argparse._SubParsersAction)]
    out += [_option(sub, a) for a in positionals]
    out += [_option(sub, a) for a in level.options if not COMMON & set(a.option_strings)]
    if sub.epilog:
        out += [".PP", ".nf", _esc(sub.epilog), ".fi"]
    return [line for line in out if line]


def _option(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    invocation = formatter._format_action_invocation(action)
    text = formatter._expand_help(action) if action.help else ""
    return f".TP\n.B {_esc(invocation)}\n{_esc(text)}"


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else ""


def _first_lower(text: str) -> str:
    return (text[:1].lower() + text[1:]).rstrip(".")


def _esc(text: str) -> str:
    """Text for roff: backslashes and hyphens escaped, no line starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.MULTILINE)

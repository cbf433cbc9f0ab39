"""The parser as a tree of command levels, for what is generated from it (completion, man page, tests).

    for level in levels(build_parser()):     # top level first, then depth first
        level.path, level.commands, level.options
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Level:
    """One command level: `vaultops backup` has the actions run, list, ... and its own options."""

    path: tuple[str, ...]
    help: str
    commands: dict[str, str] = field(default_factory=dict)       # name -> help
    options: list[argparse.Action] = field(default_factory=list)
    positionals: list[argparse.Action] = field(default_factory=list)


def levels(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), help: str = "") -> Iterator[Level]:
    """Every command level of *parser*, depth first (the top level first)."""
    level = Level(path, help)
    children: list[tuple[str, argparse.ArgumentParser, str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                level.commands[name] = helps.get(name, "")
                children.append((name, sub, helps.get(name, "")))
        elif action.option_strings and action.help != argparse.SUPPRESS:
            level.options.append(action)
        elif not action.option_strings:
            level.positionals.append(action)
    yield level
    for name, sub, sub_help in children:
        yield from levels(sub, (*path, name), sub_help)


def parser_at(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> argparse.ArgumentParser:
    """The parser of the command at *path* (e.g. ("backup", "run"))."""
    for name in path:
        subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = subs.choices[name]
    return parser

"""Shell completion scripts generated from the argparse parser, so they cannot drift from it.

    script(parser, "bash" | "zsh" | "fish") -> str

bash and zsh come from shtab (static scripts: a TAB never starts Python); fish is written
here from the same walk of the parser (shtab has no fish). Options whose value is a file
(metavar FILE, PATH, ...) complete file names; options with choices complete their choices.
"""

from __future__ import annotations

import argparse

from vaultops.cli.tree import levels, parser_at

SHELLS = ("bash", "zsh", "fish")
PROG = "vaultops"
FILE_METAVARS = ("FILE", "PATH", "OUTPUT.json", "DIR")


def takes_file(action: argparse.Action) -> bool:
    return action.metavar in FILE_METAVARS


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    if shell == "fish":
        return fish(parser)
    import shtab

    from vaultops.cli import description

    for level in levels(parser):
        at = parser_at(parser, level.path)
        at.description = description(at)  # shtab reads descriptions as text
        for action in level.options:
            if takes_file(action):
                action.complete = shtab.FILE  # type: ignore[attr-defined]  # shtab's documented hook
    return str(shtab.complete(parser, shell=shell))


# -- fish ---------------------------------------------------------------------------------------

_FISH_HEAD = """# fish completion for vaultops, generated from its parser by `vaultops completion fish`.
set -g __vaultops_paths {paths}
set -g __vaultops_valued {valued}

function __vaultops_path --description 'the vaultops command path typed so far'
    set -l words (commandline -opc)
    set -e words[1]
    set -l path ''
    set -l skip 0
    for w in $words
        if test $skip -eq 1
            set skip 0
        else if contains -- $w $__vaultops_valued
            set skip 1
        else if contains -- (string trim -- "$path $w") $__vaultops_paths
            set path (string trim -- "$path $w")
        end
    end
    echo $path
end

function __vaultops_at --description 'is the command path typed so far exactly $argv[1]?'
    set -l typed (__vaultops_path)
    test "$typed" = "$argv[1]"
end

complete -c vaultops -f
"""


def fish(parser: argparse.ArgumentParser) -> str:
    all_levels = list(levels(parser))
    paths = sorted(" ".join(lv.path) for lv in all_levels if lv.path)
    valued = sorted({s for lv in all_levels for a in lv.options if a.nargs != 0 for s in a.option_strings})
    head = _FISH_HEAD.format(paths=" ".join(_q(p) for p in paths), valued=" ".join(valued))
    lines = [head]
    for lv in all_levels:
        at = f"-n \"__vaultops_at {_q(' '.join(lv.path))}\""  # command paths are plain words
        for name, text in lv.commands.items():
            lines.append(f"complete -c {PROG} {at} -a {_q(name)} -d {_q(_short(text))}")
        for action in lv.options:
            lines.append(f"complete -c {PROG} {at} {_fish_option(action)}")
        for action in lv.positionals:
            if action.choices:
                words = " ".join(str(c) for c in action.choices)
                lines.append(f"complete -c {PROG} {at} -a {_q(words)} -d {_q(_short(action.help or ''))}")
    return "\n".join(lines) + "\n"


def _fish_option(action: argparse.Action) -> str:
    names = " ".join(f"-l {s[2:]}" if s.startswith("--") else f"-s {s[1:]}" for s in action.option_strings)
    if action.nargs == 0:
        value = ""
    elif action.choices:
        value = f" -x -a {_q(' '.join(str(c) for c in action.choices))}"
    elif takes_file(action):
        value = " -r -F"
    else:
        value = " -x"
    return f"{names}{value} -d {_q(_short(action.help or ''))}"


def _short(text: str) -> str:
    """A help text as fish shows it beside a candidate: its first clause, without %(default)s."""
    text = text.replace("%(default)s", "default").replace("%%", "%")
    return text.split(";")[0].split(" (")[0][:80]


def _q(text: str) -> str:
    """A fish single-quoted string."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

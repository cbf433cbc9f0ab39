"""vaultops completion bash|zsh|fish: print a shell completion script generated from the parser."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from vaultops.cli import command_parser

if TYPE_CHECKING:
    from vaultops.session import Session

INSTALL = """install:
  bash   vaultops completion bash > ~/.local/share/bash-completion/completions/vaultops
         (or, for this shell only: source <(vaultops completion bash))
  zsh    vaultops completion zsh > ~/.zfunc/_vaultops   with fpath+=(~/.zfunc) before compinit in ~/.zshrc
  fish   vaultops completion fish > ~/.config/fish/completions/vaultops.fish
Regenerate after upgrading vaultops: the script lists the commands and options of this version."""


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "completion", help="print a shell completion script (bash, zsh, fish)",
                       description="A completion script for every command and option of this vaultops, "
                                   "generated from its parser.",
                       epilog=INSTALL, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell the script is for")
    p.set_defaults(handler=cmd_completion)


def cmd_completion(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli import build_parser
    from vaultops.cli.completion import script

    print(script(build_parser(), args.shell), end="")
    return 0

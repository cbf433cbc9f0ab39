"""vaultops man: the vaultops(1) manual page, generated from the parser."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from vaultops.cli import command_parser

if TYPE_CHECKING:
    from vaultops.session import Session

INSTALL = """read it:     vaultops man | man -l -
install it:  vaultops man > /usr/local/share/man/man1/vaultops.1 && mandb -q   (then: man vaultops)
The wheel also ships it as vaultops/data/vaultops.1 and share/man/man1/vaultops.1 under its prefix."""


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "man", help="print the vaultops(1) manual page (roff)",
                       description="The manual page of this vaultops: every command and option, exit codes, "
                                   "environment and files, generated from the parser.",
                       epilog=INSTALL, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(handler=cmd_man)


def cmd_man(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli import build_parser
    from vaultops.cli.manpage import roff

    print(roff(build_parser()), end="")
    return 0

"""Reading an age identity (`--identity FILE`, or `-` for stdin): never from argv, never echoed.

The file is read once into memory (at most 64 KiB, no symlink followed at the last component);
a passphrase-protected ssh key asks for its passphrase on the terminal (getpass), never on
the command line. Nothing read here is logged, journaled or passed to a child process.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vaultops.crypto.agekeys import Identity

CAP = 64 << 10
HELP = "age identity or ssh private key that opens encrypted backups ('-': stdin, unless it carries the shares)"


def add_identity(p: argparse.ArgumentParser, help: str = HELP) -> None:
    """--identity FILE, on every command that opens a stored backup."""
    p.add_argument("--identity", metavar="FILE", help=help)


def identities_from(args: argparse.Namespace) -> list[Identity] | None:
    """args.identity read; '-' is refused when stdin carries the unseal shares (--share-stdin)."""
    taken = "the unseal shares (--share-stdin)" if getattr(args, "share_stdin", False) else None
    return read_identities(getattr(args, "identity", None), stdin_taken=taken)


def read_identities(path: str | None, *, stdin_taken: str | None = None) -> list[Identity] | None:
    """The identities in *path* ("-": stdin), or None without a path. *stdin_taken* names what
    already reads stdin (drill: the unseal shares), so "-" is refused there."""
    if path is None:
        return None
    from vaultops.crypto.stanza import KeyFormatError
    from vaultops.services.backup.crypt.reveal import load_identities

    data = _read(path, stdin_taken)
    try:
        try:
            return load_identities(data)
        except KeyFormatError as exc:
            if "passphrase" not in exc.message or "protected" not in exc.message or not sys.stdin.isatty():
                raise
            import getpass

            return load_identities(data, passphrase=getpass.getpass("passphrase of the ssh key: ").encode())
    finally:
        data[:] = bytes(len(data))  # our copy of the key material; cryptography keeps its own


def _read(path: str, stdin_taken: str | None) -> bytearray:
    from vaultops.errors import UsageError

    if path == "-":
        if stdin_taken:
            raise UsageError(f"--identity - cannot read stdin: it carries {stdin_taken}",
                             hint="pass --identity FILE")
        return bytearray(sys.stdin.buffer.read(CAP + 1))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot read the identity {path} ({exc.strerror})",
                         hint="check the path (a symlink is not followed)") from None
    with os.fdopen(fd, "rb") as fh:
        return bytearray(fh.read(CAP + 1))

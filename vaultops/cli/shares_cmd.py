"""vaultops shares encode|decode|check|enroll: offline share tools.

Shares are read from stdin only, never from argv: piped (one share on one
line) or typed at a hidden prompt. With --passphrase-stdin the second line of
stdin is the mnemonic passphrase; at a terminal it is asked for when needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from vaultops.cli import add_format, command_parser

if TYPE_CHECKING:
    from vaultops.services.ceremony.manifest import Manifest
    from vaultops.services.ceremony.shares import Share
    from vaultops.session import Session

MAX_STDIN_CHARS = 4096
CHECK_EXIT = {"match": 0, "no-verifier": 1, "other-keyholder": 3, "no-match": 3}
CHECK_EPILOG = ("exit codes: 0 the share is this keyholder's, 1 the keyholder has no verifier "
                "yet, 3 the share is another keyholder's or nobody's, 2 bad input or manifest")


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "shares", help="encode, decode and check unseal shares (offline)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ssub = p.add_subparsers(dest="shares_command", metavar="ACTION", required=True)
    enc = command_parser(ssub, "encode", help="base64/hex share from stdin -> base64, hex or "
                                               "a 35-word SLIP-39 mnemonic on stdout")
    enc.add_argument("--to", required=True, choices=("base64", "hex", "mnemonic"), help="the encoding printed")
    dec = command_parser(ssub, "decode", help="share in any format from stdin -> base64 or hex")
    dec.add_argument("--to", required=True, choices=("base64", "hex"), help="the encoding printed")
    chk = command_parser(ssub, "check", help="does the share on stdin belong to this keyholder?",
                         epilog=CHECK_EPILOG)
    add_format(chk)
    enr = command_parser(ssub, "enroll", help="record a keyholder's share index and verifier "
                                              "in the manifest")
    for cmd in (chk, enr):
        cmd.add_argument("--manifest", metavar="FILE",
                         help="keyholder manifest (default: keyholders.manifest in vaultops.yaml)")
        cmd.add_argument("--keyholder", required=True, metavar="NAME",
                         help="the keyholder (as named in the manifest) whose share is on stdin")
    enr.add_argument("--cluster-id", help="when creating the manifest")
    enr.add_argument("--threshold", type=int, help="when creating the manifest")
    enr.add_argument("--shares", type=int, help="when creating the manifest")
    enr.add_argument("--pgp-fingerprint", metavar="FP",
                     help="record the fingerprint of the OpenPGP key the keyholder's shares are encrypted to")
    enr.add_argument("--replace", action="store_true", help="replace an existing verifier "
                                                            "(after a rekey)")
    for cmd, fn in ((enc, cmd_encode), (dec, cmd_decode), (chk, cmd_check), (enr, cmd_enroll)):
        cmd.add_argument("--passphrase-stdin", action="store_true",
                         help="read the mnemonic passphrase from the second line of stdin")
        cmd.set_defaults(handler=fn)


# -- input ---------------------------------------------------------------------

def _read_stdin(args: argparse.Namespace) -> tuple[str, bytes | None]:
    """(share text, passphrase or None = not given): never echoed, never in argv."""
    from vaultops.errors import UsageError

    if sys.stdin.isatty():
        import getpass

        text = getpass.getpass("Unseal share (input hidden): ")
        return text, (_ask_passphrase() if args.passphrase_stdin else None)
    data = sys.stdin.read(MAX_STDIN_CHARS + 1)
    if len(data) > MAX_STDIN_CHARS:
        raise UsageError("stdin holds more than one share", hint="pipe exactly one share")
    lines = [line.removesuffix("\r") for line in data.split("\n")]
    if args.passphrase_stdin:
        share, rest = (lines[0], lines[1:]) if lines else ("", [])
        if not rest:
            raise UsageError("--passphrase-stdin: no passphrase line after the share",
                             hint="send the share, a newline, then the passphrase (may be empty)")
        if any(line.strip() for line in rest[1:]):
            raise UsageError("stdin has more lines than a share and a passphrase",
                             hint="send one share per call")
        return share, rest[0].encode("utf-8")
    filled = [line for line in lines if line.strip()]
    if len(filled) > 1:
        raise UsageError("stdin has more than one non-empty line",
                         hint="send one share per call; for a passphrase on line 2 add "
                              "--passphrase-stdin")
    return (filled[0] if filled else ""), None


def _ask_passphrase(*, confirm: bool = False) -> bytes:
    import getpass

    from vaultops.errors import UsageError

    if not sys.stdin.isatty():
        return b""
    pp = getpass.getpass("Mnemonic passphrase (Enter for none): ")
    if confirm and pp and getpass.getpass("Repeat the passphrase: ") != pp:
        raise UsageError("the passphrases differ", hint="run the command again")
    return pp.encode("utf-8")


def _read_share(args: argparse.Namespace) -> Share:
    from vaultops.services.ceremony import shares

    text, passphrase = _read_stdin(args)
    if passphrase is None and shares.detect_codec(text) is shares.Codec.MNEMONIC:
        passphrase = _ask_passphrase()
    return shares.decode(text, passphrase or b"")


# -- commands --------------------------------------------------------------------

def cmd_encode(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import UsageError
    from vaultops.services.ceremony import shares

    text, passphrase = _read_stdin(args)
    if shares.detect_codec(text) is shares.Codec.MNEMONIC:
        raise UsageError("encode takes a base64 or hex share, not a mnemonic",
                         hint="use `vaultops shares decode` to turn a mnemonic into base64/hex")
    share = shares.decode(text)
    if passphrase is None and args.to == "mnemonic":
        passphrase = _ask_passphrase(confirm=True)
    print(shares.encode(share, args.to, passphrase or b""))
    return 0


def cmd_decode(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.ceremony import shares

    print(shares.encode(_read_share(args), args.to))
    return 0


def cmd_check(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.ceremony.manifest import Manifest

    path = session.required_manifest_path(args.manifest)
    manifest = Manifest.load(path)
    manifest.keyholder(args.keyholder)  # fail on a wrong name before asking for the share
    result = manifest.check(args.keyholder, _read_share(args))
    if args.format == "json":
        print(json.dumps({"manifest": str(path), **result.to_dict()}, indent=2))
    else:
        print(f"{result.status.value}: {result.message}")
    return CHECK_EXIT[result.status.value]


def cmd_enroll(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.ceremony import manifest as mf

    path = session.required_manifest_path(args.manifest)
    current = mf.Manifest.load(path) if path.exists() else _new_manifest(args, path)
    updated = current.enroll(args.keyholder, _read_share(args), params=mf.DEFAULT_PARAMS,
                             pgp_fingerprint=args.pgp_fingerprint, replace_existing=args.replace)
    kept = updated.save(path)
    kh = updated.keyholder(args.keyholder)
    print(f"enrolled {kh.name} with share #{kh.share_index} in {path}"
          + (f" (previous version kept as {kept})" if kept else ""))
    return 0


def _new_manifest(args: argparse.Namespace, path: Path) -> Manifest:
    from vaultops.errors import UsageError
    from vaultops.services.ceremony.manifest import Manifest

    if not (args.cluster_id and args.threshold and args.shares):
        raise UsageError(f"{path} does not exist yet",
                         hint="pass --cluster-id, --threshold and --shares to create it")
    return Manifest.from_dict({"version": 1, "cluster_id": args.cluster_id,
                               "threshold": args.threshold, "shares": args.shares,
                               "keyholders": []}, source="command line")

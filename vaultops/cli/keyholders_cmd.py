"""vaultops keyholders list|enroll|check|drill: the keyholder roster and readiness drills.

drill: a keyholder checks OFFLINE that the share they hold (base64, hex or
mnemonic, on stdin or at a hidden prompt) matches the manifest. Nothing is
sent to the cluster; the journal records name, date and pass/fail only.
check: are at least t keyholders ready (passed a drill of their current
share within --max-age days)?
enroll: add your verifier to the manifest, from a share on stdin or from the
PGP-encrypted share you were handed (decrypted locally by gpg), or the
age-encrypted one (--age-encrypted FILE --identity KEY, decrypted here); and
record your age or ssh public key (--age-recipient FILE) so init and rekey can
hand your share out encrypted to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from vaultops.cli import add_format, command_parser

if TYPE_CHECKING:
    from vaultops.journal import Journal
    from vaultops.session import Session

DRILL_EXIT = {"pass": 0, "no-verifier": 1, "fail": 3}
EPILOG = ("exit codes: drill 0 pass, 1 no verifier yet, 3 fail; check 0 ready, 1 not ready; "
          "2 bad input or manifest")


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "keyholders", help="keyholder roster, enrollment and readiness drills",
                       description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ksub = p.add_subparsers(dest="keyholders_command", metavar="ACTION", required=True)
    lst = command_parser(ksub, "list", help="the roster from the manifest, with each keyholder's last drill")
    chk = command_parser(ksub, "check", help="have at least t keyholders passed a drill recently?")
    chk.add_argument("--max-age", type=int, default=90, metavar="DAYS", help="a drill counts this long (90)")
    drl = command_parser(ksub, "drill", help="verify offline that your share matches the manifest (journaled)")
    enr = command_parser(ksub, "enroll", help="add your verifier to the manifest (plain or PGP-encrypted share)")
    for cmd in (lst, chk, drl):
        add_format(cmd)
    for cmd in (lst, chk, drl, enr):
        cmd.add_argument("--manifest", metavar="FILE",
                         help="keyholder manifest (default: keyholders.manifest in vaultops.yaml)")
    for cmd in (drl, enr):
        cmd.add_argument("--keyholder", required=True, metavar="NAME", help="your name in the manifest")
        cmd.add_argument("--passphrase-stdin", action="store_true",
                         help="read the mnemonic passphrase from the second line of stdin")
    enr.add_argument("--pgp-encrypted", metavar="FILE",
                     help="the base64 PGP-encrypted share you were handed; decrypted locally with gpg")
    enr.add_argument("--pgp-fingerprint", metavar="FP",
                     help="record the fingerprint of the OpenPGP key your shares are encrypted to")
    enr.add_argument("--age-encrypted", metavar="FILE",
                     help="the age-encrypted share you were handed (armored); opened with --identity")
    enr.add_argument("--identity", metavar="FILE", help="your age identity or ssh private key ('-': stdin)")
    enr.add_argument("--age-recipient", metavar="FILE",
                     help="record your age (age1…) or ssh-ed25519/ssh-rsa public key for encrypted hand-outs")
    enr.add_argument("--replace", action="store_true", help="replace your verifier (after a rekey)")
    for cmd, fn in ((lst, cmd_list), (chk, cmd_check), (drl, cmd_drill), (enr, cmd_enroll)):
        cmd.set_defaults(handler=fn)


def _journal(session: Session) -> Journal:
    from vaultops.config import default_state_dir
    from vaultops.errors import ConfigError
    from vaultops.journal import Journal

    try:
        return session.journal
    except ConfigError:
        if session.config_path:
            raise
        return Journal(default_state_dir() / "journal.jsonl", operator=session.operator)


def _readiness(session: Session, args: argparse.Namespace, max_age_days: int = 90):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from vaultops.services.ceremony import keyholders
    from vaultops.services.ceremony.manifest import Manifest

    manifest = Manifest.load(session.required_manifest_path(args.manifest))
    records = keyholders.drill_records(_journal(session).entries())
    return keyholders.readiness(manifest, records, max_age=timedelta(days=max_age_days))


def cmd_list(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli.render import table

    ready = _readiness(session, args)
    if args.format == "json":
        print(json.dumps([k.to_dict() for k in ready.keyholders], indent=2))
        return 0
    rows = [(k.name, f"#{k.share_index}", "yes" if k.enrolled else "NO", k.pgp_fingerprint or "-",
             _age_key(k.age_recipient), k.added.isoformat(), k.last_drill.date().isoformat() if k.last_drill else "-",
             k.last_outcome.value if k.last_outcome else "-", k.state.value) for k in ready.keyholders]
    print(f"threshold {ready.threshold} of {ready.shares} shares")
    print(table(("KEYHOLDER", "SHARE", "VERIFIER", "PGP", "AGE KEY", "ADDED", "LAST DRILL", "RESULT", "STATE"), rows))
    return 0


def _age_key(text: str | None) -> str:
    if not text:
        return "-"
    from vaultops.crypto.agekeys import parse_recipient

    return parse_recipient(text).fingerprint


def cmd_check(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import UsageError

    if args.max_age < 1:
        raise UsageError("--max-age must be at least 1 day", hint="e.g. --max-age 90")
    ready = _readiness(session, args, args.max_age)
    if args.format == "json":
        print(json.dumps(ready.to_dict(), indent=2))
    else:
        print(ready.message)
        for k in ready.keyholders:
            when = k.last_drill.date().isoformat() if k.last_drill else "never"
            print(f"  {k.name:<16} {k.state.value:<12} last drill: {when}")
    return 0 if ready.ok else 1


def cmd_drill(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli.shares_cmd import _read_share
    from vaultops.errors import ShareFormatError
    from vaultops.services.ceremony import keyholders
    from vaultops.services.ceremony.manifest import Manifest

    manifest = Manifest.load(session.required_manifest_path(args.manifest))
    manifest.keyholder(args.keyholder)  # a wrong name fails before the share is asked for
    journal = _journal(session)
    try:
        share = _read_share(args)
    except ShareFormatError as exc:  # the written copy may be damaged: that is a failed drill too
        keyholders.record_undecodable(manifest, args.keyholder, journal=journal)
        raise ShareFormatError(f"drill FAILED: {exc.message}", hint=exc.hint) from None
    result = keyholders.drill(manifest, args.keyholder, share, journal=journal)
    if args.format == "json":
        print(json.dumps({"keyholder": result.keyholder, "result": result.outcome.value,
                          "message": result.message, **{"check": result.check.to_dict()}}, indent=2))
    else:
        print(result.message)
    return DRILL_EXIT[result.outcome.value]


def cmd_enroll(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli.shares_cmd import _read_share
    from vaultops.services.ceremony import keyholders
    from vaultops.services.ceremony import manifest as mf
    from vaultops.services.ceremony.age_shares import read_recipient

    path = session.required_manifest_path(args.manifest)
    current = mf.Manifest.load(path)
    recipient = read_recipient(args.age_recipient) if args.age_recipient else None
    if args.pgp_encrypted:
        share = keyholders.decrypt_pgp_share(_read_text(args.pgp_encrypted))
    elif args.age_encrypted:
        share = _open_age_share(args)
    else:
        share = _read_share(args)
    updated = current.enroll(args.keyholder, share, pgp_fingerprint=args.pgp_fingerprint,
                             replace_existing=args.replace, age_recipient=recipient)
    kept = updated.save(path)
    kh = updated.keyholder(args.keyholder)
    _journal(session).append("keyholder.enrolled", details={"keyholder": kh.name, "share_index": kh.share_index,
                                                        "pgp": bool(args.pgp_encrypted), "replace": args.replace,
                                                        "age": bool(args.age_encrypted),
                                                        "age_recipient": _age_key(kh.age_recipient)})
    print(f"enrolled {kh.name} with share #{kh.share_index} in {path}"
          + (f" (previous version kept as {kept})" if kept else ""))
    return 0


def _open_age_share(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from vaultops.cli.identity_input import read_identities
    from vaultops.errors import UsageError
    from vaultops.services.ceremony.age_shares import open_share

    if not args.identity:
        raise UsageError("--age-encrypted needs --identity FILE", hint="your age identity or ssh private key")
    stdin_taken = "the encrypted share" if args.age_encrypted == "-" else None
    identities = read_identities(args.identity, stdin_taken=stdin_taken)
    return open_share(_read_text(args.age_encrypted), identities or [])


def _read_text(path: str) -> str:
    from pathlib import Path

    from vaultops.errors import UsageError

    if path == "-":
        return sys.stdin.read(1 << 16)
    try:
        return Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({exc.strerror})", hint="check the path") from None

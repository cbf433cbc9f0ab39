"""vaultops generate-root: a new root token from unseal shares, shown once.

The OTP is made and kept in memory by this process; each share (stdin with
--share-stdin, one per line as `NAME: share` or bare, or hidden prompts) is
checked against the keyholder manifest before it is sent. The decoded token
is printed once and stored nowhere. With --revoke-after it is revoked at the
end: at a terminal after you press Enter, otherwise when stdin closes (so a
script can use the token first). --pgp-key FILE instead encrypts the token to
that OpenPGP key (decrypt it with gpg).

OpenBao >= 2.5.3 disables sys/generate-root by default; the error explains the
listener setting (disable_unauthed_generate_root_endpoints) that re-enables it.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from vaultops.cli import command_parser
from vaultops.cli.journal_cmd import anchored

if TYPE_CHECKING:
    from vaultops.services.ceremony.root import RootCeremony
    from vaultops.services.ceremony.shares import Share
    from vaultops.session import Session


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "generate-root", help="root-token ceremony from unseal shares (OTP or PGP)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--status", action="store_true", help="show the attempt in progress")
    mode.add_argument("--cancel", action="store_true", help="cancel the attempt in progress")
    p.add_argument("--share-stdin", action="store_true", help="read shares from stdin, one per line")
    p.add_argument("--keyholder", metavar="NAME", help="whose share(s) stdin holds")
    p.add_argument("--pgp-key", metavar="FILE", help="encrypt the token to this OpenPGP public key")
    p.add_argument("--revoke-after", action="store_true", help="revoke the new token at the end")
    p.add_argument("--manifest", metavar="FILE", help="keyholder manifest (default: from vaultops.yaml)")
    p.add_argument("--tui", action="store_true", help="run the ceremony screen")
    p.set_defaults(handler=cmd_generate_root)


@anchored
def cmd_generate_root(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import ConfigError
    from vaultops.services.ceremony import root as generate_root

    clients, path, journal = session.clients(), session.required_manifest_path(args.manifest), session.journal
    if args.tui:
        from vaultops.tui.generate_root_screen import run

        return run(generate_root.RootCeremony.open(clients, path, journal=journal), revoke_after=args.revoke_after)
    try:
        cer = generate_root.RootCeremony.open(clients, path, journal=journal)
    except ConfigError:
        if args.manifest or path.exists():
            raise
        print("WARNING: no keyholder manifest: shares cannot be checked before they are sent", file=sys.stderr)
        cer = generate_root.RootCeremony.open(clients, None, journal=journal)
    if args.status:
        st = cer.status()
        print(f"root generation in progress: {st.progress}/{st.required} shares (nonce {st.nonce})"
              if st.started else "no root generation in progress")
        return 0
    if args.cancel:
        print("root generation cancelled" if cer.cancel() else "no root generation was in progress")
        return 0
    return _ceremony(args, cer)


def _ceremony(args: argparse.Namespace, cer: RootCeremony) -> int:
    from vaultops.cli.rekey_cmd import checked_loop, share_entries
    from vaultops.errors import UsageError
    from vaultops.services.ceremony import keyholders
    from vaultops.services.ceremony.root import decode_token

    if args.revoke_after and args.pgp_key:
        raise UsageError("--revoke-after needs the token, which --pgp-key hides from vaultops",
                         hint="revoke it yourself after decrypting, or use the OTP (default)")
    pgp = keyholders.read_pgp_public_key(args.pgp_key) if args.pgp_key else None
    attempt = cer.start(pgp_key=pgp)
    print(f"root generation started on {cer.client.name}: {attempt.required} shares needed")
    encoded: list[str] = []

    def step(name: str, share: Share) -> bool:
        res = cer.submit(attempt, name, share)
        print(f"{name}: share #{share.index} accepted ({res.progress}/{res.required})")
        if res.complete:
            encoded.append(res.encoded_token)
        return res.complete

    names = [k.name for k in cer.manifest.keyholders] if cer.manifest else []
    try:
        refused = checked_loop(share_entries(args, names), cer.manifest, step)
    except BaseException:
        cer.cancel()  # an attempt left behind holds an OTP nobody has any more
        raise
    if not encoded:
        cer.cancel()
        print("not enough shares: the attempt was cancelled", file=sys.stderr)
        return refused or 1
    if attempt.otp is None:
        print(f"PGP-encrypted root token (base64; decrypt with: base64 -d | gpg -d):\n{encoded[0]}")
        return 0
    return _show_token(args, cer, decode_token(encoded[0], attempt.otp))


def _show_token(args: argparse.Namespace, cer: RootCeremony, token: str) -> int:
    check = cer.check_token(token)
    print(f"new root token (shown once, stored nowhere; policies: {', '.join(check.policies)}):\n{token}",
          flush=True)
    if not args.revoke_after:
        return 0
    if sys.stdin.isatty():
        input("Press Enter to revoke the token ...")
    else:
        print("revoking when stdin closes ...", flush=True)
        while sys.stdin.readline():
            pass
    cer.revoke(token)
    print("the new root token was revoked")
    return 0

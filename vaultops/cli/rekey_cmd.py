"""vaultops rekey start|submit|verify|status|cancel: change the unseal shares, safely.

  start   new shares/threshold and the new keyholders in share order
          (--keyholder NAME, repeated; optional --pgp-key NAME=FILE each)
  submit  CURRENT keyholders submit their shares, each checked against the
          manifest before it is sent. The last one issues the new shares: each
          goes to its own keyholder only (--share-file NAME=PATH, 0600, never
          overwritten; or one by one on this screen, cleared in between).
  verify  NEW keyholders enter their new shares back: checked against the new
          verifiers, then sent. At the new threshold the cluster switches keys,
          the manifest is rewritten (old one kept in its .history folder) and
          the journal records who left and who joined.
  cancel  abandon it at any point before that: the old shares stay valid.

Shares are read from stdin (--share-stdin: one per line, `NAME: share` or a
bare share) or at a hidden prompt; never from argv.

Which API:
{apis}
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.cli import add_format, command_parser
from vaultops.cli.journal_cmd import anchored

if TYPE_CHECKING:
    from vaultops.services.ceremony.manifest import Manifest
    from vaultops.services.ceremony.rekey import Issued, RekeyCeremony
    from vaultops.services.ceremony.shares import Share
    from vaultops.session import Session

MAX_LINE = 1024


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "rekey", help="change the unseal shares/threshold/keyholders (verified)",
                       description=_description, formatter_class=argparse.RawDescriptionHelpFormatter)
    rsub = p.add_subparsers(dest="rekey_command", metavar="ACTION")
    start = command_parser(rsub, "start", help="begin a rekey to new shares/threshold/keyholders")
    start.add_argument("--shares", type=int, required=True, help="number of NEW shares, one per new keyholder")
    start.add_argument("--threshold", type=int, required=True,
                       help="how many of the new shares unseal the cluster")
    start.add_argument("--keyholder", action="append", required=True, metavar="NAME",
                       help="a new keyholder, once per new share, in share order")
    start.add_argument("--pgp-key", action="append", default=[], metavar="NAME=FILE",
                       help="encrypt NAME's new share to this OpenPGP public key")
    start.add_argument("--age-key", action="append", default=[], metavar="NAME=FILE",
                       help="encrypt NAME's new share to this age or ssh-ed25519/ssh-rsa public key "
                            "(vaultops encrypts it before it is written or shown)")
    submit = command_parser(rsub, "submit", help="current keyholders submit their shares (checked)")
    submit.add_argument("--share-file", action="append", default=[], metavar="NAME=PATH",
                        help="where NAME's new share goes (0600, never overwritten)")
    submit.add_argument("--codec", choices=("base64", "hex", "mnemonic"), default="base64",
                        help="how new shares are written or shown (default base64)")
    verify = command_parser(rsub, "verify", help="new keyholders prove they hold their new shares")
    for cmd in (submit, verify):
        cmd.add_argument("--share-stdin", action="store_true", help="read shares from stdin, one per line")
        cmd.add_argument("--keyholder", metavar="NAME", help="whose share(s) stdin holds")
    status = command_parser(rsub, "status", help="progress of the rekey in progress")
    add_format(status)
    cancel = command_parser(rsub, "cancel", help="abandon the rekey; the old shares stay valid")
    cancel.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    # `vaultops rekey` alone (the ceremony screen) takes --manifest too; SUPPRESS keeps an action's
    # parser from overwriting it with its own default.
    p.add_argument("--manifest", metavar="FILE", help="keyholder manifest (default: from vaultops.yaml)")
    for cmd in (start, submit, verify, status, cancel):
        cmd.add_argument("--manifest", metavar="FILE", default=argparse.SUPPRESS,
                         help="keyholder manifest (default: from vaultops.yaml)")
    for cmd, fn in ((start, cmd_start), (submit, cmd_submit), (verify, cmd_verify), (status, cmd_status),
                    (cancel, cmd_cancel)):
        cmd.set_defaults(handler=anchored(fn) if fn in (cmd_submit, cmd_verify) else fn)
    p.set_defaults(handler=anchored(cmd_tui))


def _description() -> str:
    import textwrap

    from vaultops.vault.sys_rotate import ROTATION_APIS

    apis = textwrap.wrap(ROTATION_APIS, 76, initial_indent="  ", subsequent_indent="  ")
    return (__doc__ or "").format(apis="\n".join(apis))


# -- shared by the ceremony commands ---------------------------------------------------

def share_entries(args: argparse.Namespace, names: list[str]) -> Iterator[tuple[str | None, str]]:
    """(keyholder or None, share text) from stdin lines or hidden prompts; stops at EOF."""
    from vaultops.services.ceremony.types import split_share_line

    if args.share_stdin or not sys.stdin.isatty():
        for line in iter(sys.stdin.readline, ""):
            if not line.strip():
                continue
            name, text = split_share_line(line[:MAX_LINE].rstrip("\r\n"), names)
            yield (name or args.keyholder), text
        return
    import getpass

    while True:
        name = args.keyholder or input(f"Keyholder ({', '.join(names)}; empty to stop): ").strip()
        if not name:
            return
        yield name, getpass.getpass(f"{name}'s share (input hidden): ")


def checked_loop(entries: Iterator[tuple[str | None, str]], manifest: Manifest | None,
                 step: Callable[[str, Share], bool]) -> int:
    """Decode each entry, name its keyholder, run *step*; a bad entry is reported and skipped.

    Returns 0, or the exit code of the worst refusal (2 undecodable, 3 refused by the manifest).
    *step* returns True when the ceremony is done.
    """
    from vaultops.errors import SecurityError, UsageError
    from vaultops.services.ceremony import keyholders
    from vaultops.services.ceremony import shares

    worst = 0
    for name, text in entries:
        try:
            share = shares.decode(text)
            who = name or (keyholders.owner_of(manifest, share) if manifest else "(unnamed)")
            if step(who, share):
                return worst
        except (UsageError, SecurityError) as exc:  # messages never quote the input
            worst = max(worst, exc.exit_code)
            print(f"refused, nothing sent: {exc}", file=sys.stderr)
    return worst


def _ceremony(session: Session, args: argparse.Namespace) -> RekeyCeremony:
    from vaultops.services.ceremony import rekey

    return rekey.RekeyCeremony.open(session.clients(), session.required_manifest_path(args.manifest),
                               journal=session.journal)


# -- commands ----------------------------------------------------------------------------

def cmd_start(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import UsageError
    from vaultops.services.ceremony import keyholders
    from vaultops.services.ceremony.age_shares import read_recipient
    from vaultops.services.ceremony.rekey import NewKeyholder

    keys = dict(_pairs(args.pgp_key, "--pgp-key"))
    ages = {n: read_recipient(path) for n, path in _pairs(args.age_key, "--age-key")}
    unknown = sorted((set(keys) | set(ages)) - set(args.keyholder))
    if unknown:
        raise UsageError(f"a key for {unknown[0]}, who is not a new keyholder", hint="check the names")
    new = [NewKeyholder(n, pgp_key=keyholders.read_pgp_public_key(keys[n]) if n in keys else None,
                        age_recipient=ages.get(n)) for n in args.keyholder]
    cer = _ceremony(session, args)
    pending = cer.start(shares=args.shares, threshold=args.threshold, keyholders=new)
    old = {k.name for k in cer.manifest.keyholders}
    print(f"rekey started on {cer.client.name} via {cer.api.value}: {cer.manifest.threshold}/"
          f"{cer.manifest.shares} -> {pending.threshold}/{pending.shares}")
    left = sorted(old - set(args.keyholder))
    print(f"  leaving: {', '.join(left) or 'nobody'};  joining: "
          f"{', '.join(n for n in args.keyholder if n not in old) or 'nobody'}")
    print(f"next: {cer.manifest.threshold} current keyholders run `vaultops rekey submit`")
    return 0


def cmd_submit(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import UsageError

    cer = _ceremony(session, args)
    pending = cer.pending()
    files = {n: Path(p) for n, p in _pairs(args.share_file, "--share-file")}
    pgp = any(k.pgp_fingerprint for k in pending.keyholders)
    missing = [k.name for k in pending.keyholders if k.name not in files and not k.age_recipient]  # age: printable
    if missing and not pgp and not (sys.stdin.isatty() and sys.stdout.isatty() and not args.share_stdin):
        raise UsageError(f"no --share-file for new keyholder {missing[0]}: without a terminal the new shares "
                         "can only go to files each keyholder names", hint="pass --share-file NAME=PATH for "
                         "every new keyholder; nothing was sent")
    for path in files.values():
        if path.exists():
            raise UsageError(f"{path} already exists", hint="name new files; nothing was sent")
    done: list[Issued] = []

    def step(name: str, share: Share) -> bool:
        res = cer.submit(name, share)
        print(f"{name}: share #{share.index} accepted ({res.progress}/{res.required})")
        if res.issued is not None:
            done.append(res.issued)
        return res.issued is not None

    refused = checked_loop(share_entries(args, [k.name for k in cer.manifest.keyholders]), cer.manifest, step)
    if not done:
        return refused
    _hand_out(done[0], files, args.codec)
    print(f"next: {pending.threshold} of the new keyholders run `vaultops rekey verify`; "
          "until then the OLD shares stay valid")
    return 0


def _hand_out(issued: Issued, files: dict[str, Path], codec: str) -> None:
    from vaultops.services.ceremony import shares
    from vaultops.services.ceremony.age_shares import seal_share
    from vaultops.services.ceremony.rekey import write_share_file

    for item in issued.items:
        name = item.keyholder.name
        text = item.encrypted_b64 if item.share is None else shares.encode(item.share, codec)
        if item.share is not None and item.keyholder.age_recipient:
            text = seal_share(text or "", item.keyholder.age_recipient)   # only the ciphertext leaves this process
            if name not in files:
                print(f"{name}: new share encrypted to your age/ssh key (open it with `age -d -i KEY`, "
                      f"or `vaultops keyholders enroll --age-encrypted FILE --identity KEY`):\n{text}")
                continue
        if name in files:
            write_share_file(files[name], text or "")
            print(f"{name}: new share written to {files[name]} (0600)")
        elif item.share is None:
            print(f"{name}: PGP-encrypted new share (decrypt with `vaultops keyholders enroll "
                  f"--pgp-encrypted FILE`):\n{text}")
        else:
            _show_privately(name, text or "")


def _show_privately(name: str, text: str) -> None:
    """One keyholder at the screen: cleared before and after, confirmed written down."""
    clear = "\033[2J\033[3J\033[H"
    input(f"{clear}Hand the screen to {name} only, then press Enter.")
    print(f"{name}, your NEW unseal share (shown once):\n\n    {text}\n")
    while input("Type 'written' once it is written down: ").strip().lower() != "written":
        pass
    print(clear, end="", flush=True)


def cmd_verify(session: Session, args: argparse.Namespace) -> int:
    cer = _ceremony(session, args)
    pending = cer.pending()
    draft = pending.draft or cer.manifest
    finished: list[Any] = []

    def step(name: str, share: Share) -> bool:
        res = cer.verify(name, share)
        print(f"{name}: new share #{share.index} verified ({res.progress}/{res.required})")
        if res.complete:
            finished.append(res)
        return res.complete

    entries = share_entries(args, [k.name for k in pending.keyholders])
    refused = checked_loop(entries, draft, step)
    if not finished:
        return refused
    res = finished[0]
    print(f"rekey complete: the cluster now uses {pending.threshold}/{pending.shares}; the old shares no "
          f"longer work. Manifest rewritten" + (f" (previous kept as {res.history})" if res.history else ""))
    return 0


def cmd_status(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.ceremony.rekey import load_pending

    cer = _ceremony(session, args)
    st = cer.status()
    pending = load_pending(cer.manifest_path)
    info: dict[str, Any] = {"node": cer.client.name, "api": cer.api.value, "started": st.started,
                            "nonce": st.nonce or None, "progress": st.progress, "required": st.required,
                            "new_shares": st.n, "new_threshold": st.t,
                            "verification_nonce": st.verification_nonce or None,
                            "phase": pending.phase.value if pending else None,
                            "new_keyholders": [k.name for k in pending.keyholders] if pending else []}
    if args.format == "json":
        print(json.dumps(info, indent=2))
        return 0
    if not st.started:
        print(f"no rekey in progress ({cer.api.value} on {cer.client.name})"
              + ("; a stale record is beside the manifest: run `vaultops rekey cancel`" if pending else ""))
        return 0
    phase = "verifying new shares" if st.verification_nonce else f"current shares {st.progress}/{st.required}"
    print(f"rekey in progress on {cer.client.name} via {cer.api.value}: -> {st.t}/{st.n}, {phase}")
    if pending:
        print(f"  new keyholders: {', '.join(info['new_keyholders'])}")
    return 0


def cmd_cancel(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import UsageError

    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("cancelling needs confirmation", hint="pass --yes")
        if input("Cancel the rekey? The old shares stay valid. [y/N] ").strip().lower() != "y":
            return 1
    cer = _ceremony(session, args)
    print("rekey cancelled; the old shares stay valid" if cer.cancel() else "no rekey was in progress")
    return 0


def cmd_tui(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import UsageError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("`vaultops rekey` without an action needs a terminal",
                         hint="use rekey start|submit|verify|status|cancel in scripts")
    from vaultops.tui.rekey_screen import run

    return run(_ceremony(session, args))


def _pairs(values: list[str], flag: str) -> Iterator[tuple[str, str]]:
    from vaultops.errors import UsageError

    for v in values:
        name, sep, rest = v.partition("=")
        if not sep or not name or not rest:
            raise UsageError(f"{flag} takes NAME=PATH", hint=f"e.g. {flag} alice=/secure/alice.share")
        yield name, rest

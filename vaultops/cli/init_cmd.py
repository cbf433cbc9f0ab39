"""vaultops init: initialise a new cluster with one named keyholder per share.

Each keyholder's share is shown to that keyholder alone (the screen is cleared
before and after, and they confirm it was written down), or written to a file
that keyholder names (--share-file NAME=PATH, 0600, never overwritten). The
root token is shown once, or written to --root-token-file; it is never stored
otherwise. The keyholder manifest (share indexes and salted verifiers, safe to
commit) is written to --manifest or keyholders.manifest of vaultops.yaml; its
cluster id is filled in by the first `vaultops unseal`.

Everything is planned and checked before the cluster is initialised: init
happens once, and a share that cannot be delivered is lost. So every share
file and the token file are created (0600, never over an existing file) and
write-tested, and the manifest's folder probed, before sys/init; afterwards the
shares and the token are delivered first, the manifest and the journal after.

If a secret still cannot be written after init, it is not lost: on a terminal
it is shown there instead (once, like any share); without one it goes to a new
0600 file under the state directory (init-rescue/), whose path is printed. A
secret is never printed to a stream that is not a terminal (a log, a pipe).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.cli import command_parser
from vaultops.cli.journal_cmd import anchored

if TYPE_CHECKING:
    from vaultops.session import Session

CLEAR = "\033[2J\033[3J\033[H"  # screen and scrollback
TOKEN = "\0root-token"  # the root token's key among the keyholders' names (no name holds a NUL)


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "init", help="initialise a new cluster: named keyholders, manifest",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shares", type=int, required=True, help="number of unseal key shares, one per keyholder")
    p.add_argument("--threshold", type=int, required=True, help="how many of the shares unseal the cluster")
    p.add_argument("--keyholder", action="append", required=True, metavar="NAME",
                   help="one per share, in order (repeat, or a,b,c)")
    p.add_argument("--pgp-key", action="append", default=[], metavar="NAME=FILE",
                   help="encrypt NAME's share to this OpenPGP public key (all or none)")
    p.add_argument("--age-key", action="append", default=[], metavar="NAME=FILE",
                   help="encrypt NAME's share to this age (age1…) or ssh-ed25519/ssh-rsa public key; vaultops "
                        "encrypts it before it is written or shown (any keyholders; not with --pgp-key)")
    p.add_argument("--codec", choices=("base64", "hex", "mnemonic"), default="base64",
                   help="how plaintext shares are shown or written (default base64)")
    p.add_argument("--share-file", action="append", default=[], metavar="NAME=PATH",
                   help="write NAME's share to PATH (0600) instead of showing it")
    p.add_argument("--root-token-file", metavar="PATH",
                   help="write the root token here (0600) instead of showing it once")
    p.add_argument("--manifest", metavar="FILE", help="where to write the keyholder manifest")
    p.add_argument("--node", metavar="NAME", help="node to initialise (default: the first)")
    p.set_defaults(handler=cmd_init)


@dataclass(frozen=True)
class Plan:
    keyholders: list[str]
    files: dict[str, Path]
    pgp_keys: list[str] | None
    manifest: Path
    token_file: Path | None
    age_keys: dict[str, str] = field(default_factory=dict)    # keyholder -> public key text


@anchored
def cmd_init(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.ceremony import init as initialize

    cfg = session.config
    plan = make_plan(args, cfg)
    clients = session.clients(token=False)
    wanted = cfg.node(args.node).name if args.node else clients[0].name  # raises for unknown
    client = next(c for c in clients if c.name == wanted)
    initialize.validate_plan(shares=args.shares, threshold=args.threshold, keyholders=plan.keyholders,
                             pgp_keys=plan.pgp_keys, age_recipients=plan.age_keys)
    initialize.check_manifest_target(plan.manifest)
    with initialize.reserved(*_outputs(plan)) as slots:  # refused here, before sys/init
        result = initialize.initialize_cluster(client, shares=args.shares, threshold=args.threshold,
                                               keyholders=plan.keyholders, pgp_keys=plan.pgp_keys)
        try:
            undelivered, interrupted = deliver(result, plan, slots, codec=args.codec)
        except Exception as exc:  # noqa: BLE001 - a bug here must not lose the shares: rescue them as they came
            print(f"vaultops: delivery failed ({type(exc).__name__}): rescuing every secret", file=sys.stderr)
            undelivered, interrupted = _as_received(result, plan), False
    problems = [_rescue(undelivered, cfg, screen=not interrupted)] if undelivered else []
    problems += _record(session, args, plan, result, client.name, undelivered=len(undelivered))
    print(f"initialised {client.name}: {args.shares} shares, threshold {args.threshold}\n"
          f"keyholder manifest: {plan.manifest} (safe to commit; cluster id recorded at first "
          "unseal)\nnext: vaultops unseal")
    if problems:
        from vaultops.errors import VaultOpsError

        raise VaultOpsError(f"{client.name} was initialised, but: {'; '.join(problems)}",
                            hint="nothing else is needed from init; do not run it again")
    return 0


def _outputs(plan: Plan) -> tuple[dict[str, Path], dict[str, str]]:
    """The files to reserve, keyed by keyholder name (TOKEN for the root token), and what each is."""
    paths = dict(plan.files)
    what = {name: f"{name}'s share file" for name in plan.files}
    if plan.token_file:
        paths[TOKEN], what[TOKEN] = plan.token_file, "root token file"
    return paths, what


def _record(session: Session, args: argparse.Namespace, plan: Plan, result: Any, node: str, *,
            undelivered: int) -> list[str]:
    """After the secrets: the manifest, then the journal. Returns what failed, in words."""
    from vaultops.errors import VaultOpsError
    from vaultops.services.ceremony.init import save_manifest

    problems = []
    try:
        save_manifest(result, plan.manifest, keyholders=plan.keyholders, threshold=args.threshold,
                      encrypted=bool(plan.pgp_keys), age_recipients=plan.age_keys)
    except VaultOpsError as exc:
        problems.append(str(exc))
    try:
        session.journal.append(
            "cluster.initialized", node=node,
            details={"shares": args.shares, "threshold": args.threshold, "keyholders": plan.keyholders,
                     "pgp": bool(plan.pgp_keys), "age": sorted(plan.age_keys), "manifest": str(plan.manifest),
                     "undelivered": undelivered})
    except (VaultOpsError, OSError) as exc:
        problems.append(f"the journal entry could not be written ({exc})")
    return problems


def make_plan(args: argparse.Namespace, cfg: Any) -> Plan:
    from vaultops.errors import UsageError
    from vaultops.services.ceremony.age_shares import read_recipient

    names = [n.strip() for item in args.keyholder for n in item.split(",") if n.strip()]
    files = {name: Path(path) for name, path in _pairs(args.share_file, "--share-file")}
    pgp = dict(_pairs(args.pgp_key, "--pgp-key"))
    age_keys = {name: read_recipient(path) for name, path in _pairs(args.age_key, "--age-key")}
    unknown = sorted((set(files) | set(pgp) | set(age_keys)) - set(names))
    if unknown:
        raise UsageError(f"{unknown[0]!r} is not one of the keyholders", hint="check the NAME= part")
    if pgp and set(pgp) != set(names):
        raise UsageError("--pgp-key given for some keyholders only", hint="give one per keyholder")
    outputs = [*files.values(), *([Path(args.root_token_file)] if args.root_token_file else [])]
    for path in outputs:
        if path.exists() or path.is_symlink():
            raise UsageError(f"{path} exists: a share or token file is never overwritten",
                             hint="choose a new path")
    if len({os.path.abspath(p) for p in outputs}) < len(outputs):
        raise UsageError("two secrets would go to the same file", hint="give each its own path")
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    on_screen = [n for n in names if n not in files]
    if not tty and (on_screen or not args.root_token_file):
        raise UsageError("no terminal to show shares and the root token on",
                         hint="pass --share-file NAME=PATH for every keyholder and "
                              "--root-token-file PATH, or run in a terminal")
    return Plan(keyholders=names, files=files,
                pgp_keys=[_read_pgp(Path(pgp[n])) for n in names] if pgp else None,
                manifest=_manifest_target(args, cfg),
                token_file=Path(args.root_token_file) if args.root_token_file else None, age_keys=age_keys)


def _pairs(items: list[str], flag: str) -> list[tuple[str, str]]:
    from vaultops.errors import UsageError

    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"{flag} {item!r} is not NAME=VALUE", hint=f"e.g. {flag} alice=FILE")
        out.append((name.strip(), value.strip()))
    return out


def _read_pgp(path: Path) -> str:
    """A public key file, armored or base64, as the base64 Vault expects."""
    import base64

    from vaultops.errors import UsageError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read PGP key {path} ({exc.strerror})", hint="check the path") from None
    text = data.decode("ascii", errors="replace")
    if "-----BEGIN PGP PUBLIC KEY BLOCK-----" in text:
        body = text.split("-----BEGIN PGP PUBLIC KEY BLOCK-----", 1)[1].split("-----END", 1)[0]
        lines = [ln.strip() for ln in body.strip().splitlines()]
        if "" in lines:  # armor headers end at the first blank line
            lines = lines[lines.index("") + 1:]
        return "".join(ln for ln in lines if ln and not ln.startswith("="))
    if data[:1] and data[0] & 0x80:  # binary packet
        return base64.b64encode(data).decode()
    return "".join(text.split())


def _manifest_target(args: argparse.Namespace, cfg: Any) -> Path:
    if args.manifest:
        return Path(args.manifest)
    if cfg.section("keyholders").get("manifest"):
        from vaultops.services.ceremony.manifest import manifest_path

        return manifest_path(cfg)
    return Path("keyholders.yaml")


def deliver(result: Any, plan: Plan, slots: dict[str, Any], *,
            codec: str) -> tuple[list[tuple[str, str]], bool]:
    """Hand every share to its keyholder, then the root token: files, or one screen each.

    Returns what could not be delivered, as (label, secret) pairs, for _rescue, and whether
    Ctrl-C stopped the showing: what was not shown yet is returned too (it is not lost).
    """
    items = [*_share_items(result, plan, codec), ("root token", TOKEN, result.root_token)]
    undelivered: list[tuple[str, str]] = []
    for i, (label, key, text) in enumerate(items):
        try:
            _deliver_one(label, key, text, plan, slots)
        except (OSError, EOFError) as exc:
            print(f"vaultops: {label} could not be delivered ({_why(exc)})", file=sys.stderr)
            undelivered.append((label, text))
        except KeyboardInterrupt:
            print(f"vaultops: interrupted: {len(items) - i} secret(s) not delivered yet", file=sys.stderr)
            return undelivered + [(lb, t) for lb, _, t in items[i:]], True
    return undelivered, False


def _as_received(result: Any, plan: Plan) -> list[tuple[str, str]]:
    """Every share as sys/init returned it (base64, PGP-encrypted if asked), and the root token."""
    return [*((f"{name}'s share (base64 as returned by sys/init)", key)
              for name, key in zip(plan.keyholders, result.keys_b64, strict=True)),
            ("root token", result.root_token)]


def _share_items(result: Any, plan: Plan, codec: str) -> list[tuple[str, str, str]]:
    from vaultops.services.ceremony import shares

    out = []
    for name, key in zip(plan.keyholders, result.keys_b64, strict=True):
        if plan.pgp_keys:
            out.append((f"{name}'s PGP-encrypted share (base64: decrypt it, then enroll)", name, key))
            continue
        share = shares.decode(key)
        if name in plan.age_keys:
            out.append(_age_item(name, share, codec, plan.age_keys[name]))
            continue
        passphrase = _ask_passphrase(name) if codec == "mnemonic" and name not in plan.files else b""
        out.append((f"{name}'s share #{share.index} ({codec})", name, shares.encode(share, codec, passphrase)))
    return out


def _age_item(name: str, share: Any, codec: str, recipient: str) -> tuple[str, str, str]:
    """The share in its codec, encrypted to the keyholder's age/ssh key (armored): only that leaves us."""
    from vaultops.crypto.agekeys import parse_recipient
    from vaultops.services.ceremony import shares
    from vaultops.services.ceremony.age_shares import seal_share

    label = (f"{name}'s share #{share.index} ({codec}) encrypted to {parse_recipient(recipient).fingerprint} "
             "(open it with: age -d -i YOUR-KEY FILE)")
    return label, name, seal_share(shares.encode(share, codec), recipient)


def _deliver_one(label: str, key: str, text: str, plan: Plan, slots: dict[str, Any]) -> None:
    if key in slots:
        slots[key].fill(text + "\n")
        print(f"{label} written to {slots[key].path}")
    elif key == TOKEN:
        _show_once("the operator", "root token (shown once, never stored: revoke it after setup):"
                                   f"\n\n{text}\n")
    else:
        _show_once(f"keyholder {key}", f"{label}:\n\n{text}\n")


def _rescue(undelivered: list[tuple[str, str]], cfg: Any, *, screen: bool) -> str:
    """Undelivered secrets: on the terminal if there is one (and *screen*), else a 0600 file in the
    state directory. Never on a stream that is not a terminal: that is a log or a pipe."""
    from vaultops.services.ceremony.init import write_rescue

    count = f"{len(undelivered)} secret(s) could not be delivered where asked"
    if screen and sys.stdin.isatty() and sys.stdout.isatty():
        try:
            for label, text in undelivered:
                _show_once(f"the owner of {label}", f"NOT DELIVERED, shown here instead: {label}:\n\n{text}\n")
            return f"{count}: shown on the terminal instead"
        except (OSError, EOFError, KeyboardInterrupt):
            pass  # fall through to the file
    try:
        path = write_rescue(cfg.state_dir, undelivered, cluster=cfg.cluster_name)
    except OSError as exc:
        return (f"{count} and are LOST (no terminal; the rescue file failed too: {_why(exc)}): the cluster "
                "holds no data yet; stop it, wipe its storage and run init again")
    return f"{count}: they are in {path} (0600): hand each to its owner, then shred that file"


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


def _show_once(who: str, body: str) -> None:
    print(CLEAR, end="")
    input(f"Only {who} may look at the screen now. Press Enter to show it... ")
    print(body)
    while input("Type 'written' once it is written down: ").strip().lower() != "written":
        pass
    print(CLEAR, end="", flush=True)


def _ask_passphrase(name: str) -> bytes:
    import getpass

    while True:
        pp = getpass.getpass(f"{name}: mnemonic passphrase (Enter for none): ")
        if not pp or getpass.getpass("repeat it: ") == pp:
            return pp.encode()
        print("the passphrases differ: try again", file=sys.stderr)

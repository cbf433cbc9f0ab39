"""vaultops init: initialise a new cluster with one named keyholder per share.

Each keyholder's share is shown to that keyholder alone (the screen is cleared
before and after, and they confirm it was written down), or written to a file
that keyholder names (--share-file NAME=PATH, 0600, never overwritten). The
root token is shown once, or written to --root-token-file; it is never stored
otherwise. The keyholder manifest (share indexes and salted verifiers, safe to
commit) is written to --manifest or keyholders.manifest of vaultops.yaml; its
cluster id is filled in by the first `vaultops unseal`.

Everything is planned and checked before the cluster is initialised: init
happens once, and a share that cannot be delivered is lost.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaultops.cli import command_parser
from vaultops.cli.journal_cmd import anchored

CLEAR = "\033[2J\033[3J\033[H"  # screen and scrollback


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "init", help="initialise a new cluster: named keyholders, manifest",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shares", type=int, required=True)
    p.add_argument("--threshold", type=int, required=True)
    p.add_argument("--keyholder", action="append", required=True, metavar="NAME",
                   help="one per share, in order (repeat, or a,b,c)")
    p.add_argument("--pgp-key", action="append", default=[], metavar="NAME=FILE",
                   help="encrypt NAME's share to this OpenPGP public key (all or none)")
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


@anchored
def cmd_init(args: argparse.Namespace) -> int:
    from vaultops.config import load_config
    from vaultops.journal import journal_for
    from vaultops.services.initialize import initialize_cluster
    from vaultops.vault import cluster_clients

    cfg = load_config(args.config)
    plan = make_plan(args, cfg)
    clients = cluster_clients(cfg, use_token=False, allow_insecure_http=args.allow_insecure_http)
    wanted = cfg.node(args.node).name if args.node else clients[0].name  # raises for unknown
    client = next(c for c in clients if c.name == wanted)
    result = initialize_cluster(client, shares=args.shares, threshold=args.threshold,
                                keyholders=plan.keyholders, manifest_path=plan.manifest,
                                pgp_keys=plan.pgp_keys)
    journal_for(cfg, operator=args.operator).append(
        "cluster.initialized", node=client.name,
        details={"shares": args.shares, "threshold": args.threshold,
                 "keyholders": plan.keyholders, "pgp": bool(plan.pgp_keys),
                 "manifest": str(plan.manifest)})
    deliver(result, plan, codec=args.codec)
    print(f"initialised {client.name}: {args.shares} shares, threshold {args.threshold}\n"
          f"keyholder manifest: {plan.manifest} (safe to commit; cluster id recorded at first "
          "unseal)\nnext: vaultops unseal")
    return 0


def make_plan(args: argparse.Namespace, cfg: Any) -> Plan:
    from vaultops.errors import UsageError

    names = [n.strip() for item in args.keyholder for n in item.split(",") if n.strip()]
    files = {name: Path(path) for name, path in _pairs(args.share_file, "--share-file")}
    pgp = dict(_pairs(args.pgp_key, "--pgp-key"))
    unknown = sorted((set(files) | set(pgp)) - set(names))
    if unknown:
        raise UsageError(f"{unknown[0]!r} is not one of the keyholders", hint="check the NAME= part")
    if pgp and set(pgp) != set(names):
        raise UsageError("--pgp-key given for some keyholders only", hint="give one per keyholder")
    for path in files.values():
        if path.exists():
            raise UsageError(f"{path} exists: a share file is never overwritten",
                             hint="choose a new path")
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    on_screen = [n for n in names if n not in files]
    if not tty and (on_screen or not args.root_token_file):
        raise UsageError("no terminal to show shares and the root token on",
                         hint="pass --share-file NAME=PATH for every keyholder and "
                              "--root-token-file PATH, or run in a terminal")
    return Plan(keyholders=names, files=files,
                pgp_keys=[_read_pgp(Path(pgp[n])) for n in names] if pgp else None,
                manifest=_manifest_target(args, cfg),
                token_file=Path(args.root_token_file) if args.root_token_file else None)


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
        from vaultops.services.manifest import manifest_path

        return manifest_path(cfg)
    return Path("keyholders.yaml")


def deliver(result: Any, plan: Plan, *, codec: str) -> None:
    """Hand every share to its keyholder, then the root token: files, or one screen each."""
    from vaultops.fsutil import atomic_write_text
    from vaultops.services import shares

    for name, key in zip(plan.keyholders, result.keys_b64, strict=True):
        if plan.pgp_keys:
            text, what = key, "PGP-encrypted share (base64): decrypt it, then enroll"
        else:
            share = shares.decode(key)
            passphrase = _ask_passphrase(name) if codec == "mnemonic" and name not in plan.files else b""
            text = shares.encode(share, codec, passphrase)
            what = f"share #{share.index} ({codec})"
        if name in plan.files:
            atomic_write_text(plan.files[name], text + "\n", mode=0o600)
            print(f"{name}: {what} written to {plan.files[name]}")
        else:
            _show_once(f"keyholder {name}", f"{what}:\n\n{text}\n")
    if plan.token_file:
        atomic_write_text(plan.token_file, result.root_token + "\n", mode=0o600)
        print(f"root token written to {plan.token_file}")
    else:
        _show_once("the operator", "root token (shown once, never stored: revoke it after setup):"
                                   f"\n\n{result.root_token}\n")


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

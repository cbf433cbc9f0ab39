"""vaultops sandbox up|down|status: real local OpenBao clusters."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from vaultops.cli import add_format, command_parser

if TYPE_CHECKING:
    from vaultops.session import Session


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "sandbox", help="start/stop a real local OpenBao cluster for demos and tests")
    ssub = p.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    up = command_parser(ssub, "up", help="start, initialise and (unless --sealed) unseal a sandbox")
    _name(up)
    up.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3; postgresql: 2)")
    up.add_argument("--storage", choices=("raft", "postgresql"), default="raft",
                    help="raft (default) or postgresql (an Active-Standby pair on a private PostgreSQL)")
    up.add_argument("--version", dest="bao_version", metavar="X.Y.Z", help="OpenBao release (default: installed)")
    up.add_argument("--sealed", action="store_true",
                    help="leave it as after an outage: every node joined, then all restarted sealed, so one "
                         "share per keyholder (3 of alice..erin) unseals every node")
    up.add_argument("--cold-start", action="store_true",
                    help="sealed, and the followers have never joined (a fresh cluster's first unseal: "
                         "they join once the first node is unsealed and then need the shares again)")
    up.add_argument("--tls", action="store_true", help="serve TLS with per-node certificates")
    up.add_argument("--acme", metavar="FILE", default=os.environ.get("VAULTOPS_SANDBOX_ACME"),
                    help="with --tls: get the certificates from this ACME server (YAML with acme: and "
                         "dns_provider: as in the tls: section; default $VAULTOPS_SANDBOX_ACME), "
                         "else from a throwaway local CA")
    up.set_defaults(handler=cmd_up)
    down = command_parser(ssub, "down", help="stop the sandbox's processes and remove its state")
    _name(down)
    down.set_defaults(handler=cmd_down)
    sh = command_parser(ssub, "shares", help="print the sandbox's demo keyholders' shares (sandbox material)",
                        description="Lines 'NAME: share' for `vaultops unseal --share-stdin`; with --keyholder "
                                    "only that keyholder's share, as they hold it (for `keyholders drill`).")
    _name(sh)
    sh.add_argument("--keyholder", metavar="NAME", help="only this demo keyholder's share (alice..erin)")
    sh.set_defaults(handler=cmd_shares)
    st = command_parser(ssub, "status", help="list sandboxes and their processes")
    _name(st, default=None)
    add_format(st)
    st.set_defaults(handler=cmd_status)


def _name(p: argparse.ArgumentParser, default: str | None = "default") -> None:
    p.add_argument("--name", default=default,
                   help="sandbox name (default: %(default)s)" if default else "only this sandbox (default: all)")


def _checked_name(args: argparse.Namespace) -> None:
    """Every sandbox command checks --name first, before it reaches a path (a path, '..', '-x' are refused)."""
    from vaultops.names import Kind, check_name

    if args.name is not None:
        check_name(Kind.SANDBOX, args.name, where="--name")


def cmd_up(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.sandbox.cluster import SandboxSpec, up

    _checked_name(args)
    nodes = args.nodes if args.nodes != 3 or args.storage == "raft" else 2
    spec = SandboxSpec(name=args.name, nodes=nodes, storage=args.storage, version=args.bao_version,
                       sealed=args.sealed or args.cold_start, cold=args.cold_start, tls=args.tls,
                       acme_config=args.acme if args.tls else None)
    box = up(spec, progress=lambda m: print(f"sandbox {args.name}: {m}", file=sys.stderr))
    session.journal_of(box.config).append(
        "sandbox.up", details={"nodes": nodes, "storage": spec.storage, "sealed": spec.sealed, "cold": spec.cold,
                               "tls": spec.tls})
    print(f"config:  {box.config_path}\nsecrets: {box.secrets_path} (sandbox material, 0600)\n"
          f"try:     vaultops --config {box.config_path} status\n"
          f"stop:    vaultops sandbox down --name {args.name}")
    return 0


def cmd_shares(session: Session, args: argparse.Namespace) -> int:
    """The demo keyholders' throwaway shares, from the sandbox's secrets file (never a real cluster's)."""
    from vaultops.errors import SandboxError, UsageError
    from vaultops.services.sandbox.cluster import Sandbox, sandbox_dir

    _checked_name(args)
    box = Sandbox(sandbox_dir(args.name))
    if not box.secrets_path.exists():
        raise SandboxError(f"no sandbox named {args.name!r} (or it has no secrets file)",
                           hint="see: vaultops sandbox status")
    keyholders: dict[str, str] = box.secrets.get("keyholders") or {}
    if args.keyholder is not None:
        if args.keyholder not in keyholders:
            raise UsageError(f"no demo keyholder {args.keyholder!r} in sandbox {args.name!r}",
                             hint=f"one of: {', '.join(keyholders)}")
        return _write(keyholders[args.keyholder] + "\n")
    return _write("".join(f"{name}: {share}\n" for name, share in keyholders.items()))


def _write(text: str) -> int:
    """One write: `| head -3` may close the pipe once it has its lines (that is not an error)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit
    return 0


def cmd_down(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import SandboxError
    from vaultops.services.sandbox.cluster import Sandbox, sandbox_dir

    _checked_name(args)
    folder = sandbox_dir(args.name)
    if not os.path.lexists(folder):
        raise SandboxError(f"no sandbox named {args.name!r}", hint="see: vaultops sandbox status")
    Sandbox(folder).stop()  # refuses, before stopping anything, a folder `up` did not make
    print(f"sandbox {args.name}: stopped and removed")
    return 0


def cmd_status(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.sandbox.cluster import list_sandboxes

    _checked_name(args)
    rows: list[dict[str, Any]] = []
    for box in list_sandboxes():
        rec = box.record
        if args.name and rec.spec.name != args.name:
            continue
        running = {name: d.is_running() for name, d in box.drivers().items()}
        rows.append({"name": rec.spec.name, "storage": rec.spec.storage, "version": rec.version,
                     "config": str(box.config_path), "nodes": running, "disk_bytes": _disk_used(box.dir)})
    if args.format == "json":
        print(json.dumps({"sandboxes": rows}, indent=2))
    elif not rows:
        print("no sandboxes (start one: vaultops sandbox up)")
    else:
        from vaultops.cli.render import human_size, table

        print(table(["NAME", "STORAGE", "VERSION", "RUNNING", "DISK", "CONFIG"],
                    [[r["name"], r["storage"], r["version"], f"{sum(r['nodes'].values())}/{len(r['nodes'])} nodes",
                      human_size(r["disk_bytes"]), r["config"]] for r in rows]))
    return 0


def _disk_used(folder: Any) -> int:
    """Bytes a sandbox folder takes on disk, as du counts them (allocated blocks; links not followed)."""
    total = 0
    for top, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            try:
                total += os.lstat(os.path.join(top, name)).st_blocks * 512
            except OSError:  # a node removing its own files while we look
                pass
    return total

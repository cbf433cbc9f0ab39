"""vaultops unseal: the guided unseal ceremony (TUI), or --share-stdin for scripts.

Shares are checked against the keyholder manifest before anything is sent,
then submitted to every sealed node at once. Shares are read from the terminal
(hidden) or stdin, never from argv, and never echoed.

--share-stdin reads one share per line: 'NAME: share' or the share alone (its
keyholder is then found by share index and verifier). Blank or bad lines are
rejected (nothing sent) and the remaining lines still processed.

--node NAME (repeatable) limits the ceremony to those nodes (an upgrade pauses
for one restarted node). Each checked share is kept while this command runs
(at most --resend-for seconds) and sent again to a node that needs it later --
a raft follower that joins once the leader is unsealed, a node that comes back
after the shares were entered -- so nobody enters a share twice; with --wait
the command stays until every node is unsealed. Ctrl-C leaves (exit 130); the
ceremony screen asks first while shares are in flight.

exit codes: 0 every node unsealed, 2 a line could not be decoded (or an unknown
--node), 3 a share was refused by the manifest check, 11 some node still sealed,
12 some node unreachable (a refused share wins over 11/12), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from vaultops.cli import add_format, command_parser
from vaultops.cli.output import ask, info
from vaultops.cli.journal_cmd import anchored

if TYPE_CHECKING:
    from vaultops.services.ceremony.unseal import CeremonySnapshot, UnsealCeremony
    from vaultops.session import Session

MAX_LINE = 4096
EXIT_SEALED, EXIT_UNREACHABLE = 11, 12
HOLD_FOR = 900.0  # services/ceremony/held.py HOLD_FOR (not imported: --help stays fast)


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "unseal", help="guided unseal ceremony: checked shares, every node",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--share-stdin", action="store_true",
                   help="read shares from stdin, one per line (no TUI)")
    p.add_argument("--keyholder", metavar="NAME", help="whose shares the stdin lines are")
    p.add_argument("--node", metavar="NAME", action="append", dest="nodes",
                   help="unseal only this node (repeatable; default: every node in vaultops.yaml)")
    p.add_argument("--resend-for", metavar="SECONDS", type=float, default=HOLD_FOR,
                   help="keep each checked share this long (while the command runs) to send it again to "
                        f"nodes that join or come back later; 0: never (default {HOLD_FOR:g})")
    p.add_argument("--manifest", metavar="FILE",
                   help="keyholder manifest (default: keyholders.manifest in vaultops.yaml)")
    p.add_argument("--no-manifest", action="store_true",
                   help="proceed without checking shares (a wrong share is found only at the "
                        "threshold)")
    p.add_argument("--allow-unverified", action="store_true",
                   help="accept shares of keyholders that have no verifier yet (unchecked)")
    p.add_argument("--reset", action="store_true",
                   help="discard the shares submitted so far on every sealed node, then exit")
    p.add_argument("--yes", action="store_true", help="do not ask before --reset")
    p.add_argument("--wait", action="store_true",
                   help="--share-stdin: after the last line, follow the cluster until every node "
                        "is unsealed (other keyholders may be submitting elsewhere)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to follow nodes until unsealed (default 60)")
    add_format(p)
    p.set_defaults(handler=cmd_unseal)


@anchored
def cmd_unseal(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import UsageError

    if args.keyholder and not args.share_stdin:
        raise UsageError("--keyholder goes with --share-stdin",
                         hint="in the TUI each keyholder picks their name")
    cer = build_ceremony(session, args)
    if args.reset:
        return _reset(cer, args)
    if args.share_stdin:
        return run_stdin(cer, args)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the unseal ceremony needs a terminal",
                         hint="run it in a terminal, or pipe shares with --share-stdin")
    from vaultops.tui.app import run_unseal

    snap = run_unseal(cer)
    print(render(snap))
    _await_leader(cer, snap, timeout=args.timeout)
    return _exit(snap, 0)


def build_ceremony(session: Session, args: argparse.Namespace) -> UnsealCeremony:
    """The unseal ceremony of `vaultops unseal` and of the console's unseal screen."""
    from vaultops.services.ceremony.unseal import UnsealCeremony

    clients = _chosen(session.clients(token=False), getattr(args, "nodes", None))
    manifest, path = _load_manifest(session, args)
    return UnsealCeremony(clients, manifest=manifest, manifest_path=path, journal=session.journal,
                          allow_unverified=args.allow_unverified, debug=session.debug,
                          hold_for=max(getattr(args, "resend_for", HOLD_FOR), 0.0))


def _chosen(clients: list[Any], names: list[str] | None) -> list[Any]:
    """The clients of the nodes named with --node (all without it); an unknown name is a usage error."""
    from vaultops.errors import UsageError

    if not names:
        return clients
    known = [c.name for c in clients]
    unknown = [n for n in dict.fromkeys(names) if n not in known]
    if unknown:
        raise UsageError(f"no node named {', '.join(unknown)} in vaultops.yaml",
                         hint=f"the nodes are: {', '.join(known)}")
    return [c for c in clients if c.name in names]


def _load_manifest(session: Session, args: argparse.Namespace) -> tuple[Any, Any]:
    from vaultops.errors import ConfigError
    from vaultops.services.ceremony.manifest import Manifest

    if args.no_manifest:
        return None, None
    path = session.manifest_path(args.manifest)
    if path is None:
        return None, None  # the ceremony warns that shares cannot be checked
    if not args.manifest and not path.exists():
        raise ConfigError(f"keyholder manifest {path} (from vaultops.yaml) does not exist",
                          hint="restore it, pass --manifest FILE, or --no-manifest to proceed "
                               "without checking shares")
    return Manifest.load(path), path


def _reset(cer: UnsealCeremony, args: argparse.Namespace) -> int:
    from vaultops.errors import UsageError

    json_out = args.format == "json"
    cer.start()
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("--reset needs confirmation", hint="add --yes in scripts")
        answer = ask("Discard every keyholder's submitted shares on all sealed nodes? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise UsageError("not reset: the submitted shares stay", hint="answer y to reset")
    cer.reset()
    _print_events(cer, quiet_stdout=json_out)
    if json_out:
        print(json.dumps(snapshot_json(cer.refresh()), indent=2))
    return 0


def run_stdin(cer: UnsealCeremony, args: argparse.Namespace) -> int:
    from vaultops.errors import VaultOpsError

    worst = 0
    json_out = args.format == "json"
    cer.start()
    _print_events(cer, quiet_stdout=json_out)
    try:
        while True:
            line = sys.stdin.readline(MAX_LINE + 1)
            if not line:
                break
            if len(line) > MAX_LINE:
                sys.stdin.readline()  # discard the rest of an overlong line
            snap = cer.wait_ready()
            if snap.all_unsealed:
                info(args, "every node is unsealed: further shares are not needed and were not read")
                break
            try:
                cer.submit_line(line.rstrip("\n"), keyholder=args.keyholder)
            except VaultOpsError as exc:
                worst = max(worst, exc.exit_code)
            _print_events(cer, quiet_stdout=json_out)
        snap = cer.follow(timeout=args.timeout, until_unsealed=args.wait,
                          on_update=lambda _s: _print_events(cer, quiet_stdout=json_out))
    finally:
        snap = cer.finish()
    _print_events(cer, quiet_stdout=json_out)
    print(json.dumps(snapshot_json(snap), indent=2) if json_out else render(snap))
    _await_leader(cer, snap, timeout=args.timeout, stream=sys.stderr if json_out else sys.stdout)
    return _exit(snap, worst)


def _await_leader(cer: UnsealCeremony, snap: CeremonySnapshot, *, timeout: float, stream: Any = None) -> None:
    """Every node unsealed is not yet serving: say when a leader is active (a second or two with raft's
    performance_multiplier 1; 15-22 s after a full restart without it), so the next command finds one."""
    import time

    from vaultops.errors import VaultOpsError
    from vaultops.vault.cluster import wait_active

    if not snap.all_unsealed:
        return
    out = stream or sys.stdout
    started = time.monotonic()
    try:
        active = wait_active(cer.clients, timeout=timeout)
    except VaultOpsError:
        print(f"warning: no node is active {timeout:g}s after the unseal (a leader election after a full "
              "restart takes 15-22 s without raft's performance_multiplier = 1): see `vaultops status`",
              file=sys.stderr, flush=True)
        return
    print(f"{active.name} is active ({time.monotonic() - started:.1f}s after every node was unsealed)",
          file=out, flush=True)


def _exit(snap: CeremonySnapshot, worst: int) -> int:
    from vaultops.services.ceremony.unseal import NodePhase

    if worst:
        return worst
    if snap.all_unsealed:
        return 0
    if any(n.phase is NodePhase.UNREACHABLE for n in snap.nodes):
        return EXIT_UNREACHABLE
    return EXIT_SEALED


def _print_events(cer: UnsealCeremony, *, quiet_stdout: bool = False) -> None:
    """Events as lines: info on stdout, problems on stderr; with --format json all of them JSON lines on stderr."""
    from vaultops.cli.output import event_line

    for ev in cer.drain_events():
        if quiet_stdout:
            print(event_line(ev.level, "unseal", message=ev.message), file=sys.stderr, flush=True)
            continue
        stream = sys.stderr if ev.level != "info" else sys.stdout
        prefix = "" if ev.level == "info" else f"{ev.level}: "
        print(f"{prefix}{ev.message}", file=stream, flush=True)


def render(snap: CeremonySnapshot) -> str:
    from vaultops.cli.render import table
    from vaultops.services.ceremony.view import HEADERS, headline, node_rows

    out = table(HEADERS, node_rows(snap))
    lines = [out, headline(snap)]
    if not snap.checked:
        lines.append("shares were NOT checked: no keyholder manifest")
    return "\n".join(lines)


def snapshot_json(snap: CeremonySnapshot) -> dict[str, Any]:
    return {"all_unsealed": snap.all_unsealed, "checked": snap.checked,
            "cluster_id": snap.cluster_id, "submitted": list(snap.submitted),
            "nodes": [{"name": n.name, "phase": n.phase.value, "progress": n.progress,
                       "threshold": n.threshold, "nonce": n.nonce,
                       "contributors": list(n.contributors),
                       "must_resubmit": list(n.must_resubmit), "error": n.error}
                      for n in snap.nodes]}

"""vaultops status: one row per node, asked concurrently."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from vaultops.cli import add_format, add_no_color, command_parser, output

if TYPE_CHECKING:
    from vaultops.session import Session


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "status", help="seal, HA and raft state of every node",
                       description="Exit codes: 0 healthy, 11 some node sealed or uninitialised, "
                                   "12 some node unreachable, 13 raft degraded (or Consul storage without a "
                                   "leader), 14 token rejected (raft health not checked), 15 joining (failure "
                                   "tolerance 0 while followers are still non-voters). Without a token the "
                                   "raft check is skipped.")
    add_format(p)
    p.add_argument("--node", action="append", metavar="NAME", help="only these nodes (repeatable)")
    p.add_argument("--timeout", type=float, default=5.0, help="per-node timeout in seconds (default 5)")
    add_no_color(p)
    p.set_defaults(handler=cmd_status)


def cmd_status(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.status import cluster_status

    cfg = session.config
    clients = session.clients(timeout=args.timeout)
    if args.node:
        wanted = [cfg.node(n).name for n in args.node]
        clients = [c for c in clients if c.name in wanted]
    consul = session.consul(timeout=args.timeout)
    st = cluster_status(clients, name=cfg.cluster_name, storage=cfg.storage, timeout=args.timeout + 1,
                        consul=consul)
    from vaultops.cli.conditions import recovery_conditions, render_conditions

    conds = recovery_conditions(session, st, partial=bool(args.node))   # nodes that are gone (issue 17)
    if args.format == "json":
        print(json.dumps({**st.to_json(), "conditions": [c.to_json() for c in conds]}, indent=2))
    else:
        from vaultops.cli.render import colour_wanted, line_width

        colour = colour_wanted(sys.stdout, no_color=args.no_color)
        print(render_status(st, colour=colour, width=line_width(sys.stdout)))
        if conds:
            print(render_conditions(conds, width=line_width(sys.stdout)))
    if st.token_rejected:
        fields = output.error_fields(message=f"raft health {st.autopilot_error}", exit_code=int(st.exit),
                                     hint="log in again: VAULT_TOKEN, ~/.vault-token or cluster.token_file",
                                     kind="VaultAuthError")
        output.fail(fields, json_stdout=False, json_stderr=args.format == "json", stdout_used=True,
                    plain=f"vaultops: error: {fields['message']} ({fields['hint']})")
    return int(st.exit)


def render_status(st, *, colour: bool = False, width: int | None = None) -> str:  # type: ignore[no-untyped-def]
    """The status table: states in words (coloured on a terminal); NOTE, the last column, fits *width*."""
    from vaultops.cli.render import paint, state, table

    rows = []
    for n in st.nodes:
        if not n.reachable:
            rows.append([n.name, n.address, state("UNREACHABLE"), "", "", "", "", "", "", n.error or ""])
            continue
        seal = "uninit" if not n.initialized else ("sealed" if n.sealed else "unsealed")
        progress = f"{n.progress}/{n.threshold}" if n.sealed and n.initialized else ""
        raft = n.raft or {}
        raft_cell = f"{raft.get('role', '')}{'' if raft.get('healthy', True) else ' UNHEALTHY'}" if raft else ""
        rows.append([n.name, n.address, state(seal), progress, (n.nonce or "")[:8], state(n.ha_role or ""),
                     n.version or "", state(raft_cell), raft.get("last_index", ""), n.error or ""])
    out = table(["NODE", "ADDRESS", "SEAL", "PROGRESS", "NONCE", "HA", "VERSION", "RAFT", "INDEX", "NOTE"], rows,
                width=width, colour=colour)
    head = f"cluster {st.name}  id {st.cluster_id or '-'}  storage {st.storage}"
    if st.autopilot:
        ap = st.autopilot
        word = state("healthy" if ap.healthy else "UNHEALTHY")
        head += f"  raft {paint(word.text, word.style, colour)} failure-tolerance {ap.failure_tolerance}"
    elif st.autopilot_error:
        head += f"\nraft {st.autopilot_error}"
    if st.consul is not None:
        head += "\n" + render_consul(st.consul)
    word = state(st.exit.name.lower())
    verdict = st.exit.name.lower() + (f": {st.reason}" if st.reason else "")
    if st.autopilot is None and st.autopilot_error and verdict == "healthy":
        verdict += " (as far as seen: raft not checked)"
    return f"{head}\n{out}\n{paint(verdict, word.style, colour)}"


def render_consul(facts) -> str:  # type: ignore[no-untyped-def]
    servers = ", ".join(f"{s.node or s.id} {s.address}{' (leader)' if s.leader else ''}"
                        f"{'' if s.voter else ' non-voter'}" for s in facts.servers)
    token = facts.token
    lines = [f"consul {facts.address}  leader {facts.leader or 'NONE'}" + (f"  servers {servers}" if servers else ""),
             f"consul token {token.description or token.accessor} policies {', '.join(token.policies) or '-'}"
             if token else ""]
    lines += [f"consul {what}: {why}" for what, why in facts.errors.items()]
    return "\n".join(line for line in lines if line)

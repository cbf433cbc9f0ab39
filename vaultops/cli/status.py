"""vaultops status: one row per node, asked concurrently."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from vaultops.cli import command_parser

if TYPE_CHECKING:
    from vaultops.session import Session


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "status", help="seal, HA and raft state of every node",
                       description="Exit codes: 0 healthy, 11 some node sealed or uninitialised, "
                                   "12 some node unreachable, 13 raft degraded (or Consul storage without a "
                                   "leader), 14 token rejected (raft health not checked). Without a token the "
                                   "raft check is skipped.")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--node", action="append", metavar="NAME", help="only these nodes (repeatable)")
    p.add_argument("--timeout", type=float, default=5.0, help="per-node timeout in seconds (default 5)")
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
        print(render_status(st))
        if conds:
            print(render_conditions(conds))
    if st.token_rejected:
        print(f"vaultops: error: raft health {st.autopilot_error} (log in again: VAULT_TOKEN, ~/.vault-token or "
              "cluster.token_file)", file=sys.stderr)
    return int(st.exit)


def render_status(st) -> str:  # type: ignore[no-untyped-def]
    from vaultops.cli.render import table

    rows = []
    for n in st.nodes:
        if not n.reachable:
            rows.append([n.name, n.address, "UNREACHABLE", "", "", "", "", "", (n.error or "")[:60]])
            continue
        seal = "uninit" if not n.initialized else ("sealed" if n.sealed else "unsealed")
        progress = f"{n.progress}/{n.threshold}" if n.sealed and n.initialized else ""
        raft = n.raft or {}
        raft_cell = f"{raft.get('role', '')}{'' if raft.get('healthy', True) else ' UNHEALTHY'}" if raft else ""
        rows.append([n.name, n.address, seal, progress, (n.nonce or "")[:8], n.ha_role or "", n.version or "",
                     raft_cell, raft.get("last_index", "")])
    out = table(["NODE", "ADDRESS", "SEAL", "PROGRESS", "NONCE", "HA", "VERSION", "RAFT", "INDEX"], rows)
    head = f"cluster {st.name}  id {st.cluster_id or '-'}  storage {st.storage}"
    if st.autopilot:
        ap = st.autopilot
        head += f"  raft {'healthy' if ap.healthy else 'UNHEALTHY'} failure-tolerance {ap.failure_tolerance}"
    elif st.autopilot_error:
        head += f"\nraft {st.autopilot_error}"
    if st.consul is not None:
        head += "\n" + render_consul(st.consul)
    verdict = st.exit.name.lower()
    if st.autopilot is None and st.autopilot_error and verdict == "healthy":
        verdict += " (as far as seen: raft not checked)"
    return f"{head}\n{out}\n{verdict}"


def render_consul(facts) -> str:  # type: ignore[no-untyped-def]
    servers = ", ".join(f"{s.node or s.id} {s.address}{' (leader)' if s.leader else ''}"
                        f"{'' if s.voter else ' non-voter'}" for s in facts.servers)
    token = facts.token
    lines = [f"consul {facts.address}  leader {facts.leader or 'NONE'}" + (f"  servers {servers}" if servers else ""),
             f"consul token {token.description or token.accessor} policies {', '.join(token.policies) or '-'}"
             if token else ""]
    lines += [f"consul {what}: {why}" for what, why in facts.errors.items()]
    return "\n".join(line for line in lines if line)

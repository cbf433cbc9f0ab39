"""vaultops tls status | renew: node certificates, served and on disk; ACME DNS-01 renewal."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from vaultops.cli import add_format, command_parser

if TYPE_CHECKING:
    from vaultops.session import Session

RENEW_HELP = """Renew every node whose served or on-disk certificate is in its renewal window
(default: the last third of its lifetime), then install, reload (standbys first,
active last) and verify by TLS handshake. Quiet when nothing is due; events go to
stderr as JSON lines, and so is an error. Exit 0 all good, 7 some node failed
(served certificate unchanged or rolled back) or another run holds the lock,
2 config error."""


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "tls", help="node TLS certificates: status and ACME renewal",
                       description="Reads the tls: section of vaultops.yaml: `vaultops config example tls` prints "
                                   "one, `vaultops config reference` describes every key.")
    tls_sub = p.add_subparsers(dest="tls_command", metavar="SUBCOMMAND", required=True)
    s = command_parser(tls_sub, "status", help="served and on-disk certificate of every node",
                       description="Exit 0 when every node's served and on-disk certificate were read, 7 otherwise.")
    add_format(s)
    s.add_argument("--node", metavar="NAME", help="only this node")
    s.set_defaults(handler=cmd_status)
    r = command_parser(tls_sub, "renew", help="renew due certificates (cron/timer friendly)",
                       description=RENEW_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--node", metavar="NAME", help="only this node")
    r.add_argument("--force", action="store_true", help="renew even if not due")
    add_format(r, default=None, help="also print a summary on stdout: table or json (default: nothing)")
    r.set_defaults(handler=cmd_renew, stderr_json=True)  # for timers: its errors are JSON lines like its events


def cmd_status(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.tls.status import drivers_for, tls_status

    settings = session.tls_settings
    if args.node:
        settings.node(args.node)
    statuses = tls_status(settings, drivers_for(settings), only=args.node)
    if args.format == "json":
        print(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        print(render_status(statuses))
    return 0 if all(s.served and s.disk for s in statuses) else 7


def render_status(statuses: list) -> str:  # type: ignore[type-arg]
    from vaultops.cli.render import table

    rows = []
    for s in statuses:
        for label, cert, err in (("served", s.served, s.served_error), ("disk", s.disk, s.disk_error)):
            if cert is None:
                rows.append([s.node, label, "-", "-", "-", "-", (err or "")[:50]])
                continue
            rows.append([s.node, label, cert.subject[:30], ",".join(cert.sans)[:40], cert.issuer[:30],
                         cert.not_after.strftime("%Y-%m-%d %H:%M"), f"{cert.days_left():.1f}d"])
        if s.served and s.disk and s.differ:
            rows.append([s.node, "", "served != disk (reload pending?)", "", "", "", ""])
    return table(["NODE", "SOURCE", "SUBJECT", "SANS", "ISSUER", "NOT AFTER", "LEFT"], rows)


def cmd_renew(session: Session, args: argparse.Namespace) -> int:
    from vaultops.dns import get_provider
    from vaultops.services.tls.acme_client import AcmeIssuer
    from vaultops.services.tls.cron import journal_renewal, renewal_lock, summarise, write_metrics
    from vaultops.services.tls.inspect import TLSError
    from vaultops.services.tls.renew import renew
    from vaultops.services.tls.status import drivers_for

    settings = session.tls_settings
    emit = _cron_line
    with renewal_lock(settings.lock_file):
        issuer = AcmeIssuer(settings.acme, get_provider(settings.dns_provider))
        report = renew(settings, drivers=drivers_for(settings), issuer=issuer, roles=_roles(session),
                       only=args.node, force=args.force, emit=emit)
        write_metrics(settings.metrics_file, report)
        journal_renewal(session.journal, session.config.cluster_name, report)
    if args.format == "json":
        print(json.dumps([n.as_dict() for n in report.nodes], indent=2))
    elif args.format == "table":
        from vaultops.cli.render import table

        print(table(["NODE", "OUTCOME", "REASON", "ERROR"],
                    [[n.node, n.outcome.value, n.reason, n.error or ""] for n in report.nodes]))
    if not report.ok:
        raise TLSError(f"renewal failed: {summarise(report.failures)}",
                       hint="served certificates were left unchanged or rolled back; fix the cause and rerun")
    return 0


def _cron_line(event: dict[str, Any]) -> None:
    """One renewal event as a JSON line on stderr, the shape of every cron log line (cli/output.py)."""
    from vaultops.cli.output import event_line
    from vaultops.services.tls.cron import event_level

    fields = {k: v for k, v in event.items() if k != "event"}
    print(event_line(event_level(event), str(event.get("event")), **fields), file=sys.stderr, flush=True)


def _roles(session: Session) -> dict[str, str]:
    from vaultops.errors import VaultOpsError
    from vaultops.services.tls.renew import cluster_roles

    try:
        return cluster_roles(session.clients(token=False, timeout=5.0))
    except VaultOpsError:
        return {}  # unknown roles: reload in config order

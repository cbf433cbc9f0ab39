"""Renew node certificates: concurrent ACME orders, then install, reload and verify node by node.

Order of reloads: standbys (and nodes whose role is unknown) first, the active
node last, so a bad certificate is caught before it reaches the node clients
talk to most. After each reload a TLS handshake with the node's SNI must show
the new certificate (verified against `tls.verify_ca` when set); otherwise the
previous pair is restored, the node reloaded again, and the run stops there.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vaultops.drivers.base import NodeDriver
from vaultops.errors import VaultOpsError
from vaultops.services.tls.acme_client import AcmeIssuer, Issued
from vaultops.services.tls.inspect import CertInfo, TLSError, cert_info, served_cert, verify_served, wait_served
from vaultops.services.tls.install import Pair, install, restore
from vaultops.services.tls.settings import NodeTls, TlsSettings
from vaultops.services.tls.status import NodeCertStatus, tls_status

if TYPE_CHECKING:
    from vaultops.vault import NodeClient

log = logging.getLogger("vaultops.tls.renew")

Emit = Callable[[dict[str, Any]], None]


class Outcome(enum.Enum):
    UNCHANGED = "unchanged"          # not due
    RENEWED = "renewed"              # new certificate served and verified
    FAILED = "failed"                # nothing was replaced (issuance or install refused)
    ROLLED_BACK = "rolled_back"      # new pair did not serve; previous pair restored
    NOT_ATTEMPTED = "not_attempted"  # an earlier node failed to reload; left alone


@dataclass(frozen=True)
class NodeOutcome:
    node: str
    outcome: Outcome
    reason: str = ""
    cert: CertInfo | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "outcome": self.outcome.value, "reason": self.reason, "error": self.error,
                "not_after": self.cert.not_after.isoformat() if self.cert else None,
                "fingerprint": self.cert.fingerprint if self.cert else None}


@dataclass(frozen=True)
class RenewReport:
    nodes: tuple[NodeOutcome, ...]
    statuses: tuple[NodeCertStatus, ...]

    @property
    def ok(self) -> bool:
        return all(n.outcome in (Outcome.UNCHANGED, Outcome.RENEWED) for n in self.nodes)

    @property
    def failures(self) -> list[NodeOutcome]:
        return [n for n in self.nodes if n.outcome not in (Outcome.UNCHANGED, Outcome.RENEWED)]


def renew(settings: TlsSettings, *, drivers: Mapping[str, NodeDriver | None], issuer: AcmeIssuer,
          roles: Mapping[str, str] | None = None, only: str | None = None, force: bool = False,
          now: dt.datetime | None = None, emit: Emit = lambda e: None) -> RenewReport:
    statuses = tls_status(settings, drivers, only=only)
    if only is not None and not statuses:
        settings.node(only)  # raises the helpful ConfigError
    reasons = {s.node: "forced" if force else s.renewal_reason(settings.acme.renew_fraction, now) for s in statuses}
    due = {n: r for n, r in reasons.items() if r}
    outcomes = {s.node: NodeOutcome(s.node, Outcome.UNCHANGED, cert=s.served) for s in statuses}
    if due:
        issued = _issue_all(issuer, [settings.node(n) for n in due], emit)
        for group in reload_groups(list(due), roles or {}):
            def one(name: str) -> NodeOutcome:
                result = issued[name]
                if isinstance(result, VaultOpsError):
                    return NodeOutcome(name, Outcome.FAILED, due[name], error=str(result))
                return _install_and_verify(settings, settings.node(name), drivers.get(name), result, due[name],
                                           emit)
            with ThreadPoolExecutor(max_workers=len(group)) as pool:
                outcomes.update(zip(group, pool.map(one, group)))
            failed = next((n for n in group if outcomes[n].outcome is Outcome.ROLLED_BACK), None)
            if failed is not None:
                _skip_rest(outcomes, due, failed, emit)
                break
    return RenewReport(nodes=tuple(outcomes[s.node] for s in statuses), statuses=tuple(statuses))


def reload_order(nodes: Sequence[str], roles: Mapping[str, str]) -> list[str]:
    """Standbys and unknown roles first, the active node last; stable otherwise."""
    return [n for group in reload_groups(nodes, roles) for n in group]


def reload_groups(nodes: Sequence[str], roles: Mapping[str, str]) -> list[list[str]]:
    """Standbys together, then nodes of unknown role together, then the active node alone.

    A SIGHUP reload keeps a node serving (same process, open connections kept), so the
    nodes of one group are reloaded at once; a rollback in a group stops before the next.
    """
    def rank(n: str) -> int:
        return {"standby": 0, "active": 2}.get(roles.get(n, ""), 1)
    groups = [[n for n in nodes if rank(n) == r] for r in (0, 1, 2)]
    return [g for g in groups if g]


def _issue_all(issuer: AcmeIssuer, nodes: list[NodeTls], emit: Emit) -> dict[str, Issued | VaultOpsError]:
    issuer.register()  # once, before the threads
    def one(node: NodeTls) -> Issued | VaultOpsError:
        try:
            issued = issuer.issue(node.names)
            emit({"event": "issued", "node": node.name, "names": list(node.names)})
            return issued
        except VaultOpsError as exc:
            emit({"event": "issue_failed", "node": node.name, "error": str(exc)})
            return exc
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        return dict(zip((n.name for n in nodes), pool.map(one, nodes)))


def _install_and_verify(settings: TlsSettings, node: NodeTls, driver: NodeDriver | None, issued: Issued,
                        reason: str, emit: Emit) -> NodeOutcome:
    if driver is None:
        return NodeOutcome(node.name, Outcome.FAILED, reason, error="no driver configured; cannot install")
    pair = Pair(key_pem=issued.key_pem, chain_pem=issued.fullchain_pem)
    new = cert_info(pair.chain_pem)
    try:
        previous = install(driver, node, pair)
    except VaultOpsError as exc:
        emit({"event": "install_failed", "node": node.name, "error": str(exc)})
        return NodeOutcome(node.name, Outcome.FAILED, reason, error=str(exc))
    problem = _reload_and_check(settings, node, driver, new)
    if problem is None:
        emit({"event": "renewed", "node": node.name, "reason": reason, "not_after": new.not_after.isoformat(),
              "fingerprint": new.fingerprint})
        return NodeOutcome(node.name, Outcome.RENEWED, reason, cert=new)
    rollback = _rollback(settings, node, driver, previous)
    error = f"{problem}; {rollback}"
    emit({"event": "rolled_back", "node": node.name, "error": error})
    return NodeOutcome(node.name, Outcome.ROLLED_BACK, reason, error=error)


def _reload_and_check(settings: TlsSettings, node: NodeTls, driver: NodeDriver, new: CertInfo) -> str | None:
    try:
        driver.reload().check(node.name)
    except VaultOpsError as exc:
        return f"reload failed: {exc.message}"
    seen = wait_served(lambda: served_cert(node.host, node.port, node.server_name), new.fingerprint,
                       timeout=settings.reload_timeout)
    if seen is None or seen.fingerprint != new.fingerprint:
        return (f"node still serves {seen.fingerprint[:16] if seen else 'nothing'} after reload, "
                f"not the new {new.fingerprint[:16]}")
    if settings.verify_ca:
        try:
            verify_served(node.host, node.port, node.server_name, settings.verify_ca)
        except TLSError as exc:
            return exc.message
    return None


def _rollback(settings: TlsSettings, node: NodeTls, driver: NodeDriver, previous: Pair | None) -> str:
    if previous is None:
        return "no previous pair to roll back to"
    try:
        restore(driver, node, previous)  # read back and checked before the reload
        driver.reload().check(node.name)
    except VaultOpsError as exc:
        return f"ROLLBACK FAILED: {exc.message}"
    except Exception as exc:  # noqa: BLE001 - a driver's own failure: reported on the node's line
        return f"ROLLBACK FAILED: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    old = cert_info(previous.chain_pem)
    seen = wait_served(lambda: served_cert(node.host, node.port, node.server_name), old.fingerprint,
                       timeout=settings.reload_timeout)
    if seen is None or seen.fingerprint != old.fingerprint:
        return "previous pair restored on disk but the node does not serve it: check the node now"
    return "previous pair restored and served"


def _skip_rest(outcomes: dict[str, NodeOutcome], due: Mapping[str, str], failed: str, emit: Emit) -> None:
    for name, reason in due.items():
        if outcomes[name].outcome is Outcome.UNCHANGED:
            outcomes[name] = NodeOutcome(name, Outcome.NOT_ATTEMPTED, reason,
                                         error=f"stopped after {failed} failed to serve its new certificate")
            emit({"event": "not_attempted", "node": name})


def cluster_roles(clients: Sequence[NodeClient]) -> dict[str, str]:
    """Which node is active, by sys/health (unauthenticated clients do); unknown roles are left out."""
    from vaultops.vault import fan_out

    results = fan_out(clients, lambda c: c.ha.health().role, timeout=10.0)
    return {r.node: str(r.value) for r in results if r.ok}

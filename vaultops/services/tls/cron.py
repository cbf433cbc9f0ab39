"""What makes renewal cron-grade: a lock, JSON-lines events on stderr, textfile metrics, the journal."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from vaultops.files.lock import Holder, exclusive_lock
from vaultops.files.atomic import atomic_write_text
from vaultops.services.tls.inspect import TLSError
from vaultops.services.tls.renew import Outcome, RenewReport

if TYPE_CHECKING:
    from vaultops.journal import Journal


class LockHeld(TLSError):
    """Another renewal holds the lock."""


@contextlib.contextmanager
def renewal_lock(path: str) -> Iterator[None]:
    """An exclusive flock (the shared helper); a second concurrent run fails at once instead of queueing."""
    def busy(holder: Holder) -> LockHeld:
        return LockHeld(f"another `vaultops tls renew` holds {path} ({holder.describe()})",
                        hint="wait for it to finish; the timer will run again")

    with exclusive_lock(path, what="tls renew", error=TLSError, busy=busy):
        yield


FAILED_EVENTS = frozenset({"issue_failed", "install_failed", "rolled_back", "not_attempted"})


def event_level(event: dict[str, Any]) -> str:
    """The level of one renewal event on the cron log (the one error line is the exit point's)."""
    return "warning" if event.get("event") in FAILED_EVENTS else "info"


def metrics_text(report: RenewReport, *, now: dt.datetime | None = None, run_ok: bool = True) -> str:
    """Prometheus textfile exposition: days to expiry per node, last run state."""
    lines = ["# HELP vaultops_tls_cert_days_left Days until the node certificate expires (served/on disk).",
             "# TYPE vaultops_tls_cert_days_left gauge"]
    by_node = {o.node: o for o in report.nodes}
    for status in report.statuses:
        outcome = by_node.get(status.node)
        served = outcome.cert if outcome and outcome.outcome is Outcome.RENEWED else status.served
        disk = outcome.cert if outcome and outcome.outcome is Outcome.RENEWED else status.disk
        for source, cert in (("served", served), ("disk", disk)):
            if cert is not None:
                lines.append(f'vaultops_tls_cert_days_left{{node="{_esc(status.node)}",source="{source}"}} '
                             f"{cert.days_left(now):.3f}")
    lines += ["# HELP vaultops_tls_renew_failed_nodes Nodes whose renewal failed in the last run.",
              "# TYPE vaultops_tls_renew_failed_nodes gauge",
              f"vaultops_tls_renew_failed_nodes {len(report.failures)}",
              "# HELP vaultops_tls_renew_last_run_timestamp_seconds When the last run finished.",
              "# TYPE vaultops_tls_renew_last_run_timestamp_seconds gauge",
              f"vaultops_tls_renew_last_run_timestamp_seconds {time.time():.0f}",
              "# HELP vaultops_tls_renew_last_run_success 1 if the last run renewed everything due.",
              "# TYPE vaultops_tls_renew_last_run_success gauge",
              f"vaultops_tls_renew_last_run_success {1 if run_ok and report.ok else 0}"]
    return "\n".join(lines) + "\n"


def write_metrics(path: str | None, report: RenewReport) -> None:
    if path:
        atomic_write_text(path, metrics_text(report), mode=0o644)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def summarise(nodes: Sequence[Any]) -> str:
    return ", ".join(f"{n.node}: {n.outcome.value}" + (f" ({n.error})" if n.error else "") for n in nodes)


def journal_renewal(journal: Journal, cluster: str, report: RenewReport) -> None:
    """One `tls.renew` entry per node whose certificate was replaced or failed to be (unchanged is no event)."""
    for node in report.nodes:
        if node.outcome is Outcome.UNCHANGED:
            continue
        journal.append("tls.renew", outcome="ok" if node.outcome is Outcome.RENEWED else node.outcome.value,
                       cluster=cluster, node=node.node, details=node.as_dict())

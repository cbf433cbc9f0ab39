"""What each node serves (TLS handshake with SNI) and what it has on disk."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from vaultops.drivers.base import NodeDriver
from vaultops.errors import VaultOpsError
from vaultops.services.tls.inspect import CertInfo, cert_info, served_cert
from vaultops.services.tls.settings import NodeTls, TlsSettings

log = logging.getLogger("vaultops.tls.status")


@dataclass(frozen=True)
class NodeCertStatus:
    node: str
    server_name: str
    names: tuple[str, ...]
    served: CertInfo | None = None
    served_error: str | None = None
    disk: CertInfo | None = None
    disk_error: str | None = None

    @property
    def differ(self) -> bool:
        return self.served is None or self.disk is None or self.served.fingerprint != self.disk.fingerprint

    def renewal_reason(self, fraction: float, now: dt.datetime | None = None) -> str | None:
        """Why this node needs a new certificate, or None."""
        for label, cert, error in (("served", self.served, self.served_error), ("on-disk", self.disk, self.disk_error)):
            if cert is None:
                return f"no {label} certificate ({error})"
            if cert.renewal_due(fraction, now):
                return f"{label} certificate expires in {cert.days_left(now):.1f} days"
            missing = set(self.names) - set(cert.sans)
            if missing:
                return f"{label} certificate lacks {', '.join(sorted(missing))}"
        return None

    def days_left(self, now: dt.datetime | None = None) -> float | None:
        """The lower of served and on-disk days left (what an alert cares about)."""
        values = [c.days_left(now) for c in (self.served, self.disk) if c is not None]
        return min(values) if values else None

    def as_dict(self, now: dt.datetime | None = None) -> dict[str, object]:
        return {"node": self.node, "server_name": self.server_name, "names": list(self.names),
                "served": self.served.as_dict(now) if self.served else None, "served_error": self.served_error,
                "disk": self.disk.as_dict(now) if self.disk else None, "disk_error": self.disk_error,
                "differ": self.differ}


def node_status(node: NodeTls, driver: NodeDriver | None) -> NodeCertStatus:
    served = served_err = disk = disk_err = None
    try:
        served = served_cert(node.host, node.port, node.server_name)
    except VaultOpsError as exc:
        served_err = exc.message
    if driver is None:
        disk_err = "no driver configured for this node"
    else:
        try:
            disk = cert_info(driver.read_file(node.cert_file))
        except VaultOpsError as exc:
            disk_err = exc.message
    return NodeCertStatus(node=node.name, server_name=node.server_name, names=node.names, served=served,
                          served_error=served_err, disk=disk, disk_error=disk_err)


def tls_status(settings: TlsSettings, drivers: Mapping[str, NodeDriver | None], *,
               only: str | None = None) -> list[NodeCertStatus]:
    nodes = [n for n in settings.nodes if only is None or n.name == only]
    if not nodes:
        return []
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        return list(pool.map(lambda n: node_status(n, drivers.get(n.name)), nodes))


def drivers_for(settings: TlsSettings, factory: Callable[[str, dict], NodeDriver] | None = None
                ) -> dict[str, NodeDriver | None]:
    """A driver per node from its `driver:` settings; None where none is configured or it fails."""
    from vaultops.drivers import get_driver

    make = factory or get_driver
    out: dict[str, NodeDriver | None] = {}
    for node in settings.nodes:
        try:
            out[node.name] = make(node.name, node.driver) if node.driver else None
        except VaultOpsError as exc:
            log.warning("%s: driver unusable (%s); its on-disk certificate cannot be read or replaced",
                        node.name, exc)
            out[node.name] = None
    return out

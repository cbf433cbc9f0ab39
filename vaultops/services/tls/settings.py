"""The `tls:` section of vaultops.yaml, parsed into frozen values.

    tls:
      load_balancer_name: vault.example.com    # default: cluster.load_balancer
      nodes:
        vault-1:
          cert_file: /etc/openbao/tls/cert.pem   # full chain, on the node (through its driver)
          key_file: /etc/openbao/tls/key.pem     # written 0600
          names: [vault-1.example.com]           # default: tls_server_name or the address host
          owner: openbao                         # optional, overrides tls.owner / tls.group for this node
      owner: openbao        # owner (name or uid) of key, chain and .previous pair; default: the writing user
      group: openbao        # their group (name or gid); default: the writing user's. Giving away needs root
      acme:
        directory: production | staging | https://127.0.0.1:14000/dir
        ca_bundle: /etc/vaultops/pebble-ca.pem   # trust for the ACME server itself (optional)
        account_key_file: ~/.local/state/vaultops/acme-account.pem   # created 0600, reused
        contact: ops@example.com                 # optional
        key_type: ec256 | rsa2048                # node keys; default ec256
        eab: {kid: KID, hmac_key_file: /etc/vaultops/eab.key}
        renew_fraction: 0.33                     # renew in the last third of the lifetime
        timeout: 300
      dns_provider: {type: rfc2136 | route53, ...}   # see vaultops.dns.rfc2136 / route53
      resolvers: [10.0.0.2]                   # split horizon: where to find zones/NS
      verify_ca: /etc/vaultops/root.pem        # trust for the served chain (default cluster.ca_cert)
      lock_file: /run/vaultops/tls.lock
      metrics_file: /var/lib/node_exporter/textfile/vaultops_tls.prom
      reload_timeout: 10                       # seconds for a node to serve its new certificate
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from msgspec import Meta

from vaultops.config import Config, NodeConfig
from vaultops.errors import ConfigError
from vaultops.files.model import Model

DIRECTORIES = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}


class KeyType(enum.Enum):
    EC256 = "ec256"
    RSA2048 = "rsa2048"


_HINT = "`vaultops config example tls` prints the tls: section with every key"
Account = Annotated[str | int | None, Meta(description="user/group name or numeric id")]


class TlsNodeSection(Model):
    cert_file: Annotated[str, Meta(min_length=1, description="full chain on the node (OpenBao's tls_cert_file)")]
    key_file: Annotated[str, Meta(min_length=1, description="private key on the node, written 0600")]
    names: Annotated[list[str] | None, Meta(
        description="certificate names (default: tls_server_name or the address host)")] = None
    owner: Annotated[Account, Meta(description="owner of key and chain, overrides tls.owner")] = None
    group: Annotated[Account, Meta(description="group of key and chain, overrides tls.group")] = None


class EabSection(Model):
    kid: Annotated[str, Meta(min_length=1, description="external account binding key id (from the CA)")]
    hmac_key_file: Annotated[str, Meta(min_length=1, description="file holding the EAB HMAC key")]


class AcmeSection(Model):
    directory: Annotated[str, Meta(description="production, staging or an https:// ACME directory URL")]
    ca_bundle: Annotated[str | None, Meta(description="trust for the ACME server itself")] = None
    account_key_file: Annotated[str | None, Meta(
        description="ACME account key, created 0600 (default: <state dir>/acme-account.pem)")] = None
    contact: Annotated[str | None, Meta(description="contact e-mail for the ACME account")] = None
    key_type: Annotated[KeyType, Meta(description="node key type")] = KeyType.EC256
    eab: Annotated[EabSection | None, Meta(description="external account binding, if the CA needs it")] = None
    renew_fraction: Annotated[float, Meta(gt=0, lt=1, description="renew in the last fraction of the lifetime")] = 1 / 3
    timeout: Annotated[float, Meta(gt=0, description="seconds an issuance may take")] = 300.0
    roots_url: Annotated[str | None, Meta(description="sandbox only: where the ACME server serves its root")] = None
    root_ca_file: Annotated[str | None, Meta(description="sandbox only: the ACME server's root as a file")] = None


class TlsSection(Model):
    load_balancer_name: Annotated[str | None, Meta(
        description="extra certificate name on every node (default: cluster.load_balancer)")] = None
    nodes: Annotated[dict[str, TlsNodeSection], Meta(description="per node: certificate and key paths")] = {}
    owner: Annotated[Account, Meta(description="owner of key, chain and .previous pair")] = None
    group: Annotated[Account, Meta(description="their group; giving files away needs root")] = None
    acme: Annotated[AcmeSection | None, Meta(description="the ACME server and account")] = None
    dns_provider: Annotated[dict[str, Any] | None, Meta(
        description="DNS-01 provider: {type: rfc2136 | route53, ...}, validated by the provider")] = None
    resolvers: Annotated[list[str] | None, Meta(description="split horizon: where to find zones/NS")] = None
    verify_ca: Annotated[str | None, Meta(description="trust for the served chain (default: cluster.ca_cert)")] = None
    lock_file: Annotated[str | None, Meta(description="default: <state dir>/tls-renew.lock")] = None
    metrics_file: Annotated[str | None, Meta(description="Prometheus textfile written after each renewal")] = None
    reload_timeout: Annotated[float, Meta(gt=0, description="seconds for a node to serve its new certificate")] = 10.0


@dataclass(frozen=True)
class NodeTls:
    name: str
    host: str
    port: int
    server_name: str
    names: tuple[str, ...]
    cert_file: str
    key_file: str
    driver: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None   # None: files keep the writing user's ownership
    group: str | None = None


@dataclass(frozen=True)
class AcmeSettings:
    directory: str
    ca_bundle: str | None = None
    account_key_file: str = ""
    contact: str | None = None
    key_type: KeyType = KeyType.EC256
    eab_kid: str | None = None
    eab_hmac_key_file: str | None = None
    renew_fraction: float = 1 / 3
    timeout: float = 300.0


@dataclass(frozen=True)
class TlsSettings:
    nodes: tuple[NodeTls, ...]
    acme: AcmeSettings
    dns_provider: dict[str, Any]
    verify_ca: str | None = None
    lock_file: str = ""
    metrics_file: str | None = None
    reload_timeout: float = 10.0

    def node(self, name: str) -> NodeTls:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConfigError(f"no node {name!r} in tls.nodes", hint=f"known: {', '.join(n.name for n in self.nodes)}")


def load_tls_settings(cfg: Config) -> TlsSettings:
    from vaultops.files.loader import validate

    raw = cfg.section("tls")
    if not raw:
        raise ConfigError(f"{cfg.source} has no tls: section", hint="add one: `vaultops config example tls` prints it")
    section = validate(raw, TlsSection, source=cfg.source, prefix="tls", hint=_HINT)
    lb = raw.get("load_balancer_name", cfg.load_balancer)
    node_raw = _mapping(raw.get("nodes") or {}, "tls.nodes")
    nodes = tuple(_node(cfg, n, _mapping(node_raw.get(n.name) or {}, f"tls.nodes.{n.name}"), lb, raw)
                  for n in cfg.nodes)
    provider = dict(_mapping(raw.get("dns_provider") or {}, "tls.dns_provider"))
    if "resolvers" in raw:
        provider.setdefault("resolvers", list(raw["resolvers"]))
    state = cfg.state_dir
    verify_ca = raw.get("verify_ca") or cfg.ca_cert
    return TlsSettings(
        nodes=nodes, acme=parse_acme(cfg, _mapping(raw.get("acme") or {}, "tls.acme"), state),
        dns_provider=provider,
        verify_ca=str(cfg.resolve_path(verify_ca)) if verify_ca else None,
        lock_file=str(cfg.resolve_path(raw.get("lock_file") or str(state / "tls-renew.lock"))),
        metrics_file=str(cfg.resolve_path(raw["metrics_file"])) if raw.get("metrics_file") else None,
        reload_timeout=section.reload_timeout,
    )


def _node(cfg: Config, node: NodeConfig, raw: dict[str, Any], lb: str | None, top: dict[str, Any]) -> NodeTls:
    parts = urlsplit(node.address)
    host = parts.hostname or node.name
    server_name = node.tls_server_name or host
    names = list(raw.get("names") or [server_name])
    if lb and lb not in names:
        names.append(lb)
    for key in ("cert_file", "key_file"):
        if not raw.get(key):
            raise ConfigError(f"tls.nodes.{node.name}.{key} is missing",
                              hint="give the paths OpenBao's listener reads (tls_cert_file / tls_key_file)")
    return NodeTls(name=node.name, host=host, port=parts.port or 8200, server_name=server_name,
                   names=tuple(names), cert_file=str(raw["cert_file"]), key_file=str(raw["key_file"]),
                   driver=dict(node.driver), owner=_account(raw, top, "owner", node.name),
                   group=_account(raw, top, "group", node.name))


def _account(raw: dict[str, Any], top: dict[str, Any], key: str, node: str) -> str | None:
    """tls.nodes.NODE.KEY, else tls.KEY; a YAML number (uid/gid) becomes its digits."""
    value = raw.get(key, top.get(key))
    if value is None or (isinstance(value, (str, int)) and not isinstance(value, bool)):
        return None if value is None else str(value)
    raise ConfigError(f"tls.nodes.{node}.{key} (or tls.{key}) must be a user/group name or number",
                      hint="e.g. owner: openbao, group: openbao")


def parse_acme(cfg: Config, raw: dict[str, Any], state: Any) -> AcmeSettings:
    from vaultops.files.loader import validate

    acme = validate(raw, AcmeSection, source=cfg.source, prefix="tls.acme", hint=_HINT)
    directory = DIRECTORIES.get(acme.directory, acme.directory)
    if not directory.startswith("https://"):
        raise ConfigError(f"{cfg.source}: tls.acme.directory: {acme.directory[:80]!r} is not usable",
                          hint="use production, staging or an https:// directory URL")
    path = lambda v: str(cfg.resolve_path(v)) if v else None  # noqa: E731
    return AcmeSettings(
        directory=directory, ca_bundle=path(acme.ca_bundle),
        account_key_file=path(acme.account_key_file) or os.fspath(state / "acme-account.pem"),
        contact=acme.contact, key_type=acme.key_type, eab_kid=acme.eab.kid if acme.eab else None,
        eab_hmac_key_file=path(acme.eab.hmac_key_file) if acme.eab else None,
        renew_fraction=acme.renew_fraction, timeout=acme.timeout)


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a mapping", hint=_HINT)
    return value

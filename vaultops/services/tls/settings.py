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
from typing import Any
from urllib.parse import urlsplit

from vaultops.config import Config, NodeConfig
from vaultops.errors import ConfigError

DIRECTORIES = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}


class KeyType(enum.Enum):
    EC256 = "ec256"
    RSA2048 = "rsa2048"


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
    raw = cfg.section("tls")
    if not raw:
        raise ConfigError("vaultops.yaml has no tls: section", hint="see `vaultops tls --help` for its keys")
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
        reload_timeout=float(raw.get("reload_timeout", 10.0)),
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
    directory = str(raw.get("directory") or "")
    directory = DIRECTORIES.get(directory, directory)
    if not directory.startswith("https://"):
        raise ConfigError(f"tls.acme.directory {raw.get('directory')!r} is not usable",
                          hint="use production, staging or an https:// directory URL")
    try:
        key_type = KeyType(str(raw.get("key_type", "ec256")).lower())
    except ValueError:
        raise ConfigError(f"tls.acme.key_type {raw.get('key_type')!r}", hint="use ec256 or rsa2048") from None
    fraction = float(raw.get("renew_fraction", 1 / 3))
    if not 0 < fraction < 1:
        raise ConfigError(f"tls.acme.renew_fraction {fraction} must be between 0 and 1", hint="e.g. 0.33")
    eab = _mapping(raw.get("eab") or {}, "tls.acme.eab")
    if eab and not (eab.get("kid") and eab.get("hmac_key_file")):
        raise ConfigError("tls.acme.eab needs kid and hmac_key_file", hint="both come from your CA")
    path = lambda v: str(cfg.resolve_path(v)) if v else None  # noqa: E731
    return AcmeSettings(
        directory=directory, ca_bundle=path(raw.get("ca_bundle")),
        account_key_file=path(raw.get("account_key_file")) or os.fspath(state / "acme-account.pem"),
        contact=raw.get("contact"), key_type=key_type, eab_kid=eab.get("kid"),
        eab_hmac_key_file=path(eab.get("hmac_key_file")), renew_fraction=fraction,
        timeout=float(raw.get("timeout", 300)))


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a mapping", hint="see `vaultops tls --help`")
    return value

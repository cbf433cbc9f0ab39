"""Certificates for `vaultops sandbox up --tls` from a local ACME server (Pebble), via DNS-01.

The sandbox calls `issue_sandbox_certs` instead of its own throw-away CA when
its config names an ACME directory. `tls_config` is the same shape as the
`tls:` section (see vaultops.services.tls.settings), of which only these keys
are read:

    acme: {directory: https://127.0.0.1:14000/dir, ca_bundle: pebble-listener-ca.pem,
           roots_url: https://127.0.0.1:15000/roots/0,   # Pebble's issuing root (or root_ca_file)
           account_key_file: ..., key_type: ec256}
    dns_provider: {type: rfc2136, server: 127.0.0.1:5353, key_name: ..., key_file: ...}
    load_balancer_name: lb.vaultops.test                   # optional extra SAN on every node

Each node's FQDN is `<node>.<domain>`; clients reach 127.0.0.1 with that name as SNI.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaultops.errors import ConfigError
from vaultops.files.atomic import atomic_write_bytes
from vaultops.services.tls.install import CERT_MODE, KEY_MODE, check_pair
from vaultops.services.tls.settings import parse_acme


@dataclass(frozen=True)
class SandboxCerts:
    ca_file: Path                              # the ACME server's issuing root: trust this
    files: dict[str, tuple[Path, Path]]        # node -> (cert_file, key_file)


def issue_sandbox_certs(node_names: Sequence[str], tls_config: Mapping[str, Any], *,
                        targets: Mapping[str, tuple[Path, Path]], out_dir: Path,
                        domain: str = "vaultops.test") -> SandboxCerts:
    """Issue one certificate per node concurrently and write chain (0644) and key (0600).

    targets: node -> (cert_path, key_path). out_dir receives `acme-root.pem` (and the
    account key unless tls_config names one). Raises AcmeError/DNSError/ConfigError.
    """
    from vaultops.config import Config
    from vaultops.dns import get_provider
    from vaultops.services.tls.acme_client import AcmeIssuer

    acme_raw = dict(tls_config.get("acme") or {})
    acme_raw.setdefault("account_key_file", str(out_dir / "acme-account.pem"))
    settings = parse_acme(Config(cluster_name="sandbox", storage="raft", nodes=()), acme_raw, out_dir)
    issuer = AcmeIssuer(settings, get_provider(dict(tls_config.get("dns_provider") or {})))
    issuer.register()
    lb = tls_config.get("load_balancer_name")

    def one(node: str) -> None:
        names = (f"{node}.{domain}",) + ((lb,) if lb else ())
        issued = issuer.issue(names)
        from vaultops.services.tls.install import Pair

        check_pair(node, Pair(key_pem=issued.key_pem, chain_pem=issued.fullchain_pem))
        cert_path, key_path = targets[node]
        atomic_write_bytes(key_path, issued.key_pem, mode=KEY_MODE)
        atomic_write_bytes(cert_path, issued.fullchain_pem, mode=CERT_MODE)

    with ThreadPoolExecutor(max_workers=max(1, len(node_names))) as pool:
        list(pool.map(one, node_names))
    ca_file = out_dir / "acme-root.pem"
    atomic_write_bytes(ca_file, _root(acme_raw, settings.ca_bundle), mode=CERT_MODE)
    return SandboxCerts(ca_file=ca_file, files={n: targets[n] for n in node_names})


def _root(acme_raw: Mapping[str, Any], ca_bundle: str | None) -> bytes:
    if acme_raw.get("root_ca_file"):
        return Path(acme_raw["root_ca_file"]).read_bytes()
    url = acme_raw.get("roots_url")
    if not url:
        raise ConfigError("sandbox tls.acme needs roots_url (Pebble: https://127.0.0.1:15000/roots/0) "
                          "or root_ca_file", hint="clients must trust the ACME server's issuing root")
    ctx = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
        return bytes(resp.read())

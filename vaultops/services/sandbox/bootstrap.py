"""Bring a sandbox from nothing to an initialised (and maybe unsealed) cluster."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from vaultops.errors import SandboxError, VaultOpsError
from vaultops.files.atomic import atomic_write_text
from vaultops.retry import poll
from vaultops.services.sandbox import postgres
from vaultops.services.sandbox.cluster import (DEMO_KEYHOLDERS, DOMAIN, SECRETS_NAME, SHARES, THRESHOLD, NodeRecord,
                                      Sandbox, SandboxRecord, SandboxSpec, binary_for, free_port, node_name,
                                      wait_port)
from vaultops.vault import NodeClient, cluster, fan_out


def bootstrap(box: Sandbox, spec: SandboxSpec, progress: Callable[[str], None]) -> None:
    binary, version = binary_for(spec)
    nodes = [NodeRecord(node_name(i), free_port(), free_port(), str(box.dir / node_name(i)))
             for i in range(1, spec.nodes + 1)]
    rec = SandboxRecord(spec=spec, nodes=nodes, version=version)
    box.save_record(rec)
    if spec.storage == "postgresql":
        progress("starting PostgreSQL")
        rec.pg_port = free_port()
        rec.pg_dir = str(postgres.start(spec.name, rec.pg_port))
        box.save_record(rec)
    tls = _make_tls(box, nodes, spec.acme_config) if spec.tls or spec.acme_config else None
    for n in nodes:
        _write_node(n, nodes, rec, binary, tls)
    _write_config(box, rec, tls)
    progress(f"starting {len(nodes)} OpenBao {version} node(s) ({spec.storage})")
    drivers = box.drivers()
    for n in nodes:
        drivers[n.name].start()
    for n in nodes:
        wait_port(n.api_port)
    clients = box.clients(token=False)
    progress("initialising: 5 shares, threshold 3")
    result = _initialize(clients[0], box)
    _write_secrets(box, result)
    if not (spec.sealed and spec.cold):
        progress("unsealing every node")
        unseal_nodes(clients, list(result.keys_b64[:THRESHOLD]))
        wait_active(clients)
        if spec.storage == "raft" and len(nodes) > 1:
            progress("waiting for autopilot to promote every node to voter (~10 s)")
            wait_raft_healthy(box.clients(token=False), token=result.root_token, voters=len(nodes))
    if spec.sealed and not spec.cold:
        # The day that matters: after an outage every node needs the threshold on its own,
        # and the ceremony fans each keyholder's share out to every sealed node.
        progress("restarting every node (an outage): each comes back sealed")
        box.restart_sealed()
    progress(f"ready: {box.config_path}")


def _initialize(client: NodeClient, box: Sandbox) -> Any:
    """Initialise through the same service as `vaultops init` (demo keyholders, manifest)."""
    from vaultops.services.ceremony import init as initialize

    return initialize.initialize_cluster(client, shares=SHARES, threshold=THRESHOLD,
                                         keyholders=list(DEMO_KEYHOLDERS),
                                         manifest_path=box.dir / "keyholders.yaml")


def _write_secrets(box: Sandbox, result: Any) -> None:
    secrets = {
        "warning": "SANDBOX MATERIAL ONLY: throwaway shares and root token of a local test cluster",
        "root_token": result.root_token,
        "unseal_shares_b64": list(result.keys_b64),
        "keyholders": dict(zip(DEMO_KEYHOLDERS, result.keys_b64, strict=False)),
    }
    atomic_write_text(box.dir / SECRETS_NAME, json.dumps(secrets, indent=2) + "\n", mode=0o600)


def _make_tls(box: Sandbox, nodes: list[NodeRecord], acme_config: str | None) -> dict[str, Any]:
    tls_dir = box.dir / "tls"
    tls_dir.mkdir(exist_ok=True)
    if acme_config:
        return _acme_tls(box, nodes, acme_config, tls_dir)
    from vaultops.services.sandbox import certs

    ca_cert, ca_key = certs.make_ca(tls_dir)
    for n in nodes:
        certs.issue(ca_cert, ca_key, [f"{n.name}.{DOMAIN}", "localhost"],
                    Path(n.dir) / "tls.crt", Path(n.dir) / "tls.key")
    return {"ca": str(ca_cert)}


def _acme_tls(box: Sandbox, nodes: list[NodeRecord], acme_config: str, tls_dir: Path) -> dict[str, Any]:
    """Per-node certificates from a local ACME server (Pebble) by DNS-01, and a tls: section to renew them."""
    from vaultops.errors import ConfigError
    from vaultops.services.tls.sandbox_issue import issue_sandbox_certs

    from vaultops.files.loader import CONFIG_CAP, read_yaml

    section = read_yaml(acme_config, cap=CONFIG_CAP, what="sandbox ACME settings") or {}
    if not isinstance(section, dict) or not isinstance(section.get("tls", {}), dict):
        raise ConfigError(f"{acme_config}: (top): expected a mapping (a tls: section)",
                          hint="give a YAML file with acme: and dns_provider: as in the tls: section")
    section = dict(section.get("tls") or section)
    section["acme"] = {**section.get("acme", {}), "account_key_file": str(tls_dir / "acme-account.pem")}
    targets = {n.name: (Path(n.dir) / "tls.crt", Path(n.dir) / "tls.key") for n in nodes}
    issued = issue_sandbox_certs([n.name for n in nodes], section, targets=targets, out_dir=tls_dir, domain=DOMAIN)
    section["nodes"] = {n: {"cert_file": str(c), "key_file": str(k)} for n, (c, k) in issued.files.items()}
    section.setdefault("verify_ca", str(issued.ca_file))
    section.setdefault("lock_file", str(tls_dir / "tls.lock"))
    return {"ca": str(issued.ca_file), "section": section}


def _hcl_storage(n: NodeRecord, nodes: list[NodeRecord], rec: SandboxRecord, tls: dict | None) -> str:
    if rec.spec.storage == "postgresql":
        return (f'storage "postgresql" {{\n  connection_url = "{postgres.connection_url(rec.pg_port or 0)}"\n'
                f'  table = "{postgres.KV_TABLE}"\n  ha_enabled = "true"\n  ha_table = "{postgres.HA_TABLE}"\n}}\n')
    joins = ""
    for other in nodes:
        if other is n:
            continue
        scheme = "https" if tls else "http"
        extra = (f'\n    leader_ca_cert_file = "{tls["ca"]}"\n    leader_tls_servername = "{other.name}.{DOMAIN}"'
                 if tls else "")
        joins += f'  retry_join {{\n    leader_api_addr = "{scheme}://127.0.0.1:{other.api_port}"{extra}\n  }}\n'
    # performance_multiplier 1 (production guidance; terraform sets it too): a leader a few seconds after
    # the last unseal (median 3.5-3.7 s, scripts/bench/leader_after_unseal.py), not the default's 15-22 s.
    timing = (f"  performance_multiplier = {rec.spec.performance_multiplier}\n"
              if rec.spec.performance_multiplier else "")
    return f'storage "raft" {{\n  path = "{n.dir}/data"\n  node_id = "{n.name}"\n{timing}{joins}}}\n'


def _write_node(n: NodeRecord, nodes: list[NodeRecord], rec: SandboxRecord, binary: Path,
                tls: dict | None) -> None:
    folder = Path(n.dir)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    listener = (f'  tls_cert_file = "{folder}/tls.crt"\n  tls_key_file = "{folder}/tls.key"\n' if tls
                else "  tls_disable = true\n")
    # Sandbox only: OpenBao >= 2.5.3 disables the unauthenticated sys/generate-root/* endpoints by default
    # and has no share-based replacement; the demo/tests of `vaultops generate-root` need them back.
    listener += "  disable_unauthed_generate_root_endpoints = false\n"
    scheme = "https" if tls else "http"
    hcl = (_hcl_storage(n, nodes, rec, tls)
           + f'listener "tcp" {{\n  address = "127.0.0.1:{n.api_port}"\n'
             f'  cluster_address = "127.0.0.1:{n.cluster_port}"\n{listener}}}\n'
           + f'api_addr = "{scheme}://127.0.0.1:{n.api_port}"\n'
             f'cluster_addr = "https://127.0.0.1:{rec.spec.cluster_addr_ports.get(n.name, n.cluster_port)}"\n'
             f'ui = false\nlog_level = "info"\npid_file = "{folder}/bao.server.pid"\n')
    atomic_write_text(folder / "config.hcl", hcl)
    atomic_write_text(folder / "binary", f"{binary}\n")


def _write_config(box: Sandbox, rec: SandboxRecord, tls: dict | None) -> None:
    scheme = "https" if tls else "http"
    cluster: dict[str, Any] = {"name": f"sandbox-{rec.spec.name}", "storage": rec.spec.storage}
    if tls:
        cluster["ca_cert"] = tls["ca"]
    nodes = []
    for n in rec.nodes:
        item: dict[str, Any] = {"name": n.name, "address": f"{scheme}://127.0.0.1:{n.api_port}",
                                "driver": {"type": "local", "dir": n.dir}}
        if tls:
            item["tls_server_name"] = f"{n.name}.{DOMAIN}"
        nodes.append(item)
    doc = {"cluster": cluster, "nodes": nodes,
           "journal": {"path": str(box.dir / "journal.jsonl")},
           "keyholders": {"manifest": str(box.dir / "keyholders.yaml")},
           "sandbox": {"name": rec.spec.name, "secrets_file": str(box.dir / SECRETS_NAME),
                       "state_dir": str(box.dir / "state")}}
    if rec.spec.storage == "raft":
        # `vaultops backup run` works out of the box (the README tour uses it): into the sandbox's folder.
        doc["backup"] = {"sinks": [{"type": "local", "path": str(box.dir / "backups")}]}
    if tls and tls.get("section"):
        doc["tls"] = tls["section"]
    header = "# vaultops sandbox: a throwaway local cluster. Secrets are in " + SECRETS_NAME + "\n"
    atomic_write_text(box.config_path, header + yaml.safe_dump(doc, sort_keys=False))


# -- waiting ------------------------------------------------------------------------


def unseal_nodes(clients: Sequence[NodeClient], shares: Sequence[str], *, timeout: float = 60.0) -> None:
    """Submit shares to every sealed node at once and follow each until it reports unsealed.

    Through the one share-submission path (services/ceremony/submit.py): a raft follower gets
    shares only once it says initialised, is followed while it joins, and gets them again if
    its join never completes.
    """
    from vaultops.services.ceremony.submit import unseal_node

    results = fan_out(list(clients), lambda c: unseal_node(c, shares, timeout=timeout, error=SandboxError),
                      timeout=timeout + 5)
    for r in results:
        if r.error is not None:
            raise r.error
        if r.value is None or r.value.sealed:
            why = f": it refused the shares ({r.value.rejected})" if r.value and r.value.rejected else ""
            raise SandboxError(f"{r.node}: still sealed after {timeout:g}s{why}", hint="see the node's bao.log")


def wait_raft_healthy(clients: Sequence[NodeClient], *, token: str, voters: int, timeout: float = 60.0) -> None:
    """Until autopilot reports healthy with *voters* voters (new followers are promoted after ~10 s)."""
    def healthy() -> bool | None:
        for c in clients:  # the first node that answers speaks for the cluster
            c.token = token
            try:
                ap = c.raft.autopilot_state()
            except VaultOpsError:
                continue
            return True if ap.healthy and len(ap.voters) == voters else None
        return None
    poll(healthy, timeout=timeout, interval=0.5, what=f"raft healthy with {voters} voters", error=SandboxError,
         hint="see the nodes' bao.log")


def wait_active(clients: Sequence[NodeClient], *, timeout: float = 30.0) -> str:
    """Until one node answers sys/health 200; returns its name (a sandbox elects within a few seconds)."""
    return cluster.wait_active(clients, timeout=timeout, error=SandboxError).name


__all__ = ["bootstrap", "unseal_nodes", "wait_active", "wait_raft_healthy"]

"""The schema of vaultops.yaml: the core sections here, each service's section from its owner.

    cluster, nodes, journal, keyholders, sandbox   this module
    backup (and auth)                              vaultops.services.backup.settings
    tls                                            vaultops.services.tls.settings
    upgrade                                        vaultops.services.upgrade.settings
    recovery                                       vaultops.services.recovery.settings

Imported only when a file is validated (msgspec is not needed by `vaultops --help`).
`vaultops.files.loader.schema(ConfigFile)` is the JSON Schema, with a description for every key.
Free-form mappings (a node's `driver`, `tls.dns_provider`, `journal.anchor`, `upgrade.lease`)
are validated by the plugin that reads them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from vaultops.files.loader import Invalid
from vaultops.files.model import Model, check_name, check_url
from vaultops.services.backup.settings import BackupSection, LoginSettings
from vaultops.services.recovery.settings import RecoverySection
from vaultops.services.tls.settings import TlsSection
from vaultops.services.upgrade.settings import UpgradeSection

Storage = Literal["raft", "consul", "postgresql", "external"]


class ClusterSection(Model):
    name: Annotated[str, Meta(description="cluster name: used in backup names, state and lock files")] = "default"
    storage: Annotated[Storage, Meta(description="storage backend of the cluster")] = "raft"
    ca_cert: Annotated[str | None, Meta(
        description="PEM bundle that signed the nodes' certificates (relative to vaultops.yaml)")] = None
    token_file: Annotated[str | None, Meta(
        description="file holding the Vault token (after VAULT_TOKEN/BAO_TOKEN, before ~/.vault-token)")] = None
    load_balancer: Annotated[str | None, Meta(description="DNS name clients use for the cluster")] = None

    def __post_init__(self) -> None:
        check_name("cluster", self.name, "name")


class NodeSection(Model):
    name: Annotated[str, Meta(description="node name, unique in the file (letters, digits, '-', '_', '.')")]
    address: Annotated[str, Meta(description="API address, e.g. https://vault-1.example.com:8200")]
    driver: Annotated[dict[str, Any] | None, Meta(
        description="how vaultops reaches the node's host: {type: ssh, host: ...} or {type: local, dir: ...}; "
                    "keys are validated by the driver; ssh `config_file`: the server's HCL file, whose seal "
                    "and plugin \"kms\" stanzas the upgrade preflight checks")] = None
    tls_server_name: Annotated[str | None, Meta(
        description="name to verify the node's certificate against, when it differs from the address")] = None

    def __post_init__(self) -> None:
        from vaultops.drivers import DRIVERS

        check_name("node", self.name, "name")
        check_url(self.address, "address")
        kind = (self.driver or {}).get("type", "ssh")
        if kind not in DRIVERS:
            raise Invalid("driver.type", f"unknown driver type {str(kind)[:40]!r}",
                          f"use one of {', '.join(DRIVERS)}")


class JournalSection(Model):
    path: Annotated[str | None, Meta(
        description="the hash-chained operator journal (default: <state dir>/journal.jsonl)")] = None
    anchor: Annotated[dict[str, Any] | None, Meta(
        description="where the journal's head is anchored outside the file (validated by the journal)")] = None


class KeyholdersSection(Model):
    manifest: Annotated[str | None, Meta(description="the keyholder manifest (relative to vaultops.yaml)")] = None


class SandboxSection(Model):
    name: Annotated[str | None, Meta(description="the sandbox this file belongs to (written by sandbox up)")] = None
    secrets_file: Annotated[str | None, Meta(
        description="the sandbox's secrets file: shares and root token (never for production)")] = None
    state_dir: Annotated[str | None, Meta(
        description="where this sandbox's run state, upgrade snapshots and backup lock/last-run files go "
                    "(relative to vaultops.yaml; $VAULTOPS_STATE_DIR still wins): inside the sandbox's "
                    "folder, so `sandbox down` removes them")] = None

    def __post_init__(self) -> None:
        if self.name is not None:
            check_name("sandbox", self.name, "name")


class ConfigFile(Model, kw_only=True):
    """vaultops.yaml."""

    cluster: Annotated[ClusterSection | None, Meta(description="the cluster as a whole")] = None
    nodes: Annotated[list[NodeSection], Meta(min_length=1, description="the cluster's nodes")]
    journal: Annotated[JournalSection | None, Meta(description="the operator journal")] = None
    keyholders: Annotated[KeyholdersSection | None, Meta(description="who holds the unseal shares")] = None
    backup: Annotated[BackupSection | None, Meta(description="verified snapshot backups")] = None
    tls: Annotated[TlsSection | None, Meta(description="node certificates and ACME renewal")] = None
    upgrade: Annotated[UpgradeSection | None, Meta(description="rolling upgrades")] = None
    sandbox: Annotated[SandboxSection | None, Meta(description="set by `vaultops sandbox up`")] = None
    recovery: Annotated[RecoverySection | None, Meta(
        description="disaster recovery: where each node keeps its raft data, sentinel paths")] = None
    auth: Annotated[LoginSettings | None, Meta(
        description="reserved: a login method with backup.auth's keys; commands use the token lookup today")] = None

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for i, node in enumerate(self.nodes):
            if node.name in seen:
                raise Invalid(f"nodes[{i}].name", f"{node.name!r} is used twice", "node names must be unique")
            seen.add(node.name)
        for name in (self.tls.nodes if self.tls else {}):
            if name not in seen:
                raise Invalid(f"tls.nodes.{name[:40]}", "no node of that name in nodes",
                              f"known nodes: {', '.join(sorted(seen))}")


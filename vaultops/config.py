"""The cluster inventory: vaultops.yaml, or one node from VAULT_ADDR/BAO_ADDR.

Search order: --config, $VAULTOPS_CONFIG, ./vaultops.yaml, ~/.config/vaultops/vaultops.yaml.

    cluster:
      name: prod
      storage: raft            # raft | consul | postgresql | external
      ca_cert: /etc/vaultops/ca.pem
      token_file: ~/.vault-token
      load_balancer: vault.example.com
    nodes:
      - name: vault-1
        address: https://vault-1.example.com:8200
        driver: {type: ssh, host: vault-1}
    journal: {path: ~/.local/state/vaultops/journal.jsonl}
    keyholders: {manifest: keyholders.yaml}
    backup: {...}   tls: {...}   upgrade: {...}   sandbox: {...}   recovery: {...}

The whole file is validated when it is read (vaultops.schema: every section, each
from the service that owns it; vaultops.files.loader: size cap, strict YAML, one error naming
file, key and problem). `Config.section(name)` keeps each section as its plain mapping
for the service that reads it, which validates it again when given a Config built in code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vaultops.errors import ConfigError

STORAGE_TYPES = ("raft", "consul", "postgresql", "external")
SECTIONS = ("cluster", "nodes", "journal", "keyholders", "backup", "tls", "upgrade", "sandbox", "auth", "recovery")
CONFIG_NAME = "vaultops.yaml"


@dataclass(frozen=True)
class NodeConfig:
    name: str
    address: str
    driver: dict[str, Any] = field(default_factory=dict)
    tls_server_name: str | None = None


@dataclass(frozen=True)
class Config:
    cluster_name: str
    storage: str
    nodes: tuple[NodeConfig, ...]
    ca_cert: str | None = None
    token_file: str | None = None
    load_balancer: str | None = None
    path: Path | None = None
    sections: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """How errors name this configuration: its file, or 'config' when built in code."""
        return str(self.path) if self.path is not None else "config"

    def section(self, name: str) -> dict[str, Any]:
        value = self.sections.get(name) or {}
        return dict(value)

    def node(self, name: str) -> NodeConfig:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise ConfigError(f"unknown node {name!r}", hint=f"known nodes: {known}")

    def resolve_path(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(os.path.expanduser(value))
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p

    @property
    def state_dir(self) -> Path:
        """$VAULTOPS_STATE_DIR, else a sandbox's own state folder (inside the sandbox: `sandbox down`
        removes it with everything the sandbox made), else ~/.local/state/vaultops."""
        own = self.section("sandbox").get("state_dir")
        if own and not os.environ.get("VAULTOPS_STATE_DIR"):
            return self.resolve_path(str(own))
        return default_state_dir()

    @property
    def journal_path(self) -> Path:
        configured = self.section("journal").get("path")
        return self.resolve_path(configured) if configured else self.state_dir / "journal.jsonl"


def default_state_dir() -> Path:
    env = os.environ.get("VAULTOPS_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "vaultops"


def find_config_file(explicit: str | None) -> Path | None:
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist", hint="check the --config path")
        return p
    env = os.environ.get("VAULTOPS_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file {p} (from VAULTOPS_CONFIG) does not exist",
                              hint="fix or unset VAULTOPS_CONFIG")
        return p
    for candidate in (Path.cwd() / CONFIG_NAME, Path.home() / ".config" / "vaultops" / CONFIG_NAME):
        if candidate.is_file():
            return candidate
    return None


def load_config(explicit: str | None = None) -> Config:
    path = find_config_file(explicit)
    if path is None:
        return config_from_env()
    return parse_config_file(path)


def parse_config_file(path: Path) -> Config:
    from vaultops.files.loader import CONFIG_CAP, read_yaml

    return parse_config(read_yaml(path, cap=CONFIG_CAP, what="config file"), path=path)


def config_from_env() -> Config:
    addr = os.environ.get("VAULT_ADDR") or os.environ.get("BAO_ADDR")
    if not addr:
        raise ConfigError("no vaultops.yaml found and VAULT_ADDR/BAO_ADDR is not set",
                          hint="pass --config FILE or export VAULT_ADDR=https://vault:8200")
    _check_address(addr, "VAULT_ADDR", None)
    return Config(cluster_name="default", storage="raft",
                  nodes=(NodeConfig(name=urlsplit(addr).hostname or "vault", address=addr.rstrip("/")),))


def parse_config(data: Any, *, path: Path | None = None) -> Config:
    from vaultops.files.loader import validate
    from vaultops.schema import ClusterSection, ConfigFile

    where = str(path) if path else "config"
    doc = validate(data, ConfigFile, source=where)
    cluster = doc.cluster or ClusterSection()
    nodes = tuple(NodeConfig(name=n.name, address=n.address.rstrip("/"), driver=dict(n.driver or {}),
                             tls_server_name=n.tls_server_name) for n in doc.nodes)
    cfg = Config(
        cluster_name=cluster.name, storage=cluster.storage, nodes=nodes,
        ca_cert=cluster.ca_cert, token_file=cluster.token_file, load_balancer=cluster.load_balancer,
        path=path, sections={k: v for k, v in data.items() if k not in ("cluster", "nodes") and v is not None},
    )
    if cfg.ca_cert and not cfg.resolve_path(cfg.ca_cert).is_file():
        raise ConfigError(f"{where}: cluster.ca_cert: {cfg.ca_cert!r} does not exist",
                          hint="point it at the PEM bundle that signed the nodes' certificates")
    return cfg


def _check_address(address: str, key: str, where: str | None) -> None:
    parts = urlsplit(address)
    prefix = f"{where}: " if where else ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{prefix}{key} {address!r} is not an http(s) URL",
                          hint="write it as https://HOST:8200")

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
    backup: {...}   tls: {...}   upgrade: {...}   sandbox: {...}

Sections owned by later features are kept as plain mappings here and
validated by the service that reads them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vaultops.errors import ConfigError

STORAGE_TYPES = ("raft", "consul", "postgresql", "external")
SECTIONS = ("cluster", "nodes", "journal", "keyholders", "backup", "tls", "upgrade", "sandbox", "auth")
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
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML", hint="fix the syntax") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})", hint="check the file permissions") from None
    return parse_config(data, path=path)


def config_from_env() -> Config:
    addr = os.environ.get("VAULT_ADDR") or os.environ.get("BAO_ADDR")
    if not addr:
        raise ConfigError("no vaultops.yaml found and VAULT_ADDR/BAO_ADDR is not set",
                          hint="pass --config FILE or export VAULT_ADDR=https://vault:8200")
    _check_address(addr, "VAULT_ADDR", None)
    return Config(cluster_name="default", storage="raft",
                  nodes=(NodeConfig(name=urlsplit(addr).hostname or "vault", address=addr.rstrip("/")),))


def parse_config(data: Any, *, path: Path | None = None) -> Config:
    where = str(path) if path else "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: top level must be a mapping", hint="start with 'cluster:' and 'nodes:'")
    for key in data:
        if key not in SECTIONS:
            raise ConfigError(f"{where}: unknown key {key!r}", hint=f"known keys: {', '.join(SECTIONS)}")
    cluster = _mapping(data.get("cluster") or {}, "cluster", where)
    storage = cluster.get("storage", "raft")
    if storage not in STORAGE_TYPES:
        raise ConfigError(f"{where}: cluster.storage is {storage!r}",
                          hint=f"use one of {', '.join(STORAGE_TYPES)}")
    nodes = _parse_nodes(data.get("nodes"), where)
    for key in ("ca_cert", "token_file", "load_balancer", "name"):
        if key in cluster and not isinstance(cluster[key], str):
            raise ConfigError(f"{where}: cluster.{key} must be a string")
    for name in SECTIONS[2:]:
        if name in data and data[name] is not None:
            _mapping(data[name], name, where)
    cfg = Config(
        cluster_name=cluster.get("name", "default"), storage=storage, nodes=nodes,
        ca_cert=cluster.get("ca_cert"), token_file=cluster.get("token_file"),
        load_balancer=cluster.get("load_balancer"), path=path,
        sections={k: v for k, v in data.items() if k not in ("cluster", "nodes")},
    )
    if cfg.ca_cert and not cfg.resolve_path(cfg.ca_cert).is_file():
        raise ConfigError(f"{where}: cluster.ca_cert {cfg.ca_cert!r} does not exist",
                          hint="point it at the PEM bundle that signed the nodes' certificates")
    return cfg


def _mapping(value: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a mapping, got {type(value).__name__}")
    return value


def _parse_nodes(raw: Any, where: str) -> tuple[NodeConfig, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: nodes must be a non-empty list",
                          hint="add '- {name: vault-1, address: https://vault-1:8200}'")
    nodes: list[NodeConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        key = f"nodes[{i}]"
        item = _mapping(item, key, where)
        unknown = set(item) - {"name", "address", "driver", "tls_server_name"}
        if unknown:
            raise ConfigError(f"{where}: {key} has unknown key {sorted(unknown)[0]!r}",
                              hint="node keys: name, address, driver, tls_server_name")
        name, address = item.get("name"), item.get("address")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: {key}.name is missing", hint="give every node a unique name")
        if name in seen:
            raise ConfigError(f"{where}: {key}.name {name!r} is used twice", hint="node names must be unique")
        seen.add(name)
        if not isinstance(address, str):
            raise ConfigError(f"{where}: {key}.address is missing", hint="e.g. https://vault-1:8200")
        _check_address(address, f"{key}.address", where)
        driver = _mapping(item.get("driver") or {}, f"{key}.driver", where)
        nodes.append(NodeConfig(name=name, address=address.rstrip("/"), driver=driver,
                                tls_server_name=item.get("tls_server_name")))
    return tuple(nodes)


def _check_address(address: str, key: str, where: str | None) -> None:
    parts = urlsplit(address)
    prefix = f"{where}: " if where else ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{prefix}{key} {address!r} is not an http(s) URL",
                          hint="write it as https://HOST:8200")

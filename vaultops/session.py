"""The composition root: what one vaultops invocation works with, built once and handed down.

    session = Session.from_args(args)            # the CLI entry point, once per command
    session.config                               # vaultops.yaml, loaded on first use
    session.clients()                            # a NodeClient per node (token, CA, --allow-insecure-http)
    session.clients(token=False, timeout=2)      # unauthenticated (seal-status, sys/health)
    session.new_clients()                        # not shared: for a caller that logs in on them (backups)
    session.journal                              # the operator journal, with --operator
    session.drivers()                            # node drivers by node name
    session.manifest_path(override)              # the keyholder manifest's path, or None
    session.backup_settings, session.tls_settings   # sections of vaultops.yaml, parsed on first use
    session.close()                              # the entry point, at the end

Every CLI handler and every TUI screen gets its Session; services receive the clients, drivers,
journal and settings they need as parameters and never build them. So a flag such as
--allow-insecure-http is read in exactly one place: here (the clients carry it on; the Consul
backup source follows the clients it is given).

Everything is lazy: `vaultops --help` and `vaultops shares encode` never load a config, and a
command loads vaultops.yaml once however many of these it asks for.
"""

from __future__ import annotations

import argparse
import functools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vaultops.consul.client import ConsulClient
    from vaultops.config import Config
    from vaultops.drivers import NodeDriver
    from vaultops.journal import Journal
    from vaultops.services.backup.settings import BackupSettings
    from vaultops.services.tls.settings import TlsSettings
    from vaultops.vault import NodeClient


@dataclass
class Session:
    config_path: str | None = None
    operator: str | None = None
    allow_insecure_http: bool = False
    debug: bool = False
    _clients: dict[tuple[bool, float], list[NodeClient]] = field(default_factory=dict, repr=False)
    _own: list[NodeClient] = field(default_factory=list, repr=False)
    # The console asks from worker threads: one set of clients per key, never two.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Session:
        return cls(config_path=getattr(args, "config", None), operator=getattr(args, "operator", None),
                   allow_insecure_http=bool(getattr(args, "allow_insecure_http", False)),
                   debug=bool(getattr(args, "debug", False)))

    @functools.cached_property
    def config(self) -> Config:
        from vaultops.config import load_config

        return load_config(self.config_path)

    @functools.cached_property
    def token(self) -> str | None:
        """VAULT_TOKEN, BAO_TOKEN, cluster.token_file, a sandbox's secrets file, ~/.vault-token."""
        from vaultops.vault.auth import resolve_token

        return resolve_token(self.config)

    def clients(self, *, token: bool = True, timeout: float | None = None) -> list[NodeClient]:
        """One client per configured node, in config order; the same objects for the same arguments."""
        from vaultops.vault.http import DEFAULT_TIMEOUT

        key = (token, timeout or DEFAULT_TIMEOUT)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._build(token=token, timeout=key[1])
            return self._clients[key]

    def new_clients(self, *, token: bool = False, timeout: float | None = None) -> list[NodeClient]:
        """Clients nobody else holds, for a caller that logs in on them (a backup identity sets and
        revokes its own token); closed with the session."""
        from vaultops.vault.http import DEFAULT_TIMEOUT

        clients = self._build(token=token, timeout=timeout or DEFAULT_TIMEOUT)
        with self._lock:
            self._own.extend(clients)
        return clients

    def _build(self, *, token: bool, timeout: float) -> list[NodeClient]:
        from vaultops.vault import cluster_clients

        return cluster_clients(self.config, token=self.token if token else None, use_token=False,
                               timeout=timeout, allow_insecure_http=self.allow_insecure_http)

    def client(self, node: str, *, token: bool = True, timeout: float | None = None) -> NodeClient:
        name = self.config.node(node).name   # a one-line error naming the known nodes
        return next(c for c in self.clients(token=token, timeout=timeout) if c.name == name)

    def authenticated(self, timeout: float | None = None) -> list[NodeClient] | None:
        """The token clients, or None when no token is found (nothing is built then)."""
        return self.clients(timeout=timeout) if self.token else None

    @functools.cached_property
    def journal(self) -> Journal:
        from vaultops.journal import journal_for

        return journal_for(self.config, operator=self.operator)

    def journal_of(self, config: Config) -> Journal:
        """The journal of another cluster's config (a sandbox this command started), with --operator."""
        from vaultops.journal import journal_for

        return journal_for(config, operator=self.operator)

    def drivers(self) -> dict[str, NodeDriver]:
        from vaultops.drivers import get_driver

        return {n.name: get_driver(n.name, n.driver) for n in self.config.nodes}

    def manifest_path(self, override: str | None = None) -> Path | None:
        """--manifest FILE, else keyholders.manifest of vaultops.yaml, else None."""
        if override:
            return Path(override)
        if not self.config.section("keyholders").get("manifest"):
            return None
        return self.required_manifest_path()

    def required_manifest_path(self, override: str | None = None) -> Path:
        """--manifest FILE, else keyholders.manifest of vaultops.yaml, else a ConfigError saying so."""
        if override:
            return Path(override)
        from vaultops.services.ceremony.manifest import manifest_path

        return manifest_path(self.config)

    @functools.cached_property
    def backup_settings(self) -> BackupSettings:
        from vaultops.services.backup.settings import load_settings

        return load_settings(self.config)

    @functools.cached_property
    def tls_settings(self) -> TlsSettings:
        from vaultops.services.tls.settings import load_tls_settings

        return load_tls_settings(self.config)

    def child_argv(self) -> list[str]:
        """The global options for a vaultops child process (the console's rekey and root screens)."""
        argv: list[str] = []
        path = self.config.path or self.config_path
        if path:
            argv += ["--config", str(path)]
        if self.operator:
            argv += ["--operator", self.operator]
        if self.allow_insecure_http:
            argv.append("--allow-insecure-http")
        return argv

    def consul(self, *, timeout: float | None = None) -> ConsulClient | None:
        """The Consul door of a cluster on `storage: consul` with `backup.consul` settings, else None."""
        from vaultops.consul import cluster_consul
        from vaultops.consul.client import TIMEOUT

        return cluster_consul(self.config, allow_insecure_http=self.allow_insecure_http, timeout=timeout or TIMEOUT)

    def close(self) -> None:
        with self._lock:
            everyone: list[Any] = [c for clients in self._clients.values() for c in clients] + self._own
            self._clients.clear()
            self._own.clear()
        for client in everyone:
            client.close()


__all__ = ["Session"]

"""The composition root: what one vaultops invocation works with, built once and handed down.

    session = Session.from_args(args)            # the CLI entry point, once per command
    session.config                               # vaultops.yaml, loaded on first use
    session.clients()                            # a NodeClient per node (token, CA, --allow-insecure-http)
    session.clients(token=False, timeout=2)      # unauthenticated (seal-status, sys/health)
    session.journal                              # the operator journal, with --operator
    session.drivers()                            # node drivers by node name
    session.manifest_path(override)              # the keyholder manifest's path, or None

Every CLI handler and every TUI screen gets its Session; services receive the clients, drivers,
journal and settings they need as parameters and never build them. So a flag such as
--allow-insecure-http is read in exactly one place.
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vaultops.config import Config
    from vaultops.drivers import NodeDriver
    from vaultops.journal import Journal
    from vaultops.vault import NodeClient


@dataclass
class Session:
    config_path: str | None = None
    operator: str | None = None
    allow_insecure_http: bool = False
    debug: bool = False
    _clients: dict[tuple[bool, float], list[NodeClient]] = field(default_factory=dict, repr=False)

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
        from vaultops.vault.client import cluster_clients
        from vaultops.vault.http import DEFAULT_TIMEOUT

        key = (token, timeout or DEFAULT_TIMEOUT)
        if key not in self._clients:
            self._clients[key] = cluster_clients(self.config, token=self.token if token else None, use_token=False,
                                                 timeout=key[1], allow_insecure_http=self.allow_insecure_http)
        return self._clients[key]

    def client(self, node: str, *, token: bool = True, timeout: float | None = None) -> NodeClient:
        name = self.config.node(node).name   # a one-line error naming the known nodes
        return next(c for c in self.clients(token=token, timeout=timeout) if c.name == name)

    @functools.cached_property
    def journal(self) -> Journal:
        from vaultops.journal import journal_for

        return journal_for(self.config, operator=self.operator)

    def drivers(self) -> dict[str, NodeDriver]:
        from vaultops.drivers import get_driver

        return {n.name: get_driver(n.name, n.driver) for n in self.config.nodes}

    def manifest_path(self, override: str | None = None) -> Path | None:
        """--manifest FILE, else keyholders.manifest of vaultops.yaml, else None."""
        if override:
            return Path(override)
        if not self.config.section("keyholders").get("manifest"):
            return None
        from vaultops.services.ceremony.manifest import manifest_path

        return manifest_path(self.config)

    def close(self) -> None:
        for clients in self._clients.values():
            for client in clients:
                client.close()
        self._clients.clear()


__all__ = ["Session"]

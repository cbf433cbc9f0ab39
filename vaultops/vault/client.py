"""One client per node; endpoints grouped by API path."""

from __future__ import annotations

from typing import Any

from vaultops.config import Config, NodeConfig
from vaultops.vault.auth import resolve_ca, resolve_token
from vaultops.vault.http import DEFAULT_TIMEOUT, HTTP, Transport
from vaultops.vault.sys_generate_root import GenerateRootEndpoints
from vaultops.vault.sys_ha import HAEndpoints
from vaultops.vault.sys_raft import RaftEndpoints
from vaultops.vault.sys_rotate import ROTATE_ROOT, RotateEndpoints
from vaultops.vault.sys_seal import SealEndpoints


class NodeClient:
    """Talks to one node: client.seal.status(), client.ha.health(), client.raft.autopilot_state() ..."""

    def __init__(self, name: str, address: str, *, ca_cert: str | None = None, token: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, allow_insecure_http: bool = False,
                 server_name: str | None = None, transport: HTTP | None = None) -> None:
        self.name = name
        self.address = address
        # What the operator allowed (--allow-insecure-http): a Consul backup source follows it too.
        self.allow_insecure_http = allow_insecure_http
        # Injectable: unit tests hand every client the one fake Vault (vaultops.testing.fake_vault).
        self.transport: HTTP = transport if transport is not None else Transport(
            address, node=name, ca_cert=ca_cert, token=token, timeout=timeout,
            allow_insecure_http=allow_insecure_http, server_name=server_name)
        self.seal = SealEndpoints(self.transport)
        self.ha = HAEndpoints(self.transport)
        self.raft = RaftEndpoints(self.transport)

    @property
    def token(self) -> str | None:
        return self.transport.token

    @token.setter
    def token(self, value: str | None) -> None:
        self.transport.token = value

    def rotate(self, prefix: str = ROTATE_ROOT) -> RotateEndpoints:
        return RotateEndpoints(self.transport, prefix=prefix)

    def generate_root(self, **kwargs: Any) -> GenerateRootEndpoints:
        return GenerateRootEndpoints(self.transport, **kwargs)

    # Logical and token endpoints used by canaries, backups and ceremonies.
    def read(self, path: str) -> dict[str, Any]:
        """GET {path} (token): a logical read, e.g. secret/data/x."""
        return self.transport.request("GET", path, auth=True).data

    def write(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT {path} (token): a logical write."""
        return self.transport.request("PUT", path, body=body, auth=True).data

    def delete(self, path: str) -> None:
        """DELETE {path} (token): a logical delete."""
        self.transport.request("DELETE", path, auth=True)

    def login(self, path: str, body: dict[str, Any]) -> str:
        """PUT auth/{path} (e.g. approle/login): returns the client token and keeps it."""
        data = self.transport.request("PUT", f"auth/{path}", body=body).data
        token = (data.get("auth") or {}).get("client_token")
        self.transport.token = token
        return token or ""

    def token_lookup_self(self) -> dict[str, Any]:
        """GET auth/token/lookup-self (token)."""
        return self.transport.request("GET", "auth/token/lookup-self", auth=True).data.get("data") or {}

    def token_revoke_self(self) -> None:
        """PUT auth/token/revoke-self (token)."""
        self.transport.request("PUT", "auth/token/revoke-self", auth=True)

    def close(self) -> None:
        self.transport.close()


def node_client(cfg: Config, node: NodeConfig, *, token: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                allow_insecure_http: bool = False) -> NodeClient:
    return NodeClient(node.name, node.address, ca_cert=resolve_ca(cfg), token=token, timeout=timeout,
                      allow_insecure_http=allow_insecure_http, server_name=node.tls_server_name)


def cluster_clients(cfg: Config, *, token: str | None = None, use_token: bool = True,
                    timeout: float = DEFAULT_TIMEOUT, allow_insecure_http: bool = False) -> list[NodeClient]:
    """A client per configured node, sharing the resolved token and CA."""
    if use_token and token is None:
        token = resolve_token(cfg)
    return [node_client(cfg, n, token=token, timeout=timeout, allow_insecure_http=allow_insecure_http)
            for n in cfg.nodes]

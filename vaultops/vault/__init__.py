"""The only code that talks HTTP to Vault/OpenBao."""

from vaultops.vault.client import NodeClient, cluster_clients, node_client
from vaultops.vault.fanout import NodeResult, fan_out

__all__ = ["NodeClient", "NodeResult", "cluster_clients", "fan_out", "node_client"]

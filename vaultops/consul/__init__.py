"""The only code that talks HTTP to Consul (the storage of HashiCorp Vault clusters on `storage "consul"`)."""

from vaultops.consul.client import (ConsulClient, ConsulFacts, RaftServer, SnapshotStream, TokenInfo, cluster_consul,
                                    consul_client, read_token)

__all__ = ["ConsulClient", "ConsulFacts", "RaftServer", "SnapshotStream", "TokenInfo", "cluster_consul",
           "consul_client", "read_token"]

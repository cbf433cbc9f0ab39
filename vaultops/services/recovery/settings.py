"""The `recovery:` section of vaultops.yaml (every key optional).

    recovery:
      sentinels: [secret/data/sentinel]   # read after a recovery (default: backup.drill.sentinels)
      stop_timeout: 60                    # seconds a node may take to stop
      wait_timeout: 180                   # longest wait for a leader, an unseal, a healthy voter
      peers_owner: openbao                # owner/group given to peers.json (default: the writing user's)
      peers_group: openbao
      nodes:                              # where each node keeps its raft data, when it cannot be read
        vault-1:                          # from the node's server configuration
          server_config: /etc/openbao/openbao.hcl   # read through the driver for the three below
          raft_path: /opt/openbao/data    # storage "raft" { path = ... }
          raft_id: vault-1                # storage "raft" { node_id = ... } (else the path's node-id file)
          cluster_address: 10.0.0.1:8201  # host:port of cluster_addr

A local (sandbox) node's server_config defaults to the config.hcl in its driver.dir.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from msgspec import Meta

from vaultops.files.model import Model

if TYPE_CHECKING:
    from vaultops.config import Config

Seconds = Annotated[float, Meta(gt=0)]


class RecoveryNode(Model):
    server_config: Annotated[str | None, Meta(
        description="the node's server configuration (HCL), read through its driver")] = None
    raft_path: Annotated[str | None, Meta(description="storage \"raft\" path on the node")] = None
    raft_id: Annotated[str | None, Meta(description="the node's raft server id")] = None
    cluster_address: Annotated[str | None, Meta(description="host:port of the node's cluster_addr")] = None


class RecoverySection(Model):
    sentinels: Annotated[list[str] | None, Meta(
        description="paths read to prove the data is back (default: backup.drill.sentinels)")] = None
    stop_timeout: Annotated[Seconds, Meta(description="seconds a node may take to stop")] = 60.0
    wait_timeout: Annotated[Seconds, Meta(
        description="longest wait for a leader, an unseal or a healthy voter before a step halts")] = 180.0
    peers_owner: Annotated[str | None, Meta(description="owner given to peers.json (name or id)")] = None
    peers_group: Annotated[str | None, Meta(description="group given to peers.json (name or id)")] = None
    nodes: Annotated[dict[str, RecoveryNode], Meta(
        description="node name -> where it keeps its raft data (when its server config cannot say)")] = {}


def recovery_section(cfg: Config) -> RecoverySection:
    from vaultops.files.loader import validate

    return validate(cfg.section("recovery"), RecoverySection, source=cfg.source, prefix="recovery",
                    hint="see the recovery: section in the README (\"When nodes are gone\")")


def sentinels(cfg: Config, section: RecoverySection) -> list[str]:
    if section.sentinels is not None:
        return list(section.sentinels)
    drill = cfg.section("backup").get("drill") or {}
    return [str(p) for p in drill.get("sentinels") or []] if isinstance(drill, dict) else []

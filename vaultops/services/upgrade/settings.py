"""The `upgrade:` section of vaultops.yaml.

    upgrade:
      gate_timeout: 120          # longest wait for any gate before halting
      poll: 0.2
      min_failure_tolerance: 1   # raft: never take a node down below this
      stop_timeout: 60
      canary_path: cubbyhole/vaultops-upgrade-canary
      raft_ids: {vault-1: raft-id-of-vault-1}   # when raft server ids differ from node names
      backup: required           # required | skip
      runbook: upgrade.yaml      # default: the shipped runbook
      lease: {...}               # the cluster-wide run lease (validated by its owner)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from msgspec import Meta

from vaultops.files.model import Model

if TYPE_CHECKING:
    from vaultops.config import Config

Seconds = Annotated[float, Meta(gt=0)]


class UpgradeSection(Model):
    gate_timeout: Annotated[Seconds, Meta(description="longest wait for any gate before the run halts")] = 120.0
    poll: Annotated[Seconds, Meta(description="seconds between checks while waiting")] = 0.2
    min_failure_tolerance: Annotated[int, Meta(
        ge=0, description="raft: never take a node down below this failure tolerance")] = 1
    stop_timeout: Annotated[Seconds, Meta(description="seconds a node may take to stop")] = 60.0
    canary_path: Annotated[str, Meta(
        min_length=1, description="path written and read to prove the cluster serves")] = "cubbyhole/vaultops-upgrade-canary"
    raft_ids: Annotated[dict[str, str], Meta(description="node name -> raft server id, where they differ")] = {}
    backup: Annotated[Literal["required", "skip"], Meta(description="take a verified backup first")] = "required"
    runbook: Annotated[str | None, Meta(description="the upgrade runbook (default: the shipped one)")] = None
    lease: Annotated[dict[str, Any] | None, Meta(
        description="the cluster-wide run lease (validated by the runbook engine)")] = None


def upgrade_section(cfg: Config) -> UpgradeSection:
    from vaultops.files.loader import validate

    return validate(cfg.section("upgrade"), UpgradeSection, source=cfg.source, prefix="upgrade",
                    hint="`vaultops config example upgrade` prints the upgrade: section with every key")

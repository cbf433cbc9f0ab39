"""Initialise a new cluster: shares, threshold, one named keyholder per share.

`vaultops init` and `vaultops sandbox up` both come through here.
"""

from __future__ import annotations

from pathlib import Path

from vaultops.errors import UsageError, VaultError
from vaultops.vault import NodeClient
from vaultops.vault.models import InitResult


def initialize_cluster(client: NodeClient, *, shares: int, threshold: int, keyholders: list[str],
                       manifest_path: Path | None = None, pgp_keys: list[str] | None = None) -> InitResult:
    if not 1 <= threshold <= shares:
        raise UsageError(f"threshold {threshold} must be between 1 and shares ({shares})",
                         hint="e.g. --shares 5 --threshold 3")
    if len(keyholders) != shares or len(set(keyholders)) != shares:
        raise UsageError(f"{shares} shares need {shares} distinct keyholder names, got {len(set(keyholders))}",
                         hint="name one keyholder per share")
    if client.seal.status().initialized:
        raise VaultError(f"{client.name} is already initialised", hint="use vaultops rekey to change the shares")
    return client.seal.init(shares=shares, threshold=threshold, pgp_keys=pgp_keys)

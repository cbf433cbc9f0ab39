"""Initialise a new cluster: shares, threshold, one named keyholder per share.

`vaultops init` and `vaultops sandbox up` both come through here. Share i of
the init answer belongs to keyholders[i].

The keyholder manifest is written at once: per keyholder the share's
x-coordinate and a salted scrypt verifier (never the share). Its cluster_id
cannot be known yet -- a sealed node does not report one -- so it is written as
PENDING_CLUSTER_ID and the unseal ceremony records the real id the first time
a node answers unsealed (services/ceremony.py). With PGP keys the shares come
back encrypted and vaultops never sees their plaintext or x-coordinates: the
manifest then lists no keyholders and each keyholder enrolls their own share
(`vaultops shares enroll`) after decrypting it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vaultops.errors import UsageError, VaultError

if TYPE_CHECKING:
    from vaultops.services.manifest import Manifest, ScryptParams
    from vaultops.vault import NodeClient
    from vaultops.vault.models import InitResult

PENDING_CLUSTER_ID = "pending-first-unseal"


def initialize_cluster(client: NodeClient, *, shares: int, threshold: int, keyholders: list[str],
                       manifest_path: Path | None = None, pgp_keys: list[str] | None = None,
                       params: ScryptParams | None = None) -> InitResult:
    """PUT sys/init on *client*; write the keyholder manifest to *manifest_path* if given."""
    _validate(shares=shares, threshold=threshold, keyholders=keyholders, pgp_keys=pgp_keys)
    if client.seal.status().initialized:
        raise VaultError(f"{client.name} is already initialised",
                         hint="use vaultops rekey to change the shares")
    result = client.seal.init(shares=shares, threshold=threshold, pgp_keys=pgp_keys)
    if manifest_path is not None:
        init_manifest(result, keyholders=keyholders, threshold=threshold,
                      encrypted=bool(pgp_keys), params=params).save(manifest_path)
    return result


def init_manifest(result: InitResult, *, keyholders: list[str], threshold: int,
                  encrypted: bool = False, params: ScryptParams | None = None) -> Manifest:
    """The manifest for a fresh init: one verified entry per plaintext share."""
    from vaultops.services import manifest as mf
    from vaultops.services.shares import decode

    m = mf.Manifest(cluster_id=PENDING_CLUSTER_ID, threshold=threshold, shares=len(keyholders))
    if encrypted:
        return m
    for name, key in zip(keyholders, result.keys_b64, strict=True):
        m = m.enroll(name, decode(key), params=params or mf.DEFAULT_PARAMS)
    return m


def _validate(*, shares: int, threshold: int, keyholders: list[str],
              pgp_keys: list[str] | None) -> None:
    if not 1 <= threshold <= shares:
        raise UsageError(f"threshold {threshold} must be between 1 and shares ({shares})",
                         hint="e.g. --shares 5 --threshold 3")
    if shares > 1 and threshold < 2:
        raise UsageError("a threshold of 1 with several shares lets any one keyholder unseal",
                         hint="use a threshold of at least 2")
    names = [k.strip() for k in keyholders]
    if len(names) != shares or len(set(names)) != shares or not all(names):
        raise UsageError(f"{shares} shares need {shares} distinct keyholder names, got "
                         f"{len(set(n for n in names if n))}", hint="name one keyholder per share")
    bad = [n for n in names if not all(c.isalnum() or c in "-_." for c in n)]
    if bad:
        raise UsageError(f"keyholder name {bad[0]!r} may use only letters, digits, '-', '_', '.'",
                         hint="rename the keyholder")
    if pgp_keys is not None and len(pgp_keys) != shares:
        raise UsageError(f"{len(pgp_keys)} PGP keys for {shares} shares",
                         hint="give one PGP public key per keyholder, in keyholder order")

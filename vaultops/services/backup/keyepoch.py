"""Which key epoch a backup being taken belongs to (recorded in its manifest as `key_epoch`).

The cluster says how many shares open it now (sys/seal-status `t`/`n`, unauthenticated, per node);
the keyholder manifest says which epoch that is. When they disagree -- a rekey done outside vaultops,
a manifest not updated -- the epoch is recorded as unknown with the reason, never guessed. A rekey
outside vaultops that keeps the same threshold and share count cannot be seen from here (the seal
status tells nothing else about the keys): `vaultops keyholders check` against real shares can.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vaultops.errors import VaultOpsError
from vaultops.services.backup.manifest import KeyEpoch, Manifest

if TYPE_CHECKING:
    from vaultops.config import Config
    from vaultops.services.ceremony.epochs import EpochHistory
    from vaultops.vault import NodeClient


def configured_keyholders(cfg: Config) -> Path | None:
    """keyholders.manifest of vaultops.yaml when it is set and the file exists, else None."""
    value = cfg.section("keyholders").get("manifest")
    if not isinstance(value, str) or not value.strip():
        return None
    path = cfg.resolve_path(value)
    return path if path.exists() else None


def observe(clients: Sequence[NodeClient], keyholders: Path | None, *,
            warn: Callable[[str], None]) -> KeyEpoch | None:
    """The epoch the cluster is in now; None when no node answers its seal status (the backup goes on).

    Asked of the active node first: right after a rekey a standby may still report the old t/n."""
    from vaultops.vault.cluster import find_active

    leader = find_active(clients, timeout=5.0) if len(clients) > 1 else None
    status = None
    for client in ([leader.client] if leader else []) + list(clients):
        try:
            status = client.seal.status()
            break
        except VaultOpsError:
            continue
    if status is None or not status.initialized:
        warn("no node answered sys/seal-status: the backup's key epoch is not recorded")
        return None
    found = KeyEpoch(threshold=status.t, shares=status.n)
    if keyholders is None:
        return _unknown(found, "no keyholder manifest is configured (keyholders.manifest)", warn)
    return match(found, keyholders, warn=warn)


def match(found: KeyEpoch, keyholders: Path, *, warn: Callable[[str], None]) -> KeyEpoch:
    from vaultops.services.ceremony.epochs import load_epochs

    try:
        current = load_epochs(keyholders).current
    except VaultOpsError as exc:
        return _unknown(found, f"the keyholder manifest cannot be read: {exc.message}", warn)
    if (current.threshold, current.shares) != (found.threshold, found.shares):
        return _unknown(found, f"the cluster reports {found.threshold} of {found.shares} shares, the keyholder "
                               f"manifest's epoch {current.number} has {current.threshold} of {current.shares} "
                               "(a rekey done outside vaultops?)", warn)
    return KeyEpoch(threshold=found.threshold, shares=found.shares, number=current.number)


def _unknown(found: KeyEpoch, why: str, warn: Callable[[str], None]) -> KeyEpoch:
    warn(f"key epoch of this backup unknown: {why}. Rekey through vaultops (`vaultops rekey`) so the keyholder "
         "manifest records each epoch; until then backups taken now are of an unknown epoch")
    return KeyEpoch(threshold=found.threshold, shares=found.shares, problem=why)


def restore_notice(backup: Manifest, history: EpochHistory | None) -> tuple[str, int | None]:
    """(what a restore of *backup* means for the unseal shares, its epoch number), said before anything is done."""
    from datetime import datetime

    recorded, epoch = backup.key_epoch, None
    if recorded is not None and recorded.number is None:
        return (f"KEY EPOCH UNKNOWN ({recorded.problem}): after this restore the cluster unseals only with the "
                f"shares that were current when {backup.name} was taken ({recorded.threshold} of {recorded.shares})."
                ), None
    if history is not None:
        epoch = (history.get(recorded.number) if recorded is not None and recorded.number is not None
                 else history.at(datetime.fromisoformat(backup.started_at)))
    if epoch is None:
        number = recorded.number if recorded is not None else None
        return (f"KEY EPOCH {number if number is not None else '?'}: after this restore the cluster unseals only with "
                "the shares of the epoch this backup was taken in (no keyholder manifest records it here)."), number
    holders = ", ".join(k.name + (" (departed)" if k.name in history.departed else "")  # type: ignore[union-attr]
                        for k in epoch.keyholders)
    text = (f"KEY EPOCH {epoch.number}: after this restore the cluster unseals ONLY with epoch-{epoch.number} shares "
            f"({epoch.threshold} of {epoch.shares}), held by {holders or 'nobody the manifest names'}.")
    current = history.current  # type: ignore[union-attr]
    if epoch.number != current.number:
        text += (f" That is NOT the current epoch ({current.number}): today's shares will not unseal it. A node "
                 f"sealed by the restore may ask for its previous threshold until it is restarted.")
    return text, epoch.number

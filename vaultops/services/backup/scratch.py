"""A throwaway copy of a cluster: a local sandbox of a given version with a verified snapshot in it.

    with scratch_sandbox(version="2.7.2", nodes=1, name="drill") as copy:
        copy.restore(snapshot_path, shares=original_shares)   # force-restore, wait for the seal, unseal
        copy.clients(token=original_token)                    # NodeClients of the copy
    # stopped and removed here (unless keep=True)

Used by `backup drill` and by `upgrade rehearse`. A forced restore swaps the keyring: within
seconds every node seals itself, and from then on only the ORIGINAL cluster's shares unseal it
and only its tokens work. The shares never leave this process (no argv, no log, no journal).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vaultops.errors import BackupError, VaultOpsError
from vaultops.retry import poll
from vaultops.services.sandbox.cluster import Sandbox, SandboxSpec, up
from vaultops.vault import NodeClient, fan_out
from vaultops.vault.cluster import active, find_active

if TYPE_CHECKING:
    from vaultops.services.ceremony.shares import Share

SEAL_WAIT = 30.0      # a restored node seals itself within ~5 s (field notes)
UNSEAL_WAIT = 60.0    # a raft follower may answer sealed for a few seconds after its last share
ACTIVE_WAIT = 30.0    # then a leader election: 1-3 s with the sandbox's performance_multiplier 1
SHARES_HINT = "pipe at least the threshold of the ORIGINAL cluster's unseal shares, one per line"


@dataclass
class ScratchCopy:
    box: Sandbox

    @property
    def config_path(self) -> Path:
        return self.box.config_path

    @property
    def dir(self) -> Path:
        return self.box.dir

    def clients(self, *, token: str | None = None) -> list[NodeClient]:
        """Clients of the copy with *token* (after a restore: one of the ORIGINAL cluster's)."""
        clients = self.box.clients(token=False)
        for client in clients:
            client.token = token
        return clients

    def restore(self, snapshot: Path, *, shares: Sequence[Share | str], error: type[VaultOpsError] = BackupError) -> None:
        """Force-restore *snapshot* (verified by the caller) through the active node; once every node
        has sealed itself, unseal each with *shares* and wait for an active node."""
        leader = active(self.box.clients(), error=error, hint="rerun with --keep and read the copy's bao.log")
        with snapshot.open("rb") as fh:
            leader.client.raft.restore(fh, force=True)
        clients = self.clients()
        failed = [r.error for r in fan_out(clients, lambda c: _unseal(c, shares, error=error),
                                           timeout=SEAL_WAIT + UNSEAL_WAIT + 10) if r.error]
        if failed:
            raise failed[0]
        poll(lambda: find_active(clients), timeout=ACTIVE_WAIT, interval=0.2, error=error,
             what="the restored copy did not become active", hint="rerun with --keep and read the copy's bao.log")


@contextlib.contextmanager
def scratch_sandbox(*, version: str | None, nodes: int = 1, name: str = "scratch", parent: Path | None = None,
                    keep: bool = False, progress: Callable[[str], None] = lambda _m: None) -> Iterator[ScratchCopy]:
    """A fresh raft sandbox (unsealed, autopilot healthy) in a private temp folder under *parent*;
    stopped and removed on the way out unless *keep*."""
    folder = Path(tempfile.mkdtemp(prefix=f"vaultops-{name}-", dir=parent))
    progress(f"starting a {nodes}-node sandbox on {version or 'the newest version'} in {folder}")
    box: Sandbox | None = None
    try:
        box = up(SandboxSpec(name=name, nodes=nodes, storage="raft", version=version, performance_multiplier=0), root=folder)
        yield ScratchCopy(box)
    finally:
        if not keep:
            if box is not None:
                box.stop()
            shutil.rmtree(folder, ignore_errors=True)


def _unseal(client: NodeClient, shares: Sequence[Share | str], *, error: type[VaultOpsError]) -> None:
    """One restored node: wait until it has sealed itself, submit the shares, follow it until unsealed."""
    with contextlib.suppress(VaultOpsError):  # a node that never seals is judged by the status below
        poll(lambda: True if client.seal.status().sealed else None, timeout=SEAL_WAIT, interval=0.2,
             what=f"{client.name} to seal itself")
    from vaultops.services.ceremony.submit import unseal_node

    res = unseal_node(client, shares, timeout=UNSEAL_WAIT, error=error)
    if res.rejected:
        raise error(f"the restored node refused a share ({res.rejected})", hint=SHARES_HINT)
    if res.sealed and res.status.progress:
        raise error(f"still sealed after {res.sent} shares (threshold {res.status.t})", hint=SHARES_HINT)
    if res.sealed:
        raise error(f"{client.name} still sealed {UNSEAL_WAIT:g}s after the shares",
                    hint="rerun with --keep and read the copy's bao.log")


__all__ = ["ScratchCopy", "scratch_sandbox"]

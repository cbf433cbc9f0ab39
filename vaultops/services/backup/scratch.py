"""A throwaway copy of a cluster: a local sandbox of a given version with a verified snapshot in it.

    with scratch_sandbox(version="2.7.2", nodes=1, name="drill") as copy:
        copy.restore(snapshot_path, shares=original_shares)   # force-restore, wait for the seal, unseal
        copy.clients(token=original_token)                    # NodeClients of the copy
    # stopped and removed here (unless keep=True)

Used by `backup drill` and by `upgrade rehearse`. A pg_dump goes into a PostgreSQL-backed copy
instead (restore_dump: the nodes stopped, the dump restored into the copy's database, restarted).
A forced restore swaps the keyring: within seconds every node seals itself, and from then on only
the ORIGINAL cluster's shares unseal it and only its tokens work. The shares never leave this process (no argv, no log, no journal).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.errors import BackupError, VaultOpsError
from vaultops.retry import poll
from vaultops.services.sandbox.cluster import Sandbox, SandboxSpec, up
from vaultops.vault import NodeClient, fan_out
from vaultops.vault.cluster import active, find_active

if TYPE_CHECKING:
    from vaultops.services.ceremony.shares import Share

SEAL_WAIT = 30.0      # a restored node seals itself within ~5 s (field notes)
UNSEAL_WAIT = 60.0    # a raft follower may answer sealed for a few seconds after its last share
ACTIVE_WAIT = 30.0    # then a leader election (the scratch copy keeps raft's default timing)
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

    def restore(self, snapshot: Path, *, shares: Sequence[Share | str], error: type[VaultOpsError] = BackupError,
                threshold: int | None = None) -> None:
        """Force-restore *snapshot* (verified by the caller) through the active node; once every node
        has sealed itself, unseal each with *shares* and wait for an active node.

        *threshold*: the snapshot's own (its key epoch's). Measured on 2.7.2: a node that sealed itself
        after a forced restore still reports and demands ITS previous threshold until restarted (the
        restored epoch's shares then unseal it only if there are at least that many). A node whose
        sealed status disagrees with *threshold* is restarted, so it reads the restored seal config."""
        leader = active(self.box.clients(), error=error, hint="rerun with --keep and read the copy's bao.log")
        with snapshot.open("rb") as fh:
            leader.client.raft.restore(fh, force=True)
        clients = self.clients()
        if threshold is not None:
            fan_out(clients, lambda c: self._reread_seal_config(c, threshold, error), timeout=2 * SEAL_WAIT + 10)
        _unseal_all(clients, shares, error)

    def restore_dump(self, dump: Path, *, shares: Sequence[Share | str], error: type[VaultOpsError] = BackupError,
                     tools: dict[str, Any] | None = None) -> None:
        """A PostgreSQL-backed copy: stop the nodes, pg_restore *dump* (verified by the caller) into the
        copy's own database, start them; each reads the restored seal configuration at its start and
        is unsealed with *shares*; then wait for an active node. *tools*: backup.postgresql's
        pg_restore path (the DSN is the copy's)."""
        from vaultops.services.backup.formats.postgresql import PgDumpSource
        from vaultops.services.sandbox import postgres

        drivers = self.box.drivers()
        for drv in drivers.values():
            drv.stop(timeout=15)
        dsn = postgres.connection_url(self.box.record.pg_port or 0)    # the one the copy's servers read
        source = PgDumpSource({**(tools or {}), "dsn": dsn, "restore_dsn": None, "passfile": None}, clients=[])
        with dump.open("rb") as fh:
            source.restore(fh, force=True)
        for drv in drivers.values():
            drv.start()
        clients = self.clients()
        for client in clients:
            st = poll(client.seal.status, timeout=SEAL_WAIT, interval=0.2, error=error,
                      what=f"{client.name} to answer after the restore", hint="rerun with --keep and read its bao.log")
            if not st.initialized:
                raise error(f"{client.name} found no OpenBao data in the restored database (a cluster whose "
                            f"storage `table` is not {postgres.KV_TABLE}?)",
                            hint="drill it by hand: restore the dump into a test database its servers read")
        _unseal_all(clients, shares, error)

    def _reread_seal_config(self, client: NodeClient, threshold: int, error: type[VaultOpsError]) -> None:
        with contextlib.suppress(VaultOpsError):  # judged by the unseal that follows
            poll(lambda: True if client.seal.status().sealed else None, timeout=SEAL_WAIT, interval=0.2,
                 what=f"{client.name} to seal itself")
            if client.seal.status().t == threshold:
                return
            driver = self.box.drivers()[client.name]
            driver.stop(timeout=15)
            driver.start()
            poll(lambda: client.seal.status().t == threshold or None, timeout=SEAL_WAIT, interval=0.3,
                 what=f"{client.name} to come back with the restored seal config", error=error)


@contextlib.contextmanager
def scratch_sandbox(*, version: str | None, nodes: int = 1, name: str = "scratch", parent: Path | None = None,
                    keep: bool = False, progress: Callable[[str], None] = lambda _m: None,
                    storage: str = "raft") -> Iterator[ScratchCopy]:
    """A fresh sandbox (unsealed; raft: autopilot healthy; postgresql: on a private PostgreSQL) in a
    private temp folder under *parent*; stopped and removed on the way out unless *keep*."""
    folder = Path(tempfile.mkdtemp(prefix=f"vaultops-{name}-", dir=parent))
    progress(f"starting a {nodes}-node sandbox on {version or 'the newest version'} in {folder}")
    box: Sandbox | None = None
    try:
        box = up(SandboxSpec(name=name, nodes=nodes, storage=storage, version=version, performance_multiplier=0),
                 root=folder)
        yield ScratchCopy(box)
    finally:
        if not keep:
            if box is not None:
                box.stop()
            shutil.rmtree(folder, ignore_errors=True)


def _unseal_all(clients: list[NodeClient], shares: Sequence[Share | str], error: type[VaultOpsError]) -> None:
    """Every restored node unsealed with *shares* (at once), then an active node among them."""
    failed = [r.error for r in fan_out(clients, lambda c: _unseal(c, shares, error=error),
                                       timeout=SEAL_WAIT + UNSEAL_WAIT + 10) if r.error]
    if failed:
        raise failed[0]
    poll(lambda: find_active(clients), timeout=ACTIVE_WAIT, interval=0.2, error=error,
         what="the restored copy did not become active", hint="rerun with --keep and read the copy's bao.log")


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

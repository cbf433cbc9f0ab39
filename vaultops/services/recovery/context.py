"""Everything a recovery step needs, built once per run from what the caller wired (the CLI's Session).

The steps of one run talk to each other only through the run's state file: a later step reads
an earlier step's recorded evidence (`ctx.earlier("choose")`), so a run killed at any moment
and resumed in a new process knows what was chosen. Only secrets stay in memory (`ctx.memory`:
a throwaway unseal key of `recover from-backup`), and a resumed run redoes what needed them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.config import Config
from vaultops.drivers import NodeDriver
from vaultops.errors import DriverError, RunbookError, VaultOpsError
from vaultops.journal import Journal
from vaultops.services.recovery import layout as layouts
from vaultops.services.recovery.boltdb import bytes_reader
from vaultops.services.recovery.lastseen import Seen
from vaultops.services.recovery.raftlog import LogState, read_log_state
from vaultops.services.recovery.settings import RecoverySection
from vaultops.services.upgrade.context import Prompter
from vaultops.services.upgrade.unseal import Unsealer
from vaultops.vault import NodeClient

if TYPE_CHECKING:
    from vaultops.crypto.agekeys import Identity
    from vaultops.services.backup.settings import BackupSettings


@dataclass
class RecoveryContext:
    cfg: Config
    clients: dict[str, NodeClient]             # with the operator's token
    drivers: dict[str, NodeDriver]
    unsealer: Unsealer
    journal: Journal
    settings: RecoverySection
    state_path: Path
    seen: Seen | None = None                   # the high-water mark recorded before the outage
    prompter: Prompter = field(default_factory=Prompter)
    emit: Callable[[str], None] = lambda _m: None
    backup: BackupSettings | None = None       # recover from-backup: where the backups are
    backup_cfg: Config | None = None           # the config the backup sinks' paths are relative to (default cfg)
    token: str | None = None                   # the operator's token (the restored data knows it)
    identities: Sequence[Identity] | None = field(default=None, repr=False)  # open an encrypted backup
    memory: dict[str, Any] = field(default_factory=dict)
    _layouts: dict[str, layouts.NodeLayout] = field(default_factory=dict, repr=False)

    @property
    def storage(self) -> str:
        return self.cfg.storage

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.cfg.nodes]

    def driver(self, node: str) -> NodeDriver:
        found = self.drivers.get(node)
        if found is None:
            raise RunbookError(f"{node} has no driver", hint=f"add driver: to node {node} in vaultops.yaml")
        return found

    def layout(self, node: str) -> layouts.NodeLayout:
        if node not in self._layouts:
            self._layouts[node] = layouts.resolve(
                node, self.drivers.get(node), self.settings, driver_settings=self.cfg.node(node).driver,
                seen=self.seen.by_id() if self.seen else None, default_id=self._raft_id(node))
        return self._layouts[node]

    def _raft_id(self, node: str) -> str | None:
        ids = self.cfg.section("upgrade").get("raft_ids") or {}
        return ids.get(node) if isinstance(ids, dict) else None

    def read_log(self, node: str) -> LogState:
        """The node's raft log read from its data through its driver (the node must be stopped)."""
        lay, drv = self.layout(node), self.driver(node)
        try:
            raft_db = drv.read_file(lay.data_file("raft/raft.db"))
            vault_db = drv.read_file(lay.data_file("vault.db"))
        except DriverError as exc:
            raise RunbookError(f"{node}: its raft data cannot be read ({exc.message})",
                               hint="is its disk gone? then it is lost, not a survivor") from None
        return read_log_state(bytes_reader(raft_db), bytes_reader(vault_db), node=node)

    def has_data(self, node: str) -> bool:
        try:
            self.read_log(node)
        except VaultOpsError:
            return False
        return True

    def earlier(self, step_id: str) -> dict[str, Any]:
        """The recorded evidence of a step of this run that is done (RunbookError if it is not)."""
        from vaultops.runbook.state import StepStatus, load_state

        state = load_state(self.state_path)
        for step in state.steps:
            if step.id == step_id and step.status == StepStatus.DONE:
                return step.evidence
        raise RunbookError(f"step {step_id} has not run yet in this run", hint="resume the run from its start")

    @property
    def wait(self) -> float:
        return self.settings.wait_timeout

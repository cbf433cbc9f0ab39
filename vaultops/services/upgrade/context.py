"""Everything an upgrade step needs, built once per run from vaultops.yaml and what the caller wired
(clients, drivers, journal: the CLI's and the console's Session)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from vaultops.config import Config
from vaultops.drivers import NodeDriver
from vaultops.journal import Journal
from vaultops.services.upgrade.unseal import Unsealer
from vaultops.vault import NodeClient

if TYPE_CHECKING:
    from vaultops.consul import ConsulClient
    from vaultops.crypto.agekeys import Identity


@dataclass(frozen=True)
class GateSettings:
    gate_timeout: float = 120.0       # longest wait for any gate before halting
    poll: float = 0.2
    min_failure_tolerance: int = 1    # raft: never take a node down below this
    stop_timeout: float = 60.0        # a stepped-down node takes ~7 s to exit
    canary_path: str = "cubbyhole/vaultops-upgrade-canary"


class Prompter:
    """Non-interactive by default: confirmations need --yes."""

    def __init__(self, *, assume_yes: bool = False, ask: Callable[[str], bool] | None = None) -> None:
        self.assume_yes = assume_yes
        self.ask = ask

    def confirm(self, message: str) -> bool:
        if self.assume_yes:
            return True
        if self.ask is None:
            from vaultops.errors import UsageError
            raise UsageError(f"needs confirmation: {message}", hint="pass --yes to confirm non-interactively")
        return self.ask(message)


@dataclass
class UpgradeContext:
    cfg: Config
    clients: dict[str, NodeClient]
    drivers: dict[str, NodeDriver]
    unsealer: Unsealer
    journal: Journal
    settings: GateSettings = field(default_factory=GateSettings)
    prompter: Prompter = field(default_factory=Prompter)
    emit: Callable[[str], None] = lambda _m: None
    backup: str = "required"          # required | skip (operator's explicit, journaled choice)
    raft_ids: dict[str, str] = field(default_factory=dict)
    consul: ConsulClient | None = None   # storage: consul with backup.consul settings: a preflight gate
    # Fresh clients for the pre-upgrade backup: its identity logs in and revokes its own token on
    # them, which must never be the token the steps use (None: no backup can be taken here).
    connect: Callable[[], list[NodeClient]] | None = None
    # Open an encrypted pre-upgrade backup (`upgrade rollback --identity`); in memory only, never recorded.
    identities: Sequence[Identity] | None = field(default=None, repr=False)
    # Moves a node's raft data aside through any driver, wherever its layout says it lives (wired by
    # the CLI from services/recovery/layout.py); None: only drivers with set_aside_storage can.
    raft_data: RaftDataMover | None = None

    @property
    def storage(self) -> str:
        return self.cfg.storage

    def raft_id(self, node: str) -> str:
        return self.raft_ids.get(node, node)

    def address(self, node: str) -> str:
        return self.cfg.node(node).address.rstrip("/")


class RaftDataMover(Protocol):
    def path(self, node: str) -> str: ...

    def move_aside(self, node: str, suffix: str) -> list[str]: ...


def gate_settings(cfg: Config, **overrides: Any) -> GateSettings:
    from vaultops.services.upgrade.settings import upgrade_section

    section = upgrade_section(cfg)
    raw = {k: getattr(section, k) for k in GateSettings.__dataclass_fields__}
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return GateSettings(**raw)


def build_context(cfg: Config, *, clients: Sequence[NodeClient], drivers: Mapping[str, NodeDriver],
                  journal: Journal, unsealer: Unsealer, prompter: Prompter | None = None,
                  emit: Callable[[str], None] = lambda _m: None, backup: str = "required",
                  consul: ConsulClient | None = None, connect: Callable[[], list[NodeClient]] | None = None,
                  identities: Sequence[Identity] | None = None, raft_data: RaftDataMover | None = None,
                  **overrides: Any) -> UpgradeContext:
    """*clients* carry the token the steps use; *journal* is the one the run is recorded in;
    *consul* (storage: consul) is the Consul door the preflight gate asks."""
    from vaultops.services.upgrade.settings import upgrade_section

    section = upgrade_section(cfg)
    return UpgradeContext(cfg=cfg, clients={c.name: c for c in clients}, drivers=dict(drivers), unsealer=unsealer,
                          journal=journal, settings=gate_settings(cfg, **overrides), prompter=prompter or Prompter(),
                          emit=emit, backup=section.backup if backup == "required" else backup,
                          raft_ids=dict(section.raft_ids), consul=consul, connect=connect, identities=identities,
                          raft_data=raft_data)

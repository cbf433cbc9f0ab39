"""The operator dashboard: every cell refreshed in the background, each on its own clock.

    dash = Dashboard(clients, cluster="prod", storage="raft", timeout=3.0,
                     tls={"node1": probe}, backup=newest_backup, journal=last_entries,
                     on_change=app.invalidate)
    dash.refresh()          # never blocks: one thread per cell
    snap = dash.snapshot()  # a frozen view, safe to render from any thread

A cell is one node's status, one node's served certificate, the raft
autopilot view, the newest verified backup or the journal tail. Every cell is
asked by its own thread with its own deadline, so a slow or dead node shows
"…" then "timeout" in its own row while the others fill in. A cell whose
previous probe has not returned is not asked again (a hung node never piles
up threads); it keeps its last value, marked as such.

No prompt_toolkit here: the TUI renders snapshots and calls refresh().
"""

from __future__ import annotations

import enum
import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vaultops.errors import VaultOpsError
from vaultops.services.status import NodeStatus, node_status

if TYPE_CHECKING:
    from vaultops.config import Config
    from vaultops.journal import Journal
    from vaultops.vault import NodeClient
    from vaultops.vault.models import AutopilotState

Probe = Callable[[], Any]
RAFT, BACKUP, JOURNAL = "raft", "backup", "journal"
JOURNAL_TAIL = 8


class CellState(enum.Enum):
    PENDING = "pending"    # asked, no answer yet (the previous value, if any, is still shown)
    OK = "ok"
    TIMEOUT = "timeout"    # no answer within the deadline; the probe may still be running
    ERROR = "error"        # answered with an error (unreachable, sealed, refused ...)
    ABSENT = "absent"      # not configured (no tls: section, no backup sinks, not raft)


@dataclass(frozen=True)
class Cell:
    state: CellState = CellState.PENDING
    value: Any = None
    error: str = ""
    at: float = 0.0        # time.time() of the value

    @property
    def settled(self) -> bool:
        return self.state is not CellState.PENDING


@dataclass(frozen=True)
class BackupInfo:
    name: str
    when: datetime
    sink: str
    epoch: int | None = None             # the newest backup's key epoch (None: unknown or not recorded)
    at_risk: tuple[int, ...] = ()        # key epochs of retained backups that cannot reach their threshold

    def age(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(self.when.tzinfo)) - self.when).total_seconds()


@dataclass(frozen=True)
class JournalLine:
    time: str
    operator: str
    action: str
    node: str
    outcome: str


@dataclass(frozen=True)
class NodeRow:
    name: str
    address: str
    status: Cell
    tls: Cell

    @property
    def node(self) -> NodeStatus | None:
        return self.status.value if isinstance(self.status.value, NodeStatus) else None


@dataclass(frozen=True)
class DashboardSnapshot:
    cluster: str
    storage: str
    generation: int
    nodes: tuple[NodeRow, ...]
    raft: Cell
    backup: Cell
    journal: Cell
    taken: float = field(default_factory=time.time)

    @property
    def autopilot(self) -> AutopilotState | None:
        return self.raft.value if self.raft.state is CellState.OK else None

    @property
    def active(self) -> str | None:
        return next((r.name for r in self.nodes if r.node and r.node.ha_role == "active"), None)

    def row(self, name: str) -> NodeRow:
        return next(r for r in self.nodes if r.name == name)


class Dashboard:
    def __init__(self, clients: Sequence[NodeClient], *, cluster: str, storage: str, timeout: float = 3.0,
                 tls: Mapping[str, Probe] | None = None, backup: Probe | None = None,
                 journal: Probe | None = None, on_change: Callable[[], None] | None = None) -> None:
        self.clients = list(clients)
        self.cluster, self.storage, self.timeout = cluster, storage, timeout
        self.tls, self.backup, self.journal = dict(tls or {}), backup, journal
        self.on_change = on_change
        self._cond = threading.Condition()
        self._busy: set[str] = set()
        self._gen = 0
        self._cells: dict[str, Cell] = {k: Cell() for k in self._keys()}
        for key in self._absent():
            self._cells[key] = Cell(CellState.ABSENT)

    # -- what is asked ------------------------------------------------------------

    def _keys(self) -> list[str]:
        return ([f"node:{c.name}" for c in self.clients] + [f"tls:{c.name}" for c in self.clients]
                + [RAFT, BACKUP, JOURNAL])

    def _absent(self) -> list[str]:
        out = [f"tls:{c.name}" for c in self.clients if c.name not in self.tls]
        out += [RAFT] if self.storage != "raft" or not self._token() else []
        out += [BACKUP] if self.backup is None else []
        return out + ([JOURNAL] if self.journal is None else [])

    def _token(self) -> bool:
        return any(c.token for c in self.clients)

    def _probes(self) -> list[tuple[str, Probe]]:
        out: list[tuple[str, Probe]] = [(f"node:{c.name}", functools.partial(node_cell, c)) for c in self.clients]
        out += [(f"tls:{name}", probe) for name, probe in self.tls.items()]
        out += [(BACKUP, self.backup)] if self.backup is not None else []
        return out + ([(JOURNAL, self.journal)] if self.journal is not None else [])

    # -- refresh ------------------------------------------------------------------

    def refresh(self) -> int:
        """Ask every cell again, each in its own thread; returns the generation number."""
        with self._cond:
            self._gen += 1
            gen = self._gen
            if self._cells[RAFT].state is not CellState.ABSENT:
                self._mark(RAFT)
        for key, probe in self._probes():
            self._launch(key, probe)
        timer = threading.Timer(self.timeout, self._expire, args=(gen,))
        timer.daemon = True
        timer.start()
        self._changed()
        return gen

    def _mark(self, key: str) -> None:
        cell = self._cells[key]
        if key not in self._busy:
            self._cells[key] = replace(cell, state=CellState.PENDING)

    def _launch(self, key: str, probe: Probe) -> None:
        with self._cond:
            if key in self._busy:
                return  # the last probe of this cell has not returned: do not pile up threads
            self._busy.add(key)
            self._mark(key)
        threading.Thread(target=self._run, args=(key, probe), daemon=True, name=f"dash-{key}").start()

    def _run(self, key: str, probe: Probe) -> None:
        try:
            cell = Cell(CellState.OK, probe(), at=time.time())
        except VaultOpsError as exc:
            cell = Cell(CellState.ERROR, self._cells[key].value, error=exc.message, at=time.time())
        except Exception as exc:  # noqa: BLE001 - a bug in one probe must not hide the other cells
            cell = Cell(CellState.ERROR, None, error=f"{type(exc).__name__}: {exc}", at=time.time())
        with self._cond:
            self._busy.discard(key)
            self._cells[key] = cell
            self._settle_raft()
        self._changed()
        if isinstance(cell.value, NodeStatus) and cell.state is CellState.OK and cell.value.ha_role == "active":
            _raft(self, next(c for c in self.clients if c.name == cell.value.name))

    def _settle_raft(self) -> None:
        """Every node answered and none is active: say so now rather than at the deadline."""
        nodes = [self._cells[f"node:{c.name}"] for c in self.clients]
        raft = self._cells[RAFT]
        if raft.state is CellState.PENDING and RAFT not in self._busy and all(n.settled for n in nodes) \
                and not any(isinstance(n.value, NodeStatus) and n.value.ha_role == "active" for n in nodes):
            self._cells[RAFT] = replace(raft, state=CellState.ERROR, error="no active node")

    def _set(self, key: str, cell: Cell) -> None:
        with self._cond:
            self._cells[key] = cell
        self._changed()

    def _expire(self, gen: int) -> None:
        with self._cond:
            if gen != self._gen:
                return
            for key, cell in self._cells.items():
                if cell.state is CellState.PENDING:
                    what = "no active node answered" if key == RAFT and key not in self._busy else ""
                    self._cells[key] = replace(cell, state=CellState.TIMEOUT,
                                               error=what or f"no answer within {self.timeout:g}s")
        self._changed()

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()
        if self.on_change is not None:
            self.on_change()

    # -- reading ------------------------------------------------------------------

    def snapshot(self) -> DashboardSnapshot:
        with self._cond:
            cells = dict(self._cells)
            gen = self._gen
        rows = tuple(NodeRow(c.name, c.address, cells[f"node:{c.name}"], cells[f"tls:{c.name}"])
                     for c in self.clients)
        return DashboardSnapshot(self.cluster, self.storage, gen, rows, cells[RAFT], cells[BACKUP],
                                 cells[JOURNAL])

    def wait(self, until: Callable[[DashboardSnapshot], bool], *, timeout: float) -> DashboardSnapshot:
        """Block until until(snapshot) holds (tests, benchmarks; never the UI thread)."""
        with self._cond:   # every change of a cell notifies: the stdlib's wait_for is the whole loop
            self._cond.wait_for(lambda: until(self.snapshot()), timeout)
            return self.snapshot()


def node_cell(client: NodeClient) -> NodeStatus:
    """One request for a serving node (sys/health); a sealed one also gets sys/seal-status for its progress."""
    try:
        health = client.ha.health()
    except VaultOpsError:
        return node_status(client)  # e.g. a proxy in front: seal-status still says what the node is
    if health.sealed or not health.initialized:
        return node_status(client)
    return NodeStatus(name=client.name, address=client.address, reachable=True, initialized=True, sealed=False,
                      ha_role=health.role, version=health.version, cluster_id=health.cluster_id)


def _raft(dash: Dashboard, client: NodeClient) -> None:
    """The active node answers autopilot, right after its own status: a hung standby cannot delay it."""
    with dash._cond:
        if RAFT in dash._busy or dash._cells[RAFT].state is CellState.ABSENT:
            return
        dash._busy.add(RAFT)
    try:
        cell = Cell(CellState.OK, client.raft.autopilot_state(), at=time.time())
    except VaultOpsError as exc:
        cell = Cell(CellState.ERROR, None, error=exc.message, at=time.time())
    with dash._cond:
        dash._busy.discard(RAFT)
    dash._set(RAFT, cell)


# -- probes built from vaultops.yaml ---------------------------------------------------------


def tls_probes(cfg: Config) -> dict[str, Probe]:
    """Days left on each node's served certificate, when vaultops.yaml has a tls: section."""
    if not cfg.section("tls"):
        return {}
    from vaultops.services.tls.inspect import served_cert
    from vaultops.services.tls.settings import load_tls_settings

    settings = load_tls_settings(cfg)
    def days_left(node: Any) -> float:
        return served_cert(node.host, node.port, node.server_name).days_left()
    return {n.name: functools.partial(days_left, n) for n in settings.nodes}


def backup_probe(cfg: Config) -> Probe | None:
    """The newest verified backup over every sink, when backup.sinks are configured."""
    if not cfg.section("backup").get("sinks"):
        return None

    def probe() -> BackupInfo:
        from vaultops.errors import BackupError
        from vaultops.services.backup.catalog import list_backups
        from vaultops.services.backup.runner import build_sinks
        from vaultops.services.backup.settings import load_settings

        settings = load_settings(cfg)
        sinks = build_sinks(cfg, settings)
        found = [(BackupInfo(e.name, e.time, sink.name), sink) for sink in sinks
                 for e in list_backups(sink, cluster=settings.cluster)[:20] if e.verified]
        if not found:
            raise BackupError("no verified backup yet", hint="take one: Backup screen, or `vaultops backup run`")
        info, sink = max(found, key=lambda b: b[0].when)
        try:
            return _with_epochs(cfg, settings, info, sink, sinks, cache)
        except VaultOpsError:  # an unreadable manifest: the backup's age still shows, its epoch as unknown
            return info
    cache: dict[str, Any] = {}
    return probe


EPOCHS_EVERY = 300.0   # seconds between two reads of every backup manifest (the at-risk check)


def _with_epochs(cfg: Config, settings: Any, info: BackupInfo, sink: Any, sinks: Any,
                 cache: dict[str, Any]) -> BackupInfo:
    """The newest backup's key epoch (one manifest read) and, at most every EPOCHS_EVERY, the epochs at risk."""
    from vaultops.services.backup.epochs import epochs_report
    from vaultops.services.backup.keyepoch import configured_keyholders
    from vaultops.services.backup.stored import read_manifest
    from vaultops.services.ceremony.epochs import load_epochs

    path = configured_keyholders(cfg)
    history = load_epochs(path) if path is not None else None
    recorded = read_manifest(sink, info.name).key_epoch
    epoch = recorded.number if recorded is not None else (
        found.number if history is not None and (found := history.at(info.when)) is not None else None)
    if time.monotonic() - cache.get("at", -EPOCHS_EVERY) >= EPOCHS_EVERY:
        report = epochs_report(sinks, cluster=settings.cluster, policy=settings.retention, history=history)
        cache.update(at=time.monotonic(), risk=tuple(report.unopenable))
    return replace(info, epoch=epoch, at_risk=cache.get("risk", ()))


def journal_probe(journal: Journal, *, last: int = JOURNAL_TAIL) -> Probe:
    def probe() -> tuple[JournalLine, ...]:
        return tuple(journal_line(e) for e in tail(journal, last))
    return probe


def tail(journal: Journal, last: int) -> list[dict[str, Any]]:
    from collections import deque

    return list(deque(journal.entries(), maxlen=last))


def journal_line(e: dict[str, Any]) -> JournalLine:
    return JournalLine(time=str(e.get("time", ""))[:19].replace("T", " "), operator=str(e.get("operator", "")),
                       action=str(e.get("action", "")), node=str(e.get("node") or ""),
                       outcome=str(e.get("outcome", "")))


def dashboard_for(cfg: Config, clients: Sequence[NodeClient], *, journal: Journal | None = None,
                  timeout: float = 3.0, on_change: Callable[[], None] | None = None) -> Dashboard:
    return Dashboard(clients, cluster=cfg.cluster_name, storage=cfg.storage, timeout=timeout,
                     tls=tls_probes(cfg), backup=backup_probe(cfg),
                     journal=journal_probe(journal) if journal is not None else None, on_change=on_change)


__all__ = ["BackupInfo", "Cell", "CellState", "Dashboard", "DashboardSnapshot", "JournalLine", "NodeRow",
           "backup_probe", "dashboard_for", "journal_probe", "tls_probes"]

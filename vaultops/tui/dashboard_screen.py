"""The dashboard: every node's seal state, HA role, version, raft view and certificate; backup age; journal.

Keys: r refresh now; s step down the active node (asks y/n first); k / g open
the rekey / generate-root ceremony screens (each its own full-screen program,
run in this terminal while the console waits; nothing secret on its argv).

The Dashboard service refreshes each cell in its own thread and calls
invalidate() as answers arrive; this screen only renders its frozen
snapshots, so a hung node shows "…" then "timeout" in its own row while the
rest of the screen stays live.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import AnyContainer, Dimension, FormattedTextControl, HSplit, Window
from prompt_toolkit.widgets import Frame

from vaultops.services.dashboard import Cell, CellState, Dashboard, DashboardSnapshot, NodeRow
from vaultops.tui.console_kit import ConsoleScreen, ScreenState, age_text, clip
from vaultops.tui.state import AppState

HEADERS = ["NODE", "SEAL", "HA", "VERSION", "RAFT", "CERT", "NOTE"]
PENDING = "…"


class DashboardScreen(ConsoleScreen):
    name = "dashboard"
    title = "Dash"

    def __init__(self, dashboard: Dashboard, *, step_down: Callable[[str], Any] | None = None,
                 interval: float = 5.0, ceremonies: Mapping[str, tuple[str, Sequence[str]]] | None = None) -> None:
        super().__init__()
        self.ceremonies = dict(ceremonies or {})  # key -> (label, argv of the ceremony program)
        self.dashboard = dashboard
        self.step_down_fn = step_down
        self.interval = interval
        self.state = ScreenState()
        self.refreshes = 0
        self.stepped_down: list[str] = []

    def snapshot(self) -> DashboardSnapshot:
        return self.dashboard.snapshot()

    # -- Screen protocol ----------------------------------------------------------

    def container(self) -> AnyContainer:
        rows = len(self.dashboard.clients) + 1
        return HSplit([
            self.home,
            Frame(Window(FormattedTextControl(lambda: node_table(self.snapshot())), height=rows),
                  title=lambda: f"Cluster {self.dashboard.cluster} ({self.dashboard.storage})"),
            Window(FormattedTextControl(lambda: cluster_lines(self.snapshot())), height=2),
            Window(FormattedTextControl(lambda: condition_lines(self.snapshot())), height=Dimension(min=0, max=8)),
            Frame(Window(FormattedTextControl(lambda: journal_lines(self.snapshot())),
                         height=Dimension(min=1, preferred=8)), title="Journal (newest last)"),
            self.message_window(),
        ])

    def key_bindings(self) -> KeyBindings:
        kb = KeyBindings()
        idle = self.idle()

        @kb.add("r", filter=idle)
        def _refresh(event: KeyPressEvent) -> None:
            self.refresh()

        @kb.add("s", filter=idle)
        def _step_down(event: KeyPressEvent) -> None:
            self.ask_step_down()

        for key in self.ceremonies:
            kb.add(key, filter=idle)(lambda event, key=key: self.ask_ceremony(key))

        return self.confirm_bindings(kb)

    def help(self) -> str:
        if self.state.confirm is not None:
            return "y confirm · n cancel"
        extra = "".join(f" · {k} {label}" for k, (label, _) in self.ceremonies.items())
        return f"r refresh · s step down{extra} · ? help"

    def keys_help(self) -> list[tuple[str, str]]:
        return [("r", "refresh every cell now"), ("s", "step down active (asks)"),
                *[(k, f"{label} ceremony (asks)") for k, (label, _) in self.ceremonies.items()]]

    def start(self, app: Application[Any], shell: AppState) -> None:
        super().start(app, shell)
        self.dashboard.on_change = self.invalidate
        app.create_background_task(self._loop())

    async def _loop(self) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(self.interval)

    # -- actions ------------------------------------------------------------------

    def refresh(self) -> None:
        self.refreshes += 1
        self.dashboard.refresh()  # only starts threads: never blocks

    def ask_step_down(self) -> None:
        active = self.snapshot().active
        if self.step_down_fn is None:
            self.state.error = "step-down needs a token: export VAULT_TOKEN or set cluster.token_file"
        elif active is None:
            self.state.error = "no active node is known yet: wait for the refresh, or press r"
        else:
            self.ask(f"Step down the active node {active}? Another node takes over in about a second",
                     lambda: self._step_down(active))

    def ask_ceremony(self, key: str) -> None:
        label, argv = self.ceremonies[key]
        self.ask(f"Open the {label} ceremony? The console waits until it ends",
                 lambda: self._launch(list(argv), f"the {label} ceremony"))

    def _launch(self, argv: list[str], label: str = "the ceremony") -> None:
        if self._app is not None:
            self._app.create_background_task(_in_terminal(argv, label, self._ended))

    def _ended(self, label: str, code: int) -> None:
        """Back in the console: a ceremony that failed says so here too (its own output is gone)."""
        if code:
            self.state.error = f"{label} ended with exit code {code}"
            self.state.add_log("error", self.state.error)
        self.refresh()
        self.invalidate()

    def _step_down(self, node: str) -> None:
        assert self.step_down_fn is not None
        fn = self.step_down_fn

        def done(_: Any) -> None:
            self.stepped_down.append(node)
            self.state.add_log("info", f"{node} stepped down")
            self.refresh()
        self.work(f"stepping down {node}", lambda: fn(node), on_done=done)


# The console hands the terminal to vaultops itself: it may read what vaultops reads (tokens,
# addresses, CA bundles, cloud credentials for sinks, its own settings) and nothing else.
VAULTOPS_ENV = ("VAULT_*", "BAO_*", "VAULTOPS_*", "AWS_*", "XDG_*", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
                "https_proxy", "no_proxy", "PGPASSFILE", "SSH_AUTH_SOCK", "GNUPGHOME", "GPG_TTY", "COLUMNS", "LINES")


async def _in_terminal(argv: list[str], label: str, ended: Callable[[str, int], None]) -> None:
    from prompt_toolkit.application import run_in_terminal

    from vaultops import process

    def run() -> int:
        # The operator drives the ceremony and ends it; it may wait for keyholders for hours.
        try:
            code = process.run(argv, timeout=None, interactive=True, env=VAULTOPS_ENV).exit_code
        except process.ProcessError as exc:
            print(f"vaultops: {exc}")
            code = 1
        if code:  # its error is on this terminal: let the operator read it before the console redraws
            with contextlib.suppress(EOFError, OSError):
                input(f"\n{label} ended with exit code {code}. Press Enter to return to the console ")
        return code

    ended(label, await run_in_terminal(run, in_executor=True))


# -- rendering (pure functions of a snapshot) ------------------------------------------------


def node_table(snap: DashboardSnapshot) -> StyleAndTextTuples:
    rows = [node_cells(r, snap) for r in snap.nodes]
    widths = [max(len(r[i][1]) for r in rows + [[("", h) for h in HEADERS]]) for i in range(len(HEADERS) - 1)]
    out: StyleAndTextTuples = [("bold", "  ".join(h.ljust(w) for h, w in zip(HEADERS, widths)) + "  NOTE\n")]
    for row in rows:
        for (style, text), w in zip(row, widths + [0]):
            out.append((style, text.ljust(w) + "  " if w else text))
        out.append(("", "\n"))
    return out


def node_cells(row: NodeRow, snap: DashboardSnapshot) -> list[tuple[str, str]]:
    cell, n = row.status, row.node
    if cell.state in (CellState.TIMEOUT, CellState.ERROR) or n is None:
        word = {CellState.TIMEOUT: "timeout", CellState.ERROR: "unreachable"}.get(cell.state, PENDING)
        style = "class:error" if cell.state is not CellState.PENDING else "class:hint"
        return [("", row.name), (style, word), ("", "-"), ("", "-"), ("", "-"), cert_cell(row.tls),
                ("class:hint", _short(cell.error))]
    role = n.ha_role if n.ha_role in ("active", "standby") else "-"
    return [("", row.name), seal_cell(cell), ("class:ha." + role.strip("-"), role),
            ("", n.version or "-"), raft_cell(row.name, snap), cert_cell(row.tls), ("class:hint", "")]


def seal_cell(cell: Cell) -> tuple[str, str]:
    n = cell.value
    if not n.initialized:
        return ("class:phase.sealed", "uninit")
    if n.sealed:
        return ("class:phase.sealed", f"sealed {n.progress}/{n.threshold}")
    return ("class:phase.unsealed", "unsealed")


def raft_cell(name: str, snap: DashboardSnapshot) -> tuple[str, str]:
    ap = snap.autopilot
    if snap.raft.state is CellState.ABSENT:
        return ("", "")
    if ap is None:
        return ("class:hint", PENDING if snap.raft.state is CellState.PENDING else "-")
    server = next((s for s in ap.servers.values() if s.name == name or s.id == name), None)
    if server is None:
        return ("class:level.warn", "not a member")
    if server.healthy:
        return ("", server.status)
    return ("class:error", f"{server.status} UNHEALTHY")


def cert_cell(cell: Cell) -> tuple[str, str]:
    if cell.state is CellState.ABSENT:
        return ("", "")
    if cell.state is CellState.OK:
        days = float(cell.value)
        return ("class:error" if days < 7 else "class:level.warn" if days < 30 else "", f"{days:.0f}d")
    if cell.state is CellState.PENDING:
        return ("class:hint", f"{cell.value:.0f}d" if cell.value is not None else PENDING)
    return ("class:error", "timeout" if cell.state is CellState.TIMEOUT else "error")


def cluster_lines(snap: DashboardSnapshot) -> StyleAndTextTuples:
    return [*raft_line(snap.raft, snap.storage), ("", "\n"), *backup_line(snap.backup)]


def raft_line(cell: Cell, storage: str) -> StyleAndTextTuples:
    if cell.state is CellState.ABSENT:
        return [("", f" storage {storage}" + ("" if storage != "raft" else " (no token: raft health unknown)"))]
    if cell.state is CellState.OK:
        ap = cell.value
        style = "class:done" if ap.healthy and ap.failure_tolerance >= 1 else "class:error"
        return [(style, f" raft {'healthy' if ap.healthy else 'UNHEALTHY'}, failure tolerance "
                        f"{ap.failure_tolerance}, leader {ap.leader or '?'}")]
    if cell.state is CellState.PENDING:
        return [("class:hint", f" raft {PENDING}")]
    return [("class:error", f" raft: {cell.error or cell.state.value}")]


def condition_lines(snap: DashboardSnapshot) -> StyleAndTextTuples:
    """What `vaultops status` names for nodes that are gone (quorum lost, degraded, node dead) and the
    command that addresses it; judged once every node's cell has settled."""
    from vaultops.services.recovery.detect import conditions
    from vaultops.services.status import NodeStatus

    if any(not r.status.settled for r in snap.nodes):
        return []
    nodes = [r.node if r.node is not None else NodeStatus(name=r.name, address=r.address, reachable=False)
             for r in snap.nodes]
    out: StyleAndTextTuples = []
    for c in conditions(storage=snap.storage, nodes=nodes, autopilot=snap.autopilot):
        out += [("class:error", f" {c.kind.value}: {c.message}\n")]
        out += [("class:hint", f"   run: {command}\n") for command in c.commands[:2]]
    return out


def backup_line(cell: Cell) -> StyleAndTextTuples:
    if cell.state is CellState.ABSENT:
        return [("class:hint", " backups: no backup sinks configured")]
    if cell.value is not None and cell.state in (CellState.OK, CellState.PENDING):
        b = cell.value
        age = b.age()
        style = "class:level.warn" if age > 26 * 3600 else ""
        epoch = f"key epoch {b.epoch}" if b.epoch is not None else "key epoch UNKNOWN"
        line: StyleAndTextTuples = [(style, f" newest verified backup {age_text(age)} old: {b.name} ({b.sink}), {epoch}")]
        if b.at_risk:
            line.append(("class:error", f"  EPOCH AT RISK: {', '.join(map(str, b.at_risk))} - its keyholders cannot "
                                        "reach the threshold (`vaultops backup epochs`)"))
        return line
    if cell.state is CellState.PENDING:
        return [("class:hint", f" backups {PENDING}")]
    return [("class:level.warn", f" backups: {cell.error or cell.state.value}")]


def journal_lines(snap: DashboardSnapshot) -> StyleAndTextTuples:
    cell = snap.journal
    if cell.state is CellState.ABSENT:
        return [("class:hint", "no journal configured")]
    if cell.value is None:
        return [("class:hint", PENDING if cell.state is CellState.PENDING else cell.error)]
    out: StyleAndTextTuples = []
    for e in cell.value:
        node = f" [{e.node}]" if e.node else ""
        style = "" if e.outcome in ("ok", "") else "class:level.warn"
        out.append((style, f"{e.time[11:]} {e.operator[:10]:<10} {e.action}{node} {e.outcome}\n"))
    return out or [("class:hint", "(empty)")]


def _short(text: str, width: int = 40) -> str:
    return clip(text.split(": ", 1)[-1] if ": " in text else text, width)


__all__ = ["DashboardScreen", "node_cells", "node_table"]

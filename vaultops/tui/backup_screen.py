"""The backup screen: take a verified backup now (with a progress bar), list backups, run a restore drill.

Keys: b back up now (asks y/n); d restore drill (asks y/n, then each keyholder
pastes an ORIGINAL unseal share into the hidden input, Enter on an empty line
starts the drill); l reload the list.

The backup service reports each stage through emit(event, **fields); the bar
advances by stage (login, snapshot open, verified, each sink published) since
a streamed snapshot has no size before it ends. Drill shares live only in this
process's memory until the drill has used them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from prompt_toolkit.buffer import Buffer
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import DummyHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import AnyContainer, Dimension, FormattedTextControl, HSplit, Window
from prompt_toolkit.widgets import Frame, TextArea

from vaultops.tui.console_kit import ConsoleScreen, ScreenState, age_text, bar, conditional, log_text

Emit = Callable[..., None]
LIST_ROWS = 6
# How far along a run is after each event (the sinks share the last fifth).
BACKUP_STAGES = {"run.start": 0.1, "snapshot.open": 0.25, "snapshot.verified": 0.8, "run.done": 1.0,
                 "run.partial": 1.0, "run.failed": 1.0}
DRILL_STAGES = {"drill.start": 0.05, "fetch": 0.1, "sandbox": 0.3, "drill.sandbox": 0.4, "restore": 0.5,
                "sentinels": 0.9, "drill.done": 1.0}
PROGRESS_ONLY = ("snapshot.progress", "drill.stage")


class BackupOps(Protocol):
    sinks: tuple[str, ...]

    def entries(self) -> list[Any]: ...                    # BackupEntry, newest first
    def run(self, emit: Emit) -> Any: ...                  # RunResult
    def drill(self, shares: list[str], emit: Emit) -> Any: ...   # DrillReport


@dataclass
class BackupState(ScreenState):
    entries: list[Any] = field(default_factory=list)
    progress: float = 0.0
    stage: str = ""
    last: Any = None               # the last RunResult or DrillReport
    entering: bool = False         # drill shares are being typed
    drill_shares: int = 0          # how many are held (never the shares themselves)
    runs: int = 0
    drills: int = 0


class BackupScreen(ConsoleScreen):
    name = "backup"
    title = "Backup"
    state: BackupState

    def __init__(self, ops: BackupOps) -> None:
        super().__init__()
        self.ops = ops
        self.state = BackupState()
        self._shares: list[str] = []
        self.share = TextArea(password=True, multiline=False, height=1, history=DummyHistory(),
                              accept_handler=self._on_share, prompt="original share (hidden): ")

    def container(self) -> AnyContainer:
        s = self.state
        return HSplit([
            self.home,
            Window(FormattedTextControl(lambda: [("", " sinks: " + ", ".join(self.ops.sinks))]), height=1),
            Frame(Window(FormattedTextControl(self._list_text), height=Dimension(min=1, max=LIST_ROWS)),
                  title="Backups (newest first)"),
            Window(FormattedTextControl(self._progress_text), height=2, wrap_lines=True),
            conditional(Frame(HSplit([Window(FormattedTextControl(self._drill_hint), height=1), self.share]),
                              title="Restore drill: the ORIGINAL cluster's shares"), lambda: s.entering),
            Window(FormattedTextControl(lambda: log_text(s, 4)), height=Dimension(max=4)),
            self.message_window(),
        ])

    def key_bindings(self) -> KeyBindings:
        kb = KeyBindings()
        idle = self.idle()

        @kb.add("b", filter=idle)
        def _backup(event: KeyPressEvent) -> None:
            self.ask_backup()

        @kb.add("d", filter=idle)
        def _drill(event: KeyPressEvent) -> None:
            self.ask_drill()

        @kb.add("l", filter=idle)
        def _list(event: KeyPressEvent) -> None:
            self.reload()

        @kb.add("escape", filter=Condition(lambda: self.state.entering))
        def _back(event: KeyPressEvent) -> None:
            self.cancel_drill()

        return self.confirm_bindings(kb)

    def help(self) -> str:
        if self.state.confirm is not None:
            return "y confirm · n cancel"
        if self.state.entering:
            return "Enter add share · Enter on empty line start drill · Esc cancel"
        return "b back up now · d restore drill · l reload · ? help"

    def keys_help(self) -> list[tuple[str, str]]:
        return [("b", "back up now (asks)"), ("d", "restore drill (asks)"), ("l", "reload the list")]

    def start(self, app: Any, shell: Any) -> None:
        super().start(app, shell)
        self.reload()

    # -- actions ------------------------------------------------------------------

    def reload(self) -> None:
        self.work("listing backups", self.ops.entries, on_done=self._listed)

    def _listed(self, entries: list[Any]) -> None:
        self.state.entries = list(entries)

    def ask_backup(self) -> None:
        self.ask(f"Take a backup now and publish it to {', '.join(self.ops.sinks)}?", self._backup)

    def _backup(self) -> None:
        s = self.state
        s.progress, s.stage, s.last = 0.02, "logging in", None
        self.work("backing up", lambda: self.ops.run(self._emit(BACKUP_STAGES)), on_done=self._backed_up)

    def _backed_up(self, result: Any) -> None:
        s = self.state
        s.runs += 1
        s.last, s.progress = result, 1.0
        s.stage = (f"{'verified and published' if result.ok else 'FAILED'} in {result.duration:.1f}s: "
                   f"{result.name} ({result.size} bytes)")
        if not result.ok:
            s.error = f"backup failed: {result.error}"
        self.reload()

    def ask_drill(self) -> None:
        self.ask("Run a restore drill: restore the newest verified backup into a throwaway sandbox and read "
                 "the sentinels? Keyholders paste the ORIGINAL shares next", self._collect)

    def _collect(self) -> None:
        self._shares.clear()
        self.state.drill_shares, self.state.entering = 0, True
        self.focus(self.share)

    def cancel_drill(self) -> None:
        self._shares.clear()
        self.share.buffer.reset()
        self.state.drill_shares, self.state.entering = 0, False
        self.go_home()

    def _on_share(self, buf: Buffer) -> bool:
        text = buf.text.strip()
        if text:
            self._shares.append(text)
            self.state.drill_shares = len(self._shares)
            return False  # clears the input
        if not self._shares:
            self.state.error = "no share entered: paste one, or Esc to cancel"
            return False
        shares, self._shares = list(self._shares), []
        self.state.drill_shares, self.state.entering = 0, False
        self.go_home()
        s = self.state
        s.progress, s.stage, s.last = 0.02, "fetching the newest backup", None
        self.work("restore drill", lambda: self.ops.drill(shares, self._emit(DRILL_STAGES)),
                  on_done=self._drilled)
        return False

    def _drilled(self, report: Any) -> None:
        s = self.state
        s.drills += 1
        s.last, s.progress = report, 1.0
        s.stage = (f"drill {'PASSED' if report.ok else 'FAILED'}: restore time {report.rto_seconds:.1f}s, "
                   f"data age {age_text(report.rpo_seconds)} ({report.name})")
        if not report.ok:
            s.error = f"drill failed: {report.error}"

    def _emit(self, stages: dict[str, float]) -> Emit:
        """Called from the worker thread: move the bar, log the event, repaint."""
        sinks = max(len(self.ops.sinks), 1)

        def emit(event: str, **fields: Any) -> None:
            s = self.state
            if event in PROGRESS_ONLY:  # moves the bar; not worth a log line
                s.progress = max(s.progress, stages.get(str(fields.get("stage")), 0.0))
                s.stage = _progress_stage(event, fields)
                self.invalidate()
                return
            if event == "sink.published":
                s.progress = min(s.progress + 0.2 / sinks, 0.99)
            s.progress = max(s.progress, stages.get(event, 0.0))
            s.stage = event
            level = "warn" if event in ("warning", "run.failed", "run.partial", "sink.failed") else "info"
            s.add_log(level, f"{event} " + " ".join(f"{k}={v}" for k, v in fields.items()
                                                    if k not in ("sha256", "message"))
                      + (f" {fields['message']}" if "message" in fields else ""))
            self.invalidate()
        return emit

    # -- rendering ----------------------------------------------------------------------

    def _list_text(self) -> StyleAndTextTuples:
        entries = self.state.entries
        if not entries:
            return [("class:hint", "no backups yet" if not self.state.busy else "…")]
        out: StyleAndTextTuples = []
        for e in entries[:LIST_ROWS]:
            age = age_text(_age(e.time))
            style = "" if e.verified else "class:level.warn"
            out.append((style, f"{e.name:<44} {e.state.value:<11} {age:>6}\n"))
        return out

    def _progress_text(self) -> StyleAndTextTuples:
        s = self.state
        if not s.stage:
            return [("class:hint", " b: back up now")]
        return [("bold", " " + bar(s.progress)), ("", f"  {s.stage}"[:120])]

    def _drill_hint(self) -> StyleAndTextTuples:
        n = self.state.drill_shares
        return [("", f" {n} share{'s' if n != 1 else ''} held in memory; Enter on an empty line starts the drill")]


def _progress_stage(event: str, fields: dict[str, Any]) -> str:
    if event == "snapshot.progress":
        return f"snapshot.progress {fields.get('bytes', 0) / 1048576:.1f} MiB"
    return f"drill: {fields.get('stage')}"


def _age(when: Any) -> float:
    from datetime import datetime

    return (datetime.now(when.tzinfo) - when).total_seconds()


__all__ = ["BackupOps", "BackupScreen"]

"""What every console screen shares: background work, the y/n confirmation, a short event log.

A key handler never calls a service: it either changes state or calls
`screen.ask("Do X to Y?", action)`; the action runs only after `y`, and the
slow part runs in an executor thread via `screen.work(...)`, invalidating
the app when it finishes. Nothing here blocks the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.eventloop import run_in_executor_with_context
from prompt_toolkit.filters import Condition, Filter, buffer_has_focus
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import ConditionalContainer, FormattedTextControl, Window

from vaultops.errors import VaultOpsError
from vaultops.tui.state import LOG_LIMIT, AppState, LogLine

BAR_WIDTH = 30


@dataclass(frozen=True)
class Confirm:
    question: str
    action: Callable[[], None]
    on_no: Callable[[], None] | None = None


@dataclass
class ScreenState:
    busy: str = ""                      # what runs in the background ("" = idle)
    error: str = ""
    confirm: Confirm | None = None
    log: list[LogLine] = field(default_factory=list)

    def add_log(self, level: str, text: str) -> None:
        self.log.append(LogLine(level, text))
        del self.log[:-LOG_LIMIT]


class ConsoleScreen:
    """Base of the console screens (the Screen protocol of tui/app.py)."""

    name = ""
    title = ""
    state: ScreenState

    def __init__(self) -> None:
        self._app: Application[Any] | None = None
        self._shell: AppState | None = None
        # Focus rests here when no text box is open: a hidden screen's text box must never keep it.
        self.home = Window(FormattedTextControl("", focusable=True, show_cursor=False), height=0)

    def start(self, app: Application[Any], shell: AppState) -> None:
        self._app, self._shell = app, shell

    def initial_focus(self) -> Any:
        return self.home

    def go_home(self) -> None:
        self.focus(self.home)

    # -- confirmation -------------------------------------------------------------

    def ask(self, question: str, action: Callable[[], None]) -> None:
        self.state.error = ""
        self.state.confirm = Confirm(question, action)

    def answer(self, yes: bool) -> None:
        pending, self.state.confirm = self.state.confirm, None
        if yes and pending is not None:
            pending.action()
        elif pending is not None:
            self.state.add_log("info", "cancelled: " + pending.question.rstrip("?"))
            if pending.on_no is not None:
                pending.on_no()

    # -- background work ----------------------------------------------------------

    def work(self, what: str, fn: Callable[[], Any], *, on_done: Callable[[Any], None],
             on_error: Callable[[VaultOpsError], None] | None = None) -> bool:
        """Run fn in a thread; False (and nothing started) when another job of this screen runs."""
        if self.state.busy:
            self.state.error = f"busy: {self.state.busy}; wait for it to finish"
            return False
        self.state.busy, self.state.error = what, ""
        if self._app is None:  # not started (unit tests of state only): run inline
            self._finish(fn, on_done, on_error)
            return True
        self._app.create_background_task(self._work(fn, on_done, on_error))
        return True

    def side_work(self, fn: Callable[[], Any], *, on_done: Callable[[Any], None],
                  on_error: Callable[[VaultOpsError], None] | None = None) -> None:
        """Work beside the screen's long job (a share sent while the upgrade waits for it)."""
        if self._app is None:
            self._finish(fn, on_done, on_error)
            return
        self._app.create_background_task(self._side(fn, on_done, on_error))

    async def _side(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
                    on_error: Callable[[VaultOpsError], None] | None) -> None:
        try:
            result = await run_in_executor_with_context(fn)
        except VaultOpsError as exc:
            self._failed(exc, on_error)
        except Exception as exc:  # noqa: BLE001
            self._failed(VaultOpsError(f"{type(exc).__name__}: {exc}", hint="see --debug"), on_error)
        else:
            on_done(result)
        finally:
            self.invalidate()

    async def _work(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
                    on_error: Callable[[VaultOpsError], None] | None) -> None:
        try:
            result = await run_in_executor_with_context(fn)
        except VaultOpsError as exc:
            self.state.busy = ""  # before the callbacks: they may start the next job
            self._failed(exc, on_error)
        except Exception as exc:  # noqa: BLE001 - a bug behind one key must not take the console down
            self.state.busy = ""
            self._failed(VaultOpsError(f"{type(exc).__name__}: {exc}", hint="see --debug"), None)
        except BaseException:
            self.state.busy = ""
            raise
        else:
            self.state.busy = ""
            on_done(result)
        finally:
            self.invalidate()

    def _finish(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
                on_error: Callable[[VaultOpsError], None] | None) -> None:
        try:
            result = fn()
        except VaultOpsError as exc:
            self.state.busy = ""
            self._failed(exc, on_error)
            return
        self.state.busy = ""
        on_done(result)

    def _failed(self, exc: VaultOpsError, on_error: Callable[[VaultOpsError], None] | None) -> None:
        self.state.error = str(exc)
        self.state.add_log("error", str(exc))
        if on_error is not None:
            on_error(exc)

    def invalidate(self) -> None:
        if self._app is not None:
            self._app.invalidate()

    def focus(self, target: Any) -> None:
        if self._app is not None:
            self._app.layout.focus(target)

    # -- shared pieces of layout and keys ----------------------------------------

    def message_window(self) -> Window:
        return Window(FormattedTextControl(lambda: message_text(self.state)), height=2, wrap_lines=True)

    def idle(self) -> Filter:
        """Keys of this screen act only when no question is open and no text box has focus."""
        s = self.state
        return Condition(lambda: s.confirm is None) & ~buffer_has_focus

    def confirm_bindings(self, kb: KeyBindings) -> KeyBindings:
        asking = Condition(lambda: self.state.confirm is not None)

        @kb.add("y", filter=asking)
        def _yes(event: KeyPressEvent) -> None:
            self.answer(True)

        @kb.add("n", filter=asking)
        @kb.add("escape", filter=asking)
        def _no(event: KeyPressEvent) -> None:
            self.answer(False)
        return kb


def message_text(s: ScreenState) -> StyleAndTextTuples:
    if s.confirm is not None:
        return [("class:confirm", f" {s.confirm.question} [y/n] ")]
    if s.busy:
        return [("bold", f" {s.busy} ...")]
    if s.error:
        return [("class:error", " " + s.error)]
    return []


def log_text(s: ScreenState, rows: int) -> StyleAndTextTuples:
    out: StyleAndTextTuples = []
    for line in s.log[-rows:]:
        out.append((f"class:level.{line.level}", line.text + "\n"))
    return out


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A progress bar drawn with ASCII only (readable in monochrome and any font)."""
    fraction = min(max(fraction, 0.0), 1.0)
    full = int(round(fraction * width))
    return "[" + "#" * full + "-" * (width - full) + f"] {fraction * 100:3.0f}%"


def clip(text: str, width: int) -> str:
    """*text* whole when it fits in *width* columns, else cut with an ellipsis that shows it was cut."""
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


def conditional(container: Any, when: Callable[[], bool]) -> ConditionalContainer:
    return ConditionalContainer(container, filter=Condition(when))


def age_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


__all__ = ["ConsoleScreen", "Confirm", "ScreenState", "age_text", "bar", "conditional", "log_text",
           "message_text"]

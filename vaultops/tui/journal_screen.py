"""The journal screen: the newest operator journal entries, and a check of its hash chain.

Keys: l reload; v verify the chain (names the first edited, removed or moved
entry); Up/Down scroll. The entries are read again each time the screen is opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import AnyContainer, FormattedTextControl, HSplit, Window
from prompt_toolkit.widgets import Frame

from vaultops.services.dashboard import JournalLine, journal_line, tail
from vaultops.tui.console_kit import ConsoleScreen, ScreenState

if TYPE_CHECKING:
    from vaultops.journal import Journal

KEEP = 500
PAGE = 14


@dataclass
class JournalState(ScreenState):
    lines: list[JournalLine] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    scroll: int = 0               # entries hidden at the bottom (0 = newest shown)
    verdict: str = ""


class JournalScreen(ConsoleScreen):
    name = "journal"
    title = "Journal"
    state: JournalState

    def __init__(self, journal: Journal | None) -> None:
        super().__init__()
        self.journal = journal
        self.state = JournalState()

    def container(self) -> AnyContainer:
        return HSplit([
            self.home,
            Window(FormattedTextControl(lambda: [("", f" {self.journal.path if self.journal else '-'}  "),
                                                 ("class:done" if "intact" in self.state.verdict
                                                  else "class:error", self.state.verdict)]), height=1),
            Frame(Window(FormattedTextControl(self._entries), wrap_lines=False), title="Entries (newest last)"),
            self.message_window(),
        ])

    def key_bindings(self) -> KeyBindings:
        kb = KeyBindings()
        idle = self.idle()

        @kb.add("l", filter=idle)
        def _reload(event: KeyPressEvent) -> None:
            self.reload()

        @kb.add("v", filter=idle)
        def _verify(event: KeyPressEvent) -> None:
            self.verify()

        @kb.add("up", filter=idle)
        def _up(event: KeyPressEvent) -> None:
            self.scroll(1)

        @kb.add("down", filter=idle)
        def _down(event: KeyPressEvent) -> None:
            self.scroll(-1)

        return kb

    def help(self) -> str:
        return "l reload · v verify chain · Up/Down scroll · ? help"

    def keys_help(self) -> list[tuple[str, str]]:
        return [("l", "reload the journal"), ("v", "verify the hash chain"), ("Up/Dn", "scroll")]

    def start(self, app: Any, shell: Any) -> None:
        super().start(app, shell)
        self.reload()

    def shown(self) -> None:
        """Opened (F6): read again, so what this console just did is listed."""
        if not self.state.busy:
            self.reload()

    def reload(self) -> None:
        if self.journal is None:
            self.state.error = "no journal configured"
            return
        journal = self.journal

        def read() -> tuple[list[JournalLine], list[str]]:
            entries = tail(journal, KEEP)
            return [journal_line(e) for e in entries], [_details(e) for e in entries]
        self.work("reading the journal", read, on_done=self._loaded)

    def _loaded(self, result: tuple[list[JournalLine], list[str]]) -> None:
        self.state.lines, self.state.details = result
        self.state.scroll = 0

    def verify(self) -> None:
        if self.journal is None:
            return
        journal = self.journal

        def done(problems: list[Any]) -> None:
            self.state.verdict = ("chain intact" if not problems else
                                  f"TAMPERED: line {problems[0].line}: {problems[0].reason}")
        self.work("verifying the hash chain", journal.verify, on_done=done)

    def scroll(self, step: int) -> None:
        self.state.scroll = max(0, min(self.state.scroll + step, max(len(self.state.lines) - 1, 0)))

    def _entries(self) -> StyleAndTextTuples:
        s = self.state
        if not s.lines:
            return [("class:hint", "(empty)")]
        end = len(s.lines) - s.scroll
        out: StyleAndTextTuples = []
        for line, detail in list(zip(s.lines, s.details))[max(0, end - PAGE):end]:
            node = f" [{line.node}]" if line.node else ""
            style = "" if line.outcome in ("ok", "") else "class:level.warn"
            out.append((style, f"{line.time[5:]} {line.operator[:8]:<8} {line.action}{node} {line.outcome} "
                               f"{detail}"[:200] + "\n"))
        return out


def _details(e: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in (e.get("details") or {}).items())[:120]


__all__ = ["JournalScreen"]

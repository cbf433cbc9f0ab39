"""The console shell: a header naming the screens, the shown screen, a help footer.

Screens are registered by name (tui/app.py); each builds its own container and
is shown while AppState.screen names it, so an operator console can add
screens without touching this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.layout import ConditionalContainer, FormattedTextControl, HSplit, Layout, Window
from prompt_toolkit.styles import Style

from vaultops.tui.state import AppState

if TYPE_CHECKING:
    from vaultops.tui.app import Screen

STYLE = Style.from_dict({
    "header": "reverse bold",
    "footer": "reverse",
    "status": "italic",
    "phase.unsealed": "ansigreen bold",
    "phase.sealed": "ansiyellow",
    "phase.joining": "ansicyan",
    "phase.waiting": "ansiblue",
    "phase.unreachable": "ansired bold",
    "level.warn": "ansiyellow",
    "level.error": "ansired bold",
    "level.info": "",
    "selected": "reverse",
    "done": "ansigreen",
    "error": "ansired bold",
    "hint": "ansibrightblack",
    "frame.label": "bold",
})


def build_layout(state: AppState, screens: Sequence[Screen]) -> Layout:
    header = Window(FormattedTextControl(lambda: _header(state, screens)), height=1,
                    style="class:header")
    status = Window(FormattedTextControl(lambda: [("class:status", state.status)]), height=1)
    bodies = [ConditionalContainer(s.container(), filter=_shown(state, s.name)) for s in screens]
    footer = Window(FormattedTextControl(lambda: _footer(state, screens)), height=1,
                    style="class:footer")
    first = screens[0].initial_focus() if screens else None
    return Layout(HSplit([header, status, *bodies, footer]), focused_element=first)


def _shown(state: AppState, name: str) -> Condition:
    return Condition(lambda: state.screen == name)


def _header(state: AppState, screens: Sequence[Screen]) -> StyleAndTextTuples:
    tabs = "  ".join(f"[F{i}] {s.title}" if s.name != state.screen else f"<{s.title}>"
                     for i, s in enumerate(screens, 1))
    return [("", f" {state.title}   {tabs if len(screens) > 1 else ''}")]


def _footer(state: AppState, screens: Sequence[Screen]) -> StyleAndTextTuples:
    shown = next((s for s in screens if s.name == state.screen), None)
    text = shown.help() if shown else ""
    return [("", f" {text}  ·  Ctrl-Q quit")]

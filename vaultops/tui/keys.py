"""Console-wide keys: quit, switch screens; each screen's own keys work only while it is shown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from prompt_toolkit.clipboard import Clipboard, DummyClipboard
from prompt_toolkit.filters import Condition
from prompt_toolkit.key_binding import (ConditionalKeyBindings, KeyBindings, KeyBindingsBase,
                                        KeyPressEvent, merge_key_bindings)

from vaultops.tui.state import AppState

if TYPE_CHECKING:
    from vaultops.tui.app import Screen


def share_safe_clipboard() -> Clipboard:
    """Emacs kill keys (Ctrl-K, Ctrl-U, Ctrl-W) would keep the deleted part of a share in the
    kill ring for the rest of the session: the apps that take shares remember nothing."""
    return DummyClipboard()


def build_key_bindings(state: AppState, screens: Sequence[Screen]) -> KeyBindingsBase:
    kb = KeyBindings()

    @kb.add("c-q")
    @kb.add("c-c")
    def _quit(event: KeyPressEvent) -> None:
        event.app.exit()

    for i, screen in enumerate(screens, 1):
        kb.add(f"f{i}")(_switch(state, screen))
    per_screen = [ConditionalKeyBindings(s.key_bindings(), filter=_shown(state, s.name))
                  for s in screens]
    return merge_key_bindings([kb, *per_screen])


def _switch(state: AppState, screen: Screen):  # type: ignore[no-untyped-def]
    def handler(event: KeyPressEvent) -> None:
        state.screen = screen.name
        shown = getattr(screen, "shown", None)  # optional: a screen that reads again when it is opened
        if callable(shown):
            shown()
        target = screen.initial_focus()
        if target is not None:
            event.app.layout.focus(target)
    return handler


def _shown(state: AppState, name: str) -> Condition:
    return Condition(lambda: state.screen == name)

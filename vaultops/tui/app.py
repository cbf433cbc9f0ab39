"""The console application: a registry of screens, one Application, background work.

    app, state = build_app([UnsealScreen(ceremony)], title="vaultops unseal")
    app.run()

A screen implements `Screen`: its own container, key bindings, focus target,
help line and start() for background tasks (slow service calls run in
executor threads and invalidate() the app). SCREENS maps a name to a factory
so an operator console can list and open screens by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from prompt_toolkit.application import Application
from prompt_toolkit.key_binding import KeyBindingsBase
from prompt_toolkit.layout import AnyContainer

from vaultops.tui.keys import build_key_bindings, share_safe_clipboard
from vaultops.tui.layout import STYLE, build_layout
from vaultops.tui.state import AppState

if TYPE_CHECKING:
    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output

    from vaultops.services.ceremony.unseal import CeremonySnapshot, UnsealCeremony


class Screen(Protocol):
    name: str
    title: str

    def container(self) -> AnyContainer: ...
    def key_bindings(self) -> KeyBindingsBase: ...
    def initial_focus(self) -> Any: ...
    def help(self) -> str: ...
    def start(self, app: Application[Any], shell: AppState) -> None: ...


# name -> factory(**services) -> Screen; the operator console adds its own entries.
SCREENS: dict[str, Callable[..., Screen]] = {}


def register_screen(name: str, factory: Callable[..., Screen]) -> None:
    SCREENS[name] = factory


def build_app(screens: Sequence[Screen], *, title: str = "vaultops", input: Input | None = None,
              output: Output | None = None) -> tuple[Application[Any], AppState]:
    state = AppState(title=title, screen=screens[0].name, screens=[s.name for s in screens])
    app: Application[Any] = Application(
        layout=build_layout(state, screens), key_bindings=build_key_bindings(state, screens),
        style=STYLE, full_screen=True, mouse_support=False, input=input, output=output,
        clipboard=share_safe_clipboard())

    def start() -> None:
        for s in screens:
            s.start(app, state)

    app.pre_run_callables.append(start)
    return app, state


def _unseal_factory(*, ceremony: UnsealCeremony, **_: Any) -> Screen:
    from vaultops.tui.unseal_screen import UnsealScreen

    return UnsealScreen(ceremony)


register_screen("unseal", _unseal_factory)


def run_unseal(ceremony: UnsealCeremony) -> CeremonySnapshot:
    """The unseal ceremony in the terminal; returns the state when the operator quits.

    Raises KeyboardInterrupt (exit 130) when the operator left with Ctrl-C; the ceremony is
    finished (journalled, held shares zeroed) either way."""
    screen = SCREENS["unseal"](ceremony=ceremony)
    ceremony.start()
    app, _ = build_app([screen], title="vaultops unseal")
    try:
        app.run()
    finally:
        snap = ceremony.finish()
    if getattr(getattr(screen, "state", None), "interrupted", False):
        raise KeyboardInterrupt
    return snap

"""The operator console: dashboard, unseal, backup, upgrade, certificates and journal in one full-screen app.

    app, shell = make_console(screens, title="prod")     # any Screen objects (tests use fakes)
    run_console(session, ceremony=cer)                   # the real thing (vaultops tui)

The console is wired by its caller's Session (vaultops.session): config, clients, journal and
flags come from there; nothing under vaultops/tui imports the CLI.

F1..F6 switch screens; ? opens the help overlay listing every key of every
screen; Ctrl-Q quits. Monochrome when NO_COLOR is set or no_color=True: every
state is also spelled out in words, so nothing depends on colour.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prompt_toolkit.application import Application
from prompt_toolkit.eventloop import run_in_executor_with_context
from prompt_toolkit.filters import Condition, buffer_has_focus
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent, merge_key_bindings
from prompt_toolkit.layout import (ConditionalContainer, Float, FloatContainer, FormattedTextControl, Layout,
                                   VSplit, Window)
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.styles import Style, merge_styles
from prompt_toolkit.widgets import Frame

from vaultops.tui.keys import build_key_bindings, share_safe_clipboard
from vaultops.tui.layout import STYLE, build_layout
from vaultops.tui.state import AppState

if TYPE_CHECKING:
    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output

    from vaultops.services.ceremony.unseal import UnsealCeremony
    from vaultops.session import Session
    from vaultops.tui.app import Screen

CONSOLE_STYLE = Style.from_dict({
    "confirm": "reverse bold",
    "ha.active": "bold",
    "help": "bg:ansiblack ansiwhite",
})
GLOBAL_KEYS = [("F1..F6", "switch screen"), ("?", "this help"), ("Ctrl-Q", "quit")]


@dataclass
class ConsoleState:
    help: bool = False


def monochrome(no_color: bool = False) -> bool:
    return no_color or bool(os.environ.get("NO_COLOR"))


def make_console(screens: Sequence[Screen], *, title: str = "", no_color: bool = False,
                 input: Input | None = None, output: Output | None = None
                 ) -> tuple[Application[Any], AppState, ConsoleState]:
    state = AppState(title=title, screen=screens[0].name, screens=[s.name for s in screens])
    console = ConsoleState()
    body = build_layout(state, screens)
    showing_help = Condition(lambda: console.help)
    half = (len(screens) + 1) // 2
    columns = VSplit([Window(FormattedTextControl(help_text(screens[:half], start=1, everywhere=True)),
                             wrap_lines=True),
                      Window(width=1, char="|"),
                      Window(FormattedTextControl(help_text(screens[half:], start=half + 1)), wrap_lines=True)])
    overlay = Float(ConditionalContainer(Frame(columns, title="Keys (Esc closes)", style="class:help"),
                                         filter=showing_help), top=1, bottom=1, left=1, right=1)
    layout = Layout(FloatContainer(body.container, floats=[overlay]), focused_element=screens[0].initial_focus())
    kb = merge_key_bindings([_console_keys(console), build_key_bindings(state, screens)])
    app: Application[Any] = Application(
        layout=layout, key_bindings=kb, style=merge_styles([STYLE, CONSOLE_STYLE]), full_screen=True,
        mouse_support=False, input=input, output=output, clipboard=share_safe_clipboard(),
        color_depth=ColorDepth.MONOCHROME if monochrome(no_color) else None)

    def start() -> None:
        for s in screens:
            s.start(app, state)
    app.pre_run_callables.append(start)
    return app, state, console


def _console_keys(console: ConsoleState) -> KeyBindings:
    kb = KeyBindings()
    helping = Condition(lambda: console.help)

    @kb.add("?", filter=~buffer_has_focus)
    def _help(event: KeyPressEvent) -> None:
        console.help = not console.help

    @kb.add("escape", filter=helping, eager=True)
    @kb.add("q", filter=helping)
    def _close(event: KeyPressEvent) -> None:
        console.help = False

    return kb


def help_text(screens: Sequence[Screen], *, start: int = 1, everywhere: bool = False) -> StyleAndTextTuples:
    """Every key of these screens (two columns of this fit 80x24)."""
    out: StyleAndTextTuples = []
    if everywhere:
        out += [("bold", "Everywhere\n"), *[("", f" {k:<7} {v}\n") for k, v in GLOBAL_KEYS]]
    for i, s in enumerate(screens, start):
        out.append(("bold", f"F{i} {s.title}\n"))
        keys = s.keys_help() if hasattr(s, "keys_help") else [("", s.help())]
        out += [("", f" {k:<7} {v}\n") for k, v in keys]
    return out


# -- the real console ------------------------------------------------------------------------


def console_screens(session: Session, *, ceremony: UnsealCeremony, refresh: float = 5.0, timeout: float = 3.0
                    ) -> list[Any]:
    from vaultops.services.dashboard import dashboard_for
    from vaultops.tui.backup_screen import BackupScreen
    from vaultops.tui.console_ops import BackupOps, TlsOps, UpgradeOps
    from vaultops.tui.dashboard_screen import DashboardScreen
    from vaultops.tui.journal_screen import JournalScreen
    from vaultops.tui.tls_screen import TlsScreen
    from vaultops.tui.upgrade_screen import UpgradeScreen

    cfg, journal = session.config, session.journal
    clients = session.clients(timeout=timeout)
    by_name = {c.name: c for c in clients}
    step_down = (lambda node: by_name[node].ha.step_down()) if any(c.token for c in clients) else None
    dash = dashboard_for(cfg, clients, journal=journal, timeout=timeout)
    return [
        DashboardScreen(dash, step_down=step_down, interval=refresh, ceremonies=_ceremonies(session)),
        _ConsoleUnseal(ceremony),
        BackupScreen(BackupOps(session)),
        UpgradeScreen(UpgradeOps(session)),
        TlsScreen(TlsOps(session)),
        JournalScreen(journal),
    ]


def _ceremonies(session: Session) -> dict[str, tuple[str, list[str]]]:
    """The rekey and generate-root screens run as their own programs (they own their application),
    with this console's --config, --operator and --allow-insecure-http."""
    import sys

    base = [sys.executable, "-m", "vaultops", *session.child_argv()]
    return {"k": ("rekey", [*base, "rekey"]), "g": ("generate-root", [*base, "generate-root", "--tui"])}


def _ConsoleUnseal(ceremony: UnsealCeremony) -> Any:  # noqa: N802 - a factory standing in for a class
    from vaultops.tui.unseal_screen import UnsealScreen

    screen = UnsealScreen(ceremony)
    screen.keys_help = lambda: [  # type: ignore[attr-defined]
        ("Up/Dn", "pick a keyholder"), ("Enter", "type share (hidden); submit"),
        ("Tab", "complete a SLIP-39 word"), ("Esc", "back, clears the input"),
        ("Ctrl-R", "reset all progress (asks)"), ("Ctrl-C", "leave (asks if shares in flight)"),
        ("q", "quit the console")]
    return screen


def run_console(session: Session, *, ceremony: UnsealCeremony, no_color: bool = False) -> None:
    """Run until the operator quits; the unseal ceremony is journalled only if its screen was opened
    (the screen asks the nodes only while it is shown). Leaving the ceremony with Ctrl-C raises
    KeyboardInterrupt (exit 130) once it is finished."""
    cfg = session.config
    screens = console_screens(session, ceremony=ceremony)
    app, state, _ = make_console(screens, title="", no_color=no_color)
    opened: list[bool] = []

    def status() -> None:  # after the screens' own start(): the console's line wins
        state.status = f" cluster {cfg.cluster_name} · {len(cfg.nodes)} nodes · {cfg.storage} · ? for keys"

    async def watch_unseal() -> None:
        while state.screen != "unseal":
            await asyncio.sleep(0.2)
        opened.append(True)
        await run_in_executor_with_context(ceremony.start)

    def watch() -> None:
        app.create_background_task(watch_unseal())
    app.pre_run_callables += [status, watch]
    try:
        app.run()
    finally:
        if opened:
            ceremony.finish()
    if any(getattr(getattr(s, "state", None), "interrupted", False) for s in screens):
        raise KeyboardInterrupt


__all__ = ["ConsoleState", "console_screens", "help_text", "make_console", "monochrome", "run_console"]

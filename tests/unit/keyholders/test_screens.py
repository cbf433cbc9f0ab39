"""The ceremony screen driven through its input (pipe input, dummy output) with a scripted driver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from vaultops.errors import ShareMismatchError
from vaultops.tui.rekey_screen import Board, ScreenState, make_app, render


class ScriptedDriver:
    """Accepts 'good-*' shares, refuses others like the manifest check would; the 2nd issues a secret."""

    title = "test ceremony"
    secret_kind = "share"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def board(self) -> Board:
        names = ("alice", "bob", "carol")
        done_names = [n for n, _ in self.sent]
        return Board(("header line",), tuple((n, "submitted" if n in done_names else "waiting") for n in names),
                     len(self.sent), 2, tuple(n for n in names if n not in done_names), done=len(self.sent) >= 2)

    def submit(self, name: str, text: str) -> tuple[str, list[tuple[str, str]]]:
        if not text.startswith("good"):
            raise ShareMismatchError("share #7 belongs to keyholder bob, not to alice", hint="nothing was sent")
        self.sent.append((name, text))
        return f"{name}: accepted", ([("carol", "NEW-SECRET-SHARE")] if len(self.sent) == 2 else [])

    def close(self) -> list[str]:
        return []


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def test_screen_refuses_submits_reveals_privately_and_quits() -> None:
    driver = ScriptedDriver()
    screens: list[str] = []
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        app, state = make_app(driver)

        def feed() -> None:
            wait_for(lambda: state.board is not None)
            inp.send_text("bad-share\r")
            wait_for(lambda: any(level == "error" for level, _ in state.messages))
            inp.send_text("good-1\r")
            wait_for(lambda: driver.sent == [("alice", "good-1")] and not state.busy)
            inp.send_text("\t")  # bob -> carol
            wait_for(lambda: state.name == "carol")
            inp.send_text("good-2\r")
            wait_for(lambda: bool(state.reveal))
            screens.append(_text(state))
            inp.send_text("\r")
            wait_for(lambda: state.revealed)
            screens.append(_text(state))
            inp.send_text("\r")
            wait_for(lambda: not state.reveal)
            screens.append(_text(state))
            inp.send_text("\x11")  # Ctrl-Q

        t = threading.Thread(target=feed, daemon=True)
        t.start()
        app.run()
        t.join(5)
    assert driver.sent == [("alice", "good-1"), ("carol", "good-2")]
    assert "belongs to keyholder bob" in " ".join(m for _, m in state.messages)
    assert "bad-share" not in " ".join(m for _, m in state.messages)
    hidden, shown, after = screens
    assert "Hand the screen to carol ONLY" in hidden and "NEW-SECRET-SHARE" not in hidden
    assert "NEW-SECRET-SHARE" in shown
    assert "NEW-SECRET-SHARE" not in after and "progress 2/2" in after
    assert state.quit


def _text(state: ScreenState) -> str:
    return "".join(t for _, t in render(state))


@pytest.mark.parametrize("selected, expected", [(0, "alice"), (1, "bob"), (4, "bob")])
def test_name_selection_cycles(selected: int, expected: str) -> None:
    st = ScreenState(title="t", board=Board((), (), 0, 2, ("alice", "bob", "carol")), selected=selected)
    assert st.name == expected

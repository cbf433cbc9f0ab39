"""The rekey ceremony screen: a live board of who submitted, hidden share entry, private hand-out.

State, layout and keys are kept apart (house rule 9): `ScreenState` is plain
data, `build_layout` renders it, `build_keys` changes it, and slow calls
(submitting, refreshing) run in background threads that invalidate() the app.
The screen talks to its ceremony through a small `Driver`: this module's
RekeyDriver and generate_root_screen's GenerateRootDriver. The same checks as
the CLI apply: every share is checked against the manifest before it is sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from vaultops.errors import VaultOpsError
from vaultops.tui.keys import share_safe_clipboard

if TYPE_CHECKING:
    from prompt_toolkit.application import Application
    from prompt_toolkit.buffer import Buffer

    from vaultops.services.ceremony.rekey import RekeyCeremony

REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class Board:
    header: tuple[str, ...]
    rows: tuple[tuple[str, str], ...]  # (keyholder, mark)
    progress: int
    required: int
    names: tuple[str, ...]             # who may enter a share now
    done: bool = False


class Driver(Protocol):
    title: str
    secret_kind: str  # what the hand-out reveals: "share", "root token"

    def board(self) -> Board: ...

    def submit(self, name: str, text: str) -> tuple[str, list[tuple[str, str]]]:
        """Send one share; (message, [(keyholder, secret text to reveal to them only)])."""

    def close(self) -> list[str]: ...


@dataclass
class ScreenState:
    title: str
    secret_kind: str = "share"
    board: Board | None = None
    selected: int = 0
    messages: list[tuple[str, str]] = field(default_factory=list)  # (level, text), newest last
    busy: bool = False
    reveal: list[tuple[str, str]] = field(default_factory=list)   # hand-out queue: (name, secret)
    revealed: bool = False
    quit: bool = False

    @property
    def name(self) -> str | None:
        names = self.board.names if self.board else ()
        return names[self.selected % len(names)] if names else None

    def say(self, level: str, text: str) -> None:
        self.messages = (self.messages + [(level, text)])[-8:]


# -- layout -------------------------------------------------------------------------------

def render(state: ScreenState) -> list[tuple[str, str]]:
    """The whole screen as formatted text: hand-out panel, or board + messages."""
    out: list[tuple[str, str]] = [("bold", f" {state.title}\n\n")]
    if state.reveal:
        name, secret = state.reveal[0]
        if not state.revealed:
            out.append(("bold", f" Hand the screen to {name} ONLY, then press Enter to reveal.\n"))
        else:
            out += [("", f" {name}, your new {state.secret_kind} (shown once):\n\n"), ("bold", f"    {secret}\n\n"),
                    ("", " Write it down, then press Enter to hide it.\n")]
        return out
    b = state.board
    if b is None:
        return out + [("", " loading ...\n")]
    out += [("", f" {line}\n") for line in b.header]
    if b.required:
        out.append(("bold", f"\n progress {b.progress}/{b.required}\n"))
    for name, mark in b.rows:
        out.append(("", f"   {mark:<12} {name}\n"))
    if not b.done:
        who = state.name or "-"
        out.append(("", f"\n keyholder: [{who}]  (Tab: next name)   share: type it, hidden; Enter sends\n"))
    for level, text in state.messages:
        out.append(("fg:ansired" if level == "error" else "", f" {text}\n"))
    out.append(("", "\n Ctrl-Q: quit" + ("   (working ...)" if state.busy else "") + "\n"))
    return out


def build_layout(state: ScreenState, share: Buffer) -> Any:
    from prompt_toolkit.filters import Condition
    from prompt_toolkit.layout import ConditionalContainer, HSplit, Layout, Window
    from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
    from prompt_toolkit.layout.processors import PasswordProcessor

    entry_field = Window(BufferControl(share, input_processors=[PasswordProcessor()]), height=1)
    entry = ConditionalContainer(
        entry_field, filter=Condition(lambda: not state.reveal and state.board is not None and not state.board.done))
    text: Any = lambda: render(state)  # noqa: E731 - prompt_toolkit's formatted-text union is too narrow for mypy
    return Layout(HSplit([Window(FormattedTextControl(text), wrap_lines=True), entry]), focused_element=entry_field)


# -- keys ---------------------------------------------------------------------------------

def build_keys(state: ScreenState, share: Buffer, on_submit: Callable[[str, str], None]) -> Any:
    from prompt_toolkit.key_binding import KeyBindings

    kb = KeyBindings()

    @kb.add("c-q")
    @kb.add("c-c")
    def _quit(event: Any) -> None:
        state.quit = True
        event.app.exit()

    @kb.add("tab")
    def _next(event: Any) -> None:
        state.selected += 1

    @kb.add("enter")
    def _enter(event: Any) -> None:
        if state.reveal:
            if state.revealed:
                state.reveal.pop(0)
            state.revealed = not state.revealed
            return
        text, name = share.text, state.name
        share.reset()
        if text.strip() and name and not state.busy:
            on_submit(name, text)

    return kb


# -- the app --------------------------------------------------------------------------------

def make_app(driver: Driver, **app_kwargs: Any) -> tuple[Application[None], ScreenState]:
    from prompt_toolkit.application import Application
    from prompt_toolkit.buffer import Buffer

    state = ScreenState(title=driver.title, secret_kind=driver.secret_kind)
    share = Buffer(multiline=False)
    app: Application[None]

    def background(fn: Callable[[], None]) -> None:
        def work() -> None:
            try:
                fn()
            except VaultOpsError as exc:  # messages never quote share input
                state.say("error", str(exc))
            finally:
                state.busy = False
                app.invalidate()
        state.busy = True
        threading.Thread(target=work, daemon=True, name="ceremony-call").start()

    def refresh() -> None:
        state.board = driver.board()

    def on_submit(name: str, text: str) -> None:
        def send() -> None:
            message, reveal = driver.submit(name, text)
            state.say("info", message)
            state.reveal += reveal
            state.revealed = False
            refresh()
        background(send)

    app = Application(layout=build_layout(state, share), key_bindings=build_keys(state, share, on_submit),
                      full_screen=True, clipboard=share_safe_clipboard(), **app_kwargs)

    def ticker() -> None:  # other terminals' submissions show up live
        while not state.quit:
            if not state.busy:
                try:
                    refresh()
                except VaultOpsError as exc:
                    state.say("error", str(exc))
                app.invalidate()
            threading.Event().wait(REFRESH_SECONDS)

    app.pre_run_callables.append(lambda: threading.Thread(target=ticker, daemon=True).start())
    return app, state


class RekeyDriver:
    """Submission (current keyholders) or verification (new keyholders), whichever phase the rekey is in."""

    secret_kind = "share"

    def __init__(self, cer: RekeyCeremony, *, codec: str = "base64") -> None:
        self.cer = cer
        self.codec = codec
        self.title = f"vaultops rekey - {cer.client.name} via {cer.api.value}"

    def board(self) -> Board:
        from vaultops.services.ceremony.rekey import Phase, load_pending

        pending = load_pending(self.cer.manifest_path)
        st = self.cer.status()
        if pending is None or not st.started:
            done = pending is None and not st.started
            return Board(("no rekey in progress: start one in another terminal (`vaultops rekey start --shares N "
                          "--threshold T --keyholder NAME ...`); this screen follows it" if done else
                          "the rekey here is out of date: cancel it (`vaultops rekey cancel`)",), (), 0, 0, (), done=True)
        verifying = pending.phase is Phase.VERIFYING
        marks = self._marks("rekey.share_verified" if verifying else "rekey.share_submitted")
        people = [k.name for k in pending.keyholders] if verifying else [k.name for k in self.cer.manifest.keyholders]
        header = (f"{pending.old_threshold}/{pending.old_shares} -> {pending.threshold}/{pending.shares}",
                  "NEW keyholders: enter your new share to verify it" if verifying
                  else "CURRENT keyholders: enter your share")
        required = pending.threshold if verifying else st.required
        return Board(header, tuple((n, "submitted" if n in marks else "waiting") for n in people),
                     min(len(marks), required), required, tuple(n for n in people if n not in marks))

    def _marks(self, action: str) -> set[str]:
        """Keyholders recorded by any terminal in this phase of this rekey (from the shared journal)."""
        if self.cer.journal is None:
            return set()
        resets = {"rekey.started"} | ({"rekey.shares_issued"} if action == "rekey.share_verified" else set())
        names: set[str] = set()
        for e in self.cer.journal.entries():
            if e.get("cluster") != self.cer.journal.cluster:
                continue
            if e.get("action") in resets:
                names = set()
            elif e.get("action") == action:
                names.add(str((e.get("details") or {}).get("keyholder")))
        return names

    def submit(self, name: str, text: str) -> tuple[str, list[tuple[str, str]]]:
        from vaultops.services.ceremony import shares
        from vaultops.services.ceremony.rekey import Phase, load_pending

        share = shares.decode(text)
        pending = load_pending(self.cer.manifest_path)
        if pending is not None and pending.phase is Phase.VERIFYING:
            res = self.cer.verify(name, share)
            msg = "rekey complete: the old shares no longer work" if res.complete else (
                f"{name}: new share #{share.index} verified ({res.progress}/{res.required})")
            return msg, []
        sub = self.cer.submit(name, share)
        if sub.issued is None:
            return f"{name}: share #{share.index} accepted ({sub.progress}/{sub.required})", []
        reveal = [(i.keyholder.name, shares.encode(i.share, self.codec) if i.share else i.encrypted_b64 or "")
                  for i in sub.issued.items]
        return "new shares issued: each keyholder in turn, then verification", reveal

    def close(self) -> list[str]:
        return []


def run(cer: RekeyCeremony) -> int:
    """The screen for *cer* (opened by `vaultops rekey`), until the operator quits."""
    app, _state = make_app(RekeyDriver(cer))
    app.run()
    return 0

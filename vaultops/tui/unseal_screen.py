"""The unseal ceremony screen: every node live, keyholders, hidden share entry, the event log.

Keys: Up/Down pick a keyholder, Enter to enter their share (hidden); Enter
submits; Tab completes a SLIP-39 word; Esc goes back and clears the input;
Ctrl-R resets progress on every sealed node (asks y/n); q quits when picking;
Ctrl-C leaves (exit 130), asking first while shares are in flight -- a partial
attempt on a sealed node, or shares this terminal keeps to re-send to nodes that
join later (leaving zeroes them).

The layout does not jump: fixed column widths and pane sizes (tui/unseal_layout.py);
the share input opens once the nodes have answered; messages wrap.

The share is read from a hidden input with no history (tui/secret_input.py).
On Enter its text is copied into a bytearray and the input emptied, with
every cache of prompt_toolkit that still referred to it, so the screen holds
no str of the share while it is checked and sent; the bytearray goes to the
ceremony service in a worker thread and is zeroed when the submission ends.
The str objects prompt_toolkit built from the keystrokes (and the paste)
cannot be zeroed: their freed memory keeps them until Python reuses it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.eventloop import run_in_executor_with_context
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import (AnyContainer, ConditionalContainer, Dimension, FormattedTextControl,
                                   HSplit, VSplit, Window)
from prompt_toolkit.widgets import Frame

from vaultops.errors import ShareFormatError, ShareWordError, VaultOpsError
from vaultops.services.ceremony import view
from vaultops.services.ceremony.shares import Codec, complete_word, detect_codec, resolve_word, wipe
from vaultops.tui import unseal_layout as ul
from vaultops.tui.secret_input import forget, hidden_input, take_secret
from vaultops.tui.state import AppState, UnsealStage, UnsealState

if TYPE_CHECKING:
    from vaultops.services.ceremony.unseal import CeremonySnapshot, UnsealCeremony

UNCHECKED = "(no manifest: unchecked)"
LOG_ROWS = ul.LOG_ROWS
MESSAGE_ROWS = 3  # the share pane then matches the five keyholders' rows


class UnsealScreen:
    name = "unseal"
    title = "Unseal"

    def __init__(self, ceremony: UnsealCeremony, *, refresh_interval: float = 0.5) -> None:
        self.ceremony = ceremony
        self.refresh_interval = refresh_interval
        names = list(ceremony.keyholders) or [UNCHECKED]
        self.state = UnsealState(keyholders=names, checked=ceremony.checked)
        self.share = hidden_input(self._on_share_enter)
        self.passphrase = hidden_input(self._on_passphrase_enter)
        width = self.names_width = max(len(n) for n in names) + ul.NAME_PANE
        self.names = Window(FormattedTextControl(lambda: ul.names_text(self.state), focusable=True,
                                                 show_cursor=False), width=Dimension.exact(width))
        self.columns = ul.Columns.fixed([c.name for c in ceremony.clients], names, debug=ceremony.debug)
        self._app: Application[Any] | None = None
        self._shell: AppState | None = None
        self._pending: bytearray | None = None  # a mnemonic waiting for its passphrase

    # -- Screen protocol ----------------------------------------------------------

    def container(self) -> AnyContainer:
        s = self.state
        rows = len(self.ceremony.clients) + 1
        nodes = Window(FormattedTextControl(self._nodes_text), height=Dimension.exact(rows))
        typing = Condition(lambda: s.snapshot is not None and s.stage is UnsealStage.SHARE)
        asking_passphrase = Condition(lambda: s.stage is UnsealStage.PASSPHRASE)
        blank = Window(height=1)
        entry = HSplit([  # every row is always there: the pane keeps its size whatever it shows
            ConditionalContainer(self.share, filter=typing, alternative_content=blank),
            Window(FormattedTextControl(lambda: ul.entry_text(s, lambda: self.share.text, self._entry_width())),
                   height=1),
            ConditionalContainer(self.passphrase, filter=asking_passphrase, alternative_content=blank),
            Window(FormattedTextControl(self._message_text), height=Dimension.exact(MESSAGE_ROWS),
                   wrap_lines=True),
        ])
        return HSplit([
            Frame(nodes, title="Nodes"),
            Window(FormattedTextControl(self._headline), height=1, wrap_lines=False),
            VSplit([Frame(self.names, title="Keyholders"),
                    Frame(entry, title=lambda: f"Share of {s.keyholder} (hidden input)")]),
            Frame(Window(FormattedTextControl(self._log_text), wrap_lines=True,
                         height=Dimension(min=4, preferred=LOG_ROWS * 2)),
                  title="Ceremony events, newest first (journalled)"),
        ])

    def key_bindings(self) -> KeyBindings:
        return _bindings(self)

    def initial_focus(self) -> Any:
        return self.names

    def help(self) -> str:
        stage = self.state.stage
        if stage is UnsealStage.PICK:
            return "Up/Down keyholder · Enter enter share · Ctrl-R reset · q quit"
        if stage is UnsealStage.CONFIRM_RESET:
            return "y reset every sealed node · n cancel"
        if stage is UnsealStage.CONFIRM_LEAVE:
            return "y leave (exit 130) · n stay"
        return "Enter submit · Tab complete · Esc back (clears) · Ctrl-C leave"

    def start(self, app: Application[Any], shell: AppState) -> None:
        self._app, self._shell = app, shell
        shell.status = ("shares are checked against the keyholder manifest before they are sent"
                        if self.state.checked else
                        "WARNING: no keyholder manifest: shares cannot be checked")
        app.create_background_task(self._refresh_loop())

    # -- actions (called by key handlers) ---------------------------------------

    def pick(self) -> None:
        s = self.state
        if s.snapshot is None:  # the input opens once the nodes answered
            return
        s.stage, s.error, s.suggestions = UnsealStage.SHARE, "", ()
        self._focus(self.share)

    def interrupt(self) -> None:
        """Ctrl-C: leave at once when nothing is in flight, else ask (the typed input is cleared first)."""
        s = self.state
        if s.stage is UnsealStage.CONFIRM_LEAVE:
            return
        self.back()
        snap = s.snapshot
        if s.busy or (snap is not None and snap.in_flight):
            s.stage = UnsealStage.CONFIRM_LEAVE
        else:
            self.leave()

    def confirm_leave(self, yes: bool) -> None:
        if yes:
            self.leave()
        else:
            self.state.stage = UnsealStage.PICK
            self.state.hint = "staying in the ceremony"

    def leave(self) -> None:
        self.state.interrupted = True
        if self._app is not None and self._app.is_running:
            self._app.exit()

    def back(self) -> None:
        forget(self.share)
        forget(self.passphrase)
        self._drop_pending()
        self.state.stage, self.state.error, self.state.suggestions = UnsealStage.PICK, "", ()
        self._focus(self.names)

    def complete(self) -> None:
        """Tab: finish the last word when one SLIP-39 word starts like it."""
        buf = self.share.buffer
        head, _, last = buf.text.rpartition(" ")
        if not last:
            return
        word = resolve_word(last)
        matches = [word] if word else complete_word(last)
        if len(matches) == 1:
            buf.text = (head + " " if head else "") + matches[0] + " "
            buf.cursor_position = len(buf.text)
            self.state.hint = f"word {len(buf.text.split())} completed"
        else:
            self.state.hint = f"{len(matches)} SLIP-39 words start like that: type more letters"

    def ask_reset(self) -> None:
        self.state.stage = UnsealStage.CONFIRM_RESET

    def confirm_reset(self, yes: bool) -> None:
        self.state.stage = UnsealStage.PICK
        if yes:
            self._run("resetting", self.ceremony.reset, on_done=self._after_reset)

    def _on_share_enter(self, buf: Buffer) -> bool:
        secret = take_secret(self.share)
        if not secret or secret.isspace():  # (strip() would copy it)
            wipe(secret)
            self.state.error = "empty share: type or paste it, then press Enter"
            return True
        try:
            mnemonic = detect_codec(secret) is Codec.MNEMONIC
        except ShareFormatError:
            mnemonic = False  # submit() reports the problem (and journals it)
        if mnemonic:
            self._drop_pending()
            self._pending = secret
            self.state.stage = UnsealStage.PASSPHRASE
            self._focus(self.passphrase)
            return True
        self._submit(secret, "")
        return False  # the buffer is already empty

    def _on_passphrase_enter(self, buf: Buffer) -> bool:
        passphrase = buf.text
        secret, self._pending = self._pending, None
        if secret is not None:
            self._submit(secret, passphrase)
        return False

    def _drop_pending(self) -> None:
        if self._pending is not None:
            wipe(self._pending)
            self._pending = None

    def _submit(self, secret: bytearray, passphrase: str) -> None:
        """Check and send in a worker thread; *secret* is zeroed there when that ends, however it ends."""
        s = self.state
        if self._app is None:  # not running: nothing to send it with
            wipe(secret)
            return
        name = None if s.keyholder == UNCHECKED else s.keyholder
        s.error, s.suggestions = "", ()
        typo: list[str] = []

        def work() -> Any:
            try:
                return self.ceremony.submit(secret, keyholder=name, passphrase=passphrase)
            except ShareFormatError:
                typo.append(secret.decode("ascii", "replace"))  # handed back to the keyholder to fix
                raise
            finally:
                wipe(secret)

        def failed(exc: VaultOpsError) -> None:
            leaving = s.stage is UnsealStage.CONFIRM_LEAVE  # Ctrl-C meanwhile: the question stays
            if typo and not leaving:
                self.share.text = typo.pop()
                self.share.buffer.cursor_position = len(self.share.text)
                s.stage = UnsealStage.SHARE
                self._focus(self.share)
            elif not leaving:
                self.back()
            typo.clear()
            s.error = str(exc)
            if isinstance(exc, ShareWordError):
                s.suggestions = exc.suggestions

        def done(sub: Any) -> None:
            s.submissions += 1
            if s.stage is not UnsealStage.CONFIRM_LEAVE:
                self.back()
            s.hint = sub.message  # e.g. that the share was already submitted

        self._run(f"checking and sending {s.keyholder}'s share", work, on_done=done,
                  on_error=failed)

    def _after_reset(self, _: Any) -> None:
        self.state.resets += 1

    # -- background ------------------------------------------------------------------

    def _run(self, what: str, fn: Any, *, on_done: Any, on_error: Any = None) -> None:
        if self._app is None:
            return
        self._app.create_background_task(self._work(what, fn, on_done, on_error))

    async def _work(self, what: str, fn: Any, on_done: Any, on_error: Any) -> None:
        s = self.state
        s.busy = what
        self._invalidate()
        try:
            result = await run_in_executor_with_context(fn)
        except VaultOpsError as exc:
            self._drain()
            if on_error is not None:
                on_error(exc)
        else:
            self.state.snapshot = self.ceremony.snapshot()  # the rows agree with the events just drained
            self._drain()
            on_done(result)
        finally:
            s.busy = ""
            self._invalidate()

    async def _refresh_loop(self) -> None:
        while True:
            if self._shell is not None and self._shell.screen != self.name:
                await asyncio.sleep(self.refresh_interval)  # hidden in the console: ask nobody
                continue
            try:
                snap = await run_in_executor_with_context(self.ceremony.refresh)
            except VaultOpsError as exc:  # refresh() reports nodes, but never crash the screen
                self.state.add_log("error", str(exc))
            else:
                self.apply(snap)
            self._invalidate()
            await asyncio.sleep(self.refresh_interval)

    def apply(self, snap: CeremonySnapshot) -> None:
        self.state.snapshot = snap
        self._drain()

    def _drain(self) -> None:
        for ev in self.ceremony.drain_events():
            self.state.add_log(ev.level.value, ev.message)

    def _focus(self, target: Any) -> None:
        if self._app is not None:
            self._app.layout.focus(target)

    def _invalidate(self) -> None:
        if self._app is not None:
            self._app.invalidate()

    # -- rendering ---------------------------------------------------------------------

    def _nodes_text(self) -> StyleAndTextTuples:
        return ul.nodes_text(self.state.snapshot, self.columns, self._width() - ul.FRAME)

    def _width(self) -> int:
        if self._app is None:
            return 200
        return self._app.output.get_size().columns

    def _headline(self) -> StyleAndTextTuples:
        s = self.state
        snap = s.snapshot
        text = view.headline(snap) if snap else ""
        if s.busy:
            text = f"{s.busy} ...  {text}"
        style = "class:done" if snap is not None and snap.all_unsealed else "bold"
        return [(style, ul.fit(" " + text, self._width()).rstrip())]

    def _entry_width(self) -> int:
        return self._width() - self.names_width - 2 * ul.FRAME

    def _message_text(self) -> StyleAndTextTuples:
        s = self.state
        return ul.wrap(ul.message_text(s, ul.leave_question(s.snapshot, s.busy)), self._entry_width())

    def _log_text(self) -> StyleAndTextTuples:
        return ul.log_text(self.state, self._width() - ul.FRAME)


def _bindings(screen: UnsealScreen) -> KeyBindings:
    kb = KeyBindings()
    s = screen.state

    def stage(*stages: UnsealStage) -> Condition:
        return Condition(lambda: s.stage in stages and not s.busy)

    picking = stage(UnsealStage.PICK)
    typing = Condition(lambda: s.stage in (UnsealStage.SHARE, UnsealStage.PASSPHRASE))

    @kb.add("up", filter=picking)
    def _up(event: KeyPressEvent) -> None:
        s.move(-1)

    @kb.add("down", filter=picking)
    def _down(event: KeyPressEvent) -> None:
        s.move(1)

    @kb.add("enter", filter=picking)
    def _enter(event: KeyPressEvent) -> None:
        screen.pick()

    @kb.add("q", filter=picking)
    def _quit(event: KeyPressEvent) -> None:
        event.app.exit()

    @kb.add("c-r", filter=picking)
    def _reset(event: KeyPressEvent) -> None:
        screen.ask_reset()

    @kb.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        screen.interrupt()

    @kb.add("y", filter=Condition(lambda: s.stage is UnsealStage.CONFIRM_LEAVE))
    def _leave(event: KeyPressEvent) -> None:
        screen.confirm_leave(True)

    @kb.add("n", filter=Condition(lambda: s.stage is UnsealStage.CONFIRM_LEAVE))
    @kb.add("escape", filter=Condition(lambda: s.stage is UnsealStage.CONFIRM_LEAVE))
    def _stay(event: KeyPressEvent) -> None:
        screen.confirm_leave(False)

    @kb.add("y", filter=stage(UnsealStage.CONFIRM_RESET))
    def _yes(event: KeyPressEvent) -> None:
        screen.confirm_reset(True)

    @kb.add("n", filter=stage(UnsealStage.CONFIRM_RESET))
    @kb.add("escape", filter=stage(UnsealStage.CONFIRM_RESET))
    def _no(event: KeyPressEvent) -> None:
        screen.confirm_reset(False)

    @kb.add("escape", filter=typing)
    def _back(event: KeyPressEvent) -> None:
        screen.back()

    @kb.add("tab", filter=typing)
    def _tab(event: KeyPressEvent) -> None:
        screen.complete()

    return kb


__all__ = ["UNCHECKED", "UnsealScreen"]

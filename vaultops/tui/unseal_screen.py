"""The unseal ceremony screen: every node live, keyholders, hidden share entry, the event log.

Keys: Up/Down pick a keyholder, Enter to enter their share (hidden); Enter
submits; Tab completes a SLIP-39 word; Esc goes back and clears the input;
Ctrl-R resets progress on every sealed node (asks y/n); q quits when picking.

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
from vaultops.tui.secret_input import forget, hidden_input, take_secret
from vaultops.tui.state import AppState, UnsealStage, UnsealState

if TYPE_CHECKING:
    from vaultops.services.ceremony.unseal import CeremonySnapshot, UnsealCeremony

UNCHECKED = "(no manifest: unchecked)"
LOG_ROWS = 8


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
        self.names = Window(FormattedTextControl(self._names_text, focusable=True,
                                                 show_cursor=False), width=Dimension(min=24))
        self._app: Application[Any] | None = None
        self._shell: AppState | None = None
        self._pending: bytearray | None = None  # a mnemonic waiting for its passphrase

    # -- Screen protocol ----------------------------------------------------------

    def container(self) -> AnyContainer:
        s = self.state
        rows = len(self.ceremony.clients) + 1
        nodes = Window(FormattedTextControl(self._nodes_text), height=Dimension.exact(rows))
        entry = HSplit([
            self.share,
            Window(FormattedTextControl(lambda: [("class:hint", view.entry_hint(self.share.text))]),
                   height=1),
            ConditionalContainer(HSplit([Window(FormattedTextControl(
                [("", "mnemonic passphrase (hidden; Enter for none):")]), height=1),
                self.passphrase]), filter=Condition(lambda: s.stage is UnsealStage.PASSPHRASE)),
            Window(FormattedTextControl(self._message_text), height=Dimension(min=1, max=3)),
        ])
        return HSplit([
            Frame(nodes, title="Nodes"),
            Window(FormattedTextControl(self._headline), height=1),
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
        return "Enter submit · Tab complete word · Esc back (clears input)"

    def start(self, app: Application[Any], shell: AppState) -> None:
        self._app, self._shell = app, shell
        shell.status = ("shares are checked against the keyholder manifest before they are sent"
                        if self.state.checked else
                        "WARNING: no keyholder manifest: shares cannot be checked")
        app.create_background_task(self._refresh_loop())

    # -- actions (called by key handlers) ---------------------------------------

    def pick(self) -> None:
        s = self.state
        s.stage, s.error, s.suggestions = UnsealStage.SHARE, "", ()
        self._focus(self.share)

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
            if typo:
                self.share.text = typo.pop()
                self.share.buffer.cursor_position = len(self.share.text)
                s.stage = UnsealStage.SHARE
                self._focus(self.share)
            else:
                self.back()
            s.error = str(exc)
            if isinstance(exc, ShareWordError):
                s.suggestions = exc.suggestions

        def done(sub: Any) -> None:
            s.submissions += 1
            self.back()

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
            self._drain()
            on_done(result)
        finally:
            s.busy = ""
            self._invalidate()

    async def _refresh_loop(self) -> None:
        while True:
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
        snap = self.state.snapshot
        if snap is None:
            return [("class:hint", "asking every node ...")]
        rows = view.node_rows(snap)
        widths = [max(len(r[i]) for r in rows + [view.HEADERS]) for i in range(len(view.HEADERS))]
        out: StyleAndTextTuples = [("bold", _row(view.HEADERS, widths) + "\n")]
        for n, row in zip(snap.nodes, rows):
            label = view.PHASE_LABELS[n.phase]
            out += [("", _row(row[:1], widths[:1]) + "  "),
                    (f"class:phase.{label.lower()}", label.ljust(widths[1])),
                    ("", "  " + _row(row[2:], widths[2:]) + "\n")]
        return out

    def _headline(self) -> StyleAndTextTuples:
        s = self.state
        snap = s.snapshot
        text = view.headline(snap) if snap else ""
        if s.busy:
            text = f"{s.busy} ...  {text}"
        style = "class:done" if snap is not None and snap.all_unsealed else "bold"
        return [(style, " " + text)]

    def _names_text(self) -> StyleAndTextTuples:
        s = self.state
        snap = s.snapshot
        submitted = set(snap.submitted) if snap else set()
        again = {k for n in snap.nodes for k in n.must_resubmit} if snap else set()
        out: StyleAndTextTuples = []
        for i, name in enumerate(s.keyholders):
            mark = (("class:level.warn", "  must submit again") if name in again else
                    ("class:done", "  submitted") if name in submitted else ("", ""))
            style = "class:selected" if i == s.selected else ""
            out += [(style, f" {'>' if i == s.selected else ' '} {name}"), mark, ("", "\n")]
        return out

    def _message_text(self) -> StyleAndTextTuples:
        s = self.state
        if s.stage is UnsealStage.CONFIRM_RESET:
            return [("class:error", "Reset progress on every sealed node? Everyone who "
                                    "submitted must submit again. [y/n]")]
        if s.error:
            extra = f"  did you mean: {', '.join(s.suggestions)}?" if s.suggestions else ""
            return [("class:error", s.error + extra)]
        return [("class:hint", s.hint)]

    def _log_text(self) -> StyleAndTextTuples:
        out: StyleAndTextTuples = []
        # Newest first: when the frame is short (80x24) the cut falls on the oldest lines.
        for line in reversed(self.state.log[-LOG_ROWS * 2:]):
            out += [(f"class:level.{line.level}", line.text + "\n")]
        return out


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths))


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

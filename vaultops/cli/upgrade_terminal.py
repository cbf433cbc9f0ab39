"""An upgrade run at a terminal unseals its restarted nodes in place: the keyholders type their shares here.

`vaultops upgrade run/resume` (and `runbook run/resume`) on a terminal, without --share-stdin, hand
the engine a TerminalUnsealer: when a restarted node is sealed it says which node waits for how many
shares, and the keyholders, one after another, paste or type their share at a hidden prompt. Each
share goes through the unseal ceremony (checked against the keyholder manifest before anything is
sent, journalled as that keyholder's submission), the node is followed until it reports unsealed,
and the run goes on. While it waits, the prompt line shows the node's progress and how long it has
waited; a keyholder submitting elsewhere (`vaultops unseal`) counts too. Ctrl-C stops the run
(exit 130; `vaultops upgrade resume` continues). Only a run without a terminal pauses (exit 8).

The share is read from the terminal byte by byte into a bytearray (echo off, never a str), handed to
the ceremony as is, and zeroed once submitted.
"""

from __future__ import annotations

import os
import select
import shutil
import sys
import textwrap
import termios
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from vaultops.errors import RunbookPaused, VaultOpsError
from vaultops.services.ceremony.shares import wipe
from vaultops.services.upgrade.unseal import wait_ready

if TYPE_CHECKING:
    from vaultops.config import Config
    from vaultops.journal import Journal
    from vaultops.services.ceremony.unseal import UnsealCeremony
    from vaultops.vault import NodeClient

MAX_SHARE = 4096
ENTER, BACKSPACE, CTRL_H, CTRL_U, CTRL_D, ESC = 10, 127, 8, 21, 4, 27


def at_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


class HiddenLine:
    """One line from a terminal with echo off, the prompt redrawn every *interval* by *tick*."""

    def __init__(self, fd: int, out: TextIO, *, interval: float = 1.0) -> None:
        self.fd, self.out, self.interval = fd, out, interval
        self._pending = bytearray()     # typed after an Enter in the same read: the next line's start

    def wipe(self) -> None:
        wipe(self._pending)
        del self._pending[:]

    def read(self, prompt: Callable[[int], str], tick: Callable[[], bool]) -> bytearray | None:
        """The typed bytes (the caller wipes them); None when *tick* says stop, or at end of input."""
        saved = termios.tcgetattr(self.fd)
        quiet = termios.tcgetattr(self.fd)
        quiet[3] &= ~(termios.ECHO | termios.ICANON)     # ISIG stays: Ctrl-C interrupts as usual
        quiet[6][termios.VMIN], quiet[6][termios.VTIME] = 1, 0
        line, chunk = bytearray(), bytearray(256)
        try:
            termios.tcsetattr(self.fd, termios.TCSANOW, quiet)
            return self._loop(line, chunk, prompt, tick)
        except BaseException:
            wipe(line)
            raise
        finally:
            wipe(chunk)
            termios.tcsetattr(self.fd, termios.TCSANOW, saved)
            self.out.write("\n")
            self.out.flush()

    def _loop(self, line: bytearray, chunk: bytearray, prompt: Callable[[int], str],
              tick: Callable[[], bool]) -> bytearray | None:
        self._draw(prompt(len(line)))
        due = time.monotonic() + self.interval
        if self._pending:
            n = len(self._pending)
            chunk[:n] = self._pending
            self.wipe()
            done = self._take(line, chunk, n)
            if done is not None:
                return line if done else None
        while True:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, due - time.monotonic()))
            if ready:
                n = os.readv(self.fd, [chunk])
                if n == 0:
                    wipe(line)
                    return None
                done = self._take(line, chunk, n)
                if done is not None:
                    return line if done else None
                self._draw(prompt(len(line)))
            if time.monotonic() >= due:
                if not tick():
                    wipe(line)
                    return None
                self._draw(prompt(len(line)))
                due = time.monotonic() + self.interval

    def _take(self, line: bytearray, chunk: bytearray, n: int) -> bool | None:
        """Edit *line* with the first *n* bytes of *chunk* (then zeroed): True at Enter (what follows is
        kept for the next line), False at end of input (Ctrl-D on an empty line), None to read on."""
        escape = False
        try:
            for i in range(n):
                byte = chunk[i]
                if escape:                       # arrow keys and the like: skipped, not typed
                    escape = not (0x40 <= byte <= 0x7E and byte != ord("["))
                elif byte == ESC:
                    escape = True
                elif byte in (ENTER, 13):
                    self._pending[:] = chunk[i + 1:n]
                    return True
                elif byte in (BACKSPACE, CTRL_H) and line:
                    line[-1] = 0
                    del line[-1]
                elif byte == CTRL_U:
                    wipe(line)
                    del line[:]
                elif byte == CTRL_D and not line:
                    return False
                elif byte >= 32 and len(line) < MAX_SHARE:
                    line.append(byte)
            return None
        finally:
            wipe(chunk)

    def _draw(self, text: str) -> None:
        self.out.write("\r\x1b[K" + text)
        self.out.flush()


class TerminalUnsealer:
    """Unsealer for a run at a terminal: the keyholders submit here, through the checked ceremony."""

    shares_given = 0   # preflight: the keyholders come to this terminal (at least the threshold of them)

    def __init__(self, ceremony: Callable[[NodeClient], UnsealCeremony], *, keyholders: Sequence[str],
                 reader: HiddenLine, out: TextIO, timeout: float = 3600.0) -> None:
        self.ceremony, self.keyholders = ceremony, tuple(keyholders)
        self.reader, self.out, self.timeout = reader, out, timeout

    def unseal(self, client: NodeClient, *, node: str) -> dict[str, Any]:
        st = wait_ready(client)
        if not st.sealed:
            return {"summary": "already unsealed", "version": st.version}
        cer = self.ceremony(client)
        cer.start()
        self._say("")
        self._say(f"{node} restarted on {st.version} and is sealed: {st.t} of {st.n} keyholders must submit "
                  f"their shares ({', '.join(self.keyholders) or 'the keyholders'}).")
        self._say("Keyholders, one after another: paste or type your share and press Enter (hidden input; "
                  "base64, hex or mnemonic words). Each share is checked against the keyholder manifest "
                  "before it is sent. Ctrl-C stops the run; `vaultops upgrade resume` continues it.")
        self._drain(cer)
        try:
            who = self._collect(cer, client, node)
        finally:
            self.reader.wipe()      # nothing typed ahead outlives this node's ceremony
            cer.finish()
        self._say(f"{node} is unsealed: the upgrade goes on")
        return {"summary": f"unsealed at the terminal ({', '.join(who) or 'by keyholders elsewhere'}; checked "
                           "against the manifest)" if cer.checked else "unsealed at the terminal (unchecked)",
                "version": client.seal.status().version, "keyholders": who}

    def _collect(self, cer: UnsealCeremony, client: NodeClient, node: str) -> list[str]:
        started, who = time.monotonic(), []
        state = {"progress": 0, "t": 0, "sealed": True}

        def tick() -> bool:
            try:
                st = client.seal.status()
                state.update(progress=st.progress, t=st.t, sealed=st.sealed)
            except VaultOpsError:
                pass        # a joining follower may not answer for a moment
            return bool(state["sealed"]) and time.monotonic() - started < self.timeout

        def prompt(typed: int) -> str:
            waited = int(time.monotonic() - started)
            shown = f"({typed} characters)" if typed else ""
            return (f"[{node}: {state['progress']}/{state['t']} shares, waiting {waited // 60}:{waited % 60:02d}] "
                    f"share (hidden): {shown}")
        while tick():
            line = self.reader.read(prompt, tick)
            if line is None:
                break
            try:
                who += self._submit(cer, line)
            finally:
                wipe(line)
            cer.follow(timeout=30)   # until nothing moves without new shares (a node may be unsealing)
            self._drain(cer)
        if not cer.refresh().all_unsealed:   # out of time, or the input ended (Ctrl-D)
            raise RunbookPaused(f"{node} is sealed and waits for its keyholders "
                                f"(waited {int(time.monotonic() - started)}s)",
                                hint="keyholders: `vaultops unseal`; then `vaultops upgrade resume`")
        return who

    def _submit(self, cer: UnsealCeremony, line: bytearray) -> list[str]:
        if not line.strip():
            self._say("nothing typed: paste your share and press Enter (Ctrl-C stops the run)")
            return []
        try:
            return [cer.submit_line(line).keyholder]
        except VaultOpsError as exc:     # the ceremony's messages never quote the share
            if not self._drain(cer):     # (a refused share is explained by the ceremony's own event)
                self._say(f"refused: {exc}")
            return []

    def _drain(self, cer: UnsealCeremony) -> int:
        events = cer.drain_events()
        for ev in events:
            self._say(ev.message if ev.level == "info" else f"{ev.level}: {ev.message}")
        return len(events)

    def _say(self, text: str) -> None:
        width = max(40, shutil.get_terminal_size().columns - 1)
        self.out.write("\n".join(textwrap.wrap(text, width, break_on_hyphens=False)) + "\n")
        self.out.flush()


def terminal_unsealer(cfg: Config, *, journal: Journal, keyholders: Sequence[str]) -> TerminalUnsealer:
    """The unsealer of a run at this terminal (stdin and stdout are terminals)."""
    def ceremony(client: NodeClient) -> UnsealCeremony:
        from vaultops.services.ceremony.manifest import Manifest, manifest_path
        from vaultops.services.ceremony.unseal import UnsealCeremony

        try:    # read at each node: the first unseal records the cluster id in it
            path = manifest_path(cfg)
            manifest: Manifest | None = Manifest.load(path)
        except VaultOpsError:
            path, manifest = None, None     # the ceremony warns that shares cannot be checked
        return UnsealCeremony([client], manifest=manifest, manifest_path=path, journal=journal,
                              unseal_timeout=60.0)
    return TerminalUnsealer(ceremony, keyholders=keyholders, reader=HiddenLine(sys.stdin.fileno(), sys.stdout),
                            out=sys.stdout)


def terminal_confirm(message: str) -> bool:
    """A runbook `confirm` step at the terminal: y/N."""
    answer = input(f"{message.rstrip('?')}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


__all__ = ["HiddenLine", "TerminalUnsealer", "at_terminal", "terminal_confirm", "terminal_unsealer"]

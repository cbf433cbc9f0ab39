"""Drive a program in a real terminal (tmux) for end-to-end tests.

Secrets are pasted from a tmux buffer loaded through stdin, never typed on a
command line, so they reach neither argv nor the shell history.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


class Tmux:
    def __init__(self, socket: Path, *, target: str) -> None:
        self.base = ["tmux", "-S", str(socket)]
        self.target = target

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return subprocess.run([*self.base, *args], input=stdin, text=True, check=True,
                              capture_output=True, timeout=10).stdout

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", self.target, *keys)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.target)

    def wait(self, text: str, timeout: float = 40.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; screen:\n{self.screen()}")

    def paste(self, secret: str) -> None:
        self("load-buffer", "-b", "share", "-", stdin=secret)
        self("paste-buffer", "-d", "-b", "share", "-t", self.target)

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=10)

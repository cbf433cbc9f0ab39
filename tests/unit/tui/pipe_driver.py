"""Typing into a prompt_toolkit app through pipe input, and waiting for what it shows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prompt_toolkit.input import PipeInput


class PipeDriver:
    def __init__(self, pipe: PipeInput) -> None:
        self.pipe = pipe

    async def until(self, cond: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, "condition not reached"
            await asyncio.sleep(0.01)

    async def type(self, text: str) -> None:
        self.pipe.send_text(text)
        await asyncio.sleep(0.05)

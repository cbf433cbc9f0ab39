"""The hidden share input hands its text over as a bytearray and keeps no reference to it."""

from __future__ import annotations

import asyncio
import gc
import types

from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from vaultops.tui.secret_input import hidden_input, take_secret


def holders(text: str) -> list[object]:
    """What refers to *text*, but this test's own frame and coroutine."""
    return [r for r in gc.get_referrers(text) if not isinstance(r, (types.FrameType, types.CoroutineType))]


async def typed_then_taken() -> None:
    area = hidden_input(lambda _b: False)
    typed = "".join(["QUJD", "ZGVm"] * 5) + "Zm9v"  # built at run time: not a constant
    for ch in typed:  # one key at a time, rendered after each, as in a terminal
        area.buffer.save_to_undo_stack()
        area.buffer.insert_text(ch)
        area.control.create_content(80, 1)
    text = area.buffer.text
    assert holders(text)  # prompt_toolkit's caches refer to it
    secret = take_secret(area)
    assert secret == text.encode() and area.buffer.text == ""
    assert holders(text) == []
    for i in range(2, len(text)):  # nor to the prefixes typed (a loop: a closure would hold `text`)
        assert holders(text[:i]) == [], i


def test_take_secret_empties_the_input_and_every_cache_that_held_the_text() -> None:
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        asyncio.run(typed_then_taken())

"""The hidden one-line input a share is typed or pasted into, and taking its text out as a bytearray.

prompt_toolkit holds a Buffer's text as str, and not only in the Buffer: its
Document cache (last 10 texts, and a deque of their keys), the BufferControl's
lexer cache (last 8) and the closure of the last rendered line keep every
recent text -- the share and its prefixes -- alive after the Buffer is reset
(measured: the share's str was still referenced by that deque after submit). take_secret() copies the text
into a bytearray, resets the Buffer (document, undo and redo stacks) and
empties those caches, so nothing refers to the str any more. The str objects
themselves cannot be zeroed: their memory is freed, not cleared, and keeps the
text until Python reuses it (README, security). Those caches are private to
prompt_toolkit 3.0; if a later version renames them, they are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prompt_toolkit.buffer import Buffer
from prompt_toolkit.history import DummyHistory
from prompt_toolkit.widgets import TextArea

from vaultops.services.ceremony.shares import to_buffer


def hidden_input(accept: Callable[[Buffer], bool], *, prompt: str = "") -> TextArea:
    """A one-line password-style input that keeps no history."""
    return TextArea(password=True, multiline=False, history=DummyHistory(), accept_handler=accept, height=1,
                    wrap_lines=False, prompt=prompt)


def take_secret(area: TextArea) -> bytearray:
    """The input's text as a bytearray (the caller wipes it); the input is left empty and forgets it."""
    secret = to_buffer(area.buffer.text)
    forget(area)
    return secret


def forget(area: TextArea) -> None:
    """Empty the input and drop every reference prompt_toolkit keeps to its earlier texts."""
    area.buffer.reset()
    _clear(getattr(area.buffer, "_document_cache", None))
    _clear(getattr(area.control, "_fragment_cache", None))
    if hasattr(area.control, "_last_get_processed_line"):
        area.control._last_get_processed_line = None


def _clear(cache: Any) -> None:
    if cache is not None and callable(getattr(cache, "clear", None)):
        cache.clear()
    keys = getattr(cache, "_keys", None)  # FastDictCache's own clear() leaves its key order behind
    if keys is not None and callable(getattr(keys, "clear", None)):
        keys.clear()

"""The one poll/retry helper: every wait loop and every backoff in vaultops goes through here.

    st = poll(lambda: ready(client), timeout=60, what="node1 to answer seal-status")   # until not None
    out = retry(lambda: s3.put(...), on=(SinkError,), budget=60)                         # backoff on errors

A poll's check returns None for "not yet" and anything else for "done"; errors of the
kinds in `tolerate` count as "not yet" (a node restarting, an election in progress) and
the last one is named when the time is up. The deadline is monotonic, the sleep never
overshoots it, and a `stop` event ends the wait at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from vaultops.errors import VaultOpsError

T = TypeVar("T")


class TimedOut(VaultOpsError):
    """A poll that did not see its condition in time (callers usually give their own error class)."""


def poll(check: Callable[[], T | None], *, timeout: float, interval: float = 0.1, what: str,
         tolerate: tuple[type[BaseException], ...] = (VaultOpsError,),
         error: type[VaultOpsError] = TimedOut, hint: str | None = None,
         stop: threading.Event | None = None) -> T:
    """Call *check* until it returns something other than None; raise *error* after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    last: str = ""
    while True:
        try:
            found = check()
        except tolerate as exc:
            found, last = None, str(exc)
        if found is not None:
            return found
        left = deadline - time.monotonic()
        if left <= 0 or (stop is not None and stop.is_set()):
            detail = f" (last: {last})" if last else ""
            raise error(f"{what}: not within {timeout:g}s{detail}", hint=hint or "check the node's log, then retry")
        _sleep(min(interval, left), stop)


def retry(fn: Callable[[], T], *, on: tuple[type[BaseException], ...], budget: float, first: float = 0.2,
          cap: float = 5.0, stop: threading.Event | None = None,
          give_up: Callable[[BaseException], bool] = lambda _exc: False) -> T:
    """fn(), tried again with capped, jittered exponential backoff while it raises one of *on*.

    The last error is raised once *budget* seconds have passed (or *give_up* says an error is final).
    """
    deadline = time.monotonic() + budget
    delay = first
    while True:
        try:
            return fn()
        except on as exc:
            left = deadline - time.monotonic()
            if left <= 0 or give_up(exc) or (stop is not None and stop.is_set()):
                raise
            _sleep(min(delay * (0.5 + random.random() / 2), left), stop)
            delay = min(delay * 2, cap)


def _sleep(seconds: float, stop: threading.Event | None) -> None:
    if stop is None:
        time.sleep(seconds)
    else:
        stop.wait(seconds)


__all__ = ["TimedOut", "poll", "retry"]

"""The one poll/retry helper: every wait loop and every backoff in vaultops goes through here.

    st = poll(lambda: ready(client), timeout=60, what="node1 to answer seal-status")   # until not None
    out = retry(lambda: s3.put(...), on=(SinkError,), budget=60)                         # backoff on errors

A poll's check returns None for "not yet" and anything else for "done"; errors of the
kinds in `tolerate` count as "not yet" (a node restarting, an election in progress) and
the last one is named when the time is up. The deadline is monotonic, the sleep never
overshoots it, and a `stop` event ends the wait at once.

Both take the same knobs for the pause between tries:
  - `interval`/`first`, growing by `backoff` (poll; 1 = fixed) or doubling with jitter (retry), up to `cap`;
  - `asked`: the wait the server asked for (an HTTP Retry-After), which can only lengthen the pause;
  - `clock`/`sleep`: injected by tests that run on a fake clock.
A retry ends at its `budget` (seconds) or after `attempts` tries, whichever comes first.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from vaultops.errors import VaultOpsError

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], None]


class TimedOut(VaultOpsError):
    """A poll that did not see its condition in time (callers usually give their own error class)."""


def poll(check: Callable[[], T | None], *, timeout: float, interval: float = 0.1, backoff: float = 1.0,
         cap: float = 5.0, what: str, tolerate: tuple[type[BaseException], ...] = (VaultOpsError,),
         error: type[VaultOpsError] = TimedOut, hint: str | None = None, stop: threading.Event | None = None,
         asked: Callable[[], float | None] | None = None, clock: Clock = time.monotonic,
         sleep: Sleep | None = None) -> T:
    """Call *check* until it returns something other than None; raise *error* after *timeout* seconds.

    The pause starts at *interval* and is multiplied by *backoff* after each try, up to *cap*."""
    deadline = clock() + timeout
    last: str = ""
    pause = interval
    while True:
        try:
            found = check()
        except tolerate as exc:
            found, last = None, str(exc)
        if found is not None:
            return found
        left = deadline - clock()
        if left <= 0 or (stop is not None and stop.is_set()):
            detail = f" (last: {last})" if last else ""
            raise error(f"{what}: not within {timeout:g}s{detail}", hint=hint or "check the node's log, then retry")
        _sleep(min(_longer(pause, asked() if asked else None), left), stop, sleep)
        pause = min(pause * backoff, max(cap, interval))


def retry(fn: Callable[[], T], *, on: tuple[type[BaseException], ...], budget: float = math.inf,
          attempts: int | None = None, first: float = 0.2, cap: float = 5.0, stop: threading.Event | None = None,
          give_up: Callable[[BaseException], bool] = lambda _exc: False,
          asked: Callable[[BaseException], float | None] | None = None, clock: Clock = time.monotonic,
          sleep: Sleep | None = None) -> T:
    """fn(), tried again with capped, jittered exponential backoff while it raises one of *on*.

    The last error is raised once *budget* seconds have passed, after *attempts* tries, when
    *give_up* says an error is final, or when *stop* is set.
    """
    deadline = clock() + budget
    delay = first
    tries = 0
    while True:
        tries += 1
        try:
            return fn()
        except on as exc:
            left = deadline - clock()
            if left <= 0 or (attempts is not None and tries >= attempts) or give_up(exc) or _stopped(stop):
                raise
            jittered = delay * (0.5 + random.random() / 2)
            _sleep(min(_longer(jittered, asked(exc) if asked else None), left), stop, sleep)
            if _stopped(stop):
                raise
            delay = min(delay * 2, cap)


def _longer(pause: float, asked: float | None) -> float:
    return pause if asked is None else max(pause, asked)


def _stopped(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def _sleep(seconds: float, stop: threading.Event | None, sleep: Sleep | None) -> None:
    if seconds <= 0:
        return
    if sleep is not None:
        sleep(seconds)
    elif stop is None:
        time.sleep(seconds)
    else:
        stop.wait(seconds)


__all__ = ["Clock", "Sleep", "TimedOut", "poll", "retry"]

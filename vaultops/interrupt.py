"""A stop asked for by a signal (SIGTERM from systemd or cron, handled like Ctrl-C) that cannot be lost.

A signal handler that raises KeyboardInterrupt is lost when the main thread is running a weakref
or __del__ callback at that moment: Python prints "Exception ignored" and carries on (seen here: a
backup stopped by SIGTERM went on to publish). So the handler also records the request, and code
about to make something permanent asks first:

    interrupt.check()      # raises KeyboardInterrupt if a stop was requested
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request() -> None:
    """Record a stop (from a signal handler; safe there: it only sets an event)."""
    _requested.set()


def check() -> None:
    if _requested.is_set():
        raise KeyboardInterrupt


def clear() -> None:
    _requested.clear()


__all__ = ["check", "clear", "request"]

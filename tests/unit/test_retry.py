"""The one poll/retry helper."""

from __future__ import annotations

import threading
import time

import pytest

from vaultops.errors import BackupError, VaultUnreachable
from vaultops.retry import TimedOut, poll, retry


def test_poll_returns_the_first_non_none_and_tolerates_our_errors() -> None:
    answers = iter([VaultUnreachable("down"), None, "ready"])

    def check() -> str | None:
        item = next(answers)
        if isinstance(item, Exception):
            raise item
        return item
    assert poll(check, timeout=5, interval=0.001, what="x") == "ready"


def test_poll_times_out_naming_the_last_error_in_the_callers_class() -> None:
    def check() -> None:
        raise VaultUnreachable("node1: connection refused")
    t0 = time.monotonic()
    with pytest.raises(BackupError, match=r"^no leader: not within 0.2s \(last: node1: connection refused\)"):
        poll(check, timeout=0.2, interval=0.05, what="no leader", error=BackupError)
    assert time.monotonic() - t0 < 0.5


def test_poll_does_not_swallow_bugs() -> None:
    with pytest.raises(ZeroDivisionError):
        poll(lambda: 1 / 0, timeout=1, what="x")


def test_poll_stops_at_once_on_the_stop_event() -> None:
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(TimedOut):
        poll(lambda: None, timeout=30, interval=10, what="x", stop=stop)
    assert time.monotonic() - t0 < 1


def test_retry_backs_off_then_succeeds_and_gives_up_after_the_budget() -> None:
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise OSError("blip")
        return "ok"
    assert retry(flaky, on=(OSError,), budget=5, first=0.01) == "ok"
    assert len(calls) == 3
    with pytest.raises(OSError):
        retry(lambda: (_ for _ in ()).throw(OSError("down")), on=(OSError,), budget=0.1, first=0.01)


def test_retry_give_up_is_final() -> None:
    calls = []

    def denied() -> None:
        calls.append(1)
        raise PermissionError("denied")
    with pytest.raises(PermissionError):
        retry(denied, on=(OSError,), budget=5, give_up=lambda e: isinstance(e, PermissionError))
    assert calls == [1]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_poll_backs_off_up_to_the_cap_on_an_injected_clock_and_never_overshoots() -> None:
    clock = FakeClock()
    with pytest.raises(TimedOut, match="not within 10s"):
        poll(lambda: None, timeout=10, interval=0.5, backoff=2, cap=3, what="x", clock=clock, sleep=clock.sleep)
    assert clock.sleeps[:4] == [0.5, 1.0, 2.0, 3.0] and max(clock.sleeps) == 3.0
    assert clock.now == 10.0     # the last pause is cut to the deadline


def test_a_server_asked_wait_lengthens_the_pause_but_never_shortens_it() -> None:
    clock = FakeClock()
    asked = iter([4.0, 0.0, None])
    answers = iter([None, None, None, "done"])
    assert poll(lambda: next(answers), timeout=60, interval=1, what="x", asked=lambda: next(asked),
                clock=clock, sleep=clock.sleep) == "done"
    assert clock.sleeps == [4.0, 1.0, 1.0]


def test_retry_ends_after_its_attempts_and_uses_the_asked_wait() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise OSError("down")
    with pytest.raises(OSError):
        retry(down, on=(OSError,), attempts=3, first=0, asked=lambda _e: 7.0, clock=clock, sleep=clock.sleep)
    assert len(calls) == 3 and clock.sleeps == [7.0, 7.0]


def test_retry_with_no_backoff_does_not_sleep_at_all() -> None:
    sleeps: list[float] = []
    answers = iter([OSError("a"), OSError("b"), "ok"])

    def flaky() -> str:
        item = next(answers)
        if isinstance(item, Exception):
            raise item
        return item
    assert retry(flaky, on=(OSError,), first=0, sleep=sleeps.append) == "ok" and sleeps == []


def test_retry_stops_at_once_when_the_stop_event_is_set_during_a_pause() -> None:
    stop = threading.Event()
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise OSError("down")
    threading.Timer(0.05, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(OSError):
        retry(down, on=(OSError,), budget=30, first=10, stop=stop)
    assert time.monotonic() - t0 < 1 and calls == [1]

"""What a person at a terminal sees of a long backup run or drill: one live status line, then a summary.

    line = LiveLine(sys.stderr)
    emit = BackupProgress(line, expected=last_size)   # the services' emit(event, **fields)
    ... run ...
    line.close()

The line is redrawn in place (carriage return, erase to the end of the line): a bar, the stage,
bytes and rate while a snapshot streams, the time so far. Warnings are printed above it and stay.
Cron and `--format json` never get here: they keep their JSON lines (cli/backup_cmd.py).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

BAR = 24
ERASE = "\x1b[K"
WARN_EVENTS = frozenset({"warning", "run.failed", "run.partial", "sink.failed", "prune.untrusted",
                         "sink.upload_aborted"})


def size_text(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns at GiB


def bar(fraction: float | None, width: int = BAR) -> str:
    """[#####-----]  42%; an unknown fraction draws an empty bar with no percentage."""
    if fraction is None:
        return "[" + "." * width + "]     "
    fraction = min(max(fraction, 0.0), 1.0)
    full = int(round(fraction * width))
    return "[" + "#" * full + "-" * (width - full) + f"] {fraction * 100:3.0f}%"


class LiveLine:
    """One status line on a terminal stream, redrawn in place (and every *tick* seconds, so the time
    so far keeps moving through a long stage)."""

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic,
                 tick: float | None = 0.5) -> None:
        self.stream, self.clock = stream, clock
        self.started = clock()
        self.text = ""
        self._state: tuple[float | None, str] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if tick:
            threading.Thread(target=self._ticker, args=(tick,), daemon=True, name="progress-line").start()

    def show(self, fraction: float | None, stage: str) -> None:
        with self._lock:
            self._state = (fraction, stage)
            self._draw()

    def say(self, message: str) -> None:
        """A line that stays (a warning), printed above the status line."""
        with self._lock:
            self.stream.write("\r" + ERASE + message + "\n" + ("\r" + self.text + ERASE if self.text else ""))
            self.stream.flush()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self.text:
                self.stream.write("\r" + ERASE)
                self.stream.flush()
            self.text, self._state = "", None

    def _ticker(self, tick: float) -> None:
        while not self._stop.wait(tick):
            with self._lock:
                if self._state is not None:
                    self._draw()

    def _draw(self) -> None:
        assert self._state is not None
        fraction, stage = self._state
        text = f"{bar(fraction)}  {stage}  {self.clock() - self.started:.0f}s"
        width = shutil.get_terminal_size((80, 24)).columns - 1
        self.text = text if len(text) <= width else text[: width - 1] + "…"
        self.stream.write("\r" + self.text + ERASE)
        self.stream.flush()


class _Progress:
    """Base of the event adaptors: warnings are printed above the line, every other event moves it."""

    terminal: frozenset[str] = frozenset()  # warning-level events that end the run: shown on the line

    def __init__(self, line: LiveLine) -> None:
        self.line = line
        self.fraction: float | None = 0.0
        self.stage = "starting"

    def __call__(self, event: str, **fields: Any) -> None:
        if event in WARN_EVENTS and event not in self.terminal:
            detail = fields.get("message") or fields.get("error") or fields.get("problem") or event
            where = f"{fields['sink']}: " if fields.get("sink") else ""
            self.line.say(f"warning: {where}{detail}")
            return
        self.on(event, fields)
        self.line.show(self.fraction, self.stage)

    def on(self, event: str, fields: dict[str, Any]) -> None:
        raise NotImplementedError


class BackupProgress(_Progress):
    """`backup run`: login, snapshot streaming (bytes, rate; a fraction when the last size is known), publish."""

    terminal = frozenset({"run.failed", "run.partial"})

    def __init__(self, line: LiveLine, *, expected: int | None = None, sinks: int = 1) -> None:
        super().__init__(line)
        self.expected = expected if expected and expected > 0 else None
        self.sinks = max(sinks, 1)
        self.opened: float | None = None
        self.stage = "logging in"

    def on(self, event: str, fields: dict[str, Any]) -> None:
        if event == "run.start":
            self.fraction, self.stage = 0.05, f"starting {fields.get('source', '')} snapshot"
        elif event == "snapshot.open":
            self.opened = self.line.clock()
            self.fraction, self.stage = 0.1, f"streaming from {fields.get('node') or '?'}"
        elif event == "snapshot.progress":
            self._streaming(int(fields.get("bytes") or 0))
        elif event == "snapshot.verified":
            self.fraction = 0.8
            self.stage = f"verified {size_text(int(fields.get('size') or 0))}; publishing"
        elif event == "sink.published":
            self.fraction = min((self.fraction or 0.8) + 0.2 / self.sinks, 0.99)
            self.stage = f"published to {fields.get('sink')}"
        elif event in ("run.done", "run.failed"):
            self.fraction, self.stage = 1.0, "done" if event == "run.done" else "FAILED"

    def _streaming(self, done: int) -> None:
        secs = max(self.line.clock() - (self.opened or self.line.clock()), 1e-3)
        rate = f"{size_text(done / secs)}/s"
        if self.expected:
            self.fraction = 0.1 + 0.7 * min(done / self.expected, 0.99)
            self.stage = f"snapshot {size_text(done)} of ~{size_text(self.expected)}, {rate}"
        else:
            self.stage = f"snapshot {size_text(done)}, {rate}"


DRILL_STAGES = {
    "drill.start": (0.05, "fetching the backup"),
    "fetch": (0.1, "fetching and verifying the backup"),
    "sandbox": (0.3, "starting a throwaway sandbox"),
    "restore": (0.5, "restoring and unsealing the copy"),
    "sentinels": (0.9, "reading the sentinels"),
    "drill.done": (1.0, "done"),
}


class DrillProgress(_Progress):
    """`backup drill`: fetch, sandbox, restore + unseal, sentinels."""

    def on(self, event: str, fields: dict[str, Any]) -> None:
        key = fields.get("stage") if event == "drill.stage" else event
        if key in DRILL_STAGES:
            self.fraction, self.stage = DRILL_STAGES[str(key)]
            if key == "fetch" and fields.get("size"):
                self.stage += f" ({size_text(int(fields['size']))})"
        elif event == "drill.sandbox":
            self.stage = f"sandbox of OpenBao {fields.get('version')} up"




# -- the summary printed at the end (stdout) ---------------------------------------------------------


def run_summary(result: Any) -> str:
    """A finished `backup run` (RunResult) for a person."""
    verdict = "verified and published" if result.ok else "FAILED"
    lines = [f"backup {result.name}: {verdict} in {result.duration:.1f}s"]
    if result.size:
        m = result.manifest
        lines.append(f"  size      {size_text(result.size)} ({result.size} bytes)")
        if m is not None:
            lines.append(f"  from      {m.source_node} (OpenBao {m.server_version})")
            lines.append(f"  sha256    {m.sha256}")
    width = max((len(s) for s in result.sinks), default=0)
    lines += [f"  {sink:<{width}}  {'published' if state == 'ok' else state}" for sink, state in result.sinks.items()]
    if result.error and not result.ok:
        lines.append(f"  error     {result.error}")
    return "\n".join(lines)


def drill_summary(report: Any) -> str:
    """A finished `backup drill` (DrillReport) for a person."""
    lines = [f"drill of {report.name}: {'PASSED' if report.ok else 'FAILED'}",
             f"  restore time (RTO)  {report.rto_seconds:.1f}s (restore and unseal {report.restore_seconds:.1f}s)",
             f"  data age (RPO)      {_age(report.rpo_seconds)}",
             f"  OpenBao             {report.version}"]
    if report.keyholders:
        how = "checked against the keyholder manifest first" if report.checked else "NOT checked: no manifest"
        lines.append(f"  {'shares of':<20}{', '.join(report.keyholders)} ({how})")
    lines += [f"  sentinel {path}: {state}" for path, state in report.sentinels.items()]
    if report.not_proven:
        lines.append(f"  not proven: {report.not_proven}")
    if report.error:
        lines.append(f"  error: {report.error}")
    return "\n".join(lines)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


__all__ = ["BackupProgress", "DrillProgress", "LiveLine", "bar", "drill_summary", "run_summary", "size_text"]

"""Tables and colour for read commands.

Colour only helps: every state is spelt out in words, and colour is off when NO_COLOR is set (to
anything but the empty string, https://no-color.org), `--no-color` is given, TERM is "dumb" or
stdout is not a terminal. Widths: a table's last column (a NOTE, an error) is wrapped to the
width of the terminal or $COLUMNS, never cut; piped with no COLUMNS, it stays on one line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

RED, GREEN, YELLOW, BOLD = "31", "32", "33", "1"
# The words status and plans print, and how they look: trouble red, fine green, in between yellow.
STATE_STYLES = {
    "sealed": RED, "unreachable": RED, "unhealthy": RED, "uninit": RED, "degraded": YELLOW,
    "token_rejected": YELLOW, "unsealed": GREEN, "active": GREEN, "healthy": GREEN, "leader": GREEN,
    "stop_node": RED, "step_down": YELLOW, "preflight": GREEN, "snapshot": GREEN, "wait_healthy": GREEN,
    "verify": GREEN,
}
MIN_LAST = 24   # the last column keeps at least this many characters however narrow the terminal


@dataclass(frozen=True)
class Styled:
    """A cell's text and, when colour is on, its ANSI style."""

    text: str
    style: str | None = None

    def __str__(self) -> str:
        return self.text


def state(text: str) -> Styled:
    """A state word (sealed, active, UNHEALTHY, stop_node ...) styled by STATE_STYLES."""
    return Styled(text, STATE_STYLES.get(text.strip().lower().split(" ")[-1]))


def colour_wanted(stream: IO[str], *, no_color: bool = False) -> bool:
    if no_color or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def paint(text: str, style: str | None, on: bool) -> str:
    return f"\033[{style}m{text}\033[0m" if on and style and text else text


def line_width(stream: IO[str]) -> int | None:
    """$COLUMNS, else the terminal's width, else None (piped: lines are not cut)."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if _isatty(stream):
        try:
            return os.get_terminal_size(stream.fileno()).columns or None  # a new pty says 0
        except (OSError, ValueError):
            return None
    return None


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def human_size(n: int) -> str:
    """Bytes for people: 512 B, 12.0 KiB, 340.2 MiB, 1.2 GiB."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, width: int | None = None,
          colour: bool = False) -> str:
    """Columns padded to their widest cell, Styled cells painted; the last column wrapped to *width*."""
    import textwrap

    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    indent = sum(w + 2 for w in widths[:-1])
    room = max(MIN_LAST, width - indent) if width is not None else None
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for row, texts in zip(rows, cells):
        last = textwrap.wrap(texts[-1], room, break_on_hyphens=False) if room and texts[-1] else [texts[-1]]
        parts = [paint(t, getattr(v, "style", None), colour) + " " * (w - len(t))
                 for v, t, w in zip(row[:-1], texts[:-1], widths[:-1])]
        lines.append("  ".join([*parts, paint(last[0], getattr(row[-1], "style", None), colour)]).rstrip())
        lines += [" " * indent + more for more in last[1:]]
    return "\n".join(lines)

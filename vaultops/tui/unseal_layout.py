"""The unseal screen's text: a node table of fixed columns, the keyholder list, messages, the log.

The layout never jumps: column widths come from what can appear (node names, state labels, the
keyholders), not from what is shown right now, and the keyholder pane has a fixed width. A table
cell that does not fit is cut with an ellipsis (its full text is in the event log, which wraps);
messages wrap in a pane of fixed height.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prompt_toolkit.formatted_text import StyleAndTextTuples

from vaultops.services.ceremony import view
from vaultops.services.ceremony.types import CeremonySnapshot
from vaultops.tui.console_kit import clip
from vaultops.tui.state import UnsealStage, UnsealState

LOG_ROWS = 8
MARKS = {"again": "must submit again", "resend": "re-sending", "counted": "counted", "done": "submitted"}
NAME_PANE = max(len(m) for m in MARKS.values()) + 6  # ' > ' + name + '  ' + mark (plus the name)
FRAME = 2           # a frame's left and right border
GAP = "  "


@dataclass(frozen=True)
class Columns:
    """The node table's columns (view.HEADERS): which are shown and how wide; NOTE takes the rest.
    The nonce is for --debug: at 80 columns the note needs its room."""

    shown: tuple[int, ...]   # indexes into view.HEADERS, NOTE (the last) excluded
    widths: tuple[int, ...]

    @classmethod
    def fixed(cls, nodes: Sequence[str], keyholders: Sequence[str], *, debug: bool = False) -> Columns:
        name = max([len(view.HEADERS[0])] + [len(n) for n in nodes])
        state = max(len(x) for x in [view.HEADERS[1], *view.PHASE_LABELS.values()])
        progress = max(len(view.HEADERS[2]), len("255/255"))
        names = sorted(keyholders, key=len, reverse=True)[:3]  # a typical threshold's worth
        submitted = min(max(len(view.HEADERS[4]), len(", ".join(names))), 20)
        if debug:
            return cls((0, 1, 2, 3, 4), (name, state, progress, 8, submitted))
        return cls((0, 1, 2, 4), (name, state, progress, submitted))

    def row(self, cells: Sequence[str], total: int) -> list[str]:
        """The shown cells padded or cut to their columns; NOTE gets what is left of *total*."""
        out = [fit(cells[i], w) for i, w in zip(self.shown, self.widths)]
        used = sum(self.widths) + len(GAP) * len(self.widths)
        out.append(fit(cells[-1], max(total - used, 8)).rstrip())
        return out


def fit(text: str, width: int) -> str:
    return clip(text, width).ljust(width)


def nodes_text(snap: CeremonySnapshot | None, cols: Columns, total: int) -> StyleAndTextTuples:
    if snap is None:
        return [("class:hint", "asking every node ...")]
    out: StyleAndTextTuples = [("bold", GAP.join(cols.row(view.HEADERS, total)) + "\n")]
    for n, row in zip(snap.nodes, view.node_rows(snap)):
        cells = cols.row(row, total)
        label = view.PHASE_LABELS[n.phase]
        out += [("", cells[0] + GAP), (f"class:phase.{label.lower()}", cells[1]),
                ("", GAP + GAP.join(cells[2:]) + "\n")]
    return out


def names_text(s: UnsealState) -> StyleAndTextTuples:
    snap = s.snapshot
    out: StyleAndTextTuples = []
    longest = max((len(n) for n in s.keyholders), default=0)
    for i, name in enumerate(s.keyholders):
        mark = _mark(snap, name)
        style = "class:selected" if i == s.selected else ""
        out += [(style, f" {'>' if i == s.selected else ' '} {name}"), ("", " " * (longest - len(name))), mark,
                ("", "\n")]
    return out


def _mark(snap: CeremonySnapshot | None, name: str) -> tuple[str, str]:
    if snap is None:
        return ("", "")
    if snap.all_unsealed:
        return ("class:done", "  " + MARKS["done"]) if name in snap.submitted else ("", "")
    if name in snap.lost:
        return (("class:hint", "  " + MARKS["resend"]) if name in snap.held else
                ("class:level.warn", "  " + MARKS["again"]))
    return ("class:done", "  " + MARKS["counted"]) if name in snap.counted else ("", "")


def entry_text(s: UnsealState, typed: Callable[[], str], width: int) -> StyleAndTextTuples:
    """The line under the share input: what to do now, or live hints on what is being typed."""
    if s.snapshot is None:
        text, style = "asking the nodes: the input opens when they answer", "class:hint"
    elif s.stage is UnsealStage.PICK and s.snapshot.all_unsealed:
        text, style = "every node is unsealed: q leaves", "class:done"
    elif s.stage is UnsealStage.PICK:
        text, style = f"Enter: type or paste {s.keyholder}'s share (hidden)", "class:hint"
    elif s.stage is UnsealStage.PASSPHRASE:
        text, style = "mnemonic passphrase (hidden; Enter for none):", ""
    elif s.stage is UnsealStage.SHARE:
        text, style = view.entry_hint(typed()), "class:hint"
    else:
        text, style = "", ""
    return [(style, fit(text, width).rstrip())]


def message_text(s: UnsealState, leave_question: str) -> StyleAndTextTuples:
    if s.stage is UnsealStage.CONFIRM_RESET:
        return [("class:error", "Reset progress on every sealed node? Everyone who "
                                "submitted must submit again. [y/n]")]
    if s.stage is UnsealStage.CONFIRM_LEAVE:
        return [("class:error", leave_question + " [y/n]")]
    if s.error:
        extra = f"  did you mean: {', '.join(s.suggestions)}?" if s.suggestions else ""
        return [("class:error", s.error + extra)]
    return [("class:hint", s.hint)]


def leave_question(snap: CeremonySnapshot | None, busy: str) -> str:
    """Why leaving now costs something, in one sentence."""
    parts = []
    if busy:
        parts.append(f"{busy} now.")
    if snap is not None:
        partial = [f"{n.name} {n.progress}/{n.threshold}" for n in snap.nodes if n.phase.value == "sealed" and n.progress]
        if partial:
            parts.append("In flight: " + ", ".join(partial) + ".")
        if snap.held:
            parts.append(f"Kept here for nodes that join later, zeroed if you leave: {', '.join(snap.held)}.")
    return " ".join(["Leave the ceremony?", *parts])


def wrap(fragments: StyleAndTextTuples, width: int) -> StyleAndTextTuples:
    """Word-wrapped to *width* (prompt_toolkit wraps mid-word): one style per message here."""
    return [(frag[0], textwrap.fill(frag[1], max(width, 20))) for frag in fragments]


def log_text(s: UnsealState, width: int) -> StyleAndTextTuples:
    out: StyleAndTextTuples = []
    # Newest first: when the frame is short (80x24) the cut falls on the oldest lines.
    for line in reversed(s.log[-LOG_ROWS * 2:]):
        out += [(f"class:level.{line.level}", textwrap.fill(line.text, max(width, 20), subsequent_indent="  ") + "\n")]
    return out


__all__ = ["Columns", "LOG_ROWS", "NAME_PANE", "entry_text", "fit", "leave_question", "log_text", "message_text",
           "names_text", "nodes_text", "wrap"]

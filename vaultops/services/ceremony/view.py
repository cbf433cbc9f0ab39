"""Plain-text views of a ceremony snapshot, shared by the CLI table and the TUI.

No prompt_toolkit here: the TUI styles these strings itself.
"""

from __future__ import annotations

from vaultops.services.ceremony.types import CeremonySnapshot, NodePhase, NodeView

PHASE_LABELS = {
    NodePhase.UNREACHABLE: "UNREACHABLE",
    NodePhase.UNINITIALIZED: "waiting",
    NodePhase.SEALED: "sealed",
    NodePhase.JOINING: "joining",
    NodePhase.UNSEALED: "unsealed",
}


def progress_text(n: NodeView) -> str:
    if n.phase is NodePhase.SEALED and n.threshold:
        return f"{n.progress}/{n.threshold}"
    if n.phase in (NodePhase.UNSEALED, NodePhase.JOINING) and n.threshold:
        return f"{n.threshold}/{n.threshold}"
    return "-"


def node_note(n: NodeView, held: tuple[str, ...] = ()) -> str:
    """One line saying what this node waits for, and who must act (*held*: shares this process
    keeps and re-sends by itself)."""
    if n.phase is NodePhase.UNREACHABLE:
        return f"retrying: {n.error or 'no answer'}"
    if n.phase is NodePhase.UNINITIALIZED:
        return "not initialised: a raft follower joins once a leader is unsealed"
    if n.phase is NodePhase.JOINING:
        return "threshold reached: joining the raft cluster"
    if n.phase is NodePhase.UNSEALED:
        return ""
    note = f"needs {n.needs} more share{'s' if n.needs != 1 else ''}"
    resend = [k for k in n.must_resubmit if k in held]
    again = [k for k in n.must_resubmit if k not in held]
    if resend:
        note += f"; re-sending: {', '.join(resend)}"
    if again:
        note += f"; must submit again: {', '.join(again)}"
    return note


def node_rows(snap: CeremonySnapshot) -> list[list[str]]:
    return [[n.name, PHASE_LABELS[n.phase], progress_text(n), (n.nonce or "-")[:8],
             ", ".join(n.contributors) or "-", node_note(n, snap.held)] for n in snap.nodes]


def headline(snap: CeremonySnapshot) -> str:
    """The ceremony in one line. Who counts is read from the nodes, so after a reset (or a restart)
    the line and the node rows agree: nobody is 'submitted' whose share no node holds."""
    if snap.all_unsealed:
        who = f"; shares from {', '.join(snap.submitted)}" if snap.submitted else ""
        return f"every node is unsealed ({len(snap.nodes)}){who}"
    parts = [snap.summary()]
    if snap.needs:
        parts.append(f"up to {snap.needs} more share{'s' if snap.needs != 1 else ''} needed")
    if snap.counted:
        parts.append(f"counted: {', '.join(snap.counted)}")
    again = [k for k in snap.lost if k not in snap.held]
    if again:
        parts.append(f"must submit again: {', '.join(again)}")
    return "; ".join(parts)


HEADERS = ["NODE", "STATE", "PROGRESS", "NONCE", "SUBMITTED", "NOTE"]


def entry_hint(text: str) -> str:
    """Live feedback on hidden input: lengths and word positions, never the content."""
    from vaultops.services.ceremony.shares import BASE64_CHARS, HEX_CHARS, MNEMONIC_WORDS, resolve_word

    body = text.strip()
    if not body:
        return f"base64 ({BASE64_CHARS} chars), hex ({HEX_CHARS}) or {MNEMONIC_WORDS} SLIP-39 words"
    tokens = body.split()
    if len(tokens) == 1 and not body.isalpha():
        return f"{len(body)} characters (base64: {BASE64_CHARS}, hex: {HEX_CHARS})"
    finished = tokens if text.endswith((" ", "\t")) else tokens[:-1]
    bad = next((i for i, t in enumerate(finished, 1) if resolve_word(t) is None), None)
    note = f"; word {bad} is not a SLIP-39 word" if bad else ""
    return f"mnemonic: {len(tokens)}/{MNEMONIC_WORDS} words{note}"

"""Values the unseal ceremony hands to its front ends (CLI, TUI, runbooks).

Everything here is safe to show and to journal: share indexes (x-coordinates),
keyholder names, node names, progress and nonces -- never share material.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field


class NodePhase(enum.StrEnum):
    UNREACHABLE = "unreachable"      # no answer; retried on every refresh
    UNINITIALIZED = "uninitialized"  # a raft follower waiting for an unsealed leader (or a new cluster)
    SEALED = "sealed"                # takes shares
    JOINING = "joining"              # threshold reached; a raft follower joining (sealed, progress 0)
    UNSEALED = "unsealed"


class SendOutcome(enum.StrEnum):
    ACCEPTED = "accepted"            # counted: progress went up
    DUPLICATE = "duplicate"          # this node already had the share in its current attempt
    UNSEALED = "unsealed"            # this share completed the threshold
    JOINING = "joining"              # completed the threshold on a raft follower that is joining
    REJECTED = "rejected"            # HTTP 400 at the threshold: progress on that node is lost
    ALREADY_UNSEALED = "already-unsealed"
    NOT_READY = "not-ready"          # uninitialised or joining: not sent
    UNREACHABLE = "unreachable"      # not sent (or no answer) after retrying


SENT = frozenset({SendOutcome.ACCEPTED, SendOutcome.DUPLICATE, SendOutcome.UNSEALED,
                  SendOutcome.JOINING})


class EventKind(enum.StrEnum):
    STARTED = "started"
    SUBMITTED = "submitted"
    RESENT = "resent"                # a held share sent again to a node that needed it
    HELD_DROPPED = "held-dropped"    # shares kept for re-sending were zeroed
    REJECTED = "rejected"            # refused locally: nothing was sent
    THRESHOLD_FAILED = "threshold-failed"
    RESET = "reset"
    NODE_UNSEALED = "node-unsealed"
    NODE_JOINING = "node-joining"
    NODE_INITIALIZED = "node-initialized"
    NODE_UNREACHABLE = "node-unreachable"
    NODE_BACK = "node-back"
    NODE_RESEALED = "node-resealed"
    NONCE_CHANGED = "nonce-changed"
    CLUSTER_UNSEALED = "cluster-unsealed"
    MANIFEST_UPDATED = "manifest-updated"
    WARNING = "warning"


class Level(enum.StrEnum):
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class CeremonyEvent:
    kind: EventKind
    message: str
    level: Level = Level.INFO
    node: str | None = None
    keyholder: str | None = None


@dataclass(frozen=True)
class NodeSend:
    """What happened to one share on one node."""

    node: str
    outcome: SendOutcome
    progress: int = 0
    threshold: int = 0
    nonce: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Submission:
    """One keyholder's share, checked and fanned out (or re-sent). Holds no share material."""

    keyholder: str
    share_index: int                     # the x-coordinate (journal, --debug)
    verified: bool
    sends: tuple[NodeSend, ...]
    label: str = ""                      # how people see it: 'share #1' (the keyholder's number)
    resent: bool = False                 # a held share sent again to nodes that needed it

    @property
    def sent_to(self) -> tuple[str, ...]:
        return tuple(s.node for s in self.sends if s.outcome in SENT)

    @property
    def rejected_on(self) -> tuple[str, ...]:
        return tuple(s.node for s in self.sends if s.outcome is SendOutcome.REJECTED)

    @property
    def repeated(self) -> bool:
        """Entered again: every node it reached already held it in its current attempt."""
        sent = [s for s in self.sends if s.outcome in SENT]
        return bool(sent) and all(s.outcome is SendOutcome.DUPLICATE for s in sent)

    @property
    def message(self) -> str:
        label = self.label or f"share #{self.share_index}"
        nodes = ", ".join(self.sent_to) or "no node"
        if self.resent:
            return f"re-sent keyholder {self.keyholder}'s {label} to [{nodes}] (held for this ceremony)"
        if self.repeated:
            return (f"keyholder {self.keyholder}'s {label} was already submitted: [{nodes}] already "
                    "hold it in this attempt, nothing changed")
        text = f"keyholder {self.keyholder} submitted {label} to [{nodes}]"
        skipped = [f"{s.node} {s.outcome.value}" for s in self.sends if s.outcome not in SENT]
        return text + (f" (not sent: {', '.join(skipped)})" if skipped else "")


@dataclass(frozen=True)
class NodeView:
    """One node as the ceremony sees it right now."""

    name: str
    address: str
    phase: NodePhase
    progress: int = 0
    threshold: int = 0
    shares: int = 0
    nonce: str = ""
    version: str = ""
    cluster_id: str | None = None
    error: str | None = None
    contributors: tuple[str, ...] = ()   # keyholders whose shares this node holds now
    must_resubmit: tuple[str, ...] = ()  # submitted in this ceremony, lost on this node

    @property
    def needs(self) -> int:
        """Shares still needed on this node (0 when unsealed, joining or unknown)."""
        if self.phase is not NodePhase.SEALED or not self.threshold:
            return 0
        return max(self.threshold - self.progress, 0)


@dataclass(frozen=True)
class CeremonySnapshot:
    nodes: tuple[NodeView, ...]
    submitted: tuple[str, ...] = ()      # keyholders who submitted in this ceremony (any process)
    checked: bool = False                # shares are checked against a manifest
    cluster_id: str | None = None
    threshold: int = 0
    keyholders: tuple[str, ...] = field(default=())
    held: tuple[str, ...] = ()           # keyholders whose shares this process keeps to re-send

    @property
    def counted(self) -> tuple[str, ...]:
        """Keyholders whose shares some sealed node holds in its current attempt."""
        return _unique(k for n in self.nodes if n.phase is NodePhase.SEALED for k in n.contributors)

    @property
    def lost(self) -> tuple[str, ...]:
        """Keyholders who submitted but whose shares some sealed node does not hold (any more)."""
        return _unique(k for n in self.nodes for k in n.must_resubmit)

    @property
    def in_flight(self) -> bool:
        """Leaving now strands something: a partial attempt on a sealed node, or shares held to re-send."""
        if self.all_unsealed:
            return False
        return bool(self.held) or any(n.phase is NodePhase.SEALED and n.progress for n in self.nodes)

    @property
    def all_unsealed(self) -> bool:
        return bool(self.nodes) and all(n.phase is NodePhase.UNSEALED for n in self.nodes)

    @property
    def busy(self) -> bool:
        """Something is still moving without new shares (a follower joining)."""
        return any(n.phase is NodePhase.JOINING for n in self.nodes)

    @property
    def needs(self) -> int:
        """Most shares any sealed node still needs."""
        return max((n.needs for n in self.nodes), default=0)

    def node(self, name: str) -> NodeView:
        return next(n for n in self.nodes if n.name == name)

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.phase.value] = counts.get(n.phase.value, 0) + 1
        return ", ".join(f"{v} {k}" for k, v in counts.items())


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def split_share_line(line: str, keyholders: tuple[str, ...] | list[str]) -> tuple[str | None, str]:
    """'NAME: share' -> (NAME, share); a bare share -> (None, share). See share_offset()."""
    from vaultops.services.ceremony.shares import to_buffer, wipe

    buf = to_buffer(line)  # one character per byte: offsets agree
    try:
        name, at = share_offset(buf, keyholders)
    finally:
        wipe(buf)
    return (name, line[at:]) if name is not None else (None, line)


def share_offset(line: bytearray, keyholders: tuple[str, ...] | list[str]) -> tuple[str | None, int]:
    """'NAME: share' -> (NAME, where the share starts); a bare share -> (None, 0).

    Only a known keyholder name (or any name when *keyholders* is empty)
    followed by ':' counts as a prefix, so base64 and mnemonics are never cut.
    The line is read in place; only a name is ever copied out of it.
    """
    colon = line.find(b":")
    if colon < 0:
        return None, 0
    head = memoryview(line)[:colon]
    start, end = 0, len(head)
    while start < end and head[start] in _SPACE:
        start += 1
    while end > start and head[end - 1] in _SPACE:
        end -= 1
    if start == end or not all(c in _NAME_CHARS for c in head[start:end]):
        return None, 0
    name = bytes(head[start:end]).decode("ascii")
    return (name, colon + 1) if name in keyholders or not keyholders else (None, 0)


_SPACE = frozenset(b" \t\r\n\v\f")
_NAME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")

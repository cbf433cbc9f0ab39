"""Submitting unseal shares to a node: the one path every caller takes.

    st = status(client, retry_for=3)                  # seal-status; an unreachable node is retried
    sent = refusal(st) or send(client, key, before=st) # one share -> Sent(outcome, status, detail)
    res = unseal_node(client, shares, timeout=60)      # all of them, until the node is unsealed

The unseal ceremony sends one keyholder's share to every node (status, refusal, send); the
upgrade's SharesUnsealer, the sandbox bootstrap and backup drills hold every share at once and
call unseal_node(). What a node does with a share, as measured on OpenBao (field notes):

- Shares go only to a node whose seal-status says initialised: a raft joiner must first fetch
  its challenge (retry_join); shares sent before that never complete the join.
- A byte-identical duplicate is ignored: progress and nonce stay as they were.
- A wrong share is found only at the threshold: HTTP 400, progress drops to 0, the next share
  starts a new nonce.
- After the last share a joining raft follower answers `sealed, progress 0` for seconds, then
  unsealed: follow seal-status rather than trusting the first answer. A join that has not
  completed after `join_timeout` is tried again with the same shares.

A Share is turned into a base64 bytearray for each send and that is zeroed right after
(services/ceremony/shares.py); the Share itself, and str shares (sandbox material, drill
lines), belong to the caller.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from vaultops.errors import VaultError, VaultOpsError, VaultUnreachable
from vaultops.retry import TimedOut, poll, retry
from vaultops.services.ceremony.shares import Share, b64_buffer, wipe
from vaultops.services.ceremony.types import SendOutcome
from vaultops.vault.cluster import wait_ready
from vaultops.vault.models import SealStatus

if TYPE_CHECKING:
    from vaultops.vault import NodeClient

JOIN_TIMEOUT = 20.0  # a loopback raft follower joins in ~2 s; one that has not after this never will
COUNTED = frozenset({SendOutcome.ACCEPTED, SendOutcome.DUPLICATE})  # still sealed: the next share may follow


@dataclass(frozen=True)
class Sent:
    """What one node did with one share (or why it was not sent). Holds no share material."""

    outcome: SendOutcome
    status: SealStatus  # the node's answer; after a rejection: the status before, progress and nonce cleared
    detail: str = ""


def status(client: NodeClient, *, retry_for: float = 0.0) -> SealStatus:
    """GET sys/seal-status; an unreachable node is asked again for *retry_for* seconds."""
    return retry(client.seal.status, on=(VaultUnreachable,), budget=retry_for, first=0.1, cap=1.0)


def refusal(st: SealStatus, *, joining: bool = False) -> Sent | None:
    """Why no share may go to a node in state *st* now; None when it takes shares."""
    if not st.initialized:
        return Sent(SendOutcome.NOT_READY, st, "not initialised yet")
    if not st.sealed:
        return Sent(SendOutcome.ALREADY_UNSEALED, st)
    if joining:
        return Sent(SendOutcome.NOT_READY, st, "joining")
    return None


def send(client: NodeClient, key: str | bytearray, *, before: SealStatus, timeout: float | None = None) -> Sent:
    """PUT sys/unseal with one share to a node that takes shares (see refusal()).

    A 400 is the threshold refusing a wrong share in this attempt (REJECTED); other errors raise.
    """
    try:
        after = client.seal.unseal(key, timeout=timeout)
    except VaultError as exc:
        if exc.status != 400:
            raise
        return Sent(SendOutcome.REJECTED, replace(before, progress=0, nonce=""), exc.message)
    return Sent(outcome(before, after), after)


def outcome(before: SealStatus, after: SealStatus) -> SendOutcome:
    """Read a node's answer to a share against its status just before."""
    if not after.sealed:
        return SendOutcome.UNSEALED
    if after.progress == 0:
        return SendOutcome.JOINING  # the threshold was reached on a raft follower that is joining
    if after.progress == before.progress and after.nonce == before.nonce:
        return SendOutcome.DUPLICATE
    return SendOutcome.ACCEPTED


@dataclass(frozen=True)
class NodeUnseal:
    """How unseal_node() ended on one node."""

    node: str
    status: SealStatus  # the node's last answer
    sent: int           # shares sent, resubmissions included
    rounds: int = 0     # times the threshold was reached (more than 1: a join was tried again)
    rejected: str = ""  # the server's message when it refused the shares at the threshold

    @property
    def sealed(self) -> bool:
        return self.status.sealed


def unseal_node(client: NodeClient, shares: Sequence[Share | str], *, timeout: float = 60.0,
                join_timeout: float = JOIN_TIMEOUT, unseal_timeout: float | None = None, interval: float = 0.1,
                error: type[VaultOpsError] = VaultError) -> NodeUnseal:
    """Send *shares* in order until *client* is unsealed, refuses them, or *timeout* passes.

    Returns how it ended (check `.sealed` and `.rejected`); raises *error* only when the node never
    answered seal-status as initialised. Errors from the node in between count as "not yet".
    """
    deadline = time.monotonic() + timeout
    run = _Unsealing(client, shares, join_timeout=join_timeout, unseal_timeout=unseal_timeout)
    run.last = wait_ready(client, timeout=timeout, error=error)
    try:
        return poll(run.step, timeout=max(deadline - time.monotonic(), 0.0), interval=interval,
                    tolerate=(VaultError,), what=f"{client.name} to unseal")
    except TimedOut:
        return run.result()


class _Unsealing:
    """One node's way through unseal_node(): status, a round of shares, following a join."""

    def __init__(self, client: NodeClient, shares: Sequence[Share | str], *, join_timeout: float,
                 unseal_timeout: float | None) -> None:
        self.client, self.shares = client, shares
        self.join_timeout, self.unseal_timeout = join_timeout, unseal_timeout
        self.last: SealStatus | None = None
        self.sent = self.rounds = 0
        self.joined_at: float | None = None

    def result(self, rejected: str = "") -> NodeUnseal:
        assert self.last is not None
        return NodeUnseal(self.client.name, self.last, self.sent, self.rounds, rejected)

    def step(self) -> NodeUnseal | None:
        self.last = st = self.client.seal.status()
        if not st.sealed:
            return self.result()
        if not st.initialized:
            return None  # a raft joiner without its challenge yet
        if self.joined_at is not None:
            if st.progress == 0 and time.monotonic() - self.joined_at < self.join_timeout:
                return None  # joining: follow seal-status
            self.joined_at = None  # the join never completed: the same shares again
        sent = self._round(st)
        self.last = sent.status
        if sent.outcome is SendOutcome.JOINING:
            self.rounds, self.joined_at = self.rounds + 1, time.monotonic()
            return None
        if sent.outcome is SendOutcome.UNSEALED:
            self.rounds += 1
        return self.result(sent.detail if sent.outcome is SendOutcome.REJECTED else "")

    def _round(self, st: SealStatus) -> Sent:
        """Every share in turn until the threshold answers (or the shares run out: still sealed)."""
        sent = Sent(SendOutcome.NOT_READY, st, "no shares")
        for share in self.shares:
            key = b64_buffer(share.raw) if isinstance(share, Share) else share
            try:
                sent = send(self.client, key, before=sent.status, timeout=self.unseal_timeout)
            finally:
                if isinstance(key, bytearray):
                    wipe(key)
            self.sent += 1
            if sent.outcome not in COUNTED:
                return sent
        return sent


__all__ = ["COUNTED", "JOIN_TIMEOUT", "NodeUnseal", "Sent", "outcome", "refusal", "send", "status", "unseal_node"]

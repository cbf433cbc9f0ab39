"""Re-sending the shares a ceremony keeps to the nodes that need them after the keyholders submitted.

A raft follower that became initialised once the leader was unsealed (field notes: shares go to a
joiner only once its seal-status says initialised), a node that was down or restarted: it is
sealed and lacks shares the ceremony still holds (services/ceremony/held.py). Each such node gets
them one keyholder after another, until it takes no more (threshold reached: unsealed or joining);
the nodes at once. Every send goes through the ceremony's one send path (UnsealCeremony._send_one:
seal-status, refusal, sys/unseal) and is journalled as a re-send (unseal.share-resent), not as a
submission. A node that refuses re-sent shares at the threshold is not sent them again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from vaultops.services.ceremony import submit
from vaultops.services.ceremony.shares import wipe
from vaultops.services.ceremony.types import SENT, EventKind, Level, NodePhase, NodeSend, SendOutcome, Submission
from vaultops.vault import fan_out

if TYPE_CHECKING:
    from vaultops.services.ceremony.types import CeremonySnapshot
    from vaultops.services.ceremony.unseal import UnsealCeremony
    from vaultops.vault import NodeClient


class Resender:
    def __init__(self, ceremony: UnsealCeremony) -> None:
        self.ceremony = ceremony
        self.lock = threading.Lock()  # one round at a time; a reset holds it to keep rounds out
        self.refused: set[str] = set()

    def resend(self, snap: CeremonySnapshot) -> CeremonySnapshot:
        """One round for *snap*; the snapshot after it (unchanged when nothing was due)."""
        cer = self.ceremony
        held = set(cer.held.names())
        wanted = {n.name: [k for k in n.must_resubmit if k in held] for n in snap.nodes
                  if n.phase is NodePhase.SEALED and n.name not in self.refused}
        targets = [c for c in cer.clients if wanted.get(c.name)]
        if not targets or not self.lock.acquire(blocking=False):
            return snap
        try:
            limit = len(held) * (cer.retry_for + cer.status_timeout + cer.unseal_timeout) + 2
            results = fan_out(targets, lambda c: self._node(c, wanted[c.name]), timeout=limit)
        finally:
            self.lock.release()
        by_keyholder: dict[str, tuple[int, list[NodeSend]]] = {}
        for r in results:  # a node that failed is asked again at the next refresh
            for name, index, send in (r.value or []) if r.ok else []:
                by_keyholder.setdefault(name, (index, []))[1].append(send)
        tracker = cer.tracker
        for name, (index, sends) in by_keyholder.items():
            sub = Submission(keyholder=name, share_index=index, verified=True, sends=tuple(sends),
                             label=tracker.words.share(index), resent=True)
            tracker.submitted(sub, mark=tracker.mark(), session=cer.session)
            for node in sub.rejected_on:
                self.refused.add(node)
                tracker.event(EventKind.WARNING, f"{node} refused re-sent shares at the threshold: they are not "
                              "sent to it again; its keyholders submit in person", Level.WARN, node=node)
        snap = tracker.review()
        tracker.flush()
        return snap

    def _node(self, client: NodeClient, names: list[str]) -> list[tuple[str, int, NodeSend]]:
        out: list[tuple[str, int, NodeSend]] = []
        for name in names:
            taken = self.ceremony.held.take(name)
            if taken is None:
                continue  # dropped meanwhile (ceremony ended, reset)
            key, index = taken
            try:
                send = self.ceremony._send_one(client, key)
            finally:
                wipe(key)
            if send.outcome in SENT or send.outcome is SendOutcome.REJECTED:
                out.append((name, index, send))
            if send.outcome not in submit.COUNTED:
                break  # unsealed, joining, not ready, refused: no further share helps now
        return out


__all__ = ["Resender"]

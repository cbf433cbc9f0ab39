"""What the unseal ceremony knows about each node, and how it explains changes.

    tracker = NodeTracker(clients, manifest=m, manifest_path=p, journal=cj, join_timeout=20)
    snap = tracker.update(results, foreign_records, asked_at=t)   # seal-status answers -> events
    tracker.sent(node, sent, asked_at=t)                          # what a node did with a share
    tracker.flush()                                               # journal entries, outside the lock

The ceremony (services/ceremony/unseal.py) holds one NodeTracker. It turns seal-status answers
into node phases and events: a nonce that changed (restart, reset, rejected threshold), a
follower that became initialised or is joining, a node that went away or came back, the cluster
id the manifest is waiting for. Journal entries are queued and written by flush() outside the
lock, so a slow disk never delays a node. Every public method takes the (reentrant) lock itself:
refresh() and submit() run in different threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from vaultops.services.ceremony import journal as cj
from vaultops.services.ceremony.init import PENDING_CLUSTER_ID
from vaultops.services.ceremony.types import (SENT, CeremonyEvent, CeremonySnapshot, EventKind, Level, NodePhase,
                                              NodeView, SendOutcome, Submission)
from vaultops.vault.models import SealStatus

if TYPE_CHECKING:
    from vaultops.services.ceremony.manifest import Manifest
    from vaultops.services.ceremony.submit import Sent
    from vaultops.vault import NodeClient


@dataclass
class _Track:
    """Mutable per-node bookkeeping (guarded by NodeTracker.lock)."""

    status: SealStatus | None = None
    phase: NodePhase | None = None
    error: str | None = None
    joining_since: float | None = None
    quiet_nonce: bool = False  # our own reset / rejected threshold: no nonce-change warning
    was_down: bool = False
    asked_at: float = 0.0  # when the newest applied answer was asked for


class NodeTracker:
    def __init__(self, clients: Sequence[NodeClient], *, manifest: Manifest | None, manifest_path: Path | None,
                 journal: cj.CeremonyJournal, join_timeout: float) -> None:
        self.clients = list(clients)
        self.manifest = manifest
        self.manifest_path = manifest_path
        self.journal = journal
        self.join_timeout = join_timeout
        self.lock = threading.RLock()
        self.mismatch: str | None = None  # set when the manifest belongs to another cluster
        self._flush_lock = threading.Lock()
        self._tracks = {c.name: _Track() for c in self.clients}
        self._records: list[cj.SubmissionRecord] = []
        self._events: list[CeremonyEvent] = []
        self._outbox: list[tuple[str, str, dict[str, object]]] = []
        self._announced = False

    @property
    def checked(self) -> bool:
        return self.manifest is not None

    @property
    def keyholders(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.manifest.keyholders) if self.manifest else ()

    # -- reading ------------------------------------------------------------------

    def snapshot(self) -> CeremonySnapshot:
        with self.lock:
            submitted = tuple(_unique(r.keyholder for r in self._records))
            nodes = tuple(self._view(c, submitted) for c in self.clients)
        ids = [n.cluster_id for n in nodes if n.cluster_id]
        threshold = max((n.threshold for n in nodes), default=0)
        return CeremonySnapshot(nodes=nodes, submitted=submitted, checked=self.checked,
                                cluster_id=ids[0] if ids else None, threshold=threshold,
                                keyholders=self.keyholders)

    def drain_events(self) -> list[CeremonyEvent]:
        with self.lock:
            events, self._events = self._events, []
        return events

    def mark(self) -> int:
        """Where the next event goes: a submission's own event is put before its nodes' events."""
        with self.lock:
            return len(self._events)

    @staticmethod
    def settling(snap: CeremonySnapshot) -> bool:
        """A follower joining, or waiting to join a leader that is unsealed now."""
        unsealed = any(n.phase is NodePhase.UNSEALED for n in snap.nodes)
        return snap.busy or (unsealed and any(n.phase is NodePhase.UNINITIALIZED for n in snap.nodes))

    # -- observing ----------------------------------------------------------------

    def update(self, answers: Iterable[tuple[str, SealStatus | None, BaseException | None]],
               records: Iterable[cj.SubmissionRecord | None], *, asked_at: float) -> CeremonySnapshot:
        """Apply other processes' journal records, then every node's answer; explain what changed."""
        with self.lock:
            for rec in records:
                self._foreign(rec)
            for name, st, error in answers:
                self.observe(name, st, error, asked_at=asked_at)
            self._after_observe()
            return self.snapshot()

    def observe(self, name: str, st: SealStatus | None, error: BaseException | None, *,
                asked_at: float) -> NodePhase | None:
        """Apply one node's answer (None: no answer, *error* says why); the node's phase now."""
        with self.lock:
            t = self._tracks[name]
            # A background refresh and a submission ask concurrently; an answer to an older
            # question must not overwrite a newer one (it would replay the node's transitions).
            if asked_at < t.asked_at:
                return t.phase
            t.asked_at = asked_at
            if st is None:
                self._unreachable(name, t, error)
                return t.phase
            prev, prev_phase = t.status, t.phase
            phase = self._phase(name, t, st)
            if prev_phase is NodePhase.UNREACHABLE:
                self.event(EventKind.NODE_BACK, f"{name} answers again", node=name)
            if prev is not None:
                self._transitions(name, t, prev, st, phase)
            if phase is NodePhase.UNSEALED and prev_phase not in (None, NodePhase.UNSEALED):
                msg = f"{name} is unsealed"
                self.write(cj.NODE_UNSEALED, msg, node=name)
                self.event(EventKind.NODE_UNSEALED, msg, node=name)
            t.status, t.phase, t.error, t.quiet_nonce, t.was_down = st, phase, None, False, False
            return phase

    def sent(self, name: str, sent: Sent, *, asked_at: float) -> None:
        """What a node did with a share: a rejection resets it quietly, a join is followed."""
        with self.lock:
            if sent.outcome is SendOutcome.REJECTED:
                self._tracks[name].quiet_nonce = True
            elif sent.outcome is SendOutcome.JOINING:
                self._tracks[name].joining_since = time.monotonic()
            self.observe(name, sent.status, None, asked_at=asked_at)

    def quiet(self, name: str) -> None:
        """Our own reset is coming: its nonce change is no news."""
        with self.lock:
            self._tracks[name].quiet_nonce = True

    def _unreachable(self, name: str, t: _Track, error: BaseException | None) -> None:
        if t.phase is not NodePhase.UNREACHABLE:
            self.event(EventKind.NODE_UNREACHABLE, f"{name} is unreachable ({short_error(error)}): retrying while "
                       "the other nodes proceed", Level.WARN, node=name)
        t.was_down = t.was_down or t.phase is not None
        t.phase, t.error = NodePhase.UNREACHABLE, short_error(error)

    def _phase(self, name: str, t: _Track, st: SealStatus) -> NodePhase:
        if not st.initialized:
            return NodePhase.UNINITIALIZED
        if not st.sealed:
            t.joining_since = None
            return NodePhase.UNSEALED
        prev = t.status
        if (st.progress == 0 and t.joining_since is None and prev is not None and prev.sealed
                and prev.t and prev.progress == prev.t - 1 and not t.quiet_nonce
                and t.phase is not NodePhase.UNREACHABLE):
            t.joining_since = time.monotonic()  # another process completed the threshold
        if t.joining_since is not None and st.progress == 0:
            if time.monotonic() - t.joining_since < self.join_timeout:
                return NodePhase.JOINING
            self.event(EventKind.WARNING,
                       f"{name} reached the threshold but did not finish joining within "
                       f"{self.join_timeout:g}s: see its server log; it needs shares again",
                       Level.WARN, node=name)
        t.joining_since = None
        return NodePhase.SEALED

    def _transitions(self, name: str, t: _Track, prev: SealStatus, st: SealStatus, phase: NodePhase) -> None:
        if not prev.sealed and st.sealed:
            self.event(EventKind.NODE_RESEALED,
                       f"{name} is sealed again (restarted, or sealed by an operator): it needs "
                       f"{st.t} shares", Level.WARN, node=name)
        elif not prev.initialized and st.initialized:
            lost = self._lost(name, "")
            self.event(EventKind.NODE_INITIALIZED,
                       f"{name} is initialised now (it joined the unsealed leader) and needs "
                       f"{st.t} shares of its own" + _resubmit(lost), Level.WARN, node=name)
        elif (st.sealed and prev.sealed and prev.nonce and st.nonce != prev.nonce
              and phase is not NodePhase.JOINING and not t.quiet_nonce):
            why = ("it restarted" if t.was_down else
                   "the node restarted, someone reset it, or a share was rejected at the threshold")
            lost = self._lost(name, prev.nonce)
            msg = f"{name}: unseal progress was lost (nonce changed: {why})" + _resubmit(lost)
            self.write(cj.NONCE_CHANGED, msg, outcome="lost", node=name, lost=lost)
            self.event(EventKind.NONCE_CHANGED, msg, Level.WARN, node=name)

    def _after_observe(self) -> None:
        phases = [t.phase for t in self._tracks.values()]
        if all(p is NodePhase.UNSEALED for p in phases):
            if not self._announced:
                self._announced = True
                msg = f"every node is unsealed ({len(phases)} nodes)"
                self.write(cj.CLUSTER_UNSEALED, msg)
                self.event(EventKind.CLUSTER_UNSEALED, msg)
                self._records = []
        elif any(p is not NodePhase.UNSEALED and p is not None for p in phases):
            self._announced = False
        self._check_cluster_id()

    def _check_cluster_id(self) -> None:
        ids = {t.status.cluster_id for t in self._tracks.values() if t.status is not None and t.status.cluster_id}
        if self.manifest is None or len(ids) != 1:
            return
        cid = ids.pop()
        if self.manifest.cluster_id == PENDING_CLUSTER_ID:
            self._record_cluster_id(cid)
        elif self.manifest.cluster_id != cid and self.mismatch is None:
            self.mismatch = (f"the keyholder manifest is for cluster {self.manifest.cluster_id} "
                             f"but the nodes report cluster {cid}")
            self.event(EventKind.WARNING, self.mismatch + ": shares are refused", Level.ERROR)

    def _record_cluster_id(self, cid: str) -> None:
        """`vaultops init` cannot know the id of a sealed cluster: fill it in at first unseal."""
        assert self.manifest is not None
        self.manifest = replace(self.manifest, cluster_id=cid)
        where = "in memory only"
        if self.manifest_path is not None:
            try:
                self.manifest.save(self.manifest_path)
                where = str(self.manifest_path)
            except OSError as exc:
                where = f"in memory only: cannot write {self.manifest_path} ({exc.strerror})"
        msg = f"recorded cluster id {cid} in the keyholder manifest ({where})"
        self.write(cj.MANIFEST_UPDATED, msg, cluster_id=cid)
        self.event(EventKind.MANIFEST_UPDATED, msg)

    # -- submissions ----------------------------------------------------------------

    def _foreign(self, rec: cj.SubmissionRecord | None) -> None:
        """A submission (or a completed ceremony) another process wrote to the journal."""
        if rec is None:
            self._records = []
            return
        self._records.append(rec)
        nodes = ", ".join(rec.nonces) or "no node"
        self.event(EventKind.SUBMITTED, f"keyholder {rec.keyholder} submitted share "
                   f"#{rec.share_index} to [{nodes}] (another terminal)", keyholder=rec.keyholder)

    def keep_open_attempts(self) -> None:
        """At start: earlier submissions count only while their attempt is still open on some node."""
        with self.lock:
            live = {(n, t.status.nonce) for n, t in self._tracks.items() if t.status is not None and t.status.nonce}
            self._records = [r for r in self._records if live & set(r.nonces.items())]
            self._events = [e for e in self._events if e.kind is not EventKind.SUBMITTED]
            if self._records:
                names = ", ".join(_unique(r.keyholder for r in self._records))
                self.event(EventKind.SUBMITTED, f"already submitted in this attempt: {names}")

    def submitted(self, sub: Submission, *, mark: int, session: str) -> None:
        """Record one keyholder's fanned-out share: journal, event (at *mark*), failed thresholds."""
        nonces = {s.node: s.nonce for s in sub.sends if s.outcome in SENT}
        with self.lock:
            self._records.append(cj.SubmissionRecord(sub.keyholder, sub.share_index, nonces, session))
            self.write(cj.SUBMITTED, sub.message, keyholder=sub.keyholder, share_index=sub.share_index,
                       verified=sub.verified, nodes=list(sub.sent_to), nonces=nonces,
                       progress={s.node: s.progress for s in sub.sends if s.outcome in SENT},
                       skipped={s.node: s.outcome.value for s in sub.sends if s.outcome not in SENT})
            self._events.insert(min(mark, len(self._events)),
                                CeremonyEvent(EventKind.SUBMITTED, sub.message, keyholder=sub.keyholder))
        for s in sub.sends:
            if s.outcome is SendOutcome.REJECTED:
                msg = (f"{s.node} rejected the shares at the threshold ({s.detail}): a share in "
                       f"this attempt was wrong; progress on {s.node} is lost and every keyholder "
                       "must submit again")
                self.write(cj.THRESHOLD_FAILED, msg, outcome="failed", node=s.node,
                           keyholder=sub.keyholder, share_index=sub.share_index)
                self.event(EventKind.THRESHOLD_FAILED, msg, Level.ERROR, node=s.node)

    def _lost(self, name: str, nonce: str) -> list[str]:
        """Keyholders whose shares *name* held under *nonce* ('' = all of this ceremony's)."""
        if not nonce:
            return _unique(r.keyholder for r in self._records)
        return _unique(r.keyholder for r in self._records if r.nonces.get(name) == nonce)

    def _view(self, client: NodeClient, submitted: tuple[str, ...]) -> NodeView:
        t = self._tracks[client.name]
        st = t.status
        if t.phase is None or t.phase is NodePhase.UNREACHABLE or st is None:
            return NodeView(client.name, client.address, NodePhase.UNREACHABLE, error=t.error or "not asked yet")
        mine = tuple(_unique(r.keyholder for r in self._records
                             if st.nonce and r.nonces.get(client.name) == st.nonce))
        lost = tuple(k for k in submitted if k not in mine) if t.phase is NodePhase.SEALED else ()
        return NodeView(client.name, client.address, t.phase, progress=st.progress, threshold=st.t, shares=st.n,
                        nonce=st.nonce, version=st.version, cluster_id=st.cluster_id, contributors=mine,
                        must_resubmit=lost)

    # -- output -------------------------------------------------------------------

    def event(self, kind: EventKind, message: str, level: Level = Level.INFO, *,
              node: str | None = None, keyholder: str | None = None) -> None:
        with self.lock:
            self._events.append(CeremonyEvent(kind, message, level, node, keyholder))

    def write(self, action: str, message: str, **kwargs: object) -> None:
        """Queue a journal entry: written by flush(), outside the lock, after the fan-out,
        so a slow disk (fsync) never delays a node."""
        with self.lock:
            self._outbox.append((action, message, kwargs))

    def flush(self) -> None:
        with self._flush_lock:
            with self.lock:
                entries, self._outbox = self._outbox, []
            for action, message, kwargs in entries:
                warning = self.journal.write(action, message, **kwargs)  # type: ignore[arg-type]
                if warning:
                    self.event(EventKind.WARNING, warning, Level.WARN)


def short_error(exc: BaseException | None) -> str:
    """An error as a node's one-line note."""
    if exc is None:
        return "no answer"
    text = getattr(exc, "message", None) or str(exc)
    return text[:160]


def _resubmit(names: list[str]) -> str:
    if not names:
        return ""
    return (f"; shares it lost or never got: {', '.join(names)} -- they must submit again "
            "(or other keyholders)")


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


__all__ = ["NodeTracker", "short_error"]

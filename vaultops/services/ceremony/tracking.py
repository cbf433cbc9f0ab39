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

Only what this ceremony saw happen is journalled: a node is "unsealed" (and the cluster "every
node unsealed") only after this ceremony saw it sealed -- opening the console on an unsealed
cluster records nothing. What several processes see at once (a node unsealing, progress lost) is
written once between them (journal.Once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from vaultops.errors import VaultOpsError
from vaultops.services.ceremony import journal as cj
from vaultops.services.ceremony.attempts import Attempts, unique
from vaultops.services.ceremony.init import PENDING_CLUSTER_ID
from vaultops.services.ceremony.types import (SENT, CeremonyEvent, CeremonySnapshot, EventKind, Level, NodePhase,
                                              NodeView, SendOutcome, Submission)
from vaultops.services.ceremony.wording import Wording
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
    sealed_at: float | None = None  # wall time of the newest answer showing it sealed, since it was unsealed


class NodeTracker:
    def __init__(self, clients: Sequence[NodeClient], *, manifest: Manifest | None, manifest_path: Path | None,
                 journal: cj.CeremonyJournal, join_timeout: float, debug: bool = False,
                 held: Callable[[], tuple[str, ...]] = tuple) -> None:
        self.clients = list(clients)
        self.manifest = manifest
        self.manifest_path = manifest_path
        self.journal = journal
        self.join_timeout = join_timeout
        self.debug = debug
        self.held = held  # whose shares the ceremony keeps to re-send (shown in snapshots)
        self.lock = threading.RLock()
        self.mismatch: str | None = None  # set when the manifest belongs to another cluster
        self.attempts = Attempts()
        self._flush_lock = threading.Lock()
        self._tracks = {c.name: _Track() for c in self.clients}
        self._events: list[CeremonyEvent] = []
        self._outbox: list[tuple[str, str, dict[str, object]]] = []
        self._sealed_at: float | None = None  # wall time some node was last seen sealed (cleared when announced)

    @property
    def checked(self) -> bool:
        return self.manifest is not None

    @property
    def keyholders(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.manifest.keyholders) if self.manifest else ()

    @property
    def words(self) -> Wording:
        return Wording(self.manifest, debug=self.debug)

    # -- reading ------------------------------------------------------------------

    def snapshot(self) -> CeremonySnapshot:
        with self.lock:
            submitted = self.attempts.keyholders()
            nodes = tuple(self._view(c, submitted) for c in self.clients)
        ids = [n.cluster_id for n in nodes if n.cluster_id]
        threshold = max((n.threshold for n in nodes), default=0)
        return CeremonySnapshot(nodes=nodes, submitted=submitted, checked=self.checked,
                                cluster_id=ids[0] if ids else None, threshold=threshold,
                                keyholders=self.keyholders, held=self.held())

    def drain_events(self) -> list[CeremonyEvent]:
        with self.lock:
            events, self._events = self._events, []
        return events

    def mark(self) -> int:
        """Where the next event goes: a submission's own event is put before its nodes' events."""
        with self.lock:
            return len(self._events)

    def joining(self, name: str) -> bool:
        with self.lock:
            return self._tracks[name].phase is NodePhase.JOINING

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
            first = not self.attempts._filtered
            for rec in records:
                self._foreign(rec, announce=not first)
            for name, st, error in answers:
                self.observe(name, st, error, asked_at=asked_at)
            if first:
                self.attempts.first_look(self._live())
                if self.attempts.records:
                    self.event(EventKind.SUBMITTED, "already submitted in this attempt: "
                               + ", ".join(self.attempts.keyholders()))
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
            self._seen(name, t, phase, asked_at)
            t.status, t.phase, t.error, t.quiet_nonce, t.was_down = st, phase, None, False, False
            return phase

    def _seen(self, name: str, t: _Track, phase: NodePhase, asked_at: float) -> None:
        """Remember when a node was seen sealed; announce an unsealing this ceremony witnessed."""
        if phase is not NodePhase.UNSEALED:
            t.sealed_at = self._sealed_at = _wall(asked_at)
            return
        if t.sealed_at is not None:
            msg = f"{name} is unsealed"
            self.write(cj.NODE_UNSEALED, msg, node=name, once=cj.Once(span=(t.sealed_at, time.time())))
            self.event(EventKind.NODE_UNSEALED, msg, node=name)
        t.sealed_at = None

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
            lost = self.attempts.lost(name, "")
            self.event(EventKind.NODE_INITIALIZED,
                       f"{name} is initialised now (it joined the unsealed leader) and needs "
                       f"{st.t} shares of its own" + _resubmit(lost), Level.WARN, node=name)
        elif (st.sealed and prev.sealed and prev.nonce and st.nonce != prev.nonce
              and phase is not NodePhase.JOINING and not t.quiet_nonce):
            why = ("it restarted" if t.was_down else
                   "the node restarted, someone reset it, or a share was rejected at the threshold")
            lost = self.attempts.lost(name, prev.nonce)
            msg = f"{name}: unseal progress was lost (nonce changed: {why})" + _resubmit(lost)
            self.write(cj.NONCE_CHANGED, msg, outcome="lost", node=name, lost=list(lost),
                       once=cj.Once(lost_nonce=prev.nonce))
            self.event(EventKind.NONCE_CHANGED, msg, Level.WARN, node=name)

    def review(self) -> CeremonySnapshot:
        """After sends outside update(): the cluster-wide consequences (every node unsealed, the
        cluster id) are drawn at once, not at the next refresh."""
        with self.lock:
            self._after_observe()
            return self.snapshot()

    def _after_observe(self) -> None:
        phases = [t.phase for t in self._tracks.values()]
        if all(p is NodePhase.UNSEALED for p in phases):
            if self._sealed_at is not None:  # this ceremony saw a node sealed: the unsealing is news
                msg = f"every node is unsealed ({len(phases)} nodes)"
                self.write(cj.CLUSTER_UNSEALED, msg, once=cj.Once(span=(self._sealed_at, time.time())))
                self.event(EventKind.CLUSTER_UNSEALED, msg)
                self._sealed_at = None
            self.attempts.completed()
        elif any(p in (NodePhase.SEALED, NodePhase.JOINING, NodePhase.UNINITIALIZED) for p in phases):
            self.attempts.reopened(self._live())
        self._check_cluster_id()

    def _live(self) -> set[tuple[str, str]]:
        return {(n, t.status.nonce) for n, t in self._tracks.items() if t.status is not None and t.status.nonce}

    def _check_cluster_id(self) -> None:
        ids = {t.status.cluster_id for t in self._tracks.values() if t.status is not None and t.status.cluster_id}
        if self.manifest is None or len(ids) != 1:
            return
        cid = ids.pop()
        if self.manifest.cluster_id == PENDING_CLUSTER_ID:
            self._record_cluster_id(cid)
        if self.manifest.cluster_id not in (cid, PENDING_CLUSTER_ID) and self.mismatch is None:
            self.mismatch = (f"the keyholder manifest is for cluster {self.manifest.cluster_id} "
                             f"but the nodes report cluster {cid}")
            self.event(EventKind.WARNING, self.mismatch + ": shares are refused", Level.ERROR)

    def _record_cluster_id(self, cid: str) -> None:
        """`vaultops init` cannot know the id of a sealed cluster: fill it in at first unseal, once
        across processes (compare-and-write under the manifest's lock)."""
        from vaultops.services.ceremony.cluster_id import record_cluster_id

        assert self.manifest is not None
        if self.manifest_path is None:
            self.manifest = replace(self.manifest, cluster_id=cid)
            where = "in memory only"
        else:
            try:
                self.manifest, wrote = record_cluster_id(self.manifest_path, cid, loaded=self.manifest)
            except (OSError, VaultOpsError) as exc:
                self.manifest = replace(self.manifest, cluster_id=cid)
                why = exc.strerror if isinstance(exc, OSError) else exc.message
                where = f"in memory only: cannot write {self.manifest_path} ({why})"
            else:
                if not wrote:
                    return  # another terminal recorded it first (and journalled it)
                where = str(self.manifest_path)
        msg = f"recorded cluster id {cid} in the keyholder manifest ({where})"
        self.write(cj.MANIFEST_UPDATED, msg, cluster_id=cid)
        self.event(EventKind.MANIFEST_UPDATED, msg)

    # -- submissions ----------------------------------------------------------------

    def _foreign(self, rec: cj.SubmissionRecord | None, *, announce: bool) -> None:
        """A submission (or a completed ceremony) another process wrote to the journal."""
        if rec is None:
            self.attempts.completed()
            return
        self.attempts.add(rec)
        if announce:
            nodes = ", ".join(rec.nonces) or "no node"
            label = self.words.share(rec.share_index)
            text = (f"keyholder {rec.keyholder}'s {label} was re-sent to [{nodes}]" if rec.resent else
                    f"keyholder {rec.keyholder} submitted {label} to [{nodes}]")
            self.event(EventKind.SUBMITTED, f"{text} (another terminal)", keyholder=rec.keyholder)

    def submitted(self, sub: Submission, *, mark: int, session: str) -> None:
        """Record one keyholder's fanned-out (or re-sent) share: journal, event (at *mark*), failed thresholds."""
        nonces = {s.node: s.nonce for s in sub.sends if s.outcome in SENT}
        with self.lock:
            self.attempts.add(cj.SubmissionRecord(sub.keyholder, sub.share_index, nonces, session, sub.resent))
            self.write(cj.RESENT if sub.resent else cj.SUBMITTED, sub.message, keyholder=sub.keyholder,
                       share_index=sub.share_index, verified=sub.verified, nodes=list(sub.sent_to),
                       nonces=nonces, progress={s.node: s.progress for s in sub.sends if s.outcome in SENT},
                       skipped={s.node: s.outcome.value for s in sub.sends if s.outcome not in SENT})
            kind = EventKind.RESENT if sub.resent else EventKind.SUBMITTED
            self._events.insert(min(mark, len(self._events)), CeremonyEvent(kind, sub.message, keyholder=sub.keyholder))
        for s in sub.sends:
            if s.outcome is SendOutcome.REJECTED:
                msg = (f"{s.node} rejected the shares at the threshold ({s.detail}): a share in "
                       f"this attempt was wrong; progress on {s.node} is lost and every keyholder "
                       "must submit again")
                self.write(cj.THRESHOLD_FAILED, msg, outcome="failed", node=s.node,
                           keyholder=sub.keyholder, share_index=sub.share_index)
                self.event(EventKind.THRESHOLD_FAILED, msg, Level.ERROR, node=s.node)

    def _view(self, client: NodeClient, submitted: tuple[str, ...]) -> NodeView:
        t = self._tracks[client.name]
        st = t.status
        if t.phase is None or t.phase is NodePhase.UNREACHABLE or st is None:
            return NodeView(client.name, client.address, NodePhase.UNREACHABLE, error=t.error or "not asked yet")
        mine = self.attempts.holding(client.name, st.nonce)
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


def _wall(monotonic: float) -> float:
    """A time.monotonic() reading as wall-clock time (journal entries are compared across processes)."""
    return time.time() - (time.monotonic() - monotonic)


def _resubmit(names: Iterable[str]) -> str:
    names = list(names)
    if not names:
        return ""
    return (f"; shares it lost or never got: {', '.join(names)} -- they must submit again "
            "(or other keyholders)")


__all__ = ["NodeTracker", "short_error", "unique"]

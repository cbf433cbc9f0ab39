"""What the ceremony knows about each node, and how it explains changes (a Ceremony base).

Observer turns seal-status answers into node phases and events: a nonce that
changed (restart, reset, rejected threshold), a follower that became
initialised or is joining, a node that went away or came back, the cluster id
the manifest is waiting for. Journal entries are queued and written by
_flush() outside the lock, so a slow disk never delays a node. Ceremony
(services/ceremony/unseal.py) sets every attribute used here in its __init__.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from vaultops.services.ceremony import journal as cj
from vaultops.services.ceremony.types import (CeremonyEvent, CeremonySnapshot, EventKind, Level,
                                              NodePhase, NodeView)
from vaultops.services.ceremony.init import PENDING_CLUSTER_ID
from vaultops.vault.models import SealStatus

if TYPE_CHECKING:
    from vaultops.errors import VaultOpsError
    from vaultops.services.ceremony.manifest import Manifest
    from vaultops.vault import NodeClient


@dataclass
class _Track:
    """Mutable per-node bookkeeping (guarded by Ceremony._lock)."""

    status: SealStatus | None = None
    phase: NodePhase | None = None
    error: str | None = None
    joining_since: float | None = None
    quiet_nonce: bool = False  # our own reset / rejected threshold: no nonce-change warning
    was_down: bool = False
    asked_at: float = 0.0  # when the newest applied answer was asked for


class Observer:
    clients: list[NodeClient]
    manifest: Manifest | None
    manifest_path: Path | None
    join_timeout: float
    session: str
    _journal: cj.CeremonyJournal
    _lock: threading.RLock
    _flush_lock: threading.Lock
    _tracks: dict[str, _Track]
    _records: list[cj.SubmissionRecord]
    _events: list[CeremonyEvent]
    _outbox: list[tuple[str, str, dict[str, object]]]
    _announced: bool
    _mismatch: str | None

    @property
    def checked(self) -> bool:
        return self.manifest is not None

    @property
    def keyholders(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.manifest.keyholders) if self.manifest else ()

    # -- observing ----------------------------------------------------------------

    def _observe(self, name: str, st: SealStatus | None, error: VaultOpsError | None, *,
                 asked_at: float) -> None:
        t = self._tracks[name]
        # A background refresh and a submission ask concurrently; an answer to an older
        # question must not overwrite a newer one (it would replay the node's transitions).
        if asked_at < t.asked_at:
            return
        t.asked_at = asked_at
        if st is None:
            if t.phase is not NodePhase.UNREACHABLE:
                self._event(EventKind.NODE_UNREACHABLE,
                            f"{name} is unreachable ({_short(error)}): retrying while the other "
                            "nodes proceed", Level.WARN, node=name)
            t.was_down = t.was_down or t.phase is not None
            t.phase, t.error = NodePhase.UNREACHABLE, _short(error)
            return
        prev, prev_phase = t.status, t.phase
        phase = self._phase(name, t, st)
        if prev_phase is NodePhase.UNREACHABLE:
            self._event(EventKind.NODE_BACK, f"{name} answers again", node=name)
        if prev is not None:
            self._transitions(name, t, prev, st, phase)
        if phase is NodePhase.UNSEALED and prev_phase not in (None, NodePhase.UNSEALED):
            msg = f"{name} is unsealed"
            self._write(cj.NODE_UNSEALED, msg, node=name)
            self._event(EventKind.NODE_UNSEALED, msg, node=name)
        t.status, t.phase, t.error, t.quiet_nonce, t.was_down = st, phase, None, False, False

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
            self._event(EventKind.WARNING,
                        f"{name} reached the threshold but did not finish joining within "
                        f"{self.join_timeout:g}s: see its server log; it needs shares again",
                        Level.WARN, node=name)
        t.joining_since = None
        return NodePhase.SEALED

    def _transitions(self, name: str, t: _Track, prev: SealStatus, st: SealStatus,
                     phase: NodePhase) -> None:
        if not prev.sealed and st.sealed:
            self._event(EventKind.NODE_RESEALED,
                        f"{name} is sealed again (restarted, or sealed by an operator): it needs "
                        f"{st.t} shares", Level.WARN, node=name)
        elif not prev.initialized and st.initialized:
            lost = self._lost(name, "")
            self._event(EventKind.NODE_INITIALIZED,
                        f"{name} is initialised now (it joined the unsealed leader) and needs "
                        f"{st.t} shares of its own" + _resubmit(lost), Level.WARN, node=name)
        elif (st.sealed and prev.sealed and prev.nonce and st.nonce != prev.nonce
              and phase is not NodePhase.JOINING and not t.quiet_nonce):
            why = ("it restarted" if t.was_down else
                   "the node restarted, someone reset it, or a share was rejected at the threshold")
            lost = self._lost(name, prev.nonce)
            msg = f"{name}: unseal progress was lost (nonce changed: {why})" + _resubmit(lost)
            self._write(cj.NONCE_CHANGED, msg, outcome="lost", node=name, lost=lost)
            self._event(EventKind.NONCE_CHANGED, msg, Level.WARN, node=name)

    def _lost(self, name: str, nonce: str) -> list[str]:
        """Keyholders whose shares *name* held under *nonce* ('' = all of this ceremony's)."""
        if not nonce:
            return _unique(r.keyholder for r in self._records)
        return _unique(r.keyholder for r in self._records if r.nonces.get(name) == nonce)

    def _after_observe(self) -> None:
        phases = [t.phase for t in self._tracks.values()]
        if all(p is NodePhase.UNSEALED for p in phases):
            if not self._announced:
                self._announced = True
                msg = f"every node is unsealed ({len(phases)} nodes)"
                self._write(cj.CLUSTER_UNSEALED, msg)
                self._event(EventKind.CLUSTER_UNSEALED, msg)
                self._records = []
        elif any(p is not NodePhase.UNSEALED and p is not None for p in phases):
            self._announced = False
        self._check_cluster_id()

    def _check_cluster_id(self) -> None:
        ids = {t.status.cluster_id for t in self._tracks.values()
               if t.status is not None and t.status.cluster_id}
        if self.manifest is None or len(ids) != 1:
            return
        cid = ids.pop()
        if self.manifest.cluster_id == PENDING_CLUSTER_ID:
            self._record_cluster_id(cid)
        elif self.manifest.cluster_id != cid and self._mismatch is None:
            self._mismatch = (f"the keyholder manifest is for cluster {self.manifest.cluster_id} "
                              f"but the nodes report cluster {cid}")
            self._event(EventKind.WARNING, self._mismatch + ": shares are refused", Level.ERROR)

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
        self._write(cj.MANIFEST_UPDATED, msg, cluster_id=cid)
        self._event(EventKind.MANIFEST_UPDATED, msg)

    def _snapshot(self) -> CeremonySnapshot:
        submitted = tuple(_unique(r.keyholder for r in self._records))
        nodes = tuple(self._view(c, submitted) for c in self.clients)
        ids = [n.cluster_id for n in nodes if n.cluster_id]
        threshold = max((n.threshold for n in nodes), default=0)
        return CeremonySnapshot(nodes=nodes, submitted=submitted, checked=self.checked,
                                cluster_id=ids[0] if ids else None, threshold=threshold,
                                keyholders=self.keyholders)

    def _view(self, client: NodeClient, submitted: tuple[str, ...]) -> NodeView:
        t = self._tracks[client.name]
        st = t.status
        if t.phase is None or t.phase is NodePhase.UNREACHABLE or st is None:
            return NodeView(client.name, client.address, NodePhase.UNREACHABLE,
                            error=t.error or "not asked yet")
        mine = tuple(_unique(r.keyholder for r in self._records
                             if st.nonce and r.nonces.get(client.name) == st.nonce))
        lost = (tuple(k for k in submitted if k not in mine)
                if t.phase is NodePhase.SEALED else ())
        return NodeView(client.name, client.address, t.phase, progress=st.progress,
                        threshold=st.t, shares=st.n, nonce=st.nonce, version=st.version,
                        cluster_id=st.cluster_id, contributors=mine, must_resubmit=lost)

    def _settling(self, snap: CeremonySnapshot) -> bool:
        """A follower joining, or waiting to join a leader that is unsealed now."""
        unsealed = any(n.phase is NodePhase.UNSEALED for n in snap.nodes)
        return snap.busy or (unsealed and any(n.phase is NodePhase.UNINITIALIZED
                                              for n in snap.nodes))

    # -- output -------------------------------------------------------------------

    def _event(self, kind: EventKind, message: str, level: Level = Level.INFO, *,
               node: str | None = None, keyholder: str | None = None) -> None:
        with self._lock:
            self._events.append(CeremonyEvent(kind, message, level, node, keyholder))

    def _write(self, action: str, message: str, **kwargs: object) -> None:
        """Queue a journal entry: written by _flush(), outside the lock, after the fan-out,
        so a slow disk (fsync) never delays a node."""
        with self._lock:
            self._outbox.append((action, message, kwargs))

    def _flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                entries, self._outbox = self._outbox, []
            for action, message, kwargs in entries:
                warning = self._journal.write(action, message, **kwargs)  # type: ignore[arg-type]
                if warning:
                    self._event(EventKind.WARNING, warning, Level.WARN)


def _resubmit(names: list[str]) -> str:
    if not names:
        return ""
    return (f"; shares it lost or never got: {', '.join(names)} -- they must submit again "
            "(or other keyholders)")


def _unique(items: object) -> list[str]:
    return list(dict.fromkeys(items))  # type: ignore[call-overload]


def _short(exc: BaseException | None) -> str:
    if exc is None:
        return "no answer"
    text = getattr(exc, "message", None) or str(exc)
    return text[:160]

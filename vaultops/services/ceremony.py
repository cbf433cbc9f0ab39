"""The guided unseal ceremony: shares checked before they are sent, every sealed node at once.

    c = Ceremony(clients, manifest=m, manifest_path=p, journal=j)
    c.start()                                  # journal 'started', first refresh
    sub = c.submit(text, keyholder="alice")    # decode -> check -> fan out -> journal
    c.follow(timeout=60)                       # until nothing moves without new shares
    c.drain_events()                           # what happened, explained, for the UI

What is sent: a share is decoded (any codec), checked against the keyholder
manifest (a wrong share, or another keyholder's, is rejected here and nothing
is sent), then PUT to sys/unseal of every node that is initialised and sealed,
concurrently. The share lives only for the duration of submit(): it is never
stored, logged or journalled (the journal gets the x-coordinate only).

What that costs: a node that loses its progress (restarted, reset, or a raft
follower that only became initialised after the leader was unsealed) cannot be
given the earlier shares again -- nobody kept them. The snapshot lists, per
node, the keyholders whose shares it lost (`must_resubmit`); they submit again.
Other processes' submissions are read from the shared journal and matched to
nodes by unseal nonce, so every terminal shows who submitted on which node.

Thread-safety: refresh() and submit() may run in different threads (the TUI
refreshes in the background while a keyholder submits).
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from vaultops.errors import (SecurityError, ShareFormatError, ShareMismatchError, UsageError,
                             VaultError, VaultOpsError, VaultUnreachable)
from vaultops.services import ceremony_journal as cj
from vaultops.services.ceremony_types import (SENT, CeremonyEvent, CeremonySnapshot, EventKind,
                                              Level, NodePhase, NodeSend, NodeView, SendOutcome,
                                              Submission, split_share_line)
from vaultops.services.initialize import PENDING_CLUSTER_ID
from vaultops.services.shares import decode
from vaultops.vault import fan_out
from vaultops.vault.models import SealStatus

if TYPE_CHECKING:
    from vaultops.journal import Journal
    from vaultops.services.manifest import Manifest
    from vaultops.services.shares import Share
    from vaultops.vault import NodeClient

__all__ = ["Ceremony", "CeremonyEvent", "CeremonySnapshot", "EventKind", "Level", "NodePhase",
           "NodeSend", "NodeView", "SendOutcome", "Submission", "split_share_line",
           "NO_MANIFEST_WARNING"]

T = TypeVar("T")
UNNAMED = "unnamed"
NO_MANIFEST_WARNING = (
    "no keyholder manifest: shares cannot be checked before they are sent. A wrong share is "
    "found only at the threshold, wipes everyone's progress on that node, and can leave a "
    "joining raft follower hung until it is restarted")


@dataclass
class _Track:
    """Mutable per-node bookkeeping (guarded by Ceremony._lock)."""

    status: SealStatus | None = None
    phase: NodePhase | None = None
    error: str | None = None
    joining_since: float | None = None
    quiet_nonce: bool = False  # our own reset / rejected threshold: no nonce-change warning
    was_down: bool = False


class Ceremony:
    def __init__(self, clients: Sequence[NodeClient], *, manifest: Manifest | None = None,
                 manifest_path: Path | None = None, journal: Journal | None = None,
                 allow_unverified: bool = False, retry_for: float = 3.0,
                 unseal_timeout: float = 30.0, join_timeout: float = 20.0,
                 status_timeout: float = 6.0) -> None:
        if not clients:
            raise UsageError("no nodes to unseal", hint="list the nodes in vaultops.yaml")
        self.clients = list(clients)
        self.manifest = manifest
        self.manifest_path = manifest_path
        self.allow_unverified = allow_unverified
        self.retry_for = retry_for
        self.unseal_timeout = unseal_timeout
        self.join_timeout = join_timeout
        self.status_timeout = status_timeout
        self.session = uuid.uuid4().hex[:12]
        self._journal = cj.CeremonyJournal(journal, session=self.session)
        self._lock = threading.RLock()
        self._tracks = {c.name: _Track() for c in self.clients}
        self._records: list[cj.SubmissionRecord] = []
        self._events: list[CeremonyEvent] = []
        self._announced = False
        self._mismatch: str | None = None

    # -- queries ------------------------------------------------------------------

    @property
    def checked(self) -> bool:
        return self.manifest is not None

    @property
    def keyholders(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.manifest.keyholders) if self.manifest else ()

    def snapshot(self) -> CeremonySnapshot:
        with self._lock:
            return self._snapshot()

    def drain_events(self) -> list[CeremonyEvent]:
        with self._lock:
            events, self._events = self._events, []
        return events

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> CeremonySnapshot:
        nodes = [c.name for c in self.clients]
        self._write(cj.STARTED, f"unseal ceremony started for nodes {nodes}", nodes=nodes,
                    checked=self.checked)
        if not self.checked:
            self._event(EventKind.WARNING, NO_MANIFEST_WARNING, Level.WARN)
        self.refresh()
        with self._lock:  # earlier submissions count only while their attempt is still open
            live = {(n, t.status.nonce) for n, t in self._tracks.items()
                    if t.status is not None and t.status.nonce}
            self._records = [r for r in self._records if live & set(r.nonces.items())]
            self._events = [e for e in self._events if e.kind is not EventKind.SUBMITTED]
            if self._records:
                names = ", ".join(_unique(r.keyholder for r in self._records))
                self._event(EventKind.SUBMITTED, f"already submitted in this attempt: {names}")
            return self._snapshot()

    def finish(self) -> CeremonySnapshot:
        snap = self.refresh()
        outcome = "ok" if snap.all_unsealed else "incomplete"
        self._write(cj.FINISHED, f"unseal ceremony ended: {snap.summary()}", outcome=outcome,
                    phases={n.name: n.phase.value for n in snap.nodes})
        return snap

    def refresh(self) -> CeremonySnapshot:
        """Ask every node for its seal status at once; explain what changed."""
        results = fan_out(self.clients, lambda c: c.seal.status(), timeout=self.status_timeout)
        records = self._journal.poll()
        with self._lock:
            for rec in records:
                self._foreign(rec)
            for r in results:
                self._observe(r.node, r.value, r.error)
            self._after_observe()
            return self._snapshot()

    def _foreign(self, rec: cj.SubmissionRecord | None) -> None:
        """A submission (or a completed ceremony) another process wrote to the journal."""
        if rec is None:
            self._records = []
            return
        self._records.append(rec)
        nodes = ", ".join(rec.nonces) or "no node"
        self._event(EventKind.SUBMITTED, f"keyholder {rec.keyholder} submitted share "
                    f"#{rec.share_index} to [{nodes}] (another terminal)", keyholder=rec.keyholder)

    def follow(self, *, timeout: float = 60.0, interval: float = 0.2, until_unsealed: bool = False,
               on_update: Callable[[CeremonySnapshot], None] | None = None,
               stop: threading.Event | None = None) -> CeremonySnapshot:
        """Refresh until every node is unsealed, or (unless *until_unsealed*) until nothing
        moves without new shares, or *timeout*."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.refresh()
            if on_update:
                on_update(snap)
            idle = not until_unsealed and not self._settling(snap)
            if snap.all_unsealed or idle or time.monotonic() >= deadline:
                return snap
            if stop is not None and stop.wait(interval):
                return snap
            if stop is None:
                time.sleep(interval)

    def reset(self) -> list[NodeSend]:
        """Discard the shares submitted so far on every sealed node (sys/unseal reset)."""
        results = fan_out(self.clients, self._reset_one, timeout=self.status_timeout + 2)
        sends = [r.value if r.ok and r.value else NodeSend(r.node, SendOutcome.UNREACHABLE,
                                                           detail=_short(r.error))
                 for r in results]
        done = [s.node for s in sends if s.outcome is SendOutcome.ACCEPTED]
        msg = (f"unseal progress reset on [{', '.join(done) or 'no node'}]: every keyholder "
               "must submit again")
        self._write(cj.RESET, msg, nodes=done)
        self._event(EventKind.RESET, msg, Level.WARN)
        self.refresh()
        return sends

    # -- submitting ---------------------------------------------------------------

    def submit(self, text: str, *, keyholder: str | None = None,
               passphrase: bytes | str = b"") -> Submission:
        """Decode, check, fan out one share. Raises (and journals) when it is refused locally."""
        share = self._decode(text, passphrase, keyholder)
        try:
            name, verified = self._identify(share, keyholder)
            index = share.index
            key = base64.b64encode(share.raw).decode("ascii")
        finally:
            del share
        with self._lock:
            mark = len(self._events)  # node events of this fan-out come after the submission
        try:
            sends = self._fan_out(key)
        finally:
            del key
        sub = Submission(keyholder=name, share_index=index, verified=verified, sends=tuple(sends))
        self._record(sub, mark)
        return sub

    def submit_line(self, line: str, *, keyholder: str | None = None,
                    passphrase: bytes | str = b"") -> Submission:
        """One `--share-stdin` line: 'NAME: share' or a bare share."""
        name, text = split_share_line(line, self.keyholders)
        if keyholder is not None and name is not None and name != keyholder:
            self._reject(f"the line names keyholder {name} but --keyholder is {keyholder}",
                         keyholder, None)
            raise UsageError(f"the line names keyholder {name} but --keyholder is {keyholder}",
                             hint="drop the NAME: prefix or the --keyholder option; nothing was sent")
        return self.submit(text, keyholder=keyholder or name, passphrase=passphrase)

    def _decode(self, text: str, passphrase: bytes | str, keyholder: str | None) -> Share:
        try:
            return decode(text, passphrase)
        except ShareFormatError as exc:  # its messages never quote the input
            self._reject(exc.message, keyholder, None)
            raise

    def _identify(self, share: Share, keyholder: str | None) -> tuple[str, bool]:
        """(keyholder name, verified) or raise: nothing is sent for a refused share."""
        if self._mismatch:
            self._reject(self._mismatch, keyholder, share.index)
            raise SecurityError(self._mismatch, hint="use the manifest of this cluster; nothing "
                                                     "was sent")
        if self.manifest is None:
            return keyholder or UNNAMED, False
        try:
            if keyholder is None:
                owner = self.manifest.by_index(share.index)
                if owner is None:
                    raise ShareMismatchError(
                        f"share #{share.index} matches no keyholder in the manifest (another "
                        "cluster, or a share from before a rekey?)",
                        hint="check the share comes from this cluster; nothing was sent")
                keyholder = owner.name
            result = self.manifest.require(keyholder, share, allow_unverified=self.allow_unverified)
        except VaultOpsError as exc:
            self._reject(exc.message, keyholder, share.index)
            raise
        return keyholder, result.verified

    def _fan_out(self, key: str) -> list[NodeSend]:
        limit = self.retry_for + self.status_timeout + self.unseal_timeout + 2
        results = fan_out(self.clients, lambda c: self._send_one(c, key), timeout=limit)
        return [r.value if r.ok and r.value else NodeSend(r.node, SendOutcome.UNREACHABLE,
                                                          detail=_short(r.error))
                for r in results]

    def _send_one(self, client: NodeClient, key: str) -> NodeSend:
        name = client.name
        try:
            st = self._retry(client.seal.status)
        except VaultOpsError as exc:
            with self._lock:
                self._observe(name, None, exc)
            return NodeSend(name, SendOutcome.UNREACHABLE, detail=_short(exc))
        with self._lock:
            self._observe(name, st, None)
            joining = self._tracks[name].phase is NodePhase.JOINING
        if not st.initialized:
            return NodeSend(name, SendOutcome.NOT_READY, detail="not initialised yet")
        if not st.sealed:
            return NodeSend(name, SendOutcome.ALREADY_UNSEALED, threshold=st.t)
        if joining:
            return NodeSend(name, SendOutcome.NOT_READY, threshold=st.t, detail="joining")
        return self._unseal(client, st, key)

    def _unseal(self, client: NodeClient, st: SealStatus, key: str) -> NodeSend:
        name = client.name
        try:
            r = client.seal.unseal(key, timeout=self.unseal_timeout)
        except VaultError as exc:
            if exc.status != 400:
                raise
            with self._lock:
                self._tracks[name].quiet_nonce = True
                self._observe(name, replace(st, progress=0, nonce=""), None)
            return NodeSend(name, SendOutcome.REJECTED, threshold=st.t, detail=exc.message)
        outcome = _outcome(st, r)
        with self._lock:
            if outcome is SendOutcome.JOINING:
                self._tracks[name].joining_since = time.monotonic()
            self._observe(name, r, None)
        return NodeSend(name, outcome, progress=r.progress, threshold=r.t or st.t, nonce=r.nonce)

    def _retry(self, fn: Callable[[], T]) -> T:
        """Retry an unreachable node for retry_for seconds; the other nodes do not wait."""
        deadline = time.monotonic() + self.retry_for
        delay = 0.1
        while True:
            try:
                return fn()
            except VaultUnreachable:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _record(self, sub: Submission, mark: int) -> None:
        nonces = {s.node: s.nonce for s in sub.sends if s.outcome in SENT}
        with self._lock:
            self._records.append(cj.SubmissionRecord(sub.keyholder, sub.share_index, nonces,
                                                     self.session))
        self._write(cj.SUBMITTED, sub.message, keyholder=sub.keyholder,
                    share_index=sub.share_index, verified=sub.verified, nodes=list(sub.sent_to),
                    nonces=nonces, progress={s.node: s.progress for s in sub.sends
                                             if s.outcome in SENT},
                    skipped={s.node: s.outcome.value for s in sub.sends if s.outcome not in SENT})
        with self._lock:
            self._events.insert(min(mark, len(self._events)),
                                CeremonyEvent(EventKind.SUBMITTED, sub.message,
                                              keyholder=sub.keyholder))
        for s in sub.sends:
            if s.outcome is SendOutcome.REJECTED:
                msg = (f"{s.node} rejected the shares at the threshold ({s.detail}): a share in "
                       f"this attempt was wrong; progress on {s.node} is lost and every keyholder "
                       "must submit again")
                self._write(cj.THRESHOLD_FAILED, msg, outcome="failed", node=s.node,
                            keyholder=sub.keyholder, share_index=sub.share_index)
                self._event(EventKind.THRESHOLD_FAILED, msg, Level.ERROR, node=s.node)

    def _reject(self, reason: str, keyholder: str | None, index: int | None) -> None:
        who = keyholder or "a keyholder"
        msg = f"share from {who} rejected, nothing sent: {reason}"
        self._write(cj.REJECTED, msg, outcome="rejected", keyholder=keyholder,
                    share_index=index, reason=reason)
        self._event(EventKind.REJECTED, msg, Level.ERROR, keyholder=keyholder)

    def _reset_one(self, client: NodeClient) -> NodeSend:
        st = client.seal.status()
        if not st.sealed or not st.initialized:
            return NodeSend(client.name, SendOutcome.NOT_READY)
        with self._lock:
            self._tracks[client.name].quiet_nonce = True
        r = client.seal.reset()
        return NodeSend(client.name, SendOutcome.ACCEPTED, progress=r.progress, threshold=r.t)

    # -- observing ----------------------------------------------------------------

    def _observe(self, name: str, st: SealStatus | None, error: VaultOpsError | None) -> None:
        t = self._tracks[name]
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

    def wait_ready(self, *, timeout: float = 20.0, interval: float = 0.2) -> CeremonySnapshot:
        """Before a share: let joining followers settle so the share reaches them."""
        return self.follow(timeout=timeout, interval=interval)

    # -- output -------------------------------------------------------------------

    def _event(self, kind: EventKind, message: str, level: Level = Level.INFO, *,
               node: str | None = None, keyholder: str | None = None) -> None:
        with self._lock:
            self._events.append(CeremonyEvent(kind, message, level, node, keyholder))

    def _write(self, action: str, message: str, **kwargs: object) -> None:
        warning = self._journal.write(action, message, **kwargs)  # type: ignore[arg-type]
        if warning:
            self._event(EventKind.WARNING, warning, Level.WARN)


def _outcome(before: SealStatus, after: SealStatus) -> SendOutcome:
    if not after.sealed:
        return SendOutcome.UNSEALED
    if after.progress == 0:
        return SendOutcome.JOINING
    if after.progress == before.progress and after.nonce == before.nonce:
        return SendOutcome.DUPLICATE
    return SendOutcome.ACCEPTED


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

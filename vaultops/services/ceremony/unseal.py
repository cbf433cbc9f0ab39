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
stored, logged or journalled (the journal gets the x-coordinate only). In
memory it is held in bytearrays only -- the decoded share, its base64 form
and each request body -- and each is zeroed once sent (services/shares.py).

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

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from vaultops.errors import (SecurityError, ShareFormatError, ShareMismatchError, UsageError,
                             VaultError, VaultOpsError, VaultUnreachable)
from vaultops.services.ceremony import journal as cj
from vaultops.services.ceremony.types import (SENT, CeremonyEvent, CeremonySnapshot, EventKind,
                                              Level, NodePhase, NodeSend, NodeView, SendOutcome,
                                              Submission, share_offset, split_share_line)
from vaultops.services.ceremony.tracking import Observer, _Track, _short, _unique
from vaultops.services.ceremony.shares import b64_buffer, decode, to_buffer, wipe
from vaultops.vault import fan_out
from vaultops.vault.models import SealStatus

if TYPE_CHECKING:
    from vaultops.journal import Journal
    from vaultops.services.ceremony.manifest import Manifest
    from vaultops.services.ceremony.shares import Share
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


class Ceremony(Observer):
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
        self._outbox: list[tuple[str, str, dict[str, object]]] = []
        self._flush_lock = threading.Lock()

    # -- queries ------------------------------------------------------------------

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
        elif self.manifest and len(self.manifest.keyholders) < self.manifest.shares:
            missing = self.manifest.shares - len(self.manifest.keyholders)
            self._event(EventKind.WARNING, f"{missing} of {self.manifest.shares} shares have no "
                        "enrolled keyholder (PGP init?): their shares are refused unless "
                        "--allow-unverified; enroll with `vaultops shares enroll`", Level.WARN)
        self.refresh()
        with self._lock:  # earlier submissions count only while their attempt is still open
            live = {(n, t.status.nonce) for n, t in self._tracks.items()
                    if t.status is not None and t.status.nonce}
            self._records = [r for r in self._records if live & set(r.nonces.items())]
            self._events = [e for e in self._events if e.kind is not EventKind.SUBMITTED]
            if self._records:
                names = ", ".join(_unique(r.keyholder for r in self._records))
                self._event(EventKind.SUBMITTED, f"already submitted in this attempt: {names}")
            snap = self._snapshot()
        self._flush()
        return snap

    def finish(self) -> CeremonySnapshot:
        snap = self.refresh()
        outcome = "ok" if snap.all_unsealed else "incomplete"
        self._write(cj.FINISHED, f"unseal ceremony ended: {snap.summary()}", outcome=outcome,
                    phases={n.name: n.phase.value for n in snap.nodes})
        self._flush()
        return snap

    def refresh(self) -> CeremonySnapshot:
        """Ask every node for its seal status at once; explain what changed."""
        asked = time.monotonic()
        results = fan_out(self.clients, lambda c: c.seal.status(), timeout=self.status_timeout)
        records = self._journal.poll()
        with self._lock:
            for rec in records:
                self._foreign(rec)
            for r in results:
                self._observe(r.node, r.value, r.error, asked_at=asked)
            self._after_observe()
            snap = self._snapshot()
        self._flush()
        return snap

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

    def submit(self, text: str | bytearray, *, keyholder: str | None = None,
               passphrase: bytes | str = b"") -> Submission:
        """Decode, check, fan out one share. Raises (and journals) when it is refused locally.

        A bytearray is read in place, never kept; the caller wipes it (a str cannot be wiped).
        """
        try:
            return self._submit(text, keyholder, passphrase)
        finally:
            self._flush()

    def _submit(self, text: str | bytearray, keyholder: str | None, passphrase: bytes | str) -> Submission:
        share = self._decode(text, passphrase, keyholder)
        try:
            name, verified = self._identify(share, keyholder)
            key = b64_buffer(share.raw)
        finally:
            share.wipe()
        with self._lock:
            mark = len(self._events)  # node events of this fan-out come after the submission
        try:
            sends = self._fan_out(key)
        finally:
            wipe(key)
        sub = Submission(keyholder=name, share_index=share.index, verified=verified, sends=tuple(sends))
        self._record(sub, mark)
        return sub

    def submit_line(self, line: str | bytearray, *, keyholder: str | None = None,
                    passphrase: bytes | str = b"") -> Submission:
        """One `--share-stdin` line: 'NAME: share' or a bare share (a bytearray is the caller's to wipe)."""
        buf = to_buffer(line) if isinstance(line, str) else line
        try:
            name, at = share_offset(buf, self.keyholders)
            if keyholder is not None and name is not None and name != keyholder:
                self._reject(f"the line names keyholder {name} but --keyholder is {keyholder}",
                             keyholder, None)
                self._flush()
                raise UsageError(f"the line names keyholder {name} but --keyholder is {keyholder}",
                                 hint="drop the NAME: prefix or the --keyholder option; nothing was sent")
            share = buf[at:] if at else buf
            try:
                return self.submit(share, keyholder=keyholder or name, passphrase=passphrase)
            finally:
                if share is not buf:
                    wipe(share)
        finally:
            if buf is not line:
                wipe(buf)

    def _decode(self, text: str | bytearray, passphrase: bytes | str, keyholder: str | None) -> Share:
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
                if owner is None and self.allow_unverified:
                    return f"{UNNAMED} #{share.index}", False  # not enrolled (PGP init)
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

    def _fan_out(self, key: bytearray) -> list[NodeSend]:
        limit = self.retry_for + self.status_timeout + self.unseal_timeout + 2
        results = fan_out(self.clients, lambda c: self._send_one(c, key), timeout=limit)
        return [r.value if r.ok and r.value else NodeSend(r.node, SendOutcome.UNREACHABLE,
                                                          detail=_short(r.error))
                for r in results]

    def _send_one(self, client: NodeClient, key: bytearray) -> NodeSend:
        name = client.name
        asked = time.monotonic()
        try:
            st = self._retry(client.seal.status)
        except VaultOpsError as exc:
            with self._lock:
                self._observe(name, None, exc, asked_at=asked)
            return NodeSend(name, SendOutcome.UNREACHABLE, detail=_short(exc))
        with self._lock:
            self._observe(name, st, None, asked_at=asked)
            joining = self._tracks[name].phase is NodePhase.JOINING
        if not st.initialized:
            return NodeSend(name, SendOutcome.NOT_READY, detail="not initialised yet")
        if not st.sealed:
            return NodeSend(name, SendOutcome.ALREADY_UNSEALED, threshold=st.t)
        if joining:
            return NodeSend(name, SendOutcome.NOT_READY, threshold=st.t, detail="joining")
        return self._unseal(client, st, key)

    def _unseal(self, client: NodeClient, st: SealStatus, key: bytearray) -> NodeSend:
        name = client.name
        asked = time.monotonic()
        try:
            r = client.seal.unseal(key, timeout=self.unseal_timeout)
        except VaultError as exc:
            if exc.status != 400:
                raise
            with self._lock:
                self._tracks[name].quiet_nonce = True
                self._observe(name, replace(st, progress=0, nonce=""), None, asked_at=asked)
            return NodeSend(name, SendOutcome.REJECTED, threshold=st.t, detail=exc.message)
        outcome = _outcome(st, r)
        with self._lock:
            if outcome is SendOutcome.JOINING:
                self._tracks[name].joining_since = time.monotonic()
            self._observe(name, r, None, asked_at=asked)
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

    def wait_ready(self, *, timeout: float = 20.0, interval: float = 0.2) -> CeremonySnapshot:
        """Before a share: let joining followers settle so the share reaches them."""
        return self.follow(timeout=timeout, interval=interval)

def _outcome(before: SealStatus, after: SealStatus) -> SendOutcome:
    if not after.sealed:
        return SendOutcome.UNSEALED
    if after.progress == 0:
        return SendOutcome.JOINING
    if after.progress == before.progress and after.nonce == before.nonce:
        return SendOutcome.DUPLICATE
    return SendOutcome.ACCEPTED

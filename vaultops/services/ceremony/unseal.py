"""The guided unseal ceremony: shares checked before they are sent, every sealed node at once.

    c = UnsealCeremony(clients, manifest=m, manifest_path=p, journal=j)
    c.start()                                  # journal 'started', first refresh
    sub = c.submit(text, keyholder="alice")    # decode -> check -> fan out -> journal; kept to re-send
    c.follow(timeout=60)                       # refresh (re-sending to joiners) until nothing moves
    c.drain_events()                           # what happened, explained, for the UI
    c.finish()                                 # journal 'finished'; held shares zeroed

What is sent: a share is decoded (any codec), checked against the keyholder
manifest (a wrong share, or another keyholder's, is rejected here and nothing
is sent), then PUT to sys/unseal of every node that is initialised and sealed,
concurrently. The share lives only for the duration of submit(): it is never
stored, logged or journalled (the journal gets the x-coordinate only). In
memory it is held in bytearrays only -- the decoded share, its base64 form
and each request body -- and each is zeroed once sent (services/ceremony/shares.py). Each node gets the share
through the one submission path (services/ceremony/submit.py); what the ceremony knows about
the nodes is kept by its NodeTracker (services/ceremony/tracking.py).

Joiners and late nodes: a node that needs the threshold after the keyholders
submitted (a raft follower that became initialised once the leader was unsealed,
a node that was down or restarted) gets the shares again from the processes that
checked them: each keeps its keyholders' verified shares (services/ceremony/held.py:
bytearrays, zeroed when every node is unsealed, on a reset, when the ceremony ends,
and after `hold_for` seconds) and refresh() re-sends them to sealed, initialised
nodes that lack them -- journalled as re-sends, not submissions. What no running
process holds any more is listed per node (`must_resubmit`); those keyholders
submit again. Other processes' submissions are read from the shared journal and
matched to nodes by unseal nonce, so every terminal shows who submitted on which node.

Thread-safety: refresh() and submit() may run in different threads (the TUI
refreshes in the background while a keyholder submits).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vaultops.errors import (SecurityError, ShareFormatError, ShareMismatchError, UsageError, VaultOpsError)
from vaultops.retry import TimedOut, poll
from vaultops.services.ceremony import journal as cj
from vaultops.services.ceremony import submit
from vaultops.services.ceremony.held import HOLD_FOR, HeldShares
from vaultops.services.ceremony.resend import Resender
from vaultops.services.ceremony.shares import b64_buffer, decode, to_buffer, wipe
from vaultops.services.ceremony.tracking import NodeTracker, short_error
from vaultops.services.ceremony.wording import TYPO_HINT, format_refusal
from vaultops.services.ceremony.types import (SENT, CeremonyEvent, CeremonySnapshot, EventKind, Level, NodePhase,
                                              NodeSend, NodeView, SendOutcome, Submission, share_offset,
                                              split_share_line)
from vaultops.vault import fan_out

from vaultops.services.ceremony.manifest import CheckStatus

if TYPE_CHECKING:
    from vaultops.journal import Journal
    from vaultops.services.ceremony.manifest import Manifest
    from vaultops.services.ceremony.shares import Share
    from vaultops.vault import NodeClient

__all__ = ["CeremonyEvent", "CeremonySnapshot", "EventKind", "Level", "NO_MANIFEST_WARNING", "NodePhase",
           "NodeSend", "NodeView", "SENT", "SendOutcome", "Submission", "UnsealCeremony", "split_share_line"]

UNNAMED = "unnamed"
NO_MANIFEST_WARNING = (
    "no keyholder manifest: shares cannot be checked before they are sent. A wrong share is "
    "found only at the threshold, wipes everyone's progress on that node, and can leave a "
    "joining raft follower hung until it is restarted")


class UnsealCeremony:
    def __init__(self, clients: Sequence[NodeClient], *, manifest: Manifest | None = None,
                 manifest_path: Path | None = None, journal: Journal | None = None,
                 allow_unverified: bool = False, retry_for: float = 3.0,
                 unseal_timeout: float = 30.0, join_timeout: float = 20.0,
                 status_timeout: float = 6.0, hold_for: float = HOLD_FOR, debug: bool = False) -> None:
        if not clients:
            raise UsageError("no nodes to unseal", hint="list the nodes in vaultops.yaml")
        self.clients = list(clients)
        self.allow_unverified = allow_unverified
        self.retry_for = retry_for
        self.unseal_timeout = unseal_timeout
        self.status_timeout = status_timeout
        self.session = uuid.uuid4().hex[:12]
        self.held = HeldShares(hold_for)
        self._checked_with = manifest        # submit_checked(): shares checked with this very object
        self.tracker = NodeTracker(self.clients, manifest=manifest, manifest_path=manifest_path,
                                   journal=cj.CeremonyJournal(journal, session=self.session),
                                   join_timeout=join_timeout, debug=debug, held=self.held.names)
        self._resender = Resender(self)

    # -- queries ------------------------------------------------------------------

    @property
    def manifest(self) -> Manifest | None:
        """The keyholder manifest (its cluster id is filled in at the first unseal)."""
        return self.tracker.manifest

    @property
    def manifest_path(self) -> Path | None:
        return self.tracker.manifest_path

    @property
    def debug(self) -> bool:
        """--debug: share x-coordinates are shown beside the keyholders' numbers."""
        return self.tracker.debug

    @property
    def checked(self) -> bool:
        return self.tracker.checked

    @property
    def keyholders(self) -> tuple[str, ...]:
        return self.tracker.keyholders

    def snapshot(self) -> CeremonySnapshot:
        return self.tracker.snapshot()

    def drain_events(self) -> list[CeremonyEvent]:
        return self.tracker.drain_events()

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> CeremonySnapshot:
        nodes = [c.name for c in self.clients]
        self.tracker.write(cj.STARTED, f"unseal ceremony started for nodes {nodes}", nodes=nodes,
                           checked=self.checked)
        manifest = self.manifest
        if manifest is None:
            self.tracker.event(EventKind.WARNING, NO_MANIFEST_WARNING, Level.WARN)
        elif len(manifest.keyholders) < manifest.shares:
            missing = manifest.shares - len(manifest.keyholders)
            self.tracker.event(EventKind.WARNING, f"{missing} of {manifest.shares} shares have no "
                               "enrolled keyholder (PGP init?): their shares are refused unless "
                               "--allow-unverified; enroll with `vaultops shares enroll`", Level.WARN)
        return self.refresh()

    def finish(self) -> CeremonySnapshot:
        """Journal the end; the shares held for re-sending are zeroed however this ends."""
        try:
            snap = self.refresh()
        finally:
            self._drop_held("the ceremony ended")
        outcome = "ok" if snap.all_unsealed else "incomplete"
        self.tracker.write(cj.FINISHED, f"unseal ceremony ended: {snap.summary()}", outcome=outcome,
                           phases={n.name: n.phase.value for n in snap.nodes})
        self.tracker.flush()
        return self.tracker.snapshot()

    def refresh(self) -> CeremonySnapshot:
        """Ask every node for its seal status at once; explain what changed; re-send held shares
        to nodes that need them."""
        asked = time.monotonic()
        results = fan_out(self.clients, lambda c: c.seal.status(), timeout=self.status_timeout)
        records = self.tracker.journal.poll()
        snap = self.tracker.update(((r.node, r.value, r.error) for r in results), records, asked_at=asked)
        self.tracker.flush()
        if not snap.all_unsealed and len(self.held):
            for name in self.held.expire():
                self.tracker.event(EventKind.HELD_DROPPED, f"keyholder {name}'s share is no longer kept for re-sending "
                                   f"(kept {self.held.hold_for:g}s): nodes that need it now need "
                                   f"{name} to submit again", Level.WARN, keyholder=name)
            snap = self._resender.resend(snap)
        if snap.all_unsealed:
            self._drop_held("every node is unsealed")
        return self.tracker.snapshot()

    def follow(self, *, timeout: float = 60.0, interval: float = 0.2, until_unsealed: bool = False,
               on_update: Callable[[CeremonySnapshot], None] | None = None,
               stop: threading.Event | None = None) -> CeremonySnapshot:
        """Refresh until every node is unsealed, or (unless *until_unsealed*) until nothing
        moves without new shares, or *timeout*, or *stop* is set."""
        last: list[CeremonySnapshot] = []

        def settled() -> CeremonySnapshot | None:
            if last and stop is not None and stop.is_set():
                return last[0]  # asked to stop: no further refresh
            snap = self.refresh()
            last[:] = [snap]
            if on_update:
                on_update(snap)
            idle = not until_unsealed and not self.tracker.settling(snap)
            return snap if snap.all_unsealed or idle else None
        try:
            return poll(settled, timeout=timeout, interval=interval, tolerate=(), what="the unseal ceremony")
        except TimedOut:
            return last[0]

    def wait_ready(self, *, timeout: float = 20.0, interval: float = 0.2) -> CeremonySnapshot:
        """Before a share: let joining followers settle so the share reaches them."""
        return self.follow(timeout=timeout, interval=interval)

    def reset(self) -> list[NodeSend]:
        """Discard the shares submitted so far on every sealed node (sys/unseal reset), and the
        shares kept here to re-send: a reset means start over (no re-send may slip in between)."""
        with self._resender.lock:
            self._drop_held("progress was reset")
            results = fan_out(self.clients, self._reset_one, timeout=self.status_timeout + 2)
        sends = [r.value if r.ok and r.value else NodeSend(r.node, SendOutcome.UNREACHABLE,
                                                           detail=short_error(r.error))
                 for r in results]
        done = [s.node for s in sends if s.outcome is SendOutcome.ACCEPTED]
        msg = (f"unseal progress reset on [{', '.join(done) or 'no node'}]: every keyholder "
               "must submit again")
        self.tracker.write(cj.RESET, msg, nodes=done)
        self.tracker.event(EventKind.RESET, msg, Level.WARN)
        self.refresh()
        return sends

    def _reset_one(self, client: NodeClient) -> NodeSend:
        st = client.seal.status()
        if not st.sealed or not st.initialized:
            return NodeSend(client.name, SendOutcome.NOT_READY)
        self.tracker.quiet(client.name)
        r = client.seal.reset()
        return NodeSend(client.name, SendOutcome.ACCEPTED, progress=r.progress, threshold=r.t)

    # -- submitting ---------------------------------------------------------------

    def submit(self, text: str | bytearray, *, keyholder: str | None = None,
               passphrase: bytes | str = b"") -> Submission:
        """Decode, check, fan out one share. Raises (and journals) when it is refused locally.

        A bytearray is read in place, never kept; the caller wipes it (a str cannot be wiped).
        """
        try:
            return self._submit(text, keyholder, passphrase)
        finally:
            self.tracker.flush()

    def submit_checked(self, share: Share, *, keyholder: str, checked_with: Manifest) -> Submission:
        """A share already confirmed as *keyholder*'s by this ceremony's own manifest object (the caller ran
        share_lines.read_share_lines with it, e.g. before anything was stopped): fanned out without a second
        scrypt. Any other manifest is refused. The share stays the caller's to wipe."""
        try:
            if checked_with is not self._checked_with:
                raise SecurityError("a share checked against another keyholder manifest",
                                    hint="check it against this ceremony's manifest; nothing was sent")
            mismatch = self.tracker.mismatch
            if mismatch:
                self._reject(mismatch, keyholder, share.index)
                raise SecurityError(mismatch, hint="use the manifest of this cluster; nothing was sent")
            self.held.keep(keyholder, share)
            return self._send(b64_buffer(share.raw), keyholder, share.index, verified=True)
        finally:
            self.tracker.flush()

    def _submit(self, text: str | bytearray, keyholder: str | None, passphrase: bytes | str) -> Submission:
        share = self._decode(text, passphrase, keyholder)
        try:
            name, verified = self._identify(share, keyholder)
            key = b64_buffer(share.raw)
            if verified:
                self.held.keep(name, share)  # for nodes that need it later (joiners, late nodes)
        finally:
            share.wipe()
        return self._send(key, name, share.index, verified=verified)

    def _send(self, key: bytearray, name: str, index: int, *, verified: bool) -> Submission:
        """Fan *key* out to every node, journal the submission; *key* is wiped."""
        mark = self.tracker.mark()  # node events of this fan-out come after the submission
        try:
            sends = self._fan_out(key)
        finally:
            wipe(key)
        sub = Submission(keyholder=name, share_index=index, verified=verified, sends=tuple(sends),
                         label=self.tracker.words.share(index))
        self.tracker.submitted(sub, mark=mark, session=self.session)
        self.tracker.review()
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
                self.tracker.flush()
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
            said = format_refusal(exc.message, keyholder)
            self._reject(said, keyholder, None)
            if said != exc.message:
                raise ShareFormatError(said, hint=exc.hint) from None
            raise

    def _identify(self, share: Share, keyholder: str | None) -> tuple[str, bool]:
        """(keyholder name, verified) or raise: nothing is sent for a refused share."""
        mismatch = self.tracker.mismatch
        if mismatch:
            self._reject(mismatch, keyholder, share.index)
            raise SecurityError(mismatch, hint="use the manifest of this cluster; nothing was sent")
        manifest = self.manifest
        if manifest is None:
            return keyholder or UNNAMED, False
        words = self.tracker.words
        try:
            if keyholder is None:
                owner = manifest.by_index(share.index)
                if owner is None and self.allow_unverified:
                    return f"{UNNAMED} #{share.index}", False  # not enrolled (PGP init)
                if owner is None:
                    raise ShareMismatchError(words.unknown(share.index),
                                             hint="check the share comes from this cluster; nothing was sent")
                keyholder = owner.name
            result = manifest.check(keyholder, share)
            if not (result.ok or (self.allow_unverified and result.status is CheckStatus.NO_VERIFIER)):
                why = words.refusal(result)
                raise ShareMismatchError(why, hint=TYPO_HINT if why.startswith("this is probably a typo") else
                                         "make sure the keyholder entered their own share for this cluster; "
                                         "nothing was sent")
        except VaultOpsError as exc:
            self._reject(exc.message, keyholder, share.index)
            raise
        return keyholder, result.verified

    def _fan_out(self, key: bytearray) -> list[NodeSend]:
        limit = self.retry_for + self.status_timeout + self.unseal_timeout + 2
        results = fan_out(self.clients, lambda c: self._send_one(c, key), timeout=limit)
        return [r.value if r.ok and r.value else NodeSend(r.node, SendOutcome.UNREACHABLE,
                                                          detail=short_error(r.error))
                for r in results]

    def _send_one(self, client: NodeClient, key: bytearray) -> NodeSend:
        """One node: its status (an unreachable node is retried), then the share if it takes one."""
        name = client.name
        asked = time.monotonic()
        try:
            st = submit.status(client, retry_for=self.retry_for)
        except VaultOpsError as exc:
            self.tracker.observe(name, None, exc, asked_at=asked)
            return NodeSend(name, SendOutcome.UNREACHABLE, detail=short_error(exc))
        joining = self.tracker.observe(name, st, None, asked_at=asked) is NodePhase.JOINING
        sent = submit.refusal(st, joining=joining)
        if sent is None:
            asked = time.monotonic()
            sent = submit.send(client, key, before=st, timeout=self.unseal_timeout)
            self.tracker.sent(name, sent, asked_at=asked)
        return NodeSend(name, sent.outcome, progress=sent.status.progress if sent.outcome in SENT else 0,
                        threshold=sent.status.t or st.t, nonce=sent.status.nonce if sent.outcome in SENT else "",
                        detail=sent.detail)

    def _drop_held(self, why: str) -> None:
        dropped = self.held.drop()
        if dropped:
            self.tracker.event(EventKind.HELD_DROPPED,
                               f"shares kept for re-sending ({', '.join(dropped)}) were zeroed: {why}")

    def _reject(self, reason: str, keyholder: str | None, index: int | None) -> None:
        who = keyholder or "a keyholder"
        msg = f"share from {who} rejected, nothing sent: {reason}"
        self.tracker.write(cj.REJECTED, msg, outcome="rejected", keyholder=keyholder,
                           share_index=index, reason=reason)
        self.tracker.event(EventKind.REJECTED, msg, Level.ERROR, keyholder=keyholder)

"""How a restarted node gets unsealed during an upgrade, behind one small interface.

    Unsealer.unseal(client, node=...) -> evidence

- SharesUnsealer: shares handed to this process (e.g. --share-stdin), held in
  memory only, never in the state file, journal or argv. A resumed run must be
  given them again.
- AutoUnsealer: auto-unseal (KMS/HSM/transit) seals; only waits.
- KeyholderPause: no shares here and no terminal: the run pauses (RunbookPaused) naming the
  keyholders the manifest lists; they submit through the ceremony
  (`vaultops unseal`), and `resume` finds the node unsealed and goes on.
  (At a terminal the CLI hands the engine cli/upgrade_terminal.py's TerminalUnsealer
  instead: the keyholders submit there and the run goes on.)

- CeremonyUnsealer: shares handed to this process when a keyholder manifest
  exists: each goes through the unseal ceremony (vaultops/services/ceremony/unseal.py),
  so it is checked against the manifest before anything is sent and journalled
  as that keyholder's submission. A wrong share on a re-joining raft follower
  can hang it, so unchecked shares are used only when there is no manifest.

Both send through the one share-submission path (services/ceremony/submit.py): only to a node
that says initialised, following a joining follower until it is unsealed, a join that never
completes tried again. Shares given to this process are held in bytearrays (decoded Shares, or the
'NAME: share' lines) and zeroed by wipe(), which runs at the latest when the
unsealer is dropped; the str they were read as belongs to the caller.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from vaultops.errors import RunbookError, RunbookPaused, SecurityError, ShareMismatchError, UsageError, VaultOpsError
from vaultops.vault import NodeClient, cluster
from vaultops.vault.models import SealStatus

if TYPE_CHECKING:
    from pathlib import Path

    from vaultops.journal import Journal
    from vaultops.services.ceremony.epochs import Epoch, EpochHistory
    from vaultops.services.ceremony.manifest import Manifest
    from vaultops.services.ceremony.share_lines import HeldShares
    from vaultops.services.ceremony.shares import Share

READY_TIMEOUT = 60.0
CHECK_WORKERS = 2     # scrypt share checks at a time (hashlib.scrypt releases the GIL; ~16 MiB each)


class Unsealer(Protocol):
    """What the upgrade's actions read from an unsealer (checked by mypy for every implementation)."""

    @property
    def shares_given(self) -> int:
        """Shares handed to this process (preflight checks it against the threshold); 0 = none here."""
        ...

    @property
    def keyholders(self) -> Sequence[str]:
        """Who submits when no shares were given (preflight needs at least the threshold of them)."""
        ...

    def unseal(self, client: NodeClient, *, node: str) -> dict[str, Any]: ...


def wait_ready(client: NodeClient, *, timeout: float = READY_TIMEOUT) -> SealStatus:
    """Until the node answers seal-status and says initialized (a raft joiner must have its challenge)."""
    return cluster.wait_ready(client, timeout=timeout, error=RunbookError)


def wait_unsealed(client: NodeClient, *, timeout: float) -> SealStatus:
    """Until the node says unsealed; its last status (still sealed when the time is up)."""
    deadline = time.monotonic() + timeout
    st = wait_ready(client, timeout=timeout)
    return st if not st.sealed else cluster.wait_unsealed(client, timeout=max(deadline - time.monotonic(), 0.0))


def prepare(client: NodeClient, *, node: str, given: int) -> SealStatus:
    """Before submitting shares: the node is ready, enough shares were given, no half-finished attempt."""
    st = wait_ready(client)
    if not st.sealed:
        return st
    if given < st.t:
        raise RunbookPaused(f"{node} needs {st.t} shares; {given} were given",
                            hint="resume with enough shares on stdin (--share-stdin)")
    if st.progress:
        client.seal.reset()  # someone's half-finished attempt: start clean
    return st


class SharesUnsealer:
    """Submits the shares it holds (decoded at once: a bad one is refused before anything runs)."""

    keyholders: Sequence[str] = ()

    def __init__(self, shares: Sequence[str | bytearray], *, timeout: float = 60.0) -> None:
        from vaultops.services.ceremony.shares import decode

        self._shares: list[Share] = []
        try:
            for text in shares:
                self._shares.append(decode(text))
        except VaultOpsError:
            self.wipe()
            raise
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SharesUnsealer(<{len(self._shares)} shares>)"

    def __del__(self) -> None:
        self.wipe()

    def wipe(self) -> None:
        for share in getattr(self, "_shares", ()):
            share.wipe()

    @property
    def shares_given(self) -> int:
        return len(self._shares)

    def unseal(self, client: NodeClient, *, node: str) -> dict[str, Any]:
        st = prepare(client, node=node, given=len(self._shares))
        if not st.sealed:
            return {"summary": "already unsealed", "version": st.version}
        from vaultops.services.ceremony.submit import unseal_node

        res = unseal_node(client, self._shares, timeout=self.timeout, error=RunbookError)
        if res.rejected:
            raise SecurityError(f"{node} rejected the shares at the threshold (wrong or mixed shares)",
                                hint="check the shares given on stdin belong to this cluster")
        if res.sealed:
            raise RunbookError(f"{node} still sealed after {res.sent} shares (waited up to {self.timeout:g}s)",
                               hint="see the node's server log",
                               evidence={"progress": res.status.progress, "t": res.status.t})
        return {"summary": f"unsealed with {res.sent} shares", "version": res.status.version}


class CeremonyUnsealer:
    """Shares from stdin ('NAME: share' or bare), each checked against the manifest before it is sent.

    check() runs the checks (scrypt) once, CHECK_WORKERS at a time -- a caller runs it before it
    changes anything, or while it waits for something -- and unseal() then only submits the checked
    shares (UnsealCeremony.submit_checked). The decoded shares are held until wipe()."""

    def __init__(self, lines: Sequence[str | bytearray], *, manifest: Manifest, manifest_path: Path | None = None,
                 journal: Journal | None = None, timeout: float = 60.0) -> None:
        from vaultops.services.ceremony.shares import to_buffer

        self._lines = [to_buffer(line) if isinstance(line, str) else bytearray(line) for line in lines]
        self._held: HeldShares | None = None
        self.epoch: tuple[EpochHistory, int] | None = None   # rebased(): the key epoch the shares must be of
        self.manifest = manifest
        self.manifest_path = manifest_path
        self.journal = journal
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"CeremonyUnsealer(<{len(self._lines)} shares>)"

    def __del__(self) -> None:
        self.wipe()

    def wipe(self) -> None:
        for line in getattr(self, "_lines", ()):
            line[:] = bytes(len(line))
        held = getattr(self, "_held", None)
        if held is not None:
            held.wipe()

    @property
    def shares_given(self) -> int:
        return len(self._lines)

    @property
    def keyholders(self) -> Sequence[str]:
        return [kh.name for kh in self.manifest.keyholders]

    def check(self) -> HeldShares:
        """Every share decoded and confirmed by its keyholder's verifier (once); raise on the first bad line."""
        from vaultops.services.ceremony.share_lines import read_share_lines

        if self._held is None:
            try:
                self._held = read_share_lines(self._lines, manifest=self.manifest, workers=CHECK_WORKERS)
            except (ShareMismatchError, UsageError) as exc:  # UsageError: a name the epoch did not have
                if self.epoch is None:
                    raise
                history, number = self.epoch
                elsewhere = history.elsewhere(self._lines, number)   # the epoch each share is of
                if not elsewhere:
                    raise
                raise ShareMismatchError("; ".join([exc.message, *elsewhere]) +
                                         f": the shares of key epoch {number} are needed",
                                         hint=f"give the shares of key epoch {number} (`vaultops keyholders "
                                              "list --epochs`); nothing was sent") from None
        return self._held

    def rebased(self, epoch: Epoch, history: EpochHistory) -> CeremonyUnsealer:
        """The same shares, to be checked against the keyholder manifest of *epoch* (a backup's key epoch:
        ceremony/epochs.py); a share of another epoch is refused naming its epoch. The lines move to the
        new unsealer; this one is left empty. An old epoch's manifest is read from the manifest's history
        and never written (manifest_path None)."""
        path = epoch.manifest_file if epoch is history.current else None
        other = CeremonyUnsealer([], manifest=epoch.manifest, manifest_path=path, journal=self.journal,
                                 timeout=self.timeout)
        other.epoch = (history, epoch.number)
        other._lines, self._lines = self._lines, []
        if self._held is not None:
            self._held.wipe()
            self._held = None
        return other

    def unseal(self, client: NodeClient, *, node: str) -> dict[str, Any]:
        from vaultops.services.ceremony.unseal import UnsealCeremony

        held = self.check()
        st = prepare(client, node=node, given=len(held.shares))
        if not st.sealed:
            return {"summary": "already unsealed", "version": st.version}
        ceremony = UnsealCeremony([client], manifest=self.manifest, manifest_path=self.manifest_path,
                                  journal=self.journal, unseal_timeout=self.timeout)
        ceremony.start()
        who = [ceremony.submit_checked(share, keyholder=name, checked_with=self.manifest).keyholder
               for share, name in zip(held.shares[: st.t], held.keyholders[: st.t])]
        snap = ceremony.follow(timeout=self.timeout, until_unsealed=True)
        ceremony.finish()
        if not snap.all_unsealed:
            raise RunbookError(f"{node} still sealed {self.timeout:g}s after shares of {', '.join(who)}",
                               hint="see the node's server log", evidence={"node": snap.summary()})
        return {"summary": f"unsealed by {', '.join(who)} (checked against the manifest)",
                "version": client.seal.status().version}


class AutoUnsealer:
    shares_given = 0
    keyholders: Sequence[str] = ()

    def __init__(self, *, timeout: float = 120.0) -> None:
        self.timeout = timeout

    def unseal(self, client: NodeClient, *, node: str) -> dict[str, Any]:
        st = wait_unsealed(client, timeout=self.timeout)
        if st.sealed:
            raise RunbookError(f"{node} (seal type {st.type}) did not auto-unseal in {self.timeout:g}s",
                               hint="check the node's access to its KMS/HSM and its log")
        return {"summary": f"auto-unsealed ({st.type})", "version": st.version}


class KeyholderPause:
    """No shares in this process: pause and say who is needed."""

    shares_given = 0

    def __init__(self, keyholders: Sequence[str], *, threshold_hint: int | None = None) -> None:
        self.keyholders = tuple(keyholders)
        self.threshold_hint = threshold_hint

    def unseal(self, client: NodeClient, *, node: str) -> dict[str, Any]:
        st = wait_ready(client)
        if not st.sealed:
            return {"summary": "already unsealed (by the keyholders)", "version": st.version}
        who = ", ".join(self.keyholders) if self.keyholders else "the keyholders"
        raise RunbookPaused(
            f"{node} restarted on the new version and is sealed: {st.t} of {st.n} keyholders must submit "
            f"their shares ({who}); progress {st.progress}/{st.t}",
            hint="keyholders: `vaultops unseal` (each share goes to every sealed node); then "
                 "`vaultops upgrade resume` -- or run `vaultops upgrade resume` at a terminal and submit "
                 "there, or resume with --share-stdin")


def choose(seal_type: str, shares: Sequence[str | bytearray] | None, keyholders: Sequence[str], *,
           manifest: Manifest | None = None, manifest_path: Path | None = None,
           journal: Journal | None = None) -> Unsealer:
    if seal_type != "shamir":
        return AutoUnsealer()
    if shares and manifest is not None:
        return CeremonyUnsealer(shares, manifest=manifest, manifest_path=manifest_path, journal=journal)
    if shares:
        return SharesUnsealer(shares)
    return KeyholderPause(keyholders)

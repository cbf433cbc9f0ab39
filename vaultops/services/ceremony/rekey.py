"""Rekey: new unseal shares (and threshold, and keyholders), verification always on.

Flow (any step may run in a different process or terminal):

1. start()   PUT {api}/init with require_verification=true; the plan (new
             keyholders in share order, PGP fingerprints) is kept beside the
             manifest in `<stem>.rekey-pending.yaml` (no secrets: safe to commit).
2. submit()  a CURRENT keyholder's share, checked against the current manifest
             before it is sent (a wrong share costs nobody anything). The last
             one returns the new shares: handed out at once, each to its own
             keyholder; the pending file gains the new verifiers.
3. verify()  a NEW keyholder proves they hold their new share: checked against
             the new verifiers, then sent to {api}/verify. When the new
             threshold is reached the server switches keys (only then do the
             old shares stop working), the manifest is rewritten (the old one
             kept in its .history folder) and the journal records who left and
             who joined.
   cancel()  DELETE {api}/init at any point before that: the old shares stay valid.

{api} is `sys/rotate/root` or `sys/rekey`: which one, on which server, is stated once in
vaultops.vault.sys_rotate.ROTATION_APIS; detect_api() probes, the user never chooses.

    cer = RekeyCeremony.open(clients, manifest_path, journal=j)

What it shares with the root-token ceremony (active node, manifest check, journal, cancel) is in
base.py; the plan and its pending file are in pending.py.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vaultops.errors import SecurityError, ShareMismatchError, UsageError, VaultAuthError, VaultError, VaultNotFound
from vaultops.services.ceremony.base import AttemptStatus, KeyCeremony
from vaultops.services.ceremony.manifest import CheckStatus, Keyholder, Manifest, make_verifier
from vaultops.services.ceremony.pending import (NewKeyholder, Pending, PendingFile, Phase, RotationApi, drop_pending,
                                                load_pending, pending_path, save_pending, validate_plan)
from vaultops.services.ceremony.shares import Share
from vaultops.vault.sys_rotate import REKEY, ROTATE_ROOT, ROTATE_ROOT_SAFE_SINCE, rotate_root_is_safe

if TYPE_CHECKING:
    from vaultops.vault import NodeClient
    from vaultops.vault.models import RotationStatus, RotationUpdate
    from vaultops.vault.sys_rotate import RotateEndpoints


# -- the API the node offers ----------------------------------------------------------

def detect_api(client: NodeClient) -> RotationApi:
    """Probe GET sys/rotate/root/init (token), then GET sys/rekey/init (no token); see ROTATION_APIS."""
    version = ""
    if client.token:
        try:
            client.rotate(ROTATE_ROOT).status()
            version = client.seal.status().version or ""
            if rotate_root_is_safe(version):
                return RotationApi.ROTATE_ROOT
        except (VaultNotFound, VaultAuthError):
            pass  # Vault has no sys/rotate/root; a weak token may still use sys/rekey
    try:
        client.rotate(REKEY).status()
        return RotationApi.REKEY
    except (VaultNotFound, VaultAuthError):
        pass
    if version:  # an OpenBao whose sys/rotate/root would wipe the shares, and no sys/rekey
        safe = ".".join(map(str, ROTATE_ROOT_SAFE_SINCE))
        raise VaultError(f"{client.name} (OpenBao {version}): its sys/rotate/root would wipe the unseal shares "
                         "and sys/rekey is disabled on this listener", node=client.name,
                         hint=f"upgrade OpenBao to {safe} or later first (`vaultops rekey --help` says why)")
    version = client.seal.status().version or "unknown version"
    raise VaultAuthError(
        f"{client.name} ({version}): unauthenticated sys/rekey is disabled on this listener and "
        f"sys/rotate/root {'refused the token' if client.token else 'needs a token'}", node=client.name,
        hint="provide a token allowed to use sys/rotate/root/* (VAULT_TOKEN or cluster.token_file)")


def endpoints(client: NodeClient, api: RotationApi) -> RotateEndpoints:
    if api.needs_token and not client.token:
        raise VaultAuthError(f"{client.name}: {api.value} needs a token", node=client.name,
                             hint="export VAULT_TOKEN or set cluster.token_file")
    return client.rotate(api.value)


# -- the steps -----------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class RekeyCeremony(KeyCeremony):
    """One rekey against one cluster: the active node, its API, the manifest and the journal."""

    KIND: ClassVar[str] = "rekey"
    NEEDS_MANIFEST: ClassVar[bool] = True

    api: RotationApi
    manifest: Manifest
    manifest_path: Path

    @classmethod
    def detect(cls, client: NodeClient) -> dict[str, Any]:
        return {"api": detect_api(client)}

    @property
    def ep(self) -> RotateEndpoints:
        return endpoints(self.client, self.api)

    def log_details(self) -> dict[str, Any]:
        return {"api": self.api.value}

    def status(self) -> RotationStatus:
        """GET {api}/init on the active node."""
        return self.ep.status()

    def start(self, *, shares: int, threshold: int, keyholders: Sequence[NewKeyholder]) -> Pending:
        validate_plan(shares, threshold, keyholders)
        current = self.status()
        if current.started:
            raise UsageError(f"a rekey is already in progress on the cluster (nonce {current.nonce})",
                             hint="join it with `vaultops rekey submit`, or cancel it: `vaultops rekey cancel`")
        pgp = [k.pgp_key for k in keyholders if k.pgp_key]
        if pgp and any(k.age_recipient for k in keyholders):
            raise UsageError("new shares are encrypted either by the server to PGP keys or by vaultops to age keys",
                             hint="give --pgp-key or --age-key, not both")
        st = self.ep.start(shares=shares, threshold=threshold, pgp_keys=pgp or None, require_verification=True)
        fps = st.pgp_fingerprints or tuple(k.pgp_fingerprint or "" for k in keyholders)
        kept = tuple(replace(k, pgp_key=None, pgp_fingerprint=(fps[i] or None if pgp and i < len(fps) else None))
                     for i, k in enumerate(keyholders))
        pending = Pending(nonce=st.nonce, api=self.api, shares=shares, threshold=threshold, keyholders=kept,
                          old_threshold=self.manifest.threshold, old_shares=self.manifest.shares,
                          started=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        save_pending(self.manifest_path, pending)
        old, new = {k.name for k in self.manifest.keyholders}, [k.name for k in keyholders]
        self.log("rekey.started", old=f"{self.manifest.threshold}/{self.manifest.shares}",
                 new=f"{threshold}/{shares}", keyholders=new, pgp=bool(pgp), nonce=st.nonce,
                 leaving=sorted(old - set(new)), joining=[n for n in new if n not in old])
        return pending

    def pending(self) -> Pending:
        """The rekey this manifest's folder records, checked against the one on the server."""
        pending = load_pending(self.manifest_path)
        if pending is None:
            raise UsageError("no rekey recorded beside the manifest",
                             hint="start one: vaultops rekey start --shares N --threshold T --keyholder NAME ...")
        st = self.status()
        if not st.started or st.nonce != pending.nonce:
            raise VaultError("the rekey recorded here is no longer the one on the cluster (cancelled or "
                             "restarted elsewhere); no share was sent",
                             hint="run `vaultops rekey cancel` to clear it, then start again")
        return pending

    def submit(self, name: str, share: Share) -> SubmitResult:
        """One CURRENT keyholder's share: checked locally, then PUT {api}/update."""
        pending = self.pending()
        if pending.phase is not Phase.SUBMITTING:
            raise UsageError("the new shares were already issued: this rekey is waiting for verification",
                             hint="new keyholders: vaultops rekey verify --keyholder NAME")
        self.require(self.manifest, name, share, action="rekey.share_rejected")
        res = self.ep.update(key=_b64e(share), nonce=pending.nonce)
        required = res.required or self.manifest.threshold
        self.log("rekey.share_submitted", keyholder=name, share_index=share.index,
                 progress=required if res.complete else res.progress, required=required)
        if not res.complete:
            return SubmitResult(progress=res.progress, required=required)
        return SubmitResult(progress=required, required=required, issued=self._issued(pending, res))

    def _issued(self, pending: Pending, res: RotationUpdate) -> Issued:
        keys = res.keys_b64
        if len(keys) != pending.shares:
            raise VaultError(f"the server returned {len(keys)} new shares, {pending.shares} were expected",
                             hint="cancel the rekey (`vaultops rekey cancel`): the old shares stay valid")
        pgp = any(k.pgp_fingerprint for k in pending.keyholders)
        items = tuple(IssuedShare(kh, None if pgp else Share(_b64(k)), k if pgp else None)
                      for kh, k in zip(pending.keyholders, keys, strict=True))
        draft = self._draft(pending, items)
        pending = replace(pending, phase=Phase.VERIFYING, draft=draft)
        save_pending(self.manifest_path, pending)
        self.log("rekey.shares_issued", shares=pending.shares, threshold=pending.threshold,
                 keyholders=[k.name for k in pending.keyholders], pgp=pgp,
                 share_indexes={i.keyholder.name: i.share.index for i in items if i.share})
        return Issued(items=items, verification_nonce=res.verification_nonce)

    def _draft(self, pending: Pending, items: Sequence[IssuedShare]) -> Manifest:
        """The next manifest: keyholders whose plaintext share we saw get a verifier now;
        PGP keyholders are enrolled when they verify (or later with `keyholders enroll`)."""
        added = {k.name: k.added for k in self.manifest.keyholders}
        holders = tuple(Keyholder(name=i.keyholder.name, share_index=i.share.index, verifier=make_verifier(i.share),
                                  pgp_fingerprint=None, added=added.get(i.keyholder.name, date.today()),
                                  age_recipient=i.keyholder.age_recipient)
                        for i in items if i.share is not None)
        return Manifest(cluster_id=self._cluster_id(), threshold=pending.threshold, shares=pending.shares,
                        keyholders=holders)

    def _cluster_id(self) -> str:
        """The manifest's cluster id, or the real one if init left a placeholder."""
        from vaultops.services.ceremony.init import PENDING_CLUSTER_ID

        if self.manifest.cluster_id != PENDING_CLUSTER_ID:
            return self.manifest.cluster_id
        return self.client.seal.status().cluster_id or self.manifest.cluster_id

    def verify(self, name: str, share: Share) -> VerifyResult:
        """One NEW keyholder's new share: checked against the draft, then PUT {api}/verify."""
        pending = self.pending()
        if pending.phase is not Phase.VERIFYING or pending.draft is None:
            raise UsageError("the new shares have not been issued yet",
                             hint="current keyholders submit first: vaultops rekey submit")
        if name not in {k.name for k in pending.keyholders}:
            raise UsageError(f"{name} is not one of the new keyholders",
                             hint="new keyholders: " + ", ".join(k.name for k in pending.keyholders))
        draft = self._draft_with(pending, name, share)
        res = self.ep.verify(key=_b64e(share), nonce=self.ep.verify_status().nonce)
        self.log("rekey.share_verified", keyholder=name, share_index=share.index,
                 progress=pending.threshold if res.complete else res.progress,
                 required=pending.threshold, complete=res.complete)
        if draft is not pending.draft:
            save_pending(self.manifest_path, replace(pending, draft=draft))
        if not res.complete:
            return VerifyResult(progress=res.progress, required=pending.threshold)
        return self._finish(pending, draft)

    def _draft_with(self, pending: Pending, name: str, share: Share) -> Manifest:
        draft = pending.draft
        assert draft is not None
        kh = next((k for k in draft.keyholders if k.name == name), None)
        if kh is not None:
            self.require(draft, name, share, action="rekey.verify_rejected")
            return draft
        owner = draft.by_index(share.index)  # a PGP keyholder: enrolled by this very check
        if owner is not None and owner.verifier is not None and owner.verifier.matches(share):
            self.log("rekey.verify_rejected", outcome="rejected", keyholder=name,
                     reason=f"share #{share.index} belongs to {owner.name}")
            raise ShareMismatchError(f"share #{share.index} belongs to new keyholder {owner.name}, not {name}",
                                     hint="each new keyholder enters their own new share; nothing was sent")
        fp = next(k.pgp_fingerprint for k in pending.keyholders if k.name == name)
        return draft.enroll(name, share, pgp_fingerprint=fp)

    def _finish(self, pending: Pending, draft: Manifest) -> VerifyResult:
        kept = draft.save(self.manifest_path)
        drop_pending(self.manifest_path)
        old = {k.name for k in self.manifest.keyholders}
        new = [k.name for k in pending.keyholders]
        self.log("rekey.completed", old=f"{pending.old_threshold}/{pending.old_shares}",
                 new=f"{pending.threshold}/{pending.shares}", left=sorted(old - set(new)),
                 joined=[n for n in new if n not in old], stayed=[n for n in new if n in old],
                 unenrolled=[n for n in new if n not in {k.name for k in draft.keyholders}],
                 manifest_history=str(kept) if kept else None)
        return VerifyResult(progress=pending.threshold, required=pending.threshold, complete=True,
                            manifest=draft, history=kept)

    def forget(self, st: AttemptStatus) -> dict[str, Any] | None:
        """After DELETE {api}/init: the pending record goes too (the old shares stay valid)."""
        pending = load_pending(self.manifest_path)
        drop_pending(self.manifest_path)
        if not st.started and pending is None:
            return None
        return {"phase": pending.phase.value if pending else "unknown",
                "nonce": st.nonce or (pending.nonce if pending else None)}


# -- results -------------------------------------------------------------------------

@dataclass(frozen=True)
class IssuedShare:
    keyholder: NewKeyholder
    share: Share | None               # plaintext (no PGP): hand it to this keyholder only
    encrypted_b64: str | None = field(default=None, repr=False)  # PGP-encrypted to this keyholder


@dataclass(frozen=True)
class Issued:
    items: tuple[IssuedShare, ...]
    verification_nonce: str

    def __repr__(self) -> str:
        return f"Issued(<{len(self.items)} new shares>)"


@dataclass(frozen=True)
class SubmitResult:
    progress: int
    required: int
    issued: Issued | None = None


@dataclass(frozen=True)
class VerifyResult:
    progress: int
    required: int
    complete: bool = False
    manifest: Manifest | None = None
    history: Path | None = None


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


def _b64e(share: Share) -> str:
    import base64

    return base64.b64encode(share.raw).decode("ascii")


def write_share_file(path: Path, text: str) -> None:
    """A new share for one keyholder: created 0600, never over an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SecurityError(f"{path} already exists: a share file is never overwritten",
                            hint="name a new file for this keyholder") from None
    except OSError as exc:
        raise UsageError(f"cannot create {path} ({exc.strerror})", hint="name a writable path") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())


__all__ = ["CheckStatus", "Issued", "IssuedShare", "NewKeyholder", "Pending", "PendingFile", "Phase", "RekeyCeremony",
           "RotationApi", "SubmitResult", "VerifyResult", "detect_api", "load_pending", "pending_path",
           "write_share_file"]

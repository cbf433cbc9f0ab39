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

{api} is the token-authenticated `sys/rotate/root` (OpenBao >= 2.4; the only
one left enabled by default on >= 2.5) or the unauthenticated `sys/rekey`
(HashiCorp Vault, older OpenBao); detect_api() probes, the user never chooses.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from msgspec import Meta

from vaultops.errors import (ConfigError, SecurityError, ShareMismatchError, UsageError, VaultAuthError,
                             VaultError, VaultNotFound)
from vaultops.files.atomic import atomic_write_text
from vaultops.files.loader import Invalid
from vaultops.files.model import Model
from vaultops.services.ceremony.manifest import (CheckStatus, Keyholder, Manifest, ManifestFile, check_holder_name,
                                        make_verifier)
from vaultops.services.ceremony.shares import Share
from vaultops.vault.sys_rotate import REKEY, ROTATE_ROOT

if TYPE_CHECKING:
    from vaultops.journal import Journal
    from vaultops.vault import NodeClient
    from vaultops.vault.models import RotationStatus
    from vaultops.vault.sys_rotate import RotateEndpoints

PENDING_VERSION = 1
_PENDING_HEADER = ("# vaultops: a rekey in progress. No secrets (new-share verifiers only); removed when the\n"
                   "# rekey completes or is cancelled (`vaultops rekey status|cancel`).\n")


class RotationApi(enum.StrEnum):
    ROTATE_ROOT = ROTATE_ROOT  # OpenBao >= 2.4, token-authenticated
    REKEY = REKEY              # HashiCorp Vault / OpenBao < 2.5 default, unauthenticated

    @property
    def needs_token(self) -> bool:
        return self is RotationApi.ROTATE_ROOT


class Phase(enum.StrEnum):
    SUBMITTING = "submitting"  # current keyholders submit their shares
    VERIFYING = "verifying"    # new shares issued; new keyholders prove they hold them


# -- finding the node and the API ------------------------------------------------

def active_client(clients: Sequence[NodeClient]) -> NodeClient:
    """The node answering sys/health 200: ceremonies run against the active node."""
    from vaultops.vault import fan_out

    results = fan_out(list(clients), lambda c: c.ha.health())
    for client, res in zip(clients, results, strict=True):
        if res.ok and res.value is not None and res.value.role == "active":
            return client
    states = ", ".join(f"{r.node}: {r.value.role if r.value else 'unreachable'}" for r in results)
    raise VaultError(f"no active node ({states})",
                     hint="unseal the cluster first (vaultops unseal), or wait for a leader election")


def detect_api(client: NodeClient) -> RotationApi:
    """Probe GET sys/rotate/root/init (token), then GET sys/rekey/init (no token)."""
    if client.token:
        try:
            client.rotate(ROTATE_ROOT).status()
            return RotationApi.ROTATE_ROOT
        except (VaultNotFound, VaultAuthError):
            pass  # Vault has no sys/rotate/root; a weak token may still use sys/rekey
    try:
        client.rotate(REKEY).status()
        return RotationApi.REKEY
    except VaultNotFound:
        pass
    version = client.seal.status().version or "unknown version"
    raise VaultAuthError(
        f"{client.name} ({version}): unauthenticated sys/rekey is disabled (OpenBao >= 2.5) and "
        f"sys/rotate/root {'refused the token' if client.token else 'needs a token'}", node=client.name,
        hint="provide a token allowed to use sys/rotate/root/* (VAULT_TOKEN or cluster.token_file)")


def endpoints(client: NodeClient, api: RotationApi) -> RotateEndpoints:
    if api.needs_token and not client.token:
        raise VaultAuthError(f"{client.name}: {api.value} needs a token", node=client.name,
                             hint="export VAULT_TOKEN or set cluster.token_file")
    return client.rotate(api.value)


# -- the plan and its pending file ---------------------------------------------------

@dataclass(frozen=True)
class NewKeyholder:
    name: str
    pgp_key: str | None = field(default=None, repr=False)  # base64 public key, as the server takes it
    pgp_fingerprint: str | None = None


@dataclass(frozen=True)
class Pending:
    """What survives between the steps of one rekey: never secret."""

    nonce: str
    api: RotationApi
    shares: int
    threshold: int
    keyholders: tuple[NewKeyholder, ...]
    old_threshold: int
    old_shares: int
    started: str
    phase: Phase = Phase.SUBMITTING
    draft: Manifest | None = None  # the new manifest (verifiers of new shares) once issued

    def to_dict(self) -> dict[str, Any]:
        return {"version": PENDING_VERSION, "nonce": self.nonce, "api": self.api.value, "phase": self.phase.value,
                "started": self.started, "old": {"shares": self.old_shares, "threshold": self.old_threshold},
                "new": {"shares": self.shares, "threshold": self.threshold},
                "keyholders": [{"name": k.name, "pgp_fingerprint": k.pgp_fingerprint} for k in self.keyholders],
                "draft": self.draft.to_dict() if self.draft else None}

    @classmethod
    def from_dict(cls, d: Any, source: str) -> Pending:
        from vaultops.files.loader import validate

        doc = validate(d, PendingFile, source=source, hint=_PENDING_HINT)
        draft = doc.draft.manifest(f"{source}: draft") if doc.draft else None
        return cls(nonce=doc.nonce, api=doc.api, phase=doc.phase, started=doc.started.isoformat(),
                   old_shares=doc.old.shares, old_threshold=doc.old.threshold, shares=doc.new.shares,
                   threshold=doc.new.threshold, draft=draft,
                   keyholders=tuple(NewKeyholder(k.name, pgp_fingerprint=k.pgp_fingerprint)
                                    for k in doc.keyholders))


_PENDING_HINT = "not a vaultops rekey record: cancel the rekey (`vaultops rekey cancel`) and start again"


class _Counts(Model):
    shares: Annotated[int, Meta(ge=1, le=255, description="number of shares")]
    threshold: Annotated[int, Meta(ge=1, le=255, description="shares needed to unseal")]


class _PendingKeyholder(Model):
    name: Annotated[str, Meta(description="a new keyholder, in share order")]
    pgp_fingerprint: Annotated[str | None, Meta(description="their OpenPGP key, if shares are encrypted")] = None

    def __post_init__(self) -> None:
        check_holder_name(self.name, "name")


class PendingFile(Model):
    """`<manifest stem>.rekey-pending.yaml`: a rekey in progress (no secrets)."""

    version: Annotated[int, Meta(description=f"format version ({PENDING_VERSION})")]
    nonce: Annotated[str, Meta(min_length=1, description="the server's rekey nonce")]
    api: Annotated[RotationApi, Meta(description="the rekey API in use")]
    phase: Annotated[Phase, Meta(description="submitting old shares, or verifying new ones")]
    started: Annotated[datetime, Meta(tz=True, description="when the rekey started (UTC)")]
    old: Annotated[_Counts, Meta(description="the shares and threshold being replaced")]
    new: Annotated[_Counts, Meta(description="the new shares and threshold")]
    keyholders: Annotated[list[_PendingKeyholder], Meta(description="the new keyholders")]
    draft: Annotated[ManifestFile | None, Meta(description="the new manifest once new shares are issued")] = None

    def __post_init__(self) -> None:
        if self.version != PENDING_VERSION:
            raise Invalid("version", f"unsupported version {self.version} (this vaultops writes {PENDING_VERSION})")


def pending_path(manifest_path: Path) -> Path:
    return manifest_path.with_name(f"{manifest_path.stem}.rekey-pending.yaml")


def load_pending(manifest_path: Path) -> Pending | None:
    from vaultops.files.loader import CONFIG_CAP, read_yaml

    path = pending_path(manifest_path)
    if not path.exists():
        return None
    return Pending.from_dict(read_yaml(path, cap=CONFIG_CAP, what="rekey record"), str(path))


def _save_pending(manifest_path: Path, pending: Pending) -> None:
    import yaml

    text = _PENDING_HEADER + yaml.safe_dump(pending.to_dict(), sort_keys=False, default_flow_style=False)
    atomic_write_text(pending_path(manifest_path), text, mode=0o644)


def _drop_pending(manifest_path: Path) -> None:
    pending_path(manifest_path).unlink(missing_ok=True)


def _validate(manifest: Manifest, shares: int, threshold: int, keyholders: Sequence[NewKeyholder]) -> None:
    if not 1 <= threshold <= shares <= 255:
        raise UsageError(f"threshold {threshold} must be between 1 and shares ({shares}), shares at most 255",
                         hint="e.g. --shares 3 --threshold 2")
    if threshold == 1 and shares > 1:
        raise UsageError("a threshold of 1 with several shares lets any single keyholder unseal alone",
                         hint="use a threshold of at least 2")
    names = [k.name for k in keyholders]
    if len(names) != shares or len(set(names)) != shares:
        raise UsageError(f"{shares} new shares need {shares} distinct keyholder names, got {len(set(names))}",
                         hint="name one keyholder per new share (--keyholder NAME, repeated)")
    if any(k.pgp_key for k in keyholders) and not all(k.pgp_key for k in keyholders):
        raise UsageError("PGP keys were given for some new keyholders but not all",
                         hint="give every new keyholder a PGP key, or none")


# -- the steps -----------------------------------------------------------------------

@dataclass(frozen=True)
class Ceremony:
    """One rekey against one cluster: the active node, its API, the manifest and the journal."""

    client: NodeClient
    api: RotationApi
    manifest: Manifest
    manifest_path: Path
    journal: Journal | None = None

    @property
    def ep(self) -> RotateEndpoints:
        return endpoints(self.client, self.api)

    def _log(self, action: str, outcome: str = "ok", **details: Any) -> None:
        if self.journal is not None:
            self.journal.append(action, outcome=outcome, node=self.client.name,
                                details={"api": self.api.value, **details})

    def status(self) -> RotationStatus:
        """GET {api}/init on the active node."""
        return self.ep.status()

    def start(self, *, shares: int, threshold: int, keyholders: Sequence[NewKeyholder]) -> Pending:
        _validate(self.manifest, shares, threshold, keyholders)
        current = self.status()
        if current.started:
            raise UsageError(f"a rekey is already in progress on the cluster (nonce {current.nonce})",
                             hint="join it with `vaultops rekey submit`, or cancel it: `vaultops rekey cancel`")
        pgp = [k.pgp_key for k in keyholders if k.pgp_key]
        st = self.ep.start(shares=shares, threshold=threshold, pgp_keys=pgp or None, require_verification=True)
        fps = st.pgp_fingerprints or tuple(k.pgp_fingerprint or "" for k in keyholders)
        kept = tuple(replace(k, pgp_key=None, pgp_fingerprint=(fps[i] or None if pgp and i < len(fps) else None))
                     for i, k in enumerate(keyholders))
        pending = Pending(nonce=st.nonce, api=self.api, shares=shares, threshold=threshold, keyholders=kept,
                          old_threshold=self.manifest.threshold, old_shares=self.manifest.shares,
                          started=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        _save_pending(self.manifest_path, pending)
        old, new = {k.name for k in self.manifest.keyholders}, [k.name for k in keyholders]
        self._log("rekey.started", old=f"{self.manifest.threshold}/{self.manifest.shares}",
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
        self._check(self.manifest, name, share, "rekey.share_rejected")
        data = self.ep.update(key=_b64e(share), nonce=pending.nonce)
        d = _payload(data)
        progress, required = int(d.get("progress") or 0), int(d.get("required") or self.manifest.threshold)
        self._log("rekey.share_submitted", keyholder=name, share_index=share.index,
                  progress=required if d.get("complete") else progress, required=required)
        if not d.get("complete"):
            return SubmitResult(progress=progress, required=required)
        issued = self._issued(pending, d)
        return SubmitResult(progress=required, required=required, issued=issued)

    def _check(self, manifest: Manifest, name: str, share: Share, action: str) -> None:
        try:
            manifest.require(name, share)
        except (ShareMismatchError, UsageError) as exc:
            self._log(action, outcome="rejected", keyholder=name, reason=str(exc.message))
            raise

    def _issued(self, pending: Pending, d: dict[str, Any]) -> Issued:
        keys = list(d.get("keys_base64") or d.get("keys") or [])
        if len(keys) != pending.shares:
            raise VaultError(f"the server returned {len(keys)} new shares, {pending.shares} were expected",
                             hint="cancel the rekey (`vaultops rekey cancel`): the old shares stay valid")
        pgp = any(k.pgp_fingerprint for k in pending.keyholders)
        items = tuple(IssuedShare(kh, None if pgp else Share(_b64(k)), k if pgp else None)
                      for kh, k in zip(pending.keyholders, keys, strict=True))
        draft = self._draft(pending, items)
        pending = replace(pending, phase=Phase.VERIFYING, draft=draft)
        _save_pending(self.manifest_path, pending)
        self._log("rekey.shares_issued", shares=pending.shares, threshold=pending.threshold,
                  keyholders=[k.name for k in pending.keyholders], pgp=pgp,
                  share_indexes={i.keyholder.name: i.share.index for i in items if i.share})
        return Issued(items=items, verification_nonce=str(d.get("verification_nonce") or ""))

    def _draft(self, pending: Pending, items: Sequence[IssuedShare]) -> Manifest:
        """The next manifest: keyholders whose plaintext share we saw get a verifier now;
        PGP keyholders are enrolled when they verify (or later with `keyholders enroll`)."""
        added = {k.name: k.added for k in self.manifest.keyholders}
        holders = tuple(Keyholder(name=i.keyholder.name, share_index=i.share.index, verifier=make_verifier(i.share),
                                  pgp_fingerprint=None, added=added.get(i.keyholder.name, date.today()))
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
        nonce = self.ep.verify_status().get("data", {}).get("nonce") or ""
        data = self.ep.verify(key=_b64e(share), nonce=nonce)
        d = _payload(data)
        done = bool(d.get("complete"))
        self._log("rekey.share_verified", keyholder=name, share_index=share.index,
                  progress=pending.threshold if done else int(d.get("progress") or 0),
                  required=pending.threshold, complete=done)
        if draft is not pending.draft:
            _save_pending(self.manifest_path, replace(pending, draft=draft))
        if not done:
            return VerifyResult(progress=int(d.get("progress") or 0), required=pending.threshold)
        return self._finish(pending, draft)

    def _draft_with(self, pending: Pending, name: str, share: Share) -> Manifest:
        draft = pending.draft
        assert draft is not None
        kh = next((k for k in draft.keyholders if k.name == name), None)
        if kh is not None:
            self._check(draft, name, share, "rekey.verify_rejected")
            return draft
        owner = draft.by_index(share.index)  # a PGP keyholder: enrolled by this very check
        if owner is not None and owner.verifier is not None and owner.verifier.matches(share):
            self._log("rekey.verify_rejected", outcome="rejected", keyholder=name,
                      reason=f"share #{share.index} belongs to {owner.name}")
            raise ShareMismatchError(f"share #{share.index} belongs to new keyholder {owner.name}, not {name}",
                                     hint="each new keyholder enters their own new share; nothing was sent")
        fp = next(k.pgp_fingerprint for k in pending.keyholders if k.name == name)
        return draft.enroll(name, share, pgp_fingerprint=fp)

    def _finish(self, pending: Pending, draft: Manifest) -> VerifyResult:
        kept = draft.save(self.manifest_path)
        _drop_pending(self.manifest_path)
        old = {k.name for k in self.manifest.keyholders}
        new = [k.name for k in pending.keyholders]
        self._log("rekey.completed", old=f"{pending.old_threshold}/{pending.old_shares}",
                  new=f"{pending.threshold}/{pending.shares}", left=sorted(old - set(new)),
                  joined=[n for n in new if n not in old], stayed=[n for n in new if n in old],
                  unenrolled=[n for n in new if n not in {k.name for k in draft.keyholders}],
                  manifest_history=str(kept) if kept else None)
        return VerifyResult(progress=pending.threshold, required=pending.threshold, complete=True,
                            manifest=draft, history=kept)

    def cancel(self) -> bool:
        """DELETE {api}/init: the old shares stay valid. True if something was in progress."""
        st = self.status()
        pending = load_pending(self.manifest_path)
        if st.started:
            self.ep.cancel()
        _drop_pending(self.manifest_path)
        if st.started or pending is not None:
            self._log("rekey.cancelled", phase=pending.phase.value if pending else "unknown",
                      nonce=st.nonce or (pending.nonce if pending else None))
        return bool(st.started or pending)


def open_ceremony(clients: Sequence[NodeClient], manifest_path: Path, *,
                  journal: Journal | None = None) -> Ceremony:
    """The active node, the API it offers, and the current manifest."""
    client = active_client(clients)
    return Ceremony(client=client, api=detect_api(client), manifest=Manifest.load(manifest_path),
                    manifest_path=manifest_path, journal=journal)


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


__all__ = ["Ceremony", "CheckStatus", "Issued", "IssuedShare", "NewKeyholder", "Pending", "Phase",
           "RotationApi", "SubmitResult", "VerifyResult", "active_client", "detect_api", "load_pending",
           "open_ceremony", "pending_path", "write_share_file"]


def _payload(data: dict[str, Any]) -> dict[str, Any]:
    """Answers nest their fields under 'data' on some servers and at top level on others."""
    inner = data.get("data")
    return inner if isinstance(inner, dict) else data

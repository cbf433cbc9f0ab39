"""A rekey's plan and the record of it kept beside the manifest between its steps.

`<manifest stem>.rekey-pending.yaml` holds the new keyholders (in share order, with their PGP
fingerprints), the old and new counts, the server's nonce and, once the new shares are issued,
the draft of the next manifest (verifiers of the new shares). Nothing in it is secret: it is
safe to commit, and any terminal can pick the rekey up from it (services/ceremony/rekey.py).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from msgspec import Meta

from vaultops.errors import UsageError
from vaultops.files.atomic import atomic_write_text
from vaultops.files.loader import Invalid
from vaultops.files.model import Model
from vaultops.services.ceremony.manifest import Manifest, ManifestFile, check_holder_name
from vaultops.vault.sys_rotate import REKEY, ROTATE_ROOT

PENDING_VERSION = 1
_PENDING_HEADER = ("# vaultops: a rekey in progress. No secrets (new-share verifiers only); removed when the\n"
                   "# rekey completes or is cancelled (`vaultops rekey status|cancel`).\n")


class RotationApi(enum.StrEnum):
    ROTATE_ROOT = ROTATE_ROOT  # token-authenticated (which servers: sys_rotate.ROTATION_APIS)
    REKEY = REKEY              # unauthenticated

    @property
    def needs_token(self) -> bool:
        return self is RotationApi.ROTATE_ROOT


class Phase(enum.StrEnum):
    SUBMITTING = "submitting"  # current keyholders submit their shares
    VERIFYING = "verifying"    # new shares issued; new keyholders prove they hold them


@dataclass(frozen=True)
class NewKeyholder:
    name: str
    pgp_key: str | None = field(default=None, repr=False)  # base64 public key, as the server takes it
    pgp_fingerprint: str | None = None
    age_recipient: str | None = None   # age/ssh public key: vaultops encrypts the new share to it


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
                "keyholders": [{"name": k.name, "pgp_fingerprint": k.pgp_fingerprint}
                               | ({"age_recipient": k.age_recipient} if k.age_recipient else {})
                               for k in self.keyholders],
                "draft": self.draft.to_dict() if self.draft else None}

    @classmethod
    def from_dict(cls, d: Any, source: str) -> Pending:
        from vaultops.files.loader import validate

        doc = validate(d, PendingFile, source=source, hint=_PENDING_HINT)
        draft = doc.draft.manifest(f"{source}: draft") if doc.draft else None
        return cls(nonce=doc.nonce, api=doc.api, phase=doc.phase, started=doc.started.isoformat(),
                   old_shares=doc.old.shares, old_threshold=doc.old.threshold, shares=doc.new.shares,
                   threshold=doc.new.threshold, draft=draft,
                   keyholders=tuple(NewKeyholder(k.name, pgp_fingerprint=k.pgp_fingerprint,
                                                 age_recipient=k.age_recipient) for k in doc.keyholders))


_PENDING_HINT = "not a vaultops rekey record: cancel the rekey (`vaultops rekey cancel`) and start again"


class _Counts(Model):
    shares: Annotated[int, Meta(ge=1, le=255, description="number of shares")]
    threshold: Annotated[int, Meta(ge=1, le=255, description="shares needed to unseal")]


class _PendingKeyholder(Model):
    name: Annotated[str, Meta(description="a new keyholder, in share order")]
    pgp_fingerprint: Annotated[str | None, Meta(description="their OpenPGP key, if shares are encrypted")] = None
    age_recipient: Annotated[str | None, Meta(description="their age/ssh public key, if their share is "
                                                          "handed out encrypted to it")] = None

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


def save_pending(manifest_path: Path, pending: Pending) -> None:
    import yaml

    text = _PENDING_HEADER + yaml.safe_dump(pending.to_dict(), sort_keys=False, default_flow_style=False)
    atomic_write_text(pending_path(manifest_path), text, mode=0o644)


def drop_pending(manifest_path: Path) -> None:
    pending_path(manifest_path).unlink(missing_ok=True)


def validate_plan(shares: int, threshold: int, keyholders: Sequence[NewKeyholder]) -> None:
    """Refuse a plan that cannot work or is unsafe, before anything is asked of the server."""
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


__all__ = ["NewKeyholder", "PENDING_VERSION", "Pending", "PendingFile", "Phase", "RotationApi", "drop_pending",
           "load_pending", "pending_path", "save_pending", "validate_plan"]

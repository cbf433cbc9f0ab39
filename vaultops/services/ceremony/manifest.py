"""The keyholder manifest: who holds which unseal share, checkable offline.

Safe to commit: it holds each share's x-coordinate and a salted scrypt
verifier, never share material.

    version: 1
    cluster_id: 6c1d...            # from sys/seal-status once unsealed
    threshold: 3
    shares: 5
    keyholders:
      - name: alice
        share_index: 17            # the share's x-coordinate (last byte)
        verifier: {alg: scrypt, n: 32768, r: 8, p: 1, salt: <b64>, hash: <b64>}   # or null
        pgp_fingerprint: null      # or 40/64 hex digits
        age_recipient: null        # or their age1… / ssh-ed25519 / ssh-rsa public key (shares handed out
                                   # encrypted to it by init and rekey)
        added: 2025-01-02

save() writes atomically (0644) and keeps the file it replaces as
`<stem>.history/<UTC timestamp>.yaml` beside it.

Size (~415 lines): the manifest's values, their checks and the file schema they are loaded from
(msgspec models at the end) stay in one module, so a field is added, validated and documented
in one place.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from msgspec import Meta

from vaultops.errors import ConfigError, ShareMismatchError, UsageError
from vaultops.files.atomic import atomic_write_text
from vaultops.files.loader import Invalid
from vaultops.files.model import Model
from vaultops.services.ceremony.shares import Share

if TYPE_CHECKING:
    from vaultops.config import Config

MANIFEST_VERSION = 1
SALT_BYTES = 16
HASH_BYTES = 32
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024  # refuse parameters that would exhaust memory
_HINT_FIX = "fix that entry, or restore the manifest from its .history folder or version control"
_HEADER = ("# vaultops keyholder manifest: safe to commit. It holds share x-coordinates and\n"
           "# salted scrypt verifiers, never share material.\n")


@dataclass(frozen=True)
class ScryptParams:
    """n=2**15, r=8, p=1: ~95 ms and 32 MiB per verification on a 2-core test VM."""

    n: int = 2**15
    r: int = 8
    p: int = 1


DEFAULT_PARAMS = ScryptParams()


def _scrypt(raw: bytes | bytearray, salt: bytes, params: ScryptParams) -> bytes:
    maxmem = 128 * params.r * (params.n + params.p + 2) + (1 << 20)
    return hashlib.scrypt(raw, salt=salt, n=params.n, r=params.r, p=params.p,
                          maxmem=maxmem, dklen=HASH_BYTES)


@dataclass(frozen=True)
class Verifier:
    """scrypt(share, salt): confirms a share without storing it."""

    params: ScryptParams
    salt: bytes
    hash: bytes = field(repr=False)
    alg: str = "scrypt"

    def matches(self, share: Share | bytes) -> bool:
        raw = share.raw if isinstance(share, Share) else bytes(share)
        return hmac.compare_digest(_scrypt(raw, self.salt, self.params), self.hash)

    def to_dict(self) -> dict[str, Any]:
        return {"alg": self.alg, "n": self.params.n, "r": self.params.r, "p": self.params.p,
                "salt": _b64(self.salt), "hash": _b64(self.hash)}


def make_verifier(share_raw: Share | bytes, *, params: ScryptParams = DEFAULT_PARAMS,
                  salt: bytes | None = None) -> Verifier:
    """A fresh verifier with a random 16-byte salt (or *salt*, for tests)."""
    raw = share_raw.raw if isinstance(share_raw, Share) else Share(bytes(share_raw)).raw
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    return Verifier(params=params, salt=salt, hash=_scrypt(raw, salt, params))


@dataclass(frozen=True)
class Keyholder:
    name: str
    share_index: int
    verifier: Verifier | None = None
    pgp_fingerprint: str | None = None
    added: date = field(default_factory=date.today)
    age_recipient: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "share_index": self.share_index,
               "verifier": self.verifier.to_dict() if self.verifier else None,
               "pgp_fingerprint": self.pgp_fingerprint, "added": self.added}
        return out | ({"age_recipient": self.age_recipient} if self.age_recipient else {})


class CheckStatus(enum.StrEnum):
    MATCH = "match"                    # the share is this keyholder's
    OTHER_KEYHOLDER = "other-keyholder"  # it is (or has the x-coordinate of) someone else's
    NO_MATCH = "no-match"              # it matches nobody in the manifest
    NO_VERIFIER = "no-verifier"        # right x-coordinate, but nothing to verify against


@dataclass(frozen=True)
class CheckResult:
    status: CheckStatus
    keyholder: str
    share_index: int
    owner: str | None = None  # whose share it is (OTHER_KEYHOLDER)
    verified: bool = False    # a verifier confirmed MATCH / OTHER_KEYHOLDER

    @property
    def ok(self) -> bool:
        return self.status is CheckStatus.MATCH

    @property
    def message(self) -> str:
        i, name = self.share_index, self.keyholder
        if self.status is CheckStatus.MATCH:
            return f"share #{i} matches keyholder {name}"
        if self.status is CheckStatus.NO_VERIFIER:
            return f"keyholder {name} has no verifier yet: share #{i} cannot be confirmed"
        if self.status is CheckStatus.OTHER_KEYHOLDER and self.verified:
            return f"share #{i} belongs to keyholder {self.owner}, not to {name}"
        if self.status is CheckStatus.OTHER_KEYHOLDER:
            return (f"share #{i} has the x-coordinate of keyholder {self.owner} (not verifiable: "
                    f"no verifier), not {name}'s")
        return (f"share #{i} matches no keyholder in the manifest (another cluster, or a share "
                "from before a rekey?)")

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "ok": self.ok, "keyholder": self.keyholder,
                "share_index": self.share_index, "owner": self.owner,
                "verified": self.verified, "message": self.message}


@dataclass(frozen=True)
class Manifest:
    cluster_id: str
    threshold: int
    shares: int
    keyholders: tuple[Keyholder, ...] = ()
    version: int = MANIFEST_VERSION

    # -- queries ---------------------------------------------------------------

    def keyholder(self, name: str) -> Keyholder:
        for kh in self.keyholders:
            if kh.name == name:
                return kh
        known = ", ".join(k.name for k in self.keyholders) or "none"
        raise UsageError(f"no keyholder named {name!r} in the manifest",
                         hint=f"known keyholders: {known}")

    def by_index(self, share_index: int) -> Keyholder | None:
        return next((k for k in self.keyholders if k.share_index == share_index), None)

    def check(self, name: str, share: Share) -> CheckResult:
        """Whose share is this? Only verifiers decide; x-coordinates pick the candidate."""
        kh = self.keyholder(name)
        result = CheckResult(CheckStatus.NO_MATCH, name, share.index)
        if share.index == kh.share_index:
            if kh.verifier is None:
                return replace(result, status=CheckStatus.NO_VERIFIER)
            ok = kh.verifier.matches(share)
            return replace(result, status=CheckStatus.MATCH, verified=True) if ok else result
        other = self.by_index(share.index)
        if other is None:
            return result
        if other.verifier is None:
            return replace(result, status=CheckStatus.OTHER_KEYHOLDER, owner=other.name)
        if other.verifier.matches(share):
            return replace(result, status=CheckStatus.OTHER_KEYHOLDER, owner=other.name,
                           verified=True)
        return result

    def require(self, name: str, share: Share, *, allow_unverified: bool = False) -> CheckResult:
        """check(), raising ShareMismatchError unless the share is *name*'s."""
        result = self.check(name, share)
        if result.ok or (allow_unverified and result.status is CheckStatus.NO_VERIFIER):
            return result
        hint = ("enroll a verifier for this keyholder first" if
                result.status is CheckStatus.NO_VERIFIER else
                "make sure the keyholder entered their own share for this cluster; nothing was sent")
        raise ShareMismatchError(result.message, hint=hint)

    # -- changes -----------------------------------------------------------------

    def enroll(self, name: str, share: Share, *, params: ScryptParams = DEFAULT_PARAMS,
               pgp_fingerprint: str | None = None, added: date | None = None,
               replace_existing: bool = False, age_recipient: str | None = None) -> Manifest:
        """A new manifest with *name* holding *share* (its x-coordinate and a fresh verifier)."""
        current = next((k for k in self.keyholders if k.name == name), None)
        owner = self.by_index(share.index)
        if owner is not None and owner.name != name:
            raise UsageError(f"share #{share.index} is already enrolled for keyholder {owner.name}",
                             hint="each keyholder holds a different share")
        if current is not None and current.verifier is not None and not replace_existing:
            raise UsageError(f"keyholder {name} is already enrolled (share #{current.share_index})",
                             hint="pass replace_existing / --replace after a rekey")
        kh = Keyholder(name=name, share_index=share.index,
                       verifier=make_verifier(share, params=params),
                       pgp_fingerprint=_checked_fingerprint(pgp_fingerprint)
                       if pgp_fingerprint else (current.pgp_fingerprint if current else None),
                       added=added or (current.added if current else date.today()),
                       age_recipient=_checked_recipient(age_recipient) if age_recipient
                       else (current.age_recipient if current else None))
        others = tuple(k for k in self.keyholders if k.name != name)
        new = replace(self, keyholders=others + (kh,))
        _check_consistency(new, "<manifest>")
        return new

    # -- files ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "cluster_id": self.cluster_id,
                "threshold": self.threshold, "shares": self.shares,
                "keyholders": [k.to_dict() for k in self.keyholders]}

    def dump(self) -> str:
        import yaml

        return _HEADER + yaml.safe_dump(self.to_dict(), sort_keys=False,
                                        default_flow_style=False, allow_unicode=True)

    def save(self, path: str | os.PathLike[str], *, now: datetime | None = None) -> Path | None:
        """Write atomically (0644); return where the replaced file was kept, if any."""
        target = Path(path)
        text = self.dump()
        kept = None
        if target.exists():
            old = target.read_text(encoding="utf-8")
            if old == text:
                return None
            kept = _history_path(target, now or datetime.now(timezone.utc))
            atomic_write_text(kept, old, mode=0o644)
        atomic_write_text(target, text, mode=0o644)
        return kept

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        from vaultops.files.loader import CONFIG_CAP, read_yaml

        data = read_yaml(path, cap=CONFIG_CAP, what="keyholder manifest",
                         missing="check the path, or enroll keyholders to create it")
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<manifest>") -> Manifest:
        from vaultops.files.loader import validate

        return validate(data, ManifestFile, source=source, hint=_HINT_FIX).manifest(source)


def manifest_path(cfg: Config) -> Path:
    """The manifest named in vaultops.yaml (`keyholders: {manifest: FILE}`), config-relative."""
    value = cfg.section("keyholders").get("manifest")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{cfg.path or 'config'}: keyholders.manifest: not set",
                          hint="add `keyholders: {manifest: keyholders.yaml}` or pass --manifest")
    return cfg.resolve_path(value)


def _history_path(target: Path, now: datetime) -> Path:
    folder = target.parent / f"{target.stem}.history"
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    candidate, n = folder / f"{stamp}.yaml", 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{stamp}-{n}.yaml"
    return candidate


def version_at(path: Path, when: datetime) -> Path:
    """The file of the manifest as it was at *when*: save() keeps each replaced version as
    `<stem>.history/<time replaced>.yaml`, so that is the oldest one replaced after *when*, else *path*.
    (A backup opens only with the shares of the key epoch it was taken in.)"""
    folder = path.parent / f"{path.stem}.history"
    stamp = when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    later = sorted(p for p in folder.glob("*.yaml") if p.name > stamp) if folder.is_dir() else []
    return later[0] if later else path


def _check_consistency(m: Manifest, source: str) -> None:
    def fail(key: str, problem: str) -> None:
        raise ConfigError(f"{source}: {key}: {problem}", hint=_HINT_FIX)

    if not 1 <= m.threshold <= m.shares:
        fail("threshold", f"must be between 1 and shares ({m.shares}), got {m.threshold}")
    if len(m.keyholders) > m.shares:
        fail("keyholders", f"lists {len(m.keyholders)} keyholders but the cluster has only "
                           f"{m.shares} shares")
    seen_names: set[str] = set()
    seen_idx: dict[int, str] = {}
    for i, kh in enumerate(m.keyholders):
        if kh.name in seen_names:
            fail(f"keyholders[{i}].name", f"duplicate keyholder name {kh.name!r}")
        if kh.share_index in seen_idx:
            fail(f"keyholders[{i}].share_index",
                 f"share #{kh.share_index} is also listed for {seen_idx[kh.share_index]}")
        seen_names.add(kh.name)
        seen_idx[kh.share_index] = kh.name


def check_holder_name(value: str, key: str) -> None:
    """A keyholder name is shown to people and journaled, never a path: refuse what could fool a terminal.

    Names `vaultops init` accepted (letters of any script, digits, '-', '_', '.') stay readable.
    """
    if not value.strip():
        raise Invalid(key, "is empty")
    if value != value.strip() or len(value) > 64:
        raise Invalid(key, "must be at most 64 characters without leading or trailing spaces")
    if any(unicodedata.category(c)[0] in "CZ" and c != " " for c in value):
        raise Invalid(key, "holds a control or invisible character")


def _checked_fingerprint(value: str) -> str:
    try:
        return _fingerprint(value, "pgp_fingerprint")
    except Invalid as exc:
        raise ConfigError(f"<input>: {exc}", hint=_HINT_FIX) from None


def _checked_recipient(value: str) -> str:
    try:
        return _recipient(value, "age_recipient")
    except Invalid as exc:
        raise ConfigError(f"<input>: {exc}", hint="give the public key: age1… (age-keygen -y) or an ssh .pub line") \
            from None


def _recipient(value: str, key: str) -> str:
    """The canonical public key text (an ssh key's comment dropped)."""
    from vaultops.crypto.agekeys import parse_recipient
    from vaultops.crypto.stanza import KeyFormatError

    try:
        return parse_recipient(value).text
    except KeyFormatError as exc:
        raise Invalid(key, exc.message) from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _fingerprint(value: str, key: str) -> str:
    fp = value.replace(" ", "").upper()
    if len(fp) not in (40, 64) or not all(c in "0123456789ABCDEF" for c in fp):
        raise Invalid(key, "must be an OpenPGP fingerprint of 40 or 64 hex digits, or null")
    return fp


def _decode_b64(value: str, key: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise Invalid(key, "must be a base64 string") from None


# -- the file's schema -----------------------------------------------------------------------


class VerifierEntry(Model):
    alg: Annotated[str, Meta(description="verifier algorithm (only scrypt)")]
    n: Annotated[int, Meta(ge=2, le=2**20, description="scrypt cost parameter N, a power of two")]
    r: Annotated[int, Meta(ge=1, le=32, description="scrypt block size r")]
    p: Annotated[int, Meta(ge=1, le=16, description="scrypt parallelism p")]
    salt: Annotated[str, Meta(description=f"base64 salt, at least {SALT_BYTES} bytes")]
    hash: Annotated[str, Meta(description=f"base64 scrypt(share, salt), {HASH_BYTES} bytes")]

    def __post_init__(self) -> None:
        if self.alg != "scrypt":
            raise Invalid("alg", f"unsupported algorithm {self.alg[:20]!r} (only scrypt)")
        if self.n & (self.n - 1):
            raise Invalid("n", f"must be a power of two, got {self.n}")
        if 128 * self.r * self.n > MAX_SCRYPT_MEMORY:
            raise Invalid("", "scrypt parameters need more than 256 MiB of memory")
        salt, digest = _decode_b64(self.salt, "salt"), _decode_b64(self.hash, "hash")
        if len(salt) < SALT_BYTES:
            raise Invalid("salt", f"must be at least {SALT_BYTES} bytes, got {len(salt)}")
        if len(digest) != HASH_BYTES:
            raise Invalid("hash", f"must be {HASH_BYTES} bytes, got {len(digest)}")

    def verifier(self) -> Verifier:
        return Verifier(params=ScryptParams(n=self.n, r=self.r, p=self.p),
                        salt=base64.b64decode(self.salt), hash=base64.b64decode(self.hash))


class KeyholderEntry(Model, kw_only=True):
    name: Annotated[str, Meta(description="the keyholder's name (letters, digits, '-', '_', '.')")]
    share_index: Annotated[int, Meta(ge=1, le=255, description="x-coordinate of their share (its last byte)")]
    verifier: Annotated[VerifierEntry | None, Meta(description="checks a share without storing it; null "
                                                               "until enrolled")]
    pgp_fingerprint: Annotated[str | None, Meta(description="their OpenPGP key (40 or 64 hex digits)")] = None
    added: Annotated[date, Meta(description="when they were added (YYYY-MM-DD)")]
    age_recipient: Annotated[str | None, Meta(description=(
        "their age1… or ssh-ed25519/ssh-rsa public key: init and rekey can hand out shares encrypted to it"))] = None

    def __post_init__(self) -> None:
        check_holder_name(self.name, "name")
        if self.pgp_fingerprint is not None:
            self.pgp_fingerprint = _fingerprint(self.pgp_fingerprint, "pgp_fingerprint")
        if self.age_recipient is not None:
            self.age_recipient = _recipient(self.age_recipient, "age_recipient")

    def keyholder(self) -> Keyholder:
        return Keyholder(name=self.name, share_index=self.share_index,
                         verifier=self.verifier.verifier() if self.verifier else None,
                         pgp_fingerprint=self.pgp_fingerprint, added=self.added, age_recipient=self.age_recipient)


class ManifestFile(Model):
    """The keyholder manifest."""

    version: Annotated[int, Meta(description=f"format version ({MANIFEST_VERSION})")]
    cluster_id: Annotated[str, Meta(min_length=1, description="the cluster's id from sys/seal-status")]
    threshold: Annotated[int, Meta(ge=1, le=255, description="shares needed to unseal")]
    shares: Annotated[int, Meta(ge=1, le=255, description="shares in total")]
    keyholders: Annotated[list[KeyholderEntry] | None, Meta(description="who holds which share")]

    def __post_init__(self) -> None:
        if not self.cluster_id.strip():
            raise Invalid("cluster_id", "must not be blank")
        if self.version != MANIFEST_VERSION:
            raise Invalid("version", f"unsupported manifest version {self.version} "
                                     f"(this vaultops reads version {MANIFEST_VERSION})")

    def manifest(self, source: str) -> Manifest:
        """The Manifest this file describes; *source* names it if its entries contradict each other."""
        manifest = Manifest(cluster_id=self.cluster_id, threshold=self.threshold, shares=self.shares,
                            keyholders=tuple(k.keyholder() for k in self.keyholders or ()))
        _check_consistency(manifest, source)
        return manifest

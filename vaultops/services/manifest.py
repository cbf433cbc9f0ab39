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
        added: 2025-01-02

save() writes atomically (0644) and keeps the file it replaces as
`<stem>.history/<UTC timestamp>.yaml` beside it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import os
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.errors import ConfigError, ShareMismatchError, UsageError
from vaultops.fsutil import atomic_write_text
from vaultops.services.shares import Share

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

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "share_index": self.share_index,
                "verifier": self.verifier.to_dict() if self.verifier else None,
                "pgp_fingerprint": self.pgp_fingerprint, "added": self.added}


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
               replace_existing: bool = False) -> Manifest:
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
                       pgp_fingerprint=_fingerprint(pgp_fingerprint, "pgp_fingerprint", "<input>")
                       if pgp_fingerprint else (current.pgp_fingerprint if current else None),
                       added=added or (current.added if current else date.today()))
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
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{source}: keyholder manifest not found",
                              hint="check the path, or enroll keyholders to create it") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read the manifest ({exc.__class__.__name__})",
                              hint="check the file's permissions and encoding") from exc
        return cls.from_dict(_parse_yaml(text, source), source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<manifest>") -> Manifest:
        manifest = _Parser(source).manifest(data)
        _check_consistency(manifest, source)
        return manifest


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


def _parse_yaml(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_strict_loader(source))  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ConfigError(f"{source}: line {line}: not valid YAML ({exc.problem})",
                          hint=_HINT_FIX) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})", hint=_HINT_FIX) from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _fingerprint(value: Any, key: str, source: str) -> str:
    fp = value.replace(" ", "").upper() if isinstance(value, str) else ""
    if len(fp) not in (40, 64) or not all(c in "0123456789ABCDEF" for c in fp):
        raise ConfigError(f"{source}: {key}: must be an OpenPGP fingerprint of 40 or 64 hex "
                          "digits, or null", hint=_HINT_FIX)
    return fp


def _decode_b64(value: Any, key: str, source: str) -> bytes:
    try:
        if not isinstance(value, str):
            raise TypeError
        return base64.b64decode(value, validate=True)
    except (TypeError, binascii.Error):
        raise ConfigError(f"{source}: {key}: must be a base64 string", hint=_HINT_FIX) from None


def _strict_loader(source: str) -> type:
    """A SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                raise ConfigError(f"{source}: line {key_node.start_mark.line + 1}: duplicate "
                                  f"key {key!r}", hint=_HINT_FIX)
            seen.add(key)
        return loader.construct_mapping(node)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return StrictLoader


_TOP_KEYS = {"version", "cluster_id", "threshold", "shares", "keyholders"}
_KH_KEYS = {"name", "share_index", "verifier", "pgp_fingerprint", "added"}
_VERIFIER_KEYS = {"alg", "n", "r", "p", "salt", "hash"}


class _Parser:
    """Turns loaded YAML into a Manifest; every error names file, key and problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {problem}", hint=_HINT_FIX)

    def mapping(self, data: Any, key: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(key, f"must be a mapping, got {_kind(data)}")
        unknown = sorted(str(k) for k in set(data) - keys)
        if unknown:
            raise self.fail(key, f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(keys))})")
        missing = sorted(keys - set(data) - {"pgp_fingerprint"})
        if missing:
            raise self.fail(key, f"missing key {missing[0]!r}")
        return data

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        if type(value) is not int or not low <= value <= high:
            raise self.fail(key, f"must be an integer {low}..{high}, got {_kind(value)}")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string (quote it), got {_kind(value)}")
        return value

    def manifest(self, data: Any) -> Manifest:
        if data is None:
            raise self.fail("(top)", "the manifest is empty")
        top = self.mapping(data, "(top)", _TOP_KEYS)
        version = top["version"]
        if version != MANIFEST_VERSION or type(version) is not int:
            raise self.fail("version", f"unsupported manifest version {version!r} (this vaultops "
                                       f"reads version {MANIFEST_VERSION})")
        holders = top["keyholders"]
        if holders is None:
            holders = []
        if not isinstance(holders, list):
            raise self.fail("keyholders", f"must be a list, got {_kind(holders)}")
        return Manifest(cluster_id=self.text(top["cluster_id"], "cluster_id"),
                        threshold=self.integer(top["threshold"], "threshold", 1, 255),
                        shares=self.integer(top["shares"], "shares", 1, 255),
                        keyholders=tuple(self.keyholder(h, f"keyholders[{i}]")
                                         for i, h in enumerate(holders)))

    def keyholder(self, data: Any, key: str) -> Keyholder:
        kh = self.mapping(data, key, _KH_KEYS)
        fp = kh.get("pgp_fingerprint")
        return Keyholder(name=self.text(kh["name"], f"{key}.name"),
                         share_index=self.integer(kh["share_index"], f"{key}.share_index", 1, 255),
                         verifier=None if kh["verifier"] is None
                         else self.verifier(kh["verifier"], f"{key}.verifier"),
                         pgp_fingerprint=None if fp is None
                         else _fingerprint(fp, f"{key}.pgp_fingerprint", self.source),
                         added=self.added(kh["added"], f"{key}.added"))

    def added(self, value: Any, key: str) -> date:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        elif isinstance(value, date) and not isinstance(value, datetime):
            return value
        raise self.fail(key, f"must be an ISO date (YYYY-MM-DD), got {_kind(value)}")

    def verifier(self, data: Any, key: str) -> Verifier:
        v = self.mapping(data, key, _VERIFIER_KEYS)
        if v["alg"] != "scrypt":
            raise self.fail(f"{key}.alg", f"unsupported algorithm {v['alg']!r} (only scrypt)")
        n = self.integer(v["n"], f"{key}.n", 2, 2**20)
        if n & (n - 1):
            raise self.fail(f"{key}.n", f"must be a power of two, got {n}")
        params = ScryptParams(n=n, r=self.integer(v["r"], f"{key}.r", 1, 32),
                              p=self.integer(v["p"], f"{key}.p", 1, 16))
        if 128 * params.r * params.n > MAX_SCRYPT_MEMORY:
            raise self.fail(key, "scrypt parameters need more than 256 MiB of memory")
        salt = _decode_b64(v["salt"], f"{key}.salt", self.source)
        digest = _decode_b64(v["hash"], f"{key}.hash", self.source)
        if len(salt) < SALT_BYTES:
            raise self.fail(f"{key}.salt", f"must be at least {SALT_BYTES} bytes, got {len(salt)}")
        if len(digest) != HASH_BYTES:
            raise self.fail(f"{key}.hash", f"must be {HASH_BYTES} bytes, got {len(digest)}")
        return Verifier(params=params, salt=salt, hash=digest)


def _kind(value: Any) -> str:
    """A short description of a (non-secret) manifest value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    return f"a {type(value).__name__}"

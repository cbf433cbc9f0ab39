"""Keyholders: the roster, offline drills, and readiness before an outage.

A drill is a keyholder checking, offline, that the share they hold matches
the manifest: nothing is sent anywhere. It is journaled as action
`keyholder.drill` with the keyholder's name, pass/fail and a `verifier_id`
(a short hash of the verifier's salt). The verifier changes whenever a share
is re-issued (rekey, re-enrollment), so a drill of a share from before a
rekey never counts towards readiness.

Readiness: at least `threshold` keyholders passed a drill of their CURRENT
share within `max_age` (default 90 days), their latest drill being a pass.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from vaultops.services.ceremony.manifest import CheckStatus, Keyholder, Manifest

if TYPE_CHECKING:
    from vaultops.journal import Journal
    from vaultops.services.ceremony.manifest import CheckResult
    from vaultops.services.ceremony.shares import Share

DRILL_ACTION = "keyholder.drill"
DEFAULT_MAX_AGE = timedelta(days=90)


class DrillOutcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"                # the share is not this keyholder's current share
    NO_VERIFIER = "no-verifier"  # nothing to check against: enroll first


class ReadyState(enum.StrEnum):
    READY = "ready"              # latest drill of the current share passed, recently
    STALE = "stale"              # passed, but longer ago than max_age
    FAILED = "failed"            # the latest drill of the current share failed
    NEVER = "never"              # no drill of the current share on record
    NO_VERIFIER = "no-verifier"  # cannot drill until the keyholder enrolls


def verifier_id(kh: Keyholder) -> str | None:
    """Names one enrollment (salt hash): changes when the keyholder's share is re-issued."""
    if kh.verifier is None:
        return None
    return hashlib.sha256(b"vaultops-verifier-id:" + kh.verifier.salt).hexdigest()[:16]


@dataclass(frozen=True)
class DrillRecord:
    keyholder: str
    outcome: DrillOutcome
    time: datetime
    verifier_id: str | None
    cluster_id: str | None


@dataclass(frozen=True)
class DrillResult:
    keyholder: str
    outcome: DrillOutcome
    check: CheckResult

    @property
    def message(self) -> str:
        verdict = {DrillOutcome.PASS: "drill passed", DrillOutcome.FAIL: "drill FAILED",
                   DrillOutcome.NO_VERIFIER: "drill not possible"}[self.outcome]
        return f"{verdict}: {self.check.message} (offline check; nothing was sent)"


def drill(manifest: Manifest, name: str, share: Share, *, journal: Journal | None = None) -> DrillResult:
    """Check *share* against *name*'s verifier, offline, and journal the outcome (never the share)."""
    kh = manifest.keyholder(name)
    check = manifest.check(name, share)
    outcome = (DrillOutcome.PASS if check.ok else
               DrillOutcome.NO_VERIFIER if check.status is CheckStatus.NO_VERIFIER else DrillOutcome.FAIL)
    if journal is not None:
        journal.append(DRILL_ACTION, outcome="ok" if outcome is DrillOutcome.PASS else "failed",
                       details={"keyholder": name, "result": outcome.value, "check": check.status.value,
                                "verifier_id": verifier_id(kh), "cluster_id": manifest.cluster_id})
    return DrillResult(name, outcome, check)


def record_undecodable(manifest: Manifest, name: str, *, journal: Journal) -> None:
    """A drill whose share could not even be decoded (damaged copy, typo): journaled as a failure."""
    journal.append(DRILL_ACTION, outcome="failed",
                   details={"keyholder": name, "result": DrillOutcome.FAIL.value, "check": "undecodable",
                            "verifier_id": verifier_id(manifest.keyholder(name)),
                            "cluster_id": manifest.cluster_id})


def drill_records(entries: Iterable[dict[str, Any]]) -> list[DrillRecord]:
    """Drill entries of a journal, oldest first."""
    records = []
    for e in entries:
        if e.get("action") != DRILL_ACTION:
            continue
        d = e.get("details") or {}
        try:
            records.append(DrillRecord(keyholder=str(d["keyholder"]), outcome=DrillOutcome(d["result"]),
                                       time=datetime.fromisoformat(e["time"]),
                                       verifier_id=d.get("verifier_id"), cluster_id=d.get("cluster_id")))
        except (KeyError, ValueError, TypeError):
            continue  # a malformed entry is `journal verify`'s business, not readiness's
    return records


@dataclass(frozen=True)
class KeyholderStatus:
    name: str
    share_index: int
    enrolled: bool
    pgp_fingerprint: str | None
    added: date
    state: ReadyState
    last_drill: datetime | None
    last_outcome: DrillOutcome | None
    age_recipient: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "share_index": self.share_index, "enrolled": self.enrolled,
                "pgp_fingerprint": self.pgp_fingerprint, "age_recipient": self.age_recipient,
                "added": self.added.isoformat(),
                "state": self.state.value,
                "last_drill": self.last_drill.isoformat() if self.last_drill else None,
                "last_outcome": self.last_outcome.value if self.last_outcome else None}


@dataclass(frozen=True)
class Readiness:
    threshold: int
    shares: int
    max_age: timedelta
    keyholders: tuple[KeyholderStatus, ...]

    @property
    def ready(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keyholders if k.state is ReadyState.READY)

    @property
    def ok(self) -> bool:
        return len(self.ready) >= self.threshold

    @property
    def message(self) -> str:
        n, t, days = len(self.ready), self.threshold, self.max_age.days
        if self.ok:
            return f"ready: {n} keyholder(s) passed a drill in the last {days} days; {t} are needed"
        return (f"NOT ready: only {n} keyholder(s) passed a drill in the last {days} days, {t} are needed "
                "(ask the others to run `vaultops keyholders drill --keyholder NAME`)")

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "threshold": self.threshold, "shares": self.shares,
                "max_age_days": self.max_age.days, "ready": list(self.ready), "message": self.message,
                "keyholders": [k.to_dict() for k in self.keyholders]}


def readiness(manifest: Manifest, records: Iterable[DrillRecord], *, max_age: timedelta = DEFAULT_MAX_AGE,
              now: datetime | None = None) -> Readiness:
    """Each keyholder's state from the drills of their CURRENT share (same cluster, same verifier)."""
    now = now or datetime.now(timezone.utc)
    relevant = list(records)  # verifier ids (random salts) already tie a drill to one share of one cluster
    statuses = tuple(_status(kh, relevant, max_age, now) for kh in manifest.keyholders)
    return Readiness(manifest.threshold, manifest.shares, max_age, statuses)


def roster(manifest: Manifest, records: Iterable[DrillRecord] = ()) -> tuple[KeyholderStatus, ...]:
    return readiness(manifest, records).keyholders


def _status(kh: Keyholder, records: list[DrillRecord], max_age: timedelta, now: datetime) -> KeyholderStatus:
    vid = verifier_id(kh)
    mine = [r for r in records if r.keyholder == kh.name and vid is not None and r.verifier_id == vid]
    last = max(mine, key=lambda r: r.time, default=None)
    if vid is None:
        state = ReadyState.NO_VERIFIER
    elif last is None:
        state = ReadyState.NEVER
    elif last.outcome is not DrillOutcome.PASS:
        state = ReadyState.FAILED
    else:
        state = ReadyState.READY if now - last.time <= max_age else ReadyState.STALE
    return KeyholderStatus(name=kh.name, share_index=kh.share_index, enrolled=vid is not None,
                           pgp_fingerprint=kh.pgp_fingerprint, age_recipient=kh.age_recipient, added=kh.added,
                           state=state,
                           last_drill=last.time if last else None, last_outcome=last.outcome if last else None)


def owner_of(manifest: Manifest, share: Share) -> str:
    """The keyholder a bare share belongs to (x-coordinate picks, the verifier decides)."""
    from vaultops.errors import ShareMismatchError

    kh = manifest.by_index(share.index)
    if kh is None:
        raise ShareMismatchError(f"share #{share.index} matches no keyholder in the manifest (another cluster, "
                                 "or a share from before a rekey?)",
                                 hint="check it is a current share of this cluster; nothing was sent")
    return kh.name


# -- PGP (the gpg binary; vaultops holds no private keys) -----------------------------

def read_pgp_public_key(path: str) -> str:
    """A public key file (armored or binary) as the base64 of its binary form, as Vault takes it."""
    import base64
    from pathlib import Path

    from vaultops.errors import UsageError

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read PGP key {path} ({exc.strerror})", hint="check the path") from None
    text = data.decode("ascii", errors="replace").strip()
    if text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----"):
        body = [ln.strip() for ln in text.splitlines()[1:] if ln.strip() and ":" not in ln]
        body = [ln for ln in body if not ln.startswith(("=", "-----"))]
        return "".join(body)
    if data[:1] and data[0] & 0x80:  # an OpenPGP packet: binary key
        return base64.b64encode(data).decode("ascii")
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        raise UsageError(f"{path} is not an OpenPGP public key (armored, binary or base64)",
                         hint="export it with: gpg --export NAME > key.gpg") from None
    return text


GPG_ENV = ("GNUPGHOME", "GPG_TTY", "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS")


def decrypt_pgp_share(encrypted_b64: str, *, gpg: str = "gpg") -> Share:
    """Decrypt a PGP-encrypted share locally with gpg (the keyholder's own key and agent).

    The ciphertext goes to gpg on stdin and the plaintext share comes back on
    its stdout pipe: never argv, environment or a file.
    """
    import base64

    from vaultops import process
    from vaultops.errors import SecurityError, UsageError
    from vaultops.services.ceremony import shares

    try:
        blob = base64.b64decode("".join(encrypted_b64.split()), validate=True)
    except ValueError:
        raise UsageError("the encrypted share is not base64 (as Vault returns keys encrypted with pgp_keys)",
                         hint="pass the value exactly as it was handed to you") from None
    try:
        # The keyring and what its agent's pinentry needs to ask for a passphrase; nothing else of ours.
        res = process.run([gpg, "--batch", "--quiet", "--decrypt"], input=blob, timeout=300, keep_stdout=True,
                          env=GPG_ENV, label="gpg")
    except process.ProcessError as exc:
        if exc.timed_out:
            raise SecurityError("gpg did not finish decrypting the share in 300s",
                                hint="is gpg-agent waiting for a passphrase? try gpg --decrypt by hand") from None
        raise UsageError("gpg is not installed", hint="install GnuPG, or decrypt the share yourself and "
                                                      "pipe the plaintext to `vaultops keyholders enroll`") from None
    if not res.ok:
        raise SecurityError(f"gpg could not decrypt the share (exit {res.exit_code})",
                            hint="is the matching private key in your keyring? try: gpg --list-secret-keys")
    return shares.decode(res.output.decode("ascii", errors="replace"))

"""`vaultops backup drill`: prove the newest backup restores, and measure RTO/RPO.

    plan = plan_drill(settings, sink, lines=stdin_lines, name=None, keyholder_manifest=path)
    report = run_drill(cfg, settings, sink, plan, keep=False, emit=emit, journal=journal)

plan_drill() checks everything a drill needs before anything is fetched, started or restored:
sentinels configured (or explicitly none), the backup exists, is verified and restores into a
sandbox, the shares decode and -- with a keyholder manifest -- are each their keyholder's share of
the key epoch the backup belongs to (recorded in its manifest, or by its time in the keyholder
manifest's history: ceremony/epochs.py) and reach that epoch's threshold -- a share of another epoch
is refused naming the epoch it belongs to -- and the OpenBao version to restore into is available.
With `epoch=K` the newest verified backup of key epoch K is drilled.

run_drill() then:
1. fetches the backup and verifies it again against its manifest;
2. starts a throwaway single-node sandbox of that OpenBao version (scratch.py, shared with
   `upgrade rehearse`); for a pg_dump, on a private PostgreSQL;
3. force-restores the snapshot into it (the node seals itself: its keyring is now the original's),
   or stops the node, pg_restores the dump into the copy's database and starts it again;
4. unseals it with the ORIGINAL cluster's shares (held in the plan, never logged, wiped after);
5. logs in as backup.drill.auth says (default: the usual token lookup) and reads the sentinel paths;
6. reports restore time (RTO) and data age (RPO), journals the result, stops the sandbox.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.config import Config
from vaultops.errors import (ConfigError, ShareMismatchError, UsageError, VaultError, VaultOpsError,
                             VerificationError)
from vaultops.journal import Journal
from vaultops.services.backup import identity
from vaultops.services.backup.catalog import list_backups, newest
from vaultops.services.backup.formats import get_format
from vaultops.services.backup.manifest import Manifest
from vaultops.services.backup.restore import fetched
from vaultops.services.backup.scratch import scratch_sandbox
from vaultops.services.backup.settings import BackupSettings
from vaultops.services.backup.stored import read_manifest
from vaultops.services.ceremony.share_lines import HeldShares, read_share_lines
from vaultops.storage.base import Sink
from vaultops.vault import NodeClient

NO_SENTINELS = "the data: no sentinel path was read back (--no-sentinels)"

if TYPE_CHECKING:
    from vaultops.crypto.agekeys import Identity
    from vaultops.services.ceremony.epochs import Epoch, EpochHistory


@dataclass(frozen=True)
class DrillReport:
    name: str
    ok: bool
    version: str | None
    rto_seconds: float = 0.0          # fetch + sandbox + restore + unseal + sentinel reads
    restore_seconds: float = 0.0      # restore call until the sentinels read back
    rpo_seconds: float = 0.0          # age of the data restored
    sentinels: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    keyholders: tuple[str, ...] = ()  # whose shares unsealed the copy (names only)
    checked: bool = False             # every share was confirmed by the keyholder manifest first
    not_proven: str | None = None     # what this drill did not prove
    epoch: int | None = None          # the key epoch of the backup (and of the shares that opened it)


@dataclass
class DrillPlan:
    """A drill whose every input was checked. Holds the shares until wipe()."""

    name: str
    manifest: Manifest
    version: str | None
    shares: HeldShares
    sentinels: tuple[str, ...]
    keyholder_manifest: Path | None = None   # the version the shares were checked against
    epoch: int | None = None                 # the backup's key epoch (None: unknown or not checked)
    identities: Sequence[Identity] | None = None  # open an encrypted backup (never logged)

    def wipe(self) -> None:
        self.shares.wipe()


def plan_drill(settings: BackupSettings, sink: Sink, *, lines: Iterable[str | bytearray], name: str | None,
               keyholder_manifest: Path | None, no_sentinels: bool = False, allow_unverified: bool = False,
               warn: Callable[[str], None] = lambda _m: None,
               identities: Sequence[Identity] | None = None, epoch: int | None = None) -> DrillPlan:
    """Every check of the drill, quick and before anything is restored (see the module docstring)."""
    from vaultops.services.backup.crypt.reveal import revealed

    lines = list(lines)
    sentinels = _sentinels(settings, no_sentinels)
    history = _history(keyholder_manifest, epoch)
    manifest = _backup(sink, settings, name, warn) if epoch is None else _of_epoch(sink, settings, epoch, history)
    revealed(sink, manifest, identities)  # an encrypted backup without an identity: refused before the sandbox
    ep = _epoch(manifest, history)
    km_path, km = (ep.manifest_file, ep.manifest) if ep is not None else (None, None)
    _same_cluster(manifest, km, keyholder_manifest)
    try:
        held = read_share_lines(lines, manifest=km, allow_unverified=allow_unverified)
    except ShareMismatchError as exc:
        raise _refused(exc, manifest, ep, history, lines) from None
    try:
        _enough(held, km, km_path)
        version = _available(settings.drill.get("version") or manifest.server_version)
        get_format(manifest.kind).drill_prerequisites()
    except BaseException:
        held.wipe()
        raise
    return DrillPlan(manifest.name, manifest, version, held, sentinels, km_path, identities=identities,
                     epoch=ep.number if ep is not None else None)


def _sentinels(settings: BackupSettings, no_sentinels: bool) -> tuple[str, ...]:
    paths = tuple(settings.drill.get("sentinels") or ())
    if not paths and not no_sentinels:
        raise ConfigError("backup.drill.sentinels is empty: the drill would restore but prove nothing about the data",
                          hint="list paths the restored copy must hold (backup: {drill: {sentinels: "
                               "[secret/data/backup-sentinel]}}), or pass --no-sentinels")
    return () if no_sentinels else paths


def _backup(sink: Sink, settings: BackupSettings, name: str | None, warn: Callable[[str], None]) -> Manifest:
    if name is None:
        name = newest(sink, cluster=settings.cluster, warn=warn).name
    else:
        entry = next((e for e in list_backups(sink, cluster=settings.cluster) if e.name == name), None)
        if entry is None:
            raise UsageError(f"{sink.name}: no backup named {name}", hint="see `vaultops backup list`")
        if not entry.verified:
            raise VerificationError(f"{name} is {entry.state.value}, not verified",
                                    hint="drill a verified backup (`vaultops backup list`)")
    manifest = read_manifest(sink, name)
    if not get_format(manifest.kind).restores_into_sandbox:
        raise UsageError(f"drill supports Raft snapshots and pg_dump backups; {name} is {manifest.kind}",
                         hint="restore Consul backups with 'vaultops backup restore' into a test cluster")
    return manifest


def _same_cluster(backup: Manifest, km: Any, path: Path | None) -> None:
    from vaultops.services.ceremony.init import PENDING_CLUSTER_ID

    if km is not None and backup.cluster_id and km.cluster_id not in (backup.cluster_id, PENDING_CLUSTER_ID):
        raise UsageError(f"{backup.name} is of cluster {backup.cluster_id}, the keyholder manifest {path} of "
                         f"{km.cluster_id}", hint="pass --manifest FILE of the backup's cluster, or --no-manifest")


def _history(path: Path | None, epoch: int | None) -> EpochHistory | None:
    from vaultops.services.ceremony.epochs import load_epochs

    if path is None:
        if epoch is not None:
            raise UsageError("--epoch needs the keyholder manifest (its epochs name the shares to check)",
                             hint="drop --no-manifest, or pass --manifest FILE")
        return None
    history = load_epochs(path)
    if epoch is not None:
        history.number(epoch)  # an epoch the manifest never had: refused now
    return history


def _of_epoch(sink: Sink, settings: BackupSettings, epoch: int, history: EpochHistory | None) -> Manifest:
    """The newest verified backup of key *epoch* (its manifest agreeing with its name and times)."""
    from vaultops.services.backup.catalog import read_manifests
    from vaultops.services.backup.epochs import epoch_of
    from vaultops.services.backup.manifest import manifest_problem

    entries = [e for e in list_backups(sink, cluster=settings.cluster) if e.verified]
    manifests = read_manifests(sink, entries)
    now = datetime.now(timezone.utc)
    for entry in entries:
        m = manifests.get(entry.name)
        if m is not None and epoch_of(m, entry, history)[0] == epoch and manifest_problem(m, entry, now=now) is None:
            if not get_format(m.kind).restores_into_sandbox:
                continue
            return m
    raise UsageError(f"{sink.name}: no verified backup of key epoch {epoch} that a drill restores (raft, pg_dump)",
                     hint="see `vaultops backup epochs`")


def _epoch(backup: Manifest, history: EpochHistory | None) -> Epoch | None:
    """The key epoch whose shares open *backup*; None without a keyholder manifest."""
    if history is None:
        return None
    recorded = backup.key_epoch
    if recorded is not None and recorded.number is None:
        raise UsageError(f"the key epoch of {backup.name} is unknown ({recorded.problem}): its shares cannot be "
                         "checked first", hint="pass --no-manifest to drill it unchecked (a wrong share is then "
                                               "found only after the restore)")
    if recorded is not None and recorded.number is not None:
        return history.number(recorded.number)
    found = history.at(datetime.fromisoformat(backup.started_at))
    if found is None:
        raise UsageError(f"{backup.name} is older than every key epoch the keyholder manifest records",
                         hint="pass --no-manifest to drill it unchecked")
    return found


def _refused(exc: ShareMismatchError, backup: Manifest, ep: Epoch | None, history: EpochHistory | None,
             lines: list[str | bytearray]) -> ShareMismatchError:
    """The manifest's refusal, said for a drill: nothing restored, and which key epoch each share belongs to."""
    number = ep.number if ep is not None else None
    elsewhere = history.elsewhere(lines, number) if history is not None else []
    if number is not None and elsewhere:
        return ShareMismatchError(
            f"{exc.message}: {'; '.join(elsewhere)}; {backup.name} is of key epoch {number} and opens only with "
            f"epoch-{number} shares", hint=f"give the shares of key epoch {number} (`vaultops keyholders list "
                                          "--epochs`); nothing was restored")
    return ShareMismatchError(exc.message, hint="check each line holds the share of the keyholder it names; "
                                                "nothing was restored")


def _enough(held: HeldShares, km: Any, km_path: Path | None) -> None:
    if not held.shares:
        raise UsageError("no unseal shares given",
                         hint="give the ORIGINAL cluster's shares, one per line: 'NAME: share' or the share alone")
    if km is not None and len(held.shares) < km.threshold:
        raise UsageError(f"{len(held.shares)} share{'s' if len(held.shares) != 1 else ''} given; the backup's "
                         f"cluster needs {km.threshold} ({km_path})", hint="give at least the threshold of shares")


def _available(version: str | None) -> str | None:
    """The OpenBao binary of *version* (None: the installed one) is here or fetched now: a SandboxError
    before anything is restored, not after the backup was fetched."""
    from vaultops.releases import ensure

    ensure(version)
    return version


def run_drill(cfg: Config, settings: BackupSettings, sink: Sink, plan: DrillPlan, *, keep: bool, emit: Any,
              journal: Journal) -> DrillReport:
    """Run a checked *plan*; its shares are wiped when this returns."""
    t0 = time.monotonic()
    emit("drill.start", name=plan.name, version=plan.version, encrypted=plan.manifest.encryption is not None)
    try:
        report = _drill(cfg, settings, sink, plan, keep=keep, t0=t0, emit=emit)
    except VaultOpsError as exc:
        report = DrillReport(plan.name, ok=False, version=plan.version, rto_seconds=time.monotonic() - t0,
                             rpo_seconds=_age(plan.manifest), error=str(exc), **_who(plan))
    finally:
        plan.wipe()
    _journal(cfg, report, journal)
    emit("drill.done", name=plan.name, ok=report.ok, rto=round(report.rto_seconds, 2),
         rpo=round(report.rpo_seconds))
    return report


def _drill(cfg: Config, settings: BackupSettings, sink: Sink, plan: DrillPlan, *, keep: bool, t0: float,
           emit: Any) -> DrillReport:
    manifest = plan.manifest
    emit("drill.stage", stage="fetch", size=manifest.size)
    with fetched(sink, manifest.name, manifest, settings=settings, identities=plan.identities) as path:
        emit("drill.stage", stage="sandbox")
        fmt = get_format(manifest.kind, settings)
        with scratch_sandbox(version=plan.version, nodes=1, name="drill", keep=keep,
                             storage=fmt.sandbox_storage) as copy:
            emit("drill.sandbox", version=plan.version, config=str(copy.config_path))
            emit("drill.stage", stage="restore")
            t_restore = time.monotonic()
            epoch = manifest.key_epoch
            fmt.restore_copy(copy, path, shares=plan.shares.shares,
                             threshold=epoch.threshold if epoch is not None else None)
            emit("drill.stage", stage="sentinels")
            sentinels = _read_sentinels(copy.clients(), plan.sentinels, settings, cfg)
            done = time.monotonic()
    ok = all(v == "ok" for v in sentinels.values())
    return DrillReport(manifest.name, ok=ok, version=plan.version, rto_seconds=done - t0,
                       restore_seconds=done - t_restore, rpo_seconds=_age(manifest), sentinels=sentinels,
                       error=None if ok else "a sentinel could not be read",
                       not_proven=None if plan.sentinels else NO_SENTINELS, **_who(plan))


def _who(plan: DrillPlan) -> dict[str, Any]:
    return {"keyholders": tuple(plan.shares.keyholders), "checked": plan.shares.checked, "epoch": plan.epoch}


def _read_sentinels(clients: list[NodeClient], paths: tuple[str, ...], settings: BackupSettings,
                    cfg: Config) -> dict[str, str]:
    if not paths:
        return {}
    identity.login(clients, dict(settings.drill.get("auth") or {"method": "token"}), cfg, warn=lambda _m: None)
    out: dict[str, str] = {}
    for path in paths:
        try:
            out[path] = "ok" if clients[0].read(path).get("data") else "empty"
        except VaultError as exc:
            out[path] = f"error: {exc.message}"
    return out


def _age(manifest: Manifest) -> float:
    taken = datetime.fromisoformat(manifest.finished_at)
    return (datetime.now(timezone.utc) - taken).total_seconds()


def _journal(cfg: Config, report: DrillReport, journal: Journal) -> None:
    journal.append(
        "backup.drill", outcome="ok" if report.ok else "failed", cluster=cfg.cluster_name,
        details={"name": report.name, "version": report.version, "rto_seconds": round(report.rto_seconds, 2),
                 "restore_seconds": round(report.restore_seconds, 2), "rpo_seconds": round(report.rpo_seconds),
                 "sentinels": report.sentinels, "error": report.error, "keyholders": list(report.keyholders),
                 "checked": report.checked, "not_proven": report.not_proven, "epoch": report.epoch})

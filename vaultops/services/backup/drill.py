"""`vaultops backup drill`: prove the newest backup restores, and measure RTO/RPO.

1. fetch the newest verified backup and verify it again against its manifest;
2. start a throwaway single-node sandbox of the same OpenBao version (scratch.py, shared with
   `upgrade rehearse`);
3. force-restore the snapshot into it; the node seals itself (its keyring is now the original's);
4. unseal it with the ORIGINAL cluster's shares (read from stdin, never logged);
5. log in as backup.drill.auth says (default: the usual token lookup) and read the sentinel paths;
6. report restore time (RTO) and data age (RPO), journal the result, stop the sandbox.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from vaultops.config import Config
from vaultops.errors import BackupError, VaultError, VaultOpsError
from vaultops.journal import Journal
from vaultops.services.backup import identity
from vaultops.services.backup.catalog import newest
from vaultops.services.backup.formats import get_format
from vaultops.services.backup.manifest import Manifest
from vaultops.services.backup.restore import fetched
from vaultops.services.backup.scratch import scratch_sandbox
from vaultops.services.backup.settings import BackupSettings
from vaultops.services.backup.stored import read_manifest
from vaultops.storage.base import Sink
from vaultops.vault import NodeClient

if TYPE_CHECKING:
    from vaultops.crypto.agekeys import Identity


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


def read_shares(stream: IO[str]) -> list[str]:
    shares = [line.strip() for line in stream if line.strip()]
    if not shares:
        raise BackupError("no unseal shares on stdin",
                          hint="pipe the ORIGINAL cluster's shares, one per line, into 'vaultops backup drill'")
    return shares


def run_drill(cfg: Config, settings: BackupSettings, sink: Sink, *, shares: list[str], name: str | None,
              keep: bool, emit: Any, journal: Journal, identities: Sequence[Identity] | None = None) -> DrillReport:
    t0 = time.monotonic()
    name = name or newest(sink, cluster=settings.cluster, warn=lambda m: emit("warning", message=m)).name
    manifest = read_manifest(sink, name)
    version = settings.drill.get("version") or manifest.server_version
    if not get_format(manifest.kind).restores_into_sandbox:
        raise BackupError(f"drill supports Raft backups; {name} is {manifest.kind}",
                          hint="restore PostgreSQL/Consul backups with 'vaultops backup restore' into a test cluster")
    from vaultops.services.backup.crypt.reveal import revealed

    revealed(sink, manifest, identities)  # an encrypted backup without an identity: refused before the sandbox
    emit("drill.start", name=name, version=version, encrypted=manifest.encryption is not None)
    try:
        report = _drill(cfg, settings, sink, manifest, shares=shares, version=version, keep=keep, t0=t0,
                        emit=emit, identities=identities)
    except VaultOpsError as exc:
        report = DrillReport(name, ok=False, version=version, rto_seconds=time.monotonic() - t0,
                             rpo_seconds=_age(manifest), error=str(exc))
    _journal(cfg, report, journal)
    emit("drill.done", name=name, ok=report.ok, rto=round(report.rto_seconds, 2), rpo=round(report.rpo_seconds))
    return report


def _drill(cfg: Config, settings: BackupSettings, sink: Sink, manifest: Manifest, *, shares: list[str],
           version: str | None, keep: bool, t0: float, emit: Any,
           identities: Sequence[Identity] | None) -> DrillReport:
    with fetched(sink, manifest.name, manifest, settings=settings, identities=identities) as path, \
            scratch_sandbox(version=version, nodes=1, name="drill", keep=keep) as copy:
        emit("drill.sandbox", version=version, config=str(copy.config_path))
        t_restore = time.monotonic()
        copy.restore(path, shares=shares, error=BackupError)
        sentinels = _read_sentinels(copy.clients(), settings, cfg)
        done = time.monotonic()
    ok = bool(sentinels) and all(v == "ok" for v in sentinels.values())
    return DrillReport(manifest.name, ok=ok, version=version, rto_seconds=done - t0,
                       restore_seconds=done - t_restore, rpo_seconds=_age(manifest), sentinels=sentinels,
                       error=None if ok else ("no sentinels configured (backup.drill.sentinels)"
                                              if not sentinels else "a sentinel could not be read"))


def _read_sentinels(clients: list[NodeClient], settings: BackupSettings, cfg: Config) -> dict[str, str]:
    paths = list(settings.drill.get("sentinels") or [])
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
                 "sentinels": report.sentinels, "error": report.error})

"""`recover from-backup --rehearse`: the same runbook on a throwaway sandbox whose every node is lost.

1. the backup is picked (newest verified, or --name) from the REAL cluster's sinks, read only;
2. a local sandbox with as many nodes as the cluster, on the backup's server version, is started
   sealed, then every node is killed and its raft data set aside: all nodes lost;
3. runbooks/recover-from-backup.yaml runs on it with the real cluster's shares (checked against
   its keyholder manifest), backup sinks, sentinel paths and token; the report gives RTO/RPO.

The production cluster is never touched. The sandbox is stopped and removed unless --keep.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.config import Config, parse_config_file
from vaultops.errors import RunbookError, UsageError
from vaultops.journal import Journal
from vaultops.services.recovery.layout import DATA

if TYPE_CHECKING:
    from vaultops.crypto.agekeys import Identity
    from vaultops.services.backup.settings import BackupSettings
    from vaultops.services.sandbox.cluster import Sandbox


@dataclass(frozen=True)
class RecoveryRehearsal:
    ok: bool
    backup: str
    seconds: float
    steps_done: int
    steps_total: int
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        lines = [f"rehearsal {'PASSED' if self.ok else 'FAILED'}: every node lost, rebuilt from {self.backup or '?'} "
                 f"on a throwaway sandbox; {self.steps_done}/{self.steps_total} steps in {self.seconds:.1f}s"]
        if self.rto_seconds is not None:
            lines.append(f"  RTO {self.rto_seconds:.1f}s  RPO {self.rpo_seconds:.0f}s")
        if self.message:
            lines.append(f"  {self.message}")
        return "\n".join(lines)


def rehearse(cfg: Config, *, shares: list[str], journal: Journal, token: str | None, backup: BackupSettings,
             name: str | None = None, keep: bool = False, emit: Callable[[str], None] = lambda _m: None,
             identities: Sequence[Identity] | None = None) -> RecoveryRehearsal:
    if cfg.storage != "raft":
        raise UsageError(f"a rehearsal of {cfg.storage} storage is not supported", hint="raft clusters only")
    if not shares:
        raise UsageError("the backup's unseal shares are needed", hint="pipe them with --share-stdin")
    picked, version = _pick(cfg, backup, name, identities)
    journal.append("recover.rehearse.start", details={"backup": picked, "version": version})
    started = time.monotonic()
    with _lost_sandbox(cfg, version=version, keep=keep, emit=emit) as box:
        state, message = _run(cfg, box, shares=shares, token=token, backup=backup, name=picked, emit=emit,
                              identities=identities)
    report = _report(state, picked, time.monotonic() - started, message)
    journal.append("recover.rehearse", outcome="ok" if report.ok else "failed",
                   details={"backup": picked, "ok": report.ok, "rto_seconds": report.rto_seconds,
                            "rpo_seconds": report.rpo_seconds, "message": report.message})
    return report


def _pick(cfg: Config, settings: BackupSettings, name: str | None,
          identities: Sequence[Identity] | None) -> tuple[str, str | None]:
    """The backup and its server version; an encrypted one's identity checked before any sandbox starts."""
    from vaultops.services.backup.catalog import newest
    from vaultops.services.backup.crypt.reveal import check_opens
    from vaultops.services.backup.runner import build_sinks
    from vaultops.services.backup.stored import read_manifest

    sink = build_sinks(cfg, settings)[0]
    found = name or newest(sink, cluster=settings.cluster).name
    manifest = read_manifest(sink, found)
    check_opens(sink, manifest, identities)
    return found, manifest.server_version


@contextlib.contextmanager
def _lost_sandbox(cfg: Config, *, version: str | None, keep: bool, emit: Callable[[str], None]) -> Iterator[Sandbox]:
    from vaultops.services.sandbox.cluster import SandboxSpec, up

    parent = cfg.state_dir / "rehearsals"
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="vaultops-recover-", dir=parent))
    box: Sandbox | None = None
    try:
        emit(f"starting a throwaway {len(cfg.nodes)}-node sandbox on {version or 'the installed version'} in {folder}")
        box = up(SandboxSpec(name="recover", nodes=len(cfg.nodes), version=version, sealed=True), root=folder)
        drivers = box.drivers()
        for node in box.record.nodes:               # every node lost: its process and its raft data
            drivers[node.name].kill()
            for item in DATA:
                drivers[node.name].set_aside(str(Path(node.dir) / "data" / item), suffix=".lost")
        yield box
    finally:
        if not keep:
            if box is not None:
                box.stop()
            shutil.rmtree(folder, ignore_errors=True)


def _run(cfg: Config, box: Sandbox, *, shares: list[str], token: str | None, backup: BackupSettings, name: str,
         emit: Callable[[str], None], identities: Sequence[Identity] | None) -> tuple[Any, str]:
    from vaultops.runbook.state import load_state
    from vaultops.services.recovery import service
    from vaultops.services.recovery.context import RecoveryContext
    from vaultops.services.recovery.settings import RecoverySection, recovery_section, sentinels
    from vaultops.services.upgrade.service import make_unsealer

    copy_cfg = parse_config_file(box.config_path)
    clients = box.clients(token=False)
    for client in clients:
        client.token = token          # the restored data knows the real cluster's tokens only
    ctx = RecoveryContext(
        cfg=copy_cfg, clients={c.name: c for c in clients}, drivers=dict(box.drivers()),
        unsealer=make_unsealer(cfg, shares, clients=[], journal=Journal(copy_cfg.journal_path)),
        journal=Journal(copy_cfg.journal_path, cluster=copy_cfg.cluster_name),
        settings=RecoverySection(sentinels=sentinels(cfg, recovery_section(cfg))),
        state_path=box.dir / "recover-state.json", emit=emit, backup=backup, backup_cfg=cfg, token=token,
        identities=identities)
    names = [n.name for n in copy_cfg.nodes]
    variables = {"nodes": names, "first": names[0], "others": names[1:], "backup": name}
    try:
        return service.start(ctx, "recover-from-backup", variables), ""
    except RunbookError as exc:
        return load_state(ctx.state_path), str(exc)


def _report(state: Any, name: str, seconds: float, message: str) -> RecoveryRehearsal:
    ok = state.status.value == "done"
    last = state.steps[-1].evidence if ok else (state.halt or {})
    return RecoveryRehearsal(ok=ok, backup=name, seconds=seconds, steps_done=state.done_count,
                             steps_total=len(state.steps), rto_seconds=last.get("rto_seconds") if ok else None,
                             rpo_seconds=last.get("rpo_seconds") if ok else None, message=message, evidence=last)


__all__ = ["RecoveryRehearsal", "rehearse"]

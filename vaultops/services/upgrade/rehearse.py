"""A dress rehearsal: the same upgrade runbook on a throwaway copy of the real data.

1. the newest verified backup (a configured backup sink, or the upgrade's own local
   snapshots) is fetched and verified again;
2. a local sandbox with as many nodes as the cluster, on the cluster's CURRENT version, is
   started and the snapshot force-restored into it; it seals itself (the keyring is the
   original cluster's) and is unsealed with the ORIGINAL shares given on stdin (the scratch
   copy of services/backup/scratch.py, shared with `backup drill`);
3. runbooks/upgrade.yaml runs on it to the target with the original token, postflight
   included; the report says how it went. The production cluster is only read.

Raft clusters only: a PostgreSQL/Consul-backed rehearsal needs the storage restored
first (not done here).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.config import Config, parse_config_file
from vaultops.errors import RunbookError, SandboxError, UsageError
from vaultops.journal import Journal

if TYPE_CHECKING:
    from vaultops.crypto.agekeys import Identity
    from vaultops.services.backup.scratch import ScratchCopy
    from vaultops.services.upgrade.context import UpgradeContext
    from vaultops.services.upgrade.observe import ClusterView
    from vaultops.vault import NodeClient


@dataclass(frozen=True)
class RehearsalReport:
    ok: bool
    backup: str
    from_version: str
    to_version: str
    seconds: float
    steps_done: int
    steps_total: int
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        verdict = "PASSED" if self.ok else "FAILED"
        lines = [f"rehearsal {verdict}: {self.from_version} -> {self.to_version} on a copy of {self.backup}",
                 f"  {self.steps_done}/{self.steps_total} steps in {self.seconds:.1f}s"]
        if self.message:
            lines.append(f"  {self.message}")
        return "\n".join(lines)


def rehearse(cfg: Config, *, clients: Sequence[NodeClient], token: str | None, journal: Journal, to: str,
             shares: list[str], backup: str | None = None, keep: bool = False,
             emit: Callable[[str], None] = lambda _m: None,
             identities: Sequence[Identity] | None = None) -> RehearsalReport:
    """*clients* ask the production cluster its version (only read); *token* is the production
    token, which works on the restored copy too; *journal* is the operator's; *identities* open
    an encrypted backup."""
    from vaultops.services.upgrade.preflight import check_target

    if cfg.storage != "raft":
        raise UsageError(f"rehearsal of {cfg.storage} storage is not supported", hint="raft clusters only")
    if not shares:
        raise UsageError("the original cluster's unseal shares are needed", hint="pipe them with --share-stdin")
    current = _current_version(clients)
    check_target(current, to)
    with _snapshot_file(cfg, backup, identities) as (name, path):
        emit(f"rehearsing {current} -> {to} on a copy of {name}")
        journal.append("upgrade.rehearse.start", details={"backup": name, "from": current, "to": to})
        report = _run(cfg, path, name=name, current=current, to=to, shares=shares, token=token, keep=keep,
                      emit=emit)
    journal.append("upgrade.rehearse", outcome="ok" if report.ok else "failed",
                   details={"backup": name, "from": current, "to": to, "ok": report.ok, "message": report.message})
    return report


def _current_version(clients: Sequence[NodeClient]) -> str:
    from vaultops.services.upgrade.observe import observe
    from vaultops.services.upgrade.preflight import current_version

    return current_version(observe({c.name: c for c in clients}, storage="external"))


@contextlib.contextmanager
def _snapshot_file(cfg: Config, backup: str | None,
                   identities: Sequence[Identity] | None) -> Iterator[tuple[str, Path]]:
    """The newest verified backup as a local, verified file."""
    if cfg.section("backup").get("sinks"):
        from vaultops.services.backup.catalog import newest
        from vaultops.services.backup.restore import fetched
        from vaultops.services.backup.runner import build_sinks
        from vaultops.services.backup.settings import load_settings
        from vaultops.services.backup.stored import read_manifest

        settings = load_settings(cfg)
        sink = build_sinks(cfg, settings)[0]
        name = backup or newest(sink, cluster=settings.cluster).name
        with fetched(sink, name, read_manifest(sink, name), settings=settings, identities=identities) as path:
            yield name, path
        return
    from vaultops.services.backup.restore import verify_file
    from vaultops.services.upgrade.snapshot import snapshot_dir

    found = sorted(snapshot_dir(cfg).glob("*.snap"))
    if backup:
        found = [p for p in found if p.name == backup]
    if not found:
        raise UsageError("no verified backup to rehearse on",
                         hint="configure backup.sinks and run `vaultops backup run` (or run the upgrade preflight)")
    verify_file(found[-1], "raft")
    yield found[-1].name, found[-1]


def _run(cfg: Config, snapshot: Path, *, name: str, current: str, to: str, shares: list[str],
         token: str | None, keep: bool, emit: Callable[[str], None]) -> RehearsalReport:
    from vaultops.services.backup.scratch import scratch_sandbox

    started = time.monotonic()
    with scratch_sandbox(version=current, nodes=len(cfg.nodes), name="rehearsal", keep=keep, progress=emit,
                         parent=_ensure(rehearsals_dir(cfg))) as copy:
        copy.restore(snapshot, shares=shares, error=SandboxError)
        emit("snapshot restored into the copy and unsealed with the original shares")
        state, message = _upgrade(copy, to=to, shares=shares, token=token, emit=emit)
    done = state.done_count if state is not None else 0
    total = len(state.steps) if state is not None else 0
    ok = state is not None and state.status.value == "done"
    evidence = state.steps[-1].evidence if ok and state is not None else (state.halt or {} if state else {})
    return RehearsalReport(ok=ok, backup=name, from_version=current, to_version=to,
                           seconds=time.monotonic() - started, steps_done=done, steps_total=total,
                           message=message, evidence=evidence)


def _upgrade(copy: ScratchCopy, *, to: str, shares: list[str], token: str | None,
             emit: Callable[[str], None]) -> tuple[Any, str]:
    from vaultops.services.upgrade.context import Prompter, build_context
    from vaultops.services.upgrade.service import default_runbook, start_run
    from vaultops.services.upgrade.unseal import SharesUnsealer
    sandbox_cfg = parse_config_file(copy.config_path)
    clients = copy.clients(token=token)   # the ORIGINAL cluster's token: the restored data knows only that
    # The copy's own journal (in its folder), like the engine always used for it.
    journal = Journal(sandbox_cfg.journal_path, cluster=sandbox_cfg.cluster_name)
    ctx = build_context(sandbox_cfg, clients=clients, drivers=copy.box.drivers(), journal=journal,
                        unsealer=SharesUnsealer(shares), prompter=Prompter(assume_yes=True), emit=emit, backup="skip")
    _wait_settled(ctx)
    path = copy.dir / "upgrade-state.json"
    try:
        state = start_run(sandbox_cfg, ctx, runbook_path=default_runbook(), params={"to": to}, emit=emit, path=path,
                          take_over_lease=True)   # the copy's lease entry came with the backup: no live run holds it
        return state, ""
    except RunbookError as exc:
        from vaultops.runbook.state import load_state

        return load_state(path), str(exc)


SETTLE_SECONDS, SETTLE_TIMEOUT = 3.0, 90.0


def _wait_settled(ctx: UpgradeContext) -> None:
    """Until the copy passes the preflight's own cluster check for ~3 s in a row. Right after the
    restore, a new leader's autopilot first lists the followers as "left" and unhealthy, and an
    earlier healthy answer can come from before the election: one good poll proves nothing."""
    from vaultops.services.upgrade import gates

    def problems(view: ClusterView) -> list[str]:
        found = gates.cluster_problems(view, ctx)
        ap = view.autopilot
        if ap is not None and ap.failure_tolerance < ctx.settings.min_failure_tolerance:
            found.append(f"autopilot failure tolerance {ap.failure_tolerance}")
        return found

    gates.wait_for(ctx, problems, what="the rehearsal copy did not settle into a healthy cluster",
                   timeout=SETTLE_TIMEOUT, stable=max(2, round(SETTLE_SECONDS / max(ctx.settings.poll, 0.01))))


def rehearsals_dir(cfg: Config) -> Path:
    """Rehearsal copies of this cluster (kept ones with --keep): one folder per cluster, so a sandbox's
    `down` finds its own (services/sandbox/cleanup.py)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cfg.cluster_name)
    return cfg.state_dir / "rehearsals" / safe


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path

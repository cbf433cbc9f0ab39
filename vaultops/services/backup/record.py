"""What a backup run leaves behind besides its backup: the state file, the metrics, the journal entry.

Each is written even if another cannot be (then a warning event). The state file is also what
the next run reads: uploads a sink could not abort (`left_open`), and whether the newest run
failed (prune refuses then).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from vaultops.config import Config
from vaultops.errors import VaultOpsError
from vaultops.files.atomic import atomic_write_text
from vaultops.services.backup import metrics
from vaultops.services.backup.settings import BackupSettings
from vaultops.storage.base import Sink, SweepsUploads

if TYPE_CHECKING:
    from vaultops.journal import Journal
    from vaultops.services.backup.manifest import Manifest
    from vaultops.services.backup.runner import RunResult

Emit = Callable[..., None]


def record_run(cfg: Config, settings: BackupSettings, result: RunResult, sinks: list[Sink], *, emit: Emit,
               journal: Journal) -> None:
    """State file, metrics, journal: each written even if another cannot be (then a warning)."""
    state = {k: v for k, v in asdict(result).items() if k != "manifest"}
    state["finished"] = time.time()
    state["left_open"] = [{"sink": s.name, "key": u.key, "upload_id": u.upload_id, "started": u.started.isoformat()}
                          for s in sinks if isinstance(s, SweepsUploads) for u in s.left_open]
    for u in state["left_open"]:
        emit("warning", message=f"{u['sink']}: the upload of {u['key']} could not be aborted; the next run "
                                "aborts it", upload_id=u["upload_id"])
    _try(emit, "state file", lambda: atomic_write_text(settings.state_file, json.dumps(state, indent=2) + "\n",
                                                       mode=0o600))
    if settings.metrics_file:
        path = settings.metrics_file
        _try(emit, "metrics", lambda: metrics.write(path, metrics.RunMetrics(
            cluster=settings.cluster, finished=state["finished"], success=result.ok, size=result.size,
            duration=result.duration, verified=result.verified)))
    _try(emit, "journal", lambda: _journal(cfg, result, journal))


def _journal(cfg: Config, result: RunResult, journal: Journal) -> None:
    journal.append("backup.run", outcome="ok" if result.ok else "failed", cluster=cfg.cluster_name,
                   node=result.manifest.source_node if result.manifest else None,
                   details={"name": result.name, "size": result.size, "sinks": result.sinks, "error": result.error,
                            "sha256": result.manifest.sha256 if result.manifest else None,
                            "recipients": _recipients(result.manifest)})


def _recipients(manifest: Manifest | None) -> list[str] | None:
    """Public fingerprints of an encrypted backup's recipients (never a key)."""
    if manifest is None or manifest.encryption is None:
        return None
    return [r.fingerprint for r in manifest.encryption.recipients]


def _try(emit: Emit, what: str, write: Callable[[], None]) -> None:
    try:
        write()
    except (VaultOpsError, OSError) as exc:
        emit("warning", message=f"{what} not written: {exc}")


def last_run(settings: BackupSettings) -> dict[str, Any] | None:
    try:
        state = json.loads(settings.state_file.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None

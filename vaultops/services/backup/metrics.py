"""Prometheus textfile-collector output for node_exporter, written atomically.

A failed run keeps the previous last_success timestamp so alerting on its age works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vaultops.files.atomic import atomic_write_text

LAST_SUCCESS = "vaultops_backup_last_success_timestamp_seconds"
_HELP = {
    LAST_SUCCESS: "Unix time of the last backup run in which every sink succeeded.",
    "vaultops_backup_last_run_timestamp_seconds": "Unix time the last backup run finished.",
    "vaultops_backup_last_run_success": "1 if the last backup run succeeded on every sink, else 0.",
    "vaultops_backup_last_size_bytes": "Size of the last snapshot taken, in bytes.",
    "vaultops_backup_last_duration_seconds": "Wall time of the last backup run.",
    "vaultops_backup_last_verified": "1 if the last snapshot passed verification, else 0.",
}


@dataclass(frozen=True)
class RunMetrics:
    cluster: str
    finished: float
    success: bool
    size: int
    duration: float
    verified: bool


def render(m: RunMetrics, *, last_success: float | None) -> str:
    label = '{cluster="%s"}' % m.cluster.replace("\\", "\\\\").replace('"', '\\"')
    values = {
        LAST_SUCCESS: m.finished if m.success else last_success,
        "vaultops_backup_last_run_timestamp_seconds": m.finished,
        "vaultops_backup_last_run_success": int(m.success),
        "vaultops_backup_last_size_bytes": m.size,
        "vaultops_backup_last_duration_seconds": round(m.duration, 3),
        "vaultops_backup_last_verified": int(m.verified),
    }
    lines = []
    for name, value in values.items():
        if value is None:
            continue
        lines += [f"# HELP {name} {_HELP[name]}", f"# TYPE {name} gauge", f"{name}{label} {value}"]
    return "\n".join(lines) + "\n"


def previous_success(path: Path) -> float | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    m = re.search(rf"^{LAST_SUCCESS}\{{[^}}]*\}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


ORPHANED = "vaultops_backup_orphaned_backups"


def write_orphaned(path: Path, *, cluster: str, sink: str, count: int) -> Path:
    """Beside the run's textfile, one file per sink (`backup list` writes it): how many of its backups
    are encrypted to none of the configured recipients. Returns the file written."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", sink).strip("_")[:80]
    target = path.with_name(f"{path.stem}_orphaned_{safe}.prom")
    label = '{cluster="%s",sink="%s"}' % tuple(v.replace("\\", "\\\\").replace('"', '\\"') for v in (cluster, sink))
    atomic_write_text(target, f"# HELP {ORPHANED} Backups encrypted to none of the recipients configured now.\n"
                              f"# TYPE {ORPHANED} gauge\n{ORPHANED}{label} {count}\n", mode=0o644)
    return target


def write(path: Path, m: RunMetrics) -> None:
    # node_exporter reads *.prom; the atomic rename keeps it from seeing half a file.
    atomic_write_text(path, render(m, last_success=previous_success(path)), mode=0o644)

"""What `sandbox down` removes besides the sandbox's folder: only what that sandbox made.

A sandbox's vaultops.yaml points its state (run state, upgrade snapshots, backup lock and
last-run files, rehearsal copies) into its own folder (`sandbox.state_dir`), so removing the
folder removes them. Two things need more:

- a rehearsal kept with `upgrade rehearse --keep` is a running sandbox nested in that folder
  (state/rehearsals/CLUSTER/...): its servers are stopped first (each a folder `up` marked,
  checked like any other);
- with $VAULTOPS_STATE_DIR set, the state went there instead. Only files named after this
  sandbox's cluster (`sandbox-NAME`) by the services that write them are removed, matched
  exactly, never by a prefix another sandbox's name could share ("a" vs "a-b"): a run state
  file only if the cluster it records is this one; the cluster's rehearsals folder after its
  kept copies are stopped.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

from vaultops.names import Kind, check_name

RUN_STATE_CAP = 4 << 20
_SNAPSHOT_STAMP = r"\d{8}T\d{6}Z"


def cluster_of(sandbox: str) -> str:
    """The cluster name `sandbox up` writes into the sandbox's vaultops.yaml."""
    return f"sandbox-{check_name(Kind.SANDBOX, sandbox)}"


def nested_sandboxes(root: Path, depth: int = 3) -> list[Path]:
    """Sandbox folders (marked by `up`) of rehearsal copies kept under *root*, a few levels down
    (rehearsals/CLUSTER/vaultops-rehearsal-XXXX/rehearsal); symbolic links are not followed."""
    from vaultops.services.sandbox.cluster import is_sandbox

    if depth < 0 or root.is_symlink() or not root.is_dir():
        return []
    if is_sandbox(root):
        return [root]
    found: list[Path] = []
    for child in sorted(root.iterdir()):
        found += nested_sandboxes(child, depth - 1)
    return found


def rehearsal_dirs(state_dir: Path, sandbox: str) -> list[Path]:
    """The folder of the sandbox's cluster's rehearsal copies in a shared state folder (a real one)."""
    folder = state_dir / "rehearsals" / cluster_of(sandbox)
    return [folder] if not folder.is_symlink() and folder.is_dir() else []


def state_leftovers(state_dir: Path, sandbox: str) -> list[Path]:
    """Files sandbox *sandbox*'s cluster left in a shared state folder (exact names only)."""
    cluster = cluster_of(sandbox)
    found = [p for p in (state_dir / f"backup-{cluster}.lock", state_dir / f"backup-{cluster}-last-run.json")
             if _regular(p)]
    snaps = re.compile(rf"{re.escape(cluster)}-{_SNAPSHOT_STAMP}\.snap")
    found += [p for p in _files(state_dir / "upgrade-snapshots") if snaps.fullmatch(p.name)]
    runs = [p for p in _files(state_dir / "runs") if p.name.startswith(f"{cluster}-") and p.suffix == ".json"]
    ours = [p for p in runs if _records_cluster(p, cluster)]
    found += ours
    found += [lock for p in ours if _regular(lock := p.with_name(p.name + ".lock"))]
    return found


def _files(folder: Path) -> list[Path]:
    if folder.is_symlink() or not folder.is_dir():
        return []
    return [p for p in sorted(folder.iterdir()) if _regular(p)]


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _records_cluster(path: Path, cluster: str) -> bool:
    """A run state file (runbook/state.py) that names *cluster*; anything unreadable is not ours."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(RUN_STATE_CAP + 1)
        doc = json.loads(raw) if len(raw) <= RUN_STATE_CAP else None
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("cluster") == cluster


__all__ = ["cluster_of", "nested_sandboxes", "rehearsal_dirs", "state_leftovers"]

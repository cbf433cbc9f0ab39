"""The resumable state of one runbook run, and the plain view a TUI reads.

The state file is JSON written atomically (0600) after every step change: a
run killed at any moment leaves either the previous or the new state, never
half of one. It never holds secrets: unseal shares live only in the memory
of the process that was given them, so a resumed run must be given them again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any

from vaultops.errors import RunbookError
from vaultops.files.lock import Holder, exclusive_lock
from vaultops.files.atomic import atomic_write_text

STATE_VERSION = 1


class RunStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"       # waits for people (keyholders); resume continues
    HALTED = "halted"       # a check failed; fix the cause, then resume
    DONE = "done"
    ROLLED_BACK = "rolled back"   # undone by a rollback run (services/upgrade/rollback.py); a finished state


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    PAUSED = "paused"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class StepState:
    id: str
    name: str
    action: str
    params: dict[str, Any]
    node: str | None = None
    group: str | None = None
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunState:
    """Everything about one run; the engine updates it and calls its listener after each change."""

    run_id: str
    runbook: str
    runbook_path: str
    runbook_digest: str
    cluster: str
    variables: dict[str, Any]
    steps: list[StepState]
    status: RunStatus = RunStatus.RUNNING
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    halt: dict[str, Any] | None = None         # {message, hint, evidence} when halted or paused
    prompt: str | None = None                  # what people are asked for (keyholders), if anything
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)   # last observed per-node view
    history: list[dict[str, Any]] = field(default_factory=list)      # runs/resumes of this state

    @property
    def current(self) -> StepState | None:
        return next((s for s in self.steps if s.status != StepStatus.DONE), None)

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.steps if s.status == StepStatus.DONE)

    def index_of(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.id == step_id)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = STATE_VERSION
        return data

    @classmethod
    def from_json(cls, raw: Any, *, where: str = "state") -> RunState:
        """A state read back from JSON: typed, unknown keys refused, timestamps checked."""
        from vaultops.files.loader import validate

        if isinstance(raw, dict) and raw.get("version") != STATE_VERSION:
            raise RunbookError(f"{where}: unknown state version {str(raw.get('version'))[:20]!r}",
                               hint="finish it with the vaultops version that started it")
        body = {k: v for k, v in raw.items() if k != "version"} if isinstance(raw, dict) else raw
        state = validate(body, cls, source=where, error=RunbookError, hint=_DAMAGED, yaml=False)
        _check_times(state, where)
        return state


_DAMAGED = "a damaged state file: inspect it; the journal records what every step did"


def _check_times(state: RunState, where: str) -> None:
    stamps: list[tuple[str, str | None]] = [("created_at", state.created_at), ("updated_at", state.updated_at)]
    for i, step in enumerate(state.steps):
        stamps += [(f"steps[{i}].started_at", step.started_at), (f"steps[{i}].finished_at", step.finished_at)]
    for key, value in stamps:
        if value is None:
            continue
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise RunbookError(f"{where}: {key}: expected an ISO timestamp, got {value[:40]!r}",
                               hint=_DAMAGED) from None


def save_state(path: Path, state: RunState) -> None:
    state.updated_at = now()
    atomic_write_text(path, json.dumps(state.to_json(), indent=1, sort_keys=True) + "\n", mode=0o600)


def load_state(path: Path) -> RunState:
    from vaultops.files.loader import STATE_CAP, read_json

    raw = read_json(path, cap=STATE_CAP, error=RunbookError, what="run state", missing="start one with `run`")
    return RunState.from_json(raw, where=str(path))


@contextlib.contextmanager
def run_lock(state_path: Path) -> Iterator[None]:
    """One process per state file (the shared flock helper: the kernel drops it when the holder dies).

    This only guards one state directory; the run lease (vaultops/services/lease.py), held in the
    cluster itself, keeps operators with different state directories apart.
    """
    lock = state_path.with_name(state_path.name + ".lock")

    def busy(holder: Holder) -> RunbookError:
        return RunbookError(f"another vaultops process is running {state_path.name} ({holder.describe()})",
                            hint="wait for it, or check `ps` for a stuck vaultops process")

    with exclusive_lock(lock, what=f"runbook run {state_path.stem}", error=RunbookError, busy=busy):
        yield

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
from vaultops.fslock import Holder, exclusive_lock
from vaultops.fsutil import atomic_write_text

STATE_VERSION = 1


class RunStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"       # waits for people (keyholders); resume continues
    HALTED = "halted"       # a check failed; fix the cause, then resume
    DONE = "done"


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
    def from_json(cls, raw: dict[str, Any], *, where: str = "state") -> RunState:
        if raw.get("version") != STATE_VERSION:
            raise RunbookError(f"{where}: unknown state version {raw.get('version')!r}",
                               hint="finish it with the vaultops version that started it")
        try:
            steps = [StepState(**{**s, "status": StepStatus(s["status"])}) for s in raw["steps"]]
            fields = {k: v for k, v in raw.items() if k not in ("version", "steps", "status")}
            return cls(**fields, steps=steps, status=RunStatus(raw["status"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise RunbookError(f"{where}: damaged state file ({exc})",
                               hint="inspect it; the journal records what every step did") from None


def save_state(path: Path, state: RunState) -> None:
    state.updated_at = now()
    atomic_write_text(path, json.dumps(state.to_json(), indent=1, sort_keys=True) + "\n", mode=0o600)


def load_state(path: Path) -> RunState:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunbookError(f"no run recorded at {path}", hint="start one with `run`") from None
    except (OSError, ValueError) as exc:
        raise RunbookError(f"cannot read {path}: {exc}", hint="inspect the file") from None
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

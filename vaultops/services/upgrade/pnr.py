"""The point of no return of a rolling upgrade, defined once.

Before it, only standbys run the new version and the old active still writes
everything: an upgraded standby can go back to the old binary, re-join and
catch up (the automatic rollback). The step that moves leadership to a node on
the target (`step_down`) ends that: the new active records the new version in
sys/version-history and may write what the old version cannot read, so after
it, going back means restoring the pre-upgrade snapshot (`vaultops upgrade
rollback`), losing the writes made since.

`upgrade plan` and the live views mark the step; the rollback asks `passed()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PNR_ACTION = "step_down"
MEANING = ("after this step, rollback means restoring the pre-upgrade snapshot (writes made since are lost); "
           "before it, a failed gate puts the upgraded standbys back on the old version")


def pnr_index(steps: Sequence[Any]) -> int | None:
    """Index of the step after which rollback means restoring a snapshot (None: the plan has none)."""
    return next((i for i, s in enumerate(steps) if getattr(s, "action", None) == PNR_ACTION), None)


def passed(state: Any, *, history: Sequence[str] = (), target: str | None = None) -> bool:
    """True once the run may have crossed the point of no return.

    The recorded state counts a PNR step that started (a step-down interrupted mid-way may
    have moved leadership); the cluster's own sys/version-history (*history*) recording
    *target* means a node on the target was active, whatever the record says.
    """
    if target is not None and target in history:
        return True
    index = pnr_index(state.steps)
    if index is None:
        return False
    return str(getattr(state.steps[index].status, "value", state.steps[index].status)) != "pending"

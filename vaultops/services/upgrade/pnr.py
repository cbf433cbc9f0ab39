"""The point of no return of a rolling upgrade, defined once (read by the rollback, printed by `upgrade plan`).

The point of no return is the step that moves leadership to a node on the new version
(runbooks/upgrade.yaml `move-leadership`, action `step_down`). Until it is done the old
active still leads on the old version and every upgraded node is a standby: a failed gate
rolls those standbys back to the old binary one at a time and the cluster never leaves the
old version's hands (services/upgrade/rollback.py). Once it is done, a new-version node has
led the cluster and written to its storage, and after it the old active itself is upgraded:
going back then means reinstalling the old version everywhere and restoring the verified
pre-upgrade snapshot (`vaultops upgrade rollback`, runbooks/upgrade-rollback.yaml), losing
every write made after that snapshot.

A failure AT the step-down itself is rolled back automatically only if the active node is
still on the old version when the rollback starts (the rollback's first step checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

PNR_ACTION = "step_down"


class _Step(Protocol):
    @property
    def action(self) -> str: ...


def pnr_index(steps: Sequence[_Step]) -> int | None:
    """Index of the point-of-no-return step in a plan (None: the plan never moves leadership)."""
    return next((i for i, s in enumerate(steps) if s.action == PNR_ACTION), None)


def before_pnr(steps: Sequence[_Step], index: int) -> bool:
    """Whether a failure at plan step *index* still leaves the old version leading (see the module doc)."""
    pnr = pnr_index(steps)
    return pnr is not None and index <= pnr

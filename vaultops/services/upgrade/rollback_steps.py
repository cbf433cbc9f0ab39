"""The rollbacks' own runbook actions (the rest — stop, install, start, unseal, back, verify — are
the upgrade's, run with the old version as their target).

rollback_check   automatic rollback (runbooks/upgrade-autorollback.yaml): the old version still
                 leads, i.e. the failure came before the point of no return (services/upgrade/pnr.py).
The restore rollback's actions (`vaultops upgrade rollback`) are in restore_steps.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vaultops.runbook.registry import Evidence, Registry, action
from vaultops.services.upgrade import gates, restore_steps
from vaultops.services.upgrade.observe import ClusterView

if TYPE_CHECKING:
    from vaultops.services.upgrade.context import UpgradeContext


@action("rollback_check")
def rollback_check(ctx: UpgradeContext, *, to: str) -> Evidence:
    """The old version still leads: the upgraded standbys can go back without a restore."""
    view = gates.wait_for(ctx, lambda v: _old_leads(v, to), what="cannot roll back automatically",
                          timeout=min(30.0, ctx.settings.gate_timeout))
    assert view.active is not None
    return {"summary": f"{view.active.name} leads on {to}: rolling the upgraded standbys back",
            "before": view.evidence()}


def _old_leads(view: ClusterView, to: str) -> list[str]:
    active = view.active
    if active is None:
        return ["no node is active"]
    if active.version != to:
        return [f"{active.name} leads on {active.version}: past the point of no return, "
                f"use `vaultops upgrade rollback` (restores the pre-upgrade snapshot)"]
    return []


# The rollbacks' own actions; steps.py merges them into UPGRADE_ACTIONS (one table, one context).
ROLLBACK_ACTIONS: Registry[UpgradeContext] = Registry({
    "rollback_check": rollback_check, "rollback_loss": restore_steps.rollback_loss,
    "take_down": restore_steps.take_down, "set_aside": restore_steps.set_aside,
    "restore_snapshot": restore_steps.restore_snapshot, "rollback_verify": restore_steps.rollback_verify,
})

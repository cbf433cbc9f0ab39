"""The upgrade's runbook actions. Each is idempotent and returns the evidence it checked.

Order of one node (runbooks/upgrade.yaml): stop_node -> install -> start_node
-> unseal_node -> wait_healthy. stop_node carries the guard that matters most:
it refuses to take a node down unless every other node is unsealed and a
healthy member and (raft) failure tolerance allows it — so a second node is
never taken down while the cluster is degraded.
"""

from __future__ import annotations

from vaultops.errors import RunbookError
from vaultops.runbook.actions import confirm, shell
from vaultops.runbook.registry import Evidence, Registry, action, with_verify
from vaultops.services.upgrade import gates, preflight as checks
from vaultops.services.upgrade.context import UpgradeContext
from vaultops.services.upgrade.observe import ClusterView, observe
from vaultops.services.upgrade.rollback_steps import ROLLBACK_ACTIONS
from vaultops.services.upgrade.unseal import wait_ready
from vaultops.services.upgrade.versions import parse_version
from vaultops.services.upgrade.probes import probe_action

preflight = checks.preflight_action
verify = checks.postflight_action


@action("snapshot")
def _snapshot(ctx: UpgradeContext) -> Evidence:
    """Take a snapshot backup and verify it before anything is touched."""
    from vaultops.services.upgrade.snapshot import take_verified_backup

    return take_verified_backup(ctx)


snapshot = _snapshot


@action("stop_node")
def stop_node(ctx: UpgradeContext, *, node: str) -> Evidence:
    """Stop the node's server, only if the rest of the cluster can carry on without it."""
    drv = ctx.drivers[node]
    view = gates.wait_for(ctx, lambda v: gates.safe_to_stop(v, ctx, node),
                          what=f"not safe to take {node} down")
    result = drv.stop(timeout=ctx.settings.stop_timeout).check(node)
    if drv.is_running():
        raise RunbookError(f"{node} is still running after stop", hint="stop it by hand, then resume",
                           evidence={"result": result.command})
    return {"summary": f"stopped ({result.command})", "before": view.evidence()}


@action("install")
def _install(ctx: UpgradeContext, *, node: str, version: str) -> Evidence:
    """Put the target version in place on the node (takes effect at the next start)."""
    drv = ctx.drivers[node]
    if drv.is_running():
        raise RunbookError(f"{node} is running: refusing to swap its binary under it",
                           hint="the stop step should have stopped it; check the node, then resume")
    result = drv.install(version).check(node)
    installed = drv.installed_version()
    if installed != version:
        raise RunbookError(f"{node}: installed {installed} instead of {version}",
                           hint="check the driver's install command", evidence={"result": result.stdout[-300:]})
    return {"summary": f"{version} installed", "installed": installed}


def _install_holds(ctx: UpgradeContext, *, node: str, version: str) -> str | None:
    found = ctx.drivers[node].installed_version()
    return None if found == version else f"{node} has {found} installed"


install = with_verify(_install, _install_holds)


@action("start_node")
def start_node(ctx: UpgradeContext, *, node: str) -> Evidence:
    """Start the node's server and wait until it answers."""
    result = ctx.drivers[node].start().check(node)
    st = wait_ready(ctx.clients[node])
    return {"summary": f"answering, {'sealed' if st.sealed else 'unsealed'}, {st.version}",
            "version": st.version, "sealed": st.sealed, "start": result.stdout[-200:]}


@action("unseal_node")
def unseal_node(ctx: UpgradeContext, *, node: str) -> Evidence:
    """Unseal the restarted node (shares given to this run, auto-unseal, or the keyholders' ceremony)."""
    return ctx.unsealer.unseal(ctx.clients[node], node=node)


@action("wait_healthy")
def _wait_healthy(ctx: UpgradeContext, *, node: str, version: str) -> Evidence:
    """Wait until the node is back: unsealed, on the version, a healthy member, caught up, stable."""
    mark: dict[str, int] = {}
    view = gates.wait_for(ctx, lambda v: gates.node_back(v, ctx, node, version, mark),
                          what=f"{node} did not come back healthy on {version}", stable=2)
    n = view.nodes[node]
    return {"summary": f"back on {n.version} as {n.role}", "after": view.evidence()}


def _node_still_back(ctx: UpgradeContext, *, node: str, version: str) -> str | None:
    view = observe(ctx.clients, storage=ctx.storage)
    n = view.nodes[node]
    if not n.serving:
        return f"{node} is {n.role}"
    return None if n.version == version else f"{node} runs {n.version}"


wait_healthy = with_verify(_wait_healthy, _node_still_back)


@action("step_down")
def _step_down(ctx: UpgradeContext, *, node: str, version: str) -> Evidence:
    """Move leadership off *node* to a node already on *version*; never to an older one."""
    view = gates.wait_for(ctx, lambda v: _ready_to_move(v, ctx, node, version),
                          what=f"cannot move leadership off {node}")
    if view.active is not None and view.active.name != node:
        return {"summary": f"{view.active.name} already active on {view.active.version}", "after": view.evidence()}
    ctx.emit(f"  point of no return: moving leadership to a node on {version} (services/upgrade/pnr.py)")
    attempts = []
    for _attempt in range(3):
        ctx.clients[node].ha.step_down()
        after = gates.wait_for(ctx, lambda v: _new_leader_elected(v, node), what="no new active node after step-down",
                               timeout=min(30.0, ctx.settings.gate_timeout))
        active = after.active
        attempts.append(active.name if active else None)
        problems = gates.leader_on(after, version, not_node=node)
        if not problems and active is not None:
            return {"summary": f"{active.name} active on {active.version}", "attempts": attempts,
                    "after": after.evidence()}
        if active is not None and active.name != node and active.version != version:
            raise RunbookError(f"leadership moved to {active.name} on {active.version}, older than {version}",
                               hint="step it down by hand at once, then resume", evidence=after.evidence())
    raise RunbookError(f"{node} took leadership back after {len(attempts)} step-downs",
                       hint="check the other nodes' logs", evidence={"attempts": attempts})


def _ready_to_move(view: ClusterView, ctx: UpgradeContext, node: str, version: str) -> list[str]:
    problems = gates.cluster_problems(view, ctx)
    older = [n.name for n in view.nodes.values() if n.name != node and n.version != version]
    if older:
        problems.append(f"not every other node runs {version} yet: {older}")
    return problems


def _new_leader_elected(view: ClusterView, old: str) -> list[str]:
    active = view.active
    if active is None:
        return ["no node is active yet"]
    return [] if active.name != old else [f"{old} is still active"]


def _leader_still_on(ctx: UpgradeContext, *, node: str, version: str) -> str | None:
    view = observe(ctx.clients, storage=ctx.storage)
    active = view.active
    if active is None:
        return None  # an election in progress: the next gates wait for it
    if active.name == node and view.nodes[node].version != version:
        return f"{node} on {view.nodes[node].version} is active again"
    if parse_version(active.version) < parse_version(version) and active.name != node:
        return f"{active.name} on {active.version} became active"
    return None


step_down = with_verify(_step_down, _leader_still_on)


# The upgrade runbook's actions: every one runs on an UpgradeContext (mypy checks each entry).
# The rollback runbooks (upgrade-autorollback.yaml, upgrade-rollback.yaml) use the same table.
UPGRADE_ACTIONS: Registry[UpgradeContext] = Registry({
    "preflight": preflight, "probe": probe_action, "snapshot": snapshot, "stop_node": stop_node, "install": install,
    "start_node": start_node, "unseal_node": unseal_node, "wait_healthy": wait_healthy, "step_down": step_down,
    "verify": verify, "confirm": confirm, "shell": shell,
    **{name: ROLLBACK_ACTIONS.get(name) for name in ROLLBACK_ACTIONS.names()},
})

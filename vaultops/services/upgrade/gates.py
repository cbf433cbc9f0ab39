"""The checks between steps. Each returns the list of problems it sees (empty = pass).

"Back" for a restarted node means more than `healthy: true` in autopilot,
which lags by seconds (field notes): the node answers unsealed on the target
version, autopilot lists it as a healthy voter *with the new version* (proof
autopilot has heard from the restarted process), its own applied index has
reached the leader's commit index read just before, and all of that holds on
two polls in a row. None of these is a fixed sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from vaultops.errors import RunbookError, VaultOpsError
from vaultops.retry import TimedOut, poll
from vaultops.services.upgrade.observe import ClusterView, observe

if TYPE_CHECKING:
    from vaultops.services.upgrade.context import UpgradeContext

Check = Callable[[ClusterView], list[str]]


REPORT_AFTER, REPORT_EVERY = 5.0, 10.0


def wait_for(ctx: UpgradeContext, check: Check, *, what: str, timeout: float | None = None,
             stable: int = 1) -> ClusterView:
    """Poll the cluster until *check* passes on *stable* consecutive polls, or halt with the evidence."""
    limit = ctx.settings.gate_timeout if timeout is None else timeout
    started, passes, problems = time.monotonic(), 0, ["not checked yet"]
    view: ClusterView | None = None
    report = started + REPORT_AFTER

    def passed() -> ClusterView | None:
        nonlocal view, passes, problems, report
        view = observe(ctx.clients, storage=ctx.storage)
        problems = check(view)
        passes = 0 if problems else passes + 1
        if problems and time.monotonic() >= report:     # a wait says what it waits for, and how long
            ctx.emit(f"  waiting {time.monotonic() - started:.0f}s of up to {limit:.0f}s: {problems[0]}")
            report = time.monotonic() + REPORT_EVERY
        return view if passes >= stable else None
    try:
        return poll(passed, timeout=limit, interval=ctx.settings.poll, what=what, tolerate=())
    except TimedOut:
        assert view is not None
    if not problems:   # the last poll passed, but not the *stable* polls in a row a pass needs
        problems = [f"it passed only {passes} of the {stable} checks in a row it needs (it keeps changing)"]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise RunbookError(f"{what}: {problems[0]}{more} after {time.monotonic() - started:.0f}s",
                       hint="the evidence shows what each node reported; fix the cause",
                       evidence={"problems": problems, "waited_s": round(time.monotonic() - started, 1),
                                 **view.evidence()})


def cluster_problems(view: ClusterView, ctx: UpgradeContext, *, exclude: str | None = None) -> list[str]:
    """Every node but *exclude* reachable, unsealed and a healthy member; exactly one active node."""
    problems: list[str] = []
    for name, n in view.nodes.items():
        if name == exclude:
            continue
        if not n.reachable:
            problems.append(f"{name} is unreachable ({n.error})")
        elif not n.initialized:
            problems.append(f"{name} is not initialised")
        elif n.sealed:
            problems.append(f"{name} is sealed")
    actives = view.actives()
    if len(actives) != 1:
        problems.append("no node is active" if not actives else f"several nodes claim active: {actives}")
    problems += _raft_members(view, ctx, exclude) if view.raft else _ha_members(view, ctx, exclude)
    return problems


def _raft_members(view: ClusterView, ctx: UpgradeContext, exclude: str | None) -> list[str]:
    ap = view.autopilot
    if ap is None:
        return [f"autopilot state unavailable {list(view.errors)}"]
    problems = []
    for name in view.nodes:
        if name == exclude:
            continue
        s = ap.servers.get(ctx.raft_id(name))
        if s is None:
            problems.append(f"autopilot does not list {name} (raft id {ctx.raft_id(name)})")
        elif not s.healthy or s.status not in ("leader", "voter"):
            problems.append(f"autopilot reports {name} as {s.status}, healthy={s.healthy}")
    return problems


def _ha_members(view: ClusterView, ctx: UpgradeContext, exclude: str | None) -> list[str]:
    if view.ha is None:
        return [f"sys/ha-status unavailable {list(view.errors)}"] if view.active else []
    listed = {n.api_address.rstrip("/") for n in view.ha.nodes}
    return [f"sys/ha-status does not list {name}" for name in view.nodes
            if name != exclude and ctx.address(name) not in listed]


def safe_to_stop(view: ClusterView, ctx: UpgradeContext, node: str) -> list[str]:
    """Taking *node* down must not take the cluster below its failure tolerance."""
    problems = cluster_problems(view, ctx, exclude=node)
    target = view.nodes[node]
    if target.role == "active":
        problems.append(f"{node} is the active node: move leadership to an upgraded node first")
    if target.serving and view.raft and view.autopilot is not None:
        ap = view.autopilot
        me = ap.servers.get(ctx.raft_id(node))
        if me is not None and not me.healthy:
            # Autopilot already counts this node as failed (a rolled-back standby cut off from the
            # leader): stopping it lowers nothing, as long as every other voter is healthy.
            sick = sorted(s.name for sid, s in ap.servers.items() if sid != me.id and sid in ap.voters
                          and not s.healthy)
            if sick:
                problems.append(f"autopilot reports {', '.join(sick)} unhealthy besides {node}")
            return problems
        if not ap.healthy:
            problems.append("autopilot reports the cluster unhealthy")
        if ap.failure_tolerance < ctx.settings.min_failure_tolerance:
            problems.append(f"failure tolerance is {ap.failure_tolerance}; taking {node} down needs "
                            f"at least {ctx.settings.min_failure_tolerance}")
    return problems


def node_back(view: ClusterView, ctx: UpgradeContext, node: str, version: str,
              mark: dict[str, int] | None = None) -> list[str]:
    """*node* is back on *version*: unsealed, a healthy member the leader knows on that version, caught up."""
    n = view.nodes[node]
    if not n.serving:
        return [f"{node} is {n.role}" + (f" ({n.error})" if n.error else "")]
    problems = [] if n.version == version else [f"{node} runs {n.version}, not {version}"]
    problems += cluster_problems(view, ctx)
    if view.raft and view.autopilot is not None:
        ap = view.autopilot
        s = ap.servers.get(ctx.raft_id(node))
        if s is not None and s.version != version:
            problems.append(f"autopilot still lists {node} on {s.version or '?'} (not yet heard from the new process)")
        if ap.failure_tolerance < ctx.settings.min_failure_tolerance:
            problems.append(f"failure tolerance is {ap.failure_tolerance}, not yet restored to "
                            f"{ctx.settings.min_failure_tolerance}")
        problems += caught_up(ctx, view, node, {} if mark is None else mark)
    elif view.ha is not None:
        mine = [h for h in view.ha.nodes if h.api_address.rstrip("/") == ctx.address(node)]
        if mine and mine[0].version and mine[0].version != version:
            problems.append(f"sys/ha-status still lists {node} on {mine[0].version}")
    return problems


def caught_up(ctx: UpgradeContext, view: ClusterView, node: str, mark: dict[str, int]) -> list[str]:
    """The node's own applied index has reached the leader's commit index as it was when the node came back.

    The target is read once (leader first) and kept in *mark*: under a write load the
    commit index moves on every poll, and "caught up" means the node has replayed
    what it missed while down, not that it wins a race with the next write.
    """
    active = view.active
    if active is None or active.name == node:
        return []
    try:
        if "committed" not in mark:
            committed = ctx.clients[active.name].ha.leader().raft_committed_index
            if committed is None:
                return [f"the leader {active.name} reports no raft commit index"]
            mark["committed"] = committed
        applied = ctx.clients[node].ha.leader().raft_applied_index
    except VaultOpsError as exc:
        return [f"cannot read raft indexes: {exc.message}"]
    if applied is None:
        return [f"{node} reports no raft applied index"]
    if applied < mark["committed"]:
        return [f"{node} applied index {applied} behind the leader's commit index {mark['committed']}"]
    return []


def leader_on(view: ClusterView, version: str, *, not_node: str | None = None) -> list[str]:
    active = view.active
    if active is None:
        return ["no node is active yet"]
    if not_node is not None and active.name == not_node:
        return [f"{active.name} is still the active node"]
    if active.version != version:
        return [f"the active node {active.name} runs {active.version}, not {version}"]
    return []

"""Before the first node is touched, and after the last one is back.

preflight: every node reachable and unsealed, one active, all on one version;
the target newer than that version and than anything the cluster ever ran
(no downgrades); raft: autopilot healthy with failure tolerance >= 1;
Consul storage (with backup.consul): Consul has a leader, its raft configuration
names one, and the ACL token passes its self-check (vaultops.consul);
Shamir: enough keyholders (or shares given). The snapshot is its own step.

postflight: every node on the target, healthy, the version history records
it, and a canary written through each node reads back through every node.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from vaultops.errors import RunbookError, SecurityError, VaultOpsError
from vaultops.retry import TimedOut, poll
from vaultops.runbook.registry import Evidence, action
from vaultops.services.upgrade import gates
from vaultops.services.upgrade.observe import ClusterView, observe
from vaultops.services.upgrade.versions import is_newer, parse_version

if TYPE_CHECKING:
    from vaultops.consul import ConsulClient
    from vaultops.services.upgrade.context import UpgradeContext
    from vaultops.vault import NodeClient


def check_target(current: str, target: str, history: list[str] | None = None) -> None:
    """Refuse downgrades and no-ops before anything is recorded or touched."""
    parse_version(target)
    if target == current:
        raise SecurityError(f"every node already runs {target}", hint="nothing to upgrade")
    if not is_newer(target, current):
        raise SecurityError(f"refusing to downgrade from {current} to {target}",
                            hint="servers do not support downgrades: restore a backup taken on the older "
                                 "version instead (see `vaultops backup restore`)")
    newest = max(history or [current], key=parse_version)
    if is_newer(newest, target):
        raise SecurityError(f"the cluster already ran {newest}, newer than {target}",
                            hint="upgrade to the newest version it ran, or later")


def current_version(view: ClusterView) -> str:
    versions = sorted({n.version for n in view.nodes.values() if n.reachable})
    if len(versions) != 1:
        raise RunbookError(f"the nodes run different versions: {versions}",
                           hint="finish the earlier upgrade first (`vaultops upgrade resume`)",
                           evidence=view.evidence())
    return versions[0]


@action("preflight")
def preflight_action(ctx: UpgradeContext, *, to: str) -> Evidence:
    """Check the cluster is fit to upgrade and the target is a real upgrade."""
    view = observe(ctx.clients, storage=ctx.storage)
    problems = gates.cluster_problems(view, ctx)
    leader = view.active
    if problems or leader is None:  # cluster_problems names a missing active node
        raise RunbookError(f"preflight: {problems[0] if problems else 'no node is active'}",
                           hint="fix the cluster before upgrading", evidence={"problems": problems, **view.evidence()})
    current = current_version(view)
    active = ctx.clients[leader.name]
    history = _history(active)
    check_target(current, to, history)
    evidence: dict[str, Any] = {"from": current, "to": to, "active": leader.name, "version_history": history,
                                **view.evidence()}
    if view.raft:
        ap = view.autopilot
        if ap is None or not ap.healthy or ap.failure_tolerance < ctx.settings.min_failure_tolerance:
            raise RunbookError(
                f"preflight: autopilot {'unavailable' if ap is None else f'healthy={ap.healthy}'}, failure "
                f"tolerance {getattr(ap, 'failure_tolerance', '?')} (need {ctx.settings.min_failure_tolerance})",
                hint="a rolling upgrade needs a cluster that survives one node down: add voters or fix them",
                evidence=evidence)
    elif len(view.nodes) < 2:
        raise RunbookError("preflight: a single node cannot be upgraded without downtime",
                           hint="add a standby first", evidence=evidence)
    if ctx.consul is not None:
        evidence["consul"] = _consul_check(ctx.consul, evidence)
    evidence["seal"] = _seal_check(ctx, active)
    evidence["release"] = release_checks(ctx, current, to, seal_type=evidence["seal"]["type"])
    evidence["summary"] = f"{len(view.nodes)} nodes on {current}, active {leader.name}, target {to}"
    return evidence


def release_checks(ctx: UpgradeContext, current: str, to: str, *, seal_type: str) -> dict[str, Any]:
    """The release table's checks for this pair (services/upgrade/releases_known.py), the config ones
    run on every node's server configuration through its driver: refused before anything is touched."""
    from vaultops.services.upgrade.config_checks import run_config_checks
    from vaultops.services.upgrade.releases_known import checks_for

    report = checks_for(current, to)
    if not report.known:
        ctx.emit(f"  note: {report.note}")
    # compact: the step's evidence is bounded (the plan prints the details)
    return {"known": report.known, "checks": [t.id for t in report.checks], "note": report.note,
            "nodes": run_config_checks(report, ctx.drivers, seal_type=seal_type)}


def _consul_check(consul: ConsulClient, evidence: dict[str, Any]) -> dict[str, Any]:
    """The storage under the cluster: a node restarted on Consul without a leader never comes back."""
    facts = consul.facts()
    if facts.problems:
        raise RunbookError(f"preflight: {facts.problems[0]}",
                           hint="fix Consul (leader, raft peers, backup.consul.token_file) before upgrading",
                           evidence={**evidence, "consul": facts.to_json()})
    return facts.to_json()


def _history(client: NodeClient) -> list[str]:
    try:
        return client.ha.version_history()
    except VaultOpsError:
        return []


def _seal_check(ctx: UpgradeContext, active: NodeClient) -> dict[str, Any]:
    st = active.seal.status()
    out: dict[str, Any] = {"type": st.type, "threshold": st.t, "shares": st.n}
    if st.type != "shamir":
        return out
    given = ctx.unsealer.shares_given
    out["shares_given"] = given
    if given:
        if given < st.t:
            raise RunbookError(f"preflight: {given} shares given, the threshold is {st.t}",
                               hint="give at least the threshold on stdin (--share-stdin)")
        return out
    known = list(ctx.unsealer.keyholders)
    out["keyholders"] = known
    if len(known) < st.t:
        raise RunbookError(f"preflight: the keyholder manifest lists {len(known)} keyholders, the threshold "
                           f"is {st.t}",
                           hint="enroll keyholders (`vaultops shares enroll`) or give shares with --share-stdin")
    return out


@action("verify")
def postflight_action(ctx: UpgradeContext, *, to: str) -> Evidence:
    """Every node on the target and healthy; a canary written through each node reads back everywhere."""
    def all_on_target(v: ClusterView) -> list[str]:
        problems = gates.cluster_problems(v, ctx)
        problems += [f"{n.name} runs {n.version}" for n in v.nodes.values() if n.reachable and n.version != to]
        if v.raft and v.autopilot is not None and v.autopilot.failure_tolerance < ctx.settings.min_failure_tolerance:
            problems.append(f"failure tolerance {v.autopilot.failure_tolerance}")
        return problems

    view = gates.wait_for(ctx, all_on_target, what=f"postflight: not every node healthy on {to}")
    history = _history(ctx.clients[view.active.name]) if view.active is not None else []
    if history and to not in history:
        raise RunbookError(f"postflight: sys/version-history does not record {to}: {history}",
                           hint="check the active node's log", evidence=view.evidence())
    canaries = canary_round(ctx)
    return {"summary": f"{len(view.nodes)} nodes on {to}; canary through each node ok", "canaries": canaries,
            "version_history": history, **view.evidence()}


def canary_round(ctx: UpgradeContext) -> dict[str, str]:
    """Write a random value through each node and read every one back through every node.

    Standbys of OpenBao 2.x answer reads from their own copy, so a read through
    a standby waits until that standby has applied the writes (raft: its
    applied index reaches the leader's commit index; otherwise: re-read).
    """
    run = secrets.token_hex(4)
    written: dict[str, str] = {}
    for name, client in ctx.clients.items():
        path, value = f"{ctx.settings.canary_path}/{run}/{name}", secrets.token_hex(8)
        client.write(path, {"value": value})
        written[path] = value
    outcome: dict[str, str] = {}
    try:
        for name, client in ctx.clients.items():
            for path, value in written.items():
                _read_back(ctx, client, path, value)
            outcome[name] = "write+read ok"
    finally:
        for path in written:
            try:
                next(iter(ctx.clients.values())).delete(path)
            except VaultOpsError:
                pass
    return outcome


def _read_back(ctx: UpgradeContext, client: NodeClient, path: str, value: str) -> None:
    last = "no answer"

    def read_back() -> bool | None:
        nonlocal last
        try:
            got = (client.read(path).get("data") or {}).get("value")
        except VaultOpsError as exc:
            last = exc.message
            return None
        last = "a different value"
        return True if got == value else None
    try:
        poll(read_back, timeout=ctx.settings.gate_timeout, interval=ctx.settings.poll / 2, what="read back",
             tolerate=())
    except TimedOut:
        raise RunbookError(f"postflight: canary {path} written through the cluster never read back through "
                           f"{client.name}: {last}", hint="check replication to that node and its log") from None

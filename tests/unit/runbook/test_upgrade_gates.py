"""The upgrade gates on synthetic cluster views: when a node may go down, when it is back."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from vaultops.errors import RunbookError, SecurityError
from vaultops.services.upgrade import gates
from vaultops.services.upgrade.context import GateSettings
from vaultops.services.upgrade.observe import ClusterView, NodeView
from vaultops.services.upgrade.preflight import check_target
from vaultops.vault.models import AutopilotServer, AutopilotState


def _node(name: str, role: str = "standby", version: str = "2.6.2", **kw: Any) -> NodeView:
    sealed = role in ("sealed",)
    return NodeView(name=name, reachable=role != "unreachable", initialized=True, sealed=sealed, role=role,
                    version=version, **kw)


def _ap(ft: int = 1, healthy: bool = True, versions: dict[str, str] | None = None) -> AutopilotState:
    versions = versions or {}
    servers = {n: AutopilotServer(id=n, name=n, address="", status="leader" if n == "n1" else "voter",
                                  healthy=True, last_index=1, last_term=1, last_contact="0s",
                                  version=versions.get(n, "2.6.2"), node_status="alive")
               for n in ("n1", "n2", "n3")}
    return AutopilotState(healthy=healthy, failure_tolerance=ft, leader="n1", voters=("n1", "n2", "n3"),
                          servers=servers)


CTX = SimpleNamespace(settings=GateSettings(), raft_id=lambda n: n, address=lambda n: f"http://{n}",
                      clients={})


def _view(*nodes: NodeView, ap: AutopilotState | None = None) -> ClusterView:
    return ClusterView(storage="raft", nodes={n.name: n for n in nodes}, autopilot=ap or _ap())


def test_a_healthy_standby_may_go_down() -> None:
    view = _view(_node("n1", "active"), _node("n2"), _node("n3"))
    assert gates.safe_to_stop(view, CTX, "n2") == []


@pytest.mark.parametrize(("view", "expect"), [
    (_view(_node("n1", "active"), _node("n2"), _node("n3", "sealed")), "n3 is sealed"),
    (_view(_node("n1", "active"), _node("n2"), _node("n3", "unreachable")), "n3 is unreachable"),
    (_view(_node("n1", "active"), _node("n2"), _node("n3"), ap=_ap(ft=0)), "failure tolerance is 0"),
    (_view(_node("n1", "active"), _node("n2"), _node("n3"), ap=_ap(healthy=False)), "unhealthy"),
    (_view(_node("n1", "standby"), _node("n2"), _node("n3")), "no node is active"),
])
def test_never_a_second_node_down_while_degraded(view: ClusterView, expect: str) -> None:
    problems = gates.safe_to_stop(view, CTX, "n2")
    assert any(expect in p for p in problems), problems


def test_the_active_node_is_never_stopped() -> None:
    view = _view(_node("n1", "active"), _node("n2"), _node("n3"))
    assert any("active node" in p for p in gates.safe_to_stop(view, CTX, "n1"))


def test_a_node_already_down_may_be_stopped_again_if_the_rest_is_healthy() -> None:
    """Resume after a kill between 'stopped' and 'recorded': tolerance is spent on that node already."""
    view = _view(_node("n1", "active"), _node("n2", "unreachable"), _node("n3"), ap=_ap(ft=0))
    assert gates.safe_to_stop(view, CTX, "n2") == []


def _sick(ap: AutopilotState, *names: str) -> AutopilotState:
    servers = {sid: AutopilotServer(**{**vars(s), "healthy": sid not in names}) for sid, s in ap.servers.items()}
    return AutopilotState(healthy=False, failure_tolerance=0, leader=ap.leader, voters=ap.voters, servers=servers)


def test_a_serving_node_autopilot_already_counts_as_failed_may_be_stopped() -> None:
    """A standby cut off from the leader (the rollback of a failed probe): stopping it lowers nothing."""
    view = _view(_node("n1", "active"), _node("n2"), _node("n3"), ap=_sick(_ap(), "n2"))
    assert gates.safe_to_stop(view, CTX, "n2") == []
    assert any("unhealthy" in p for p in gates.safe_to_stop(view, CTX, "n3"))   # a healthy one: never


def test_not_while_another_voter_is_unhealthy_too() -> None:
    view = _view(_node("n1", "active"), _node("n2"), _node("n3"), ap=_sick(_ap(), "n2", "n3"))
    assert any("n3 unhealthy besides n2" in p for p in gates.safe_to_stop(view, CTX, "n2"))


def test_back_needs_autopilot_to_report_the_new_version() -> None:
    ctx = SimpleNamespace(**vars(CTX))
    ctx.clients = {"n1": _leader(committed=10), "n2": _leader(applied=10)}
    stale = _view(_node("n1", "active"), _node("n2", version="2.7.2"), _node("n3"))
    assert any("autopilot still lists n2 on 2.6.2" in p for p in gates.node_back(stale, ctx, "n2", "2.7.2", {}))
    fresh = _view(_node("n1", "active"), _node("n2", version="2.7.2"), _node("n3"), ap=_ap(versions={"n2": "2.7.2"}))
    assert gates.node_back(fresh, ctx, "n2", "2.7.2", {}) == []


def test_back_needs_the_node_caught_up_with_the_commit_index_seen_when_it_returned() -> None:
    ctx = SimpleNamespace(**vars(CTX))
    ctx.clients = {"n1": _leader(committed=50), "n2": _leader(applied=40)}
    view = _view(_node("n1", "active"), _node("n2", version="2.7.2"), _node("n3"), ap=_ap(versions={"n2": "2.7.2"}))
    mark: dict[str, int] = {}
    assert gates.node_back(view, ctx, "n2", "2.7.2", mark) == ["n2 applied index 40 behind the leader's commit index 50"]
    ctx.clients = {"n1": _leader(committed=99), "n2": _leader(applied=50)}   # the leader moved on: target kept
    assert gates.node_back(view, ctx, "n2", "2.7.2", mark) == []


def test_leader_must_run_the_target() -> None:
    view = _view(_node("n1", "standby", "2.7.2"), _node("n2", "active", "2.6.2"), _node("n3"))
    assert gates.leader_on(view, "2.7.2", not_node="n1") == ["the active node n2 runs 2.6.2, not 2.7.2"]


@pytest.mark.parametrize(("current", "target", "history", "message"), [
    ("2.7.2", "2.6.2", None, "refusing to downgrade from 2.7.2 to 2.6.2"),
    ("2.7.2", "2.7.2", None, "already runs 2.7.2"),
    ("2.6.2", "2.7.0", ["2.6.2", "2.7.1"], "already ran 2.7.1"),
])
def test_downgrades_and_no_ops_are_refused(current: str, target: str, history: list[str] | None,
                                           message: str) -> None:
    with pytest.raises(SecurityError, match=message):
        check_target(current, target, history)


def test_an_upgrade_is_accepted() -> None:
    check_target("2.6.2", "2.7.2", ["2.6.1", "2.6.2"])


def _leader(*, committed: int | None = None, applied: int | None = None) -> Any:
    leader = SimpleNamespace(raft_committed_index=committed, raft_applied_index=applied)
    return SimpleNamespace(ha=SimpleNamespace(leader=lambda: leader))


def test_a_wait_says_what_it_waits_for_and_how_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: while a gate waits it shows what it waits for and for how long, then passes or halts."""
    from vaultops.errors import RunbookError

    sealed = _view(_node("n1", "active"), _node("n2"), _node("n3", "sealed"))
    healthy = _view(_node("n1", "active"), _node("n2"), _node("n3"))
    views = iter([sealed] * 4 + [healthy] * 2)
    monkeypatch.setattr(gates, "observe", lambda clients, storage: next(views))
    monkeypatch.setattr(gates, "REPORT_AFTER", 0.0)
    monkeypatch.setattr(gates, "REPORT_EVERY", 0.0)
    said: list[str] = []
    ctx = SimpleNamespace(settings=GateSettings(gate_timeout=30, poll=0.01), clients={}, storage="raft",
                          raft_id=str, emit=said.append)
    assert gates.wait_for(ctx, lambda v: gates.cluster_problems(v, ctx), what="cluster healthy", stable=2) is healthy
    assert len(said) == 4 and all(re.fullmatch(r"  waiting \d+s of up to 30s: n3 is sealed", s) for s in said), said

    monkeypatch.setattr(gates, "observe", lambda clients, storage: sealed)
    ctx.settings = GateSettings(gate_timeout=0.05, poll=0.01)
    with pytest.raises(RunbookError, match=r"cluster healthy: n3 is sealed after \d+s") as info:
        gates.wait_for(ctx, lambda v: gates.cluster_problems(v, ctx), what="cluster healthy")
    assert info.value.evidence["problems"] == ["n3 is sealed"]


def test_a_rehearsal_copy_must_stay_healthy_for_seconds_not_one_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after the restore, one healthy answer (from before the election) is followed by a new
    leader's autopilot listing the followers as left: the wait ends only on a run of healthy polls."""
    from vaultops.services.upgrade import rehearse

    healthy = _view(_node("n1", "active"), _node("n2"), _node("n3"))
    left = _view(_node("n1", "active"), _node("n2"), _node("n3"), ap=_sick(_ap(), "n2", "n3"))
    views = iter([healthy, left, left] + [healthy] * 40)
    seen: list[ClusterView] = []
    monkeypatch.setattr(rehearse, "SETTLE_SECONDS", 0.05)   # 5 polls of 0.01 s
    monkeypatch.setattr(gates, "observe", lambda *_a, **_k: seen.append(next(views)) or seen[-1])
    ctx = SimpleNamespace(**{**vars(CTX), "storage": "raft", "emit": lambda _m: None,
                             "settings": GateSettings(poll=0.01)})
    rehearse._wait_settled(ctx)  # type: ignore[arg-type]
    assert seen[1] is left and len(seen) == 3 + 5
    views = iter([healthy, left] * 500)
    monkeypatch.setattr(rehearse, "SETTLE_TIMEOUT", 0.5)
    with pytest.raises(RunbookError, match="did not settle into a healthy cluster: (autopilot reports n2 as "
                                           "voter|it passed only 1 of the 5 checks in a row)"):
        rehearse._wait_settled(ctx)  # type: ignore[arg-type]   # (whichever poll the deadline fell on)


def test_a_gate_that_times_out_on_a_passing_poll_halts_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timed out while passing but short of the polls in a row it needs: the halt says so (it raised
    IndexError on the empty problem list)."""
    healthy = _view(_node("n1", "active"), _node("n2"), _node("n3"))
    monkeypatch.setattr(gates, "observe", lambda *_a, **_k: healthy)
    ctx = SimpleNamespace(**{**vars(CTX), "storage": "raft", "emit": lambda _m: None,
                             "settings": GateSettings(poll=0.01)})
    with pytest.raises(RunbookError) as err:
        gates.wait_for(ctx, lambda v: gates.cluster_problems(v, ctx), what="n2 did not settle",  # type: ignore[arg-type]
                       timeout=0.2, stable=10**6)
    assert re.search(r"^n2 did not settle: it passed only \d+ of the 1000000 checks in a row", err.value.message)
    assert err.value.evidence["problems"]

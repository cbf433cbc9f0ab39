"""Conditions named for status and the console; the survivor choice and what could be lost."""

from __future__ import annotations

from vaultops.services.recovery.detect import Kind, conditions
from vaultops.services.recovery.lastseen import Seen, SeenServer
from vaultops.services.recovery.membership import tolerance_without
from vaultops.services.recovery.quorum import choose
from vaultops.services.recovery.raftlog import LogState
from vaultops.services.status import NodeStatus
from vaultops.vault.models import AutopilotServer, AutopilotState


def node(name: str, *, up: bool = True, role: str = "standby", sealed: bool = False) -> NodeStatus:
    return NodeStatus(name=name, address=f"http://{name}:8200", reachable=up, initialized=True if up else None,
                      sealed=sealed if up else None, ha_role=role if up else None)


def autopilot(voters: dict[str, bool], *, tolerance: int, leader: str = "n1") -> AutopilotState:
    servers = {n: AutopilotServer(id=n, name=n, address=f"{n}:8201", status="leader" if n == leader else "voter",
                                  healthy=ok, last_index=10, last_term=2, last_contact="0s", version="2.7.2",
                                  node_status="alive") for n, ok in voters.items()}
    return AutopilotState(healthy=all(voters.values()), failure_tolerance=tolerance, leader=leader,
                          voters=tuple(voters), servers=servers)


def seen(voters: list[str], *, highest: int = 100, commit: int = 90) -> Seen:
    return Seen(cluster="c", at="2026-01-01T00:00:00+00:00", leader=voters[0], commit_index=commit,
                servers=tuple(SeenServer(v, v, f"{v}:8201", True, highest if i == 0 else 50, 3)
                              for i, v in enumerate(voters)))


def kinds(found: list) -> list[str]:  # type: ignore[type-arg]
    return [c.kind.value for c in found]


def test_two_of_three_gone_is_quorum_lost_with_its_command() -> None:
    found = conditions(storage="raft", nodes=[node("n1"), node("n2", up=False), node("n3", up=False)],
                       autopilot=None, seen=seen(["n1", "n2", "n3"]))
    assert kinds(found) == ["quorum-lost"]
    assert found[0].commands == ("vaultops recover quorum",) and found[0].nodes == ("n2", "n3")


def test_a_leader_that_still_claims_active_without_a_majority_is_quorum_lost() -> None:
    nodes = [node("n1", role="active"), node("n2", up=False), node("n3", up=False), node("n4", up=False),
             node("n5")]
    assert kinds(conditions(storage="raft", nodes=nodes, autopilot=None)) == ["quorum-lost"]


def test_the_recorded_voters_count_not_the_configured_nodes() -> None:
    # five configured, but only three were voters when status last saw a leader: two of them answer
    nodes = [node("n1"), node("n2"), node("n3", up=False), node("n4", up=False), node("n5", up=False)]
    assert conditions(storage="raft", nodes=nodes, autopilot=None, seen=seen(["n1", "n2", "n3"])) != []
    assert Kind.QUORUM_LOST not in [c.kind for c in conditions(storage="raft", nodes=nodes, autopilot=None,
                                                                seen=seen(["n1", "n2", "n3"]))]


def test_one_dead_of_three_is_degraded_and_a_dead_node_each_with_replace() -> None:
    found = conditions(storage="raft", nodes=[node("n1", role="active"), node("n2"), node("n3", up=False)],
                       autopilot=autopilot({"n1": True, "n2": True, "n3": False}, tolerance=0))
    assert kinds(found) == ["degraded", "node-dead"]
    assert found[0].commands == ("vaultops node replace n3",)
    assert "vaultops node replace n3" in found[1].commands


def test_a_healthy_cluster_has_no_condition_and_an_answering_stranger_is_named() -> None:
    healthy = autopilot({"n1": True, "n2": True, "n3": True}, tolerance=1)
    assert conditions(storage="raft", nodes=[node("n1", role="active"), node("n2"), node("n3")],
                      autopilot=healthy) == []
    one = autopilot({"n1": True}, tolerance=0)
    found = conditions(storage="raft", nodes=[node("n1", role="active"), node("n2")], autopilot=one)
    assert kinds(found) == ["degraded", "not-a-member"]


def test_every_node_gone_points_at_the_backup() -> None:
    found = conditions(storage="raft", nodes=[node("n1", up=False), node("n2", up=False)], autopilot=None)
    assert kinds(found) == ["all-lost"] and found[0].commands == ("vaultops recover from-backup",)


def test_postgresql_pair_says_the_standby_took_over_and_never_quorum() -> None:
    found = conditions(storage="postgresql", nodes=[node("n1", up=False), node("n2", role="active")],
                       autopilot=None)
    assert kinds(found) == ["standby-took-over"]
    assert "no quorum to lose" in found[0].message and found[0].commands == ("vaultops node replace n1",)
    assert conditions(storage="postgresql", nodes=[node("n1", role="active"), node("n2")], autopilot=None) == []


def test_failure_tolerance_after_removing_a_dead_voter() -> None:
    ap = autopilot({"n1": True, "n2": True, "n3": True, "n4": True, "n5": False}, tolerance=1)
    assert tolerance_without(ap, "n5") == 1      # 4 voters, quorum 3, 4 healthy
    assert tolerance_without(ap, "n1") == 0      # 4 voters, 3 healthy
    assert tolerance_without(autopilot({"n1": True, "n2": False}, tolerance=0), "n2") == 0


def log(name: str, index: int, term: int) -> LogState:
    return LogState(name, index, term, index, term, True, ())


def test_the_survivor_with_the_most_recent_log_wins_by_term_then_index() -> None:
    assert choose([log("a", 90, 3), log("b", 120, 3)], None).chosen == "b"
    assert choose([log("a", 90, 4), log("b", 120, 3)], None).chosen == "a"     # raft's own order: term first
    assert choose([log("a", 90, 3), log("b", 90, 3)], None).chosen == "a"     # a tie: the first configured


def test_could_be_lost_is_the_range_between_the_choice_and_the_highest_seen() -> None:
    pick = choose([log("a", 90, 3), log("b", 95, 3)], seen(["x", "a", "b"], highest=120, commit=110))
    assert pick.chosen == "b" and pick.could_be_lost == (96, 120)
    assert "entries 96..120 (25)" in pick.summary() and "x had" in pick.summary()
    whole = choose([log("a", 130, 3)], seen(["x", "a"], highest=120))
    assert whole.could_be_lost is None and "holds everything seen" in whole.summary()
    assert "no index was recorded" in choose([log("a", 1, 1)], None).summary()

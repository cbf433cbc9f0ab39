"""The status verdict (services/status.py): joining is its own state, not healthy and not 'degraded'."""

from __future__ import annotations

from vaultops.cli.status import render_status
from vaultops.services.status import ClusterStatus, NodeStatus, StatusExit
from vaultops.vault.models import AutopilotServer, AutopilotState


def _server(name: str, status: str, *, healthy: bool = True) -> AutopilotServer:
    return AutopilotServer(id=name, name=name, address="127.0.0.1:1", status=status, healthy=healthy,
                           last_index=10, last_term=2, last_contact="0s", version="2.7.2", node_status="alive")


def _status(ap: AutopilotState) -> ClusterStatus:
    nodes = tuple(NodeStatus(name=n, address=f"http://127.0.0.1:{i}", reachable=True, initialized=True,
                             sealed=False) for i, n in enumerate(("node1", "node2", "node3"), 1))
    return ClusterStatus(name="c", storage="raft", nodes=nodes, autopilot=ap)


def _autopilot(roles: dict[str, str], *, tolerance: int, healthy: bool = True,
               unhealthy: tuple[str, ...] = ()) -> AutopilotState:
    servers = {n: _server(n, r, healthy=n not in unhealthy) for n, r in roles.items()}
    voters = tuple(n for n, r in roles.items() if r in ("leader", "voter"))
    return AutopilotState(healthy=healthy, failure_tolerance=tolerance, leader="node1", voters=voters,
                          servers=servers)


def test_non_voters_joining_at_failure_tolerance_0_is_joining_not_healthy() -> None:
    st = _status(_autopilot({"node1": "leader", "node2": "non-voter", "node3": "non-voter"}, tolerance=0))
    assert st.exit is StatusExit.JOINING and int(st.exit) == 15
    assert st.joining == ("node2", "node3")
    doc = st.to_json()["cluster"]
    assert doc["exit"] == "joining" and doc["healthy"] is False and "node2, node3 still joining" in doc["reason"]
    assert render_status(st).splitlines()[-1].startswith("joining: failure tolerance 0: node2, node3")


def test_joining_while_autopilot_still_calls_a_non_voter_unhealthy() -> None:
    ap = _autopilot({"node1": "leader", "node2": "voter", "node3": "non-voter"}, tolerance=0, healthy=False,
                    unhealthy=("node3",))
    assert _status(ap).exit is StatusExit.JOINING


def test_an_unhealthy_voter_is_degraded_whoever_joins() -> None:
    ap = _autopilot({"node1": "leader", "node2": "voter", "node3": "non-voter"}, tolerance=0, healthy=False,
                    unhealthy=("node2",))
    assert _status(ap).exit is StatusExit.DEGRADED and _status(ap).reason == ""


def test_three_voters_with_tolerance_1_are_healthy() -> None:
    st = _status(_autopilot({"node1": "leader", "node2": "voter", "node3": "voter"}, tolerance=1))
    assert st.exit is StatusExit.HEALTHY and st.to_json()["cluster"]["reason"] is None
    assert render_status(st).splitlines()[-1] == "healthy"


def test_a_single_voter_alone_is_healthy() -> None:
    ap = AutopilotState(healthy=True, failure_tolerance=0, leader="node1", voters=("node1",),
                        servers={"node1": _server("node1", "leader")})
    assert _status(ap).exit is StatusExit.HEALTHY

"""Where the conditions of nodes that are gone are shown: `vaultops status` (text) and the console's dashboard."""

from __future__ import annotations

from vaultops.cli.conditions import render_conditions
from vaultops.services.dashboard import Cell, CellState, DashboardSnapshot, NodeRow
from vaultops.services.recovery.detect import Condition, Kind, conditions
from vaultops.services.status import NodeStatus
from vaultops.tui.dashboard_screen import condition_lines


def _node(name: str, *, up: bool, role: str | None = None) -> NodeStatus:
    if not up:
        return NodeStatus(name=name, address=f"http://{name}:8200", reachable=False, error="connection refused")
    return NodeStatus(name=name, address=f"http://{name}:8200", reachable=True, initialized=True, sealed=False,
                      ha_role=role or "standby")


def _snapshot(rows: list[NodeRow], storage: str = "raft") -> DashboardSnapshot:
    absent = Cell(CellState.ABSENT)
    return DashboardSnapshot(cluster="prod", storage=storage, generation=1, nodes=tuple(rows),
                             raft=Cell(CellState.ERROR, error="no active node"), backup=absent, journal=absent)


def _row(status: NodeStatus) -> NodeRow:
    state = CellState.OK if status.reachable else CellState.ERROR
    return NodeRow(name=status.name, address=status.address, status=Cell(state, value=status),
                   tls=Cell(CellState.ABSENT))


def test_status_text_names_the_condition_and_the_command_wrapped_to_the_terminal() -> None:
    nodes = [_node("vault-1", up=True), _node("vault-2", up=False), _node("vault-3", up=False)]
    conds = conditions(storage="raft", nodes=nodes, autopilot=None)
    assert [c.kind for c in conds] == [Kind.QUORUM_LOST]
    text = render_conditions(conds, width=60)
    assert all(len(line) <= 60 for line in text.splitlines())
    assert text.splitlines()[0].startswith("quorum-lost: 1 of 3 voters answer")
    assert text.splitlines()[-1] == "  -> run: vaultops recover quorum"
    assert render_conditions(conds).count("\n") == 1          # piped: one line each, not cut


def test_every_command_of_a_condition_is_offered() -> None:
    cond = Condition(Kind.NODE_DEAD, "vault-2 does not answer",
                     ("vaultops node replace vault-2", "vaultops node remove vault-2"), ("vault-2",))
    assert render_conditions([cond]).splitlines()[1:] == ["  -> run: vaultops node replace vault-2",
                                                          "  -> run: vaultops node remove vault-2"]


def test_the_dashboard_offers_the_same_command_once_every_cell_has_settled() -> None:
    rows = [_row(_node("vault-1", up=True)), _row(_node("vault-2", up=False)), _row(_node("vault-3", up=False))]
    text = "".join(t for _style, t, *_ in condition_lines(_snapshot(rows)))
    assert "quorum-lost: 1 of 3 voters answer" in text and "run: vaultops recover quorum" in text
    pending = rows[:2] + [NodeRow(name="vault-3", address="http://vault-3:8200", status=Cell(CellState.PENDING),
                                  tls=Cell(CellState.ABSENT))]
    assert condition_lines(_snapshot(pending)) == []      # not judged on half the answers


def test_the_dashboard_says_a_pair_standby_took_over() -> None:
    rows = [_row(_node("vault-1", up=False)), _row(_node("vault-2", up=True, role="active"))]
    text = "".join(t for _style, t, *_ in condition_lines(_snapshot(rows, storage="postgresql")))
    assert "standby-took-over: vault-1 does not answer; vault-2 is active" in text
    assert "run: vaultops node replace vault-1" in text
    assert condition_lines(_snapshot([_row(_node("vault-1", up=True, role="active")),
                                      _row(_node("vault-2", up=True))], storage="postgresql")) == []

"""The console's upgrade screen marks the point of no return in the planned and the running steps."""

from __future__ import annotations

from types import SimpleNamespace

from vaultops.runbook.state import RunState, StepState, StepStatus
from vaultops.tui.upgrade_screen import PNR_NOTE, Plan, UpgradeScreen


def _steps() -> list[StepState]:
    return [StepState(id=i, name=i, action=a, params={}, node="node1")
            for i, a in (("standby[node2].probe", "probe"), ("move-leadership", "step_down"),
                         ("probe-old-active", "probe"))]


def _text(screen: UpgradeScreen) -> list[str]:
    return "".join(t[1] for t in screen._steps_text()).splitlines()


def test_the_plan_and_the_live_run_mark_the_step_down() -> None:
    screen = UpgradeScreen(SimpleNamespace(cluster="c", keyholders=()))  # type: ignore[arg-type]
    screen.state.plan = Plan(current="2.6.2", to="2.7.2", leader="node1", steps=tuple(_steps()))
    planned = _text(screen)
    assert [PNR_NOTE in line for line in planned] == [False, True, False]
    run = RunState(run_id="r", runbook="upgrade", runbook_path="x", runbook_digest="d", cluster="c",
                   variables={}, steps=_steps())
    run.steps[0].status = StepStatus.DONE
    run.steps[1].status = StepStatus.RUNNING
    screen.state.run = run
    live = _text(screen)
    assert [PNR_NOTE in line for line in live] == [False, True, False] and live[1].startswith("[>] move-leadership")


def test_a_step_message_is_cut_at_the_pane_edge_not_at_40_characters() -> None:
    screen = UpgradeScreen(SimpleNamespace(cluster="c", keyholders=()))  # type: ignore[arg-type]
    run = RunState(run_id="r", runbook="upgrade", runbook_path="x", runbook_digest="d", cluster="c",
                   variables={}, steps=_steps())
    long = "node2 answered on 2.7.2 and autopilot lists it as a healthy voter " + "x" * 200
    run.steps[0].status, run.steps[0].message = StepStatus.DONE, long
    run.steps[2].message = "forwarded write acknowledged by the old active node1"
    screen.state.run = run
    for columns in (80, 160):
        screen._app = SimpleNamespace(output=SimpleNamespace(  # type: ignore[assignment]
            get_size=lambda c=columns: SimpleNamespace(columns=c)))
        lines = _text(screen)
        assert len(lines[0]) == columns - 4 and lines[0].endswith("…") and long[:columns - 40] in lines[0]
        assert lines[2].endswith("forwarded write acknowledged by the old active node1")  # fits: whole

"""The engine with small in-memory actions: state after every step, halts, pauses, resume, rewind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vaultops.errors import RunbookError, RunbookPaused, VaultError
from vaultops.journal import Journal
from vaultops.runbook.engine import Engine
from vaultops.runbook.loader import parse_runbook, resolve
from vaultops.runbook.registry import Action, Registry
from vaultops.runbook.state import RunStatus, StepStatus, load_state, run_lock


class World:
    """What the actions act on, standing in for a cluster."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.fail: set[str] = set()
        self.pause: set[str] = set()
        self.broken: set[str] = set()   # effects that no longer hold (verify fails)


def _actions(world: World) -> Registry[World]:
    def work(ctx: World, *, node: str, what: str) -> dict[str, Any]:
        key = f"{what}:{node}"
        if key in world.fail:
            raise VaultError(f"{node} answered 500", hint="look at it", node=node)
        if key in world.pause:
            raise RunbookPaused(f"{node} needs keyholders", hint="bring them")
        world.done.append(key)
        return {"summary": f"{key} ok", "seen": {"node": node}}

    def holds(ctx: World, *, node: str, what: str) -> str | None:
        return "broken" if f"{what}:{node}" in world.broken else None

    first: Action[World] = Action("first", lambda ctx, command: {"summary": "first"})
    return Registry({"first": first, "shell": Action("shell", work, holds)})  # the runbook names `shell`


RUNBOOK = {"name": "demo", "params": {"v": {"required": True}}, "steps": [
    {"name": "first", "action": "shell", "with": {"command": "true"}},
    {"name": "each", "for_each": "{{ nodes }}", "steps": [
        {"name": "a", "action": "shell", "with": {"node": "{{ node }}", "what": "a"}},
        {"name": "b", "action": "shell", "with": {"node": "{{ node }}", "what": "b"}}]},
]}


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    world = World()
    rb = parse_runbook(RUNBOOK, actions=_actions(world))
    plan = resolve(rb, {"v": 1, "nodes": ["n1", "n2"]})
    plan = [p if p.name != "first" else p.__class__(p.id, p.name, "first", p.params) for p in plan]
    observed: list[str] = []
    journal = Journal(tmp_path / "journal.jsonl", cluster="c")
    eng = Engine(state_path=tmp_path / "state.json", ctx=world, actions=_actions(world), journal=journal,
                 observe=lambda: {"n1": {"role": "active"}}, listener=lambda s: observed.append(s.status.value))
    return world, eng, rb, plan, tmp_path, observed


def test_runs_every_step_in_order_saving_state_and_journaling_evidence(setup) -> None:  # type: ignore[no-untyped-def]
    world, eng, rb, plan, tmp, observed = setup
    state = eng.start(rb, {"v": 1}, plan)
    assert world.done == ["a:n1", "b:n1", "a:n2", "b:n2"]
    saved = load_state(tmp / "state.json")
    assert saved.status == RunStatus.DONE and all(s.status == StepStatus.DONE for s in saved.steps)
    assert saved.nodes == {"n1": {"role": "active"}} and state.done_count == 5
    entries = [json.loads(line) for line in (tmp / "journal.jsonl").read_text().splitlines()]
    steps = [e for e in entries if e["action"] == "runbook.step"]
    assert [e["details"]["step"] for e in steps][1:] == ["each[n1].a", "each[n1].b", "each[n2].a", "each[n2].b"]
    assert steps[1]["details"]["evidence"]["seen"] == {"node": "n1"} and steps[1]["node"] == "n1"
    assert observed[-1] == "done" and len(observed) >= 10


def test_a_failing_step_halts_with_evidence_and_resume_runs_it_again(setup) -> None:  # type: ignore[no-untyped-def]
    world, eng, rb, plan, tmp, _ = setup
    world.fail.add("a:n2")
    with pytest.raises(RunbookError, match=r"halted at each\[n2\].a: n2 answered 500") as err:
        eng.start(rb, {"v": 1}, plan)
    assert "resume" in (err.value.hint or "")
    saved = load_state(tmp / "state.json")
    assert saved.status == RunStatus.HALTED and saved.halt["step"] == "each[n2].a"
    assert saved.current.id == "each[n2].a" and saved.current.status == StepStatus.FAILED
    world.fail.clear()
    eng.resume(saved)
    assert world.done == ["a:n1", "b:n1", "a:n2", "b:n2"]
    assert load_state(tmp / "state.json").status == RunStatus.DONE
    actions = [json.loads(line)["action"] for line in (tmp / "journal.jsonl").read_text().splitlines()]
    assert "runbook.halt" in actions and "runbook.resume" in actions and actions[-1] == "runbook.done"


def test_a_pause_is_not_a_failure(setup) -> None:  # type: ignore[no-untyped-def]
    world, eng, rb, plan, tmp, _ = setup
    world.pause.add("b:n1")
    with pytest.raises(RunbookPaused):
        eng.start(rb, {"v": 1}, plan)
    saved = load_state(tmp / "state.json")
    assert saved.status == RunStatus.PAUSED and saved.prompt == "n1 needs keyholders"


def test_resume_redoes_a_group_whose_effect_no_longer_holds(setup) -> None:  # type: ignore[no-untyped-def]
    world, eng, rb, plan, tmp, _ = setup
    world.fail.add("a:n2")
    with pytest.raises(RunbookError):
        eng.start(rb, {"v": 1}, plan)
    world.fail.clear()
    world.broken.add("b:n1")          # n1's upgrade no longer holds in the real cluster
    eng.resume(load_state(tmp / "state.json"))
    assert world.done == ["a:n1", "b:n1", "a:n1", "b:n1", "a:n2", "b:n2"]


def test_resume_of_a_finished_run_does_nothing(setup) -> None:  # type: ignore[no-untyped-def]
    world, eng, rb, plan, tmp, _ = setup
    eng.start(rb, {"v": 1}, plan)
    eng.resume(load_state(tmp / "state.json"))
    assert len(world.done) == 4


def test_one_process_per_state_file(tmp_path: Path) -> None:
    with run_lock(tmp_path / "s.json"):
        with pytest.raises(RunbookError, match="another vaultops process"):
            with run_lock(tmp_path / "s.json"):
                pass


def test_kill_hook_needs_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from vaultops.runbook import testhooks

    monkeypatch.setenv("VAULTOPS_TEST_KILL_AT", "3:unsaved")
    monkeypatch.delenv("VAULTOPS_TEST_HOOKS", raising=False)
    assert testhooks.kill_point() is None
    monkeypatch.setenv("VAULTOPS_TEST_HOOKS", "1")
    assert testhooks.kill_point() == (3, False)
    monkeypatch.setenv("VAULTOPS_TEST_KILL_AT", "4")
    assert testhooks.kill_point() == (4, True)

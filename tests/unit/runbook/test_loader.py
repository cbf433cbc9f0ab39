from __future__ import annotations

from pathlib import Path

import pytest

from vaultops.errors import RunbookError
from vaultops.runbook.loader import load_runbook, parse_runbook, resolve, substitute
from vaultops.runbook.registry import Action, Registry
from vaultops.services.upgrade.steps import UPGRADE_ACTIONS

REPO = Path(__file__).resolve().parents[3]


def test_upgrade_runbook_resolves_standbys_first_then_step_down_then_old_active() -> None:
    rb = load_runbook(REPO / "runbooks" / "upgrade.yaml", actions=UPGRADE_ACTIONS)
    plan = resolve(rb, rb.variables({"to": "2.7.2"}) | {"leader": "a", "standbys": ["b", "c"], "nodes": ["a", "b", "c"]})
    ids = [s.id for s in plan]
    assert ids[:2] == ["preflight", "snapshot"]
    assert ids.index("standby[b].back") < ids.index("standby[c].stop") < ids.index("move-leadership")
    assert ids.index("move-leadership") < ids.index("old-active[a].stop")
    assert ids[-1] == "postflight"
    stop = plan[ids.index("old-active[a].stop")]
    assert stop.node == "a" and stop.group == "old-active[a]" and stop.params == {"node": "a"}
    assert plan[ids.index("move-leadership")].params == {"node": "a", "version": "2.7.2"}


def test_required_parameter_and_unknown_parameter() -> None:
    rb = load_runbook(REPO / "runbooks" / "upgrade.yaml", actions=UPGRADE_ACTIONS)
    with pytest.raises(RunbookError, match="'to' is required"):
        rb.variables({})
    with pytest.raises(RunbookError, match="unknown parameter 'tooo'"):
        rb.variables({"to": "1.0.0", "tooo": "x"})


def test_substitute_keeps_lists_and_formats_text() -> None:
    env = {"nodes": ["a", "b"], "to": "2.7.2"}
    assert substitute("{{ nodes }}", env) == ["a", "b"]
    assert substitute(["{{ nodes }}", "c"], env) == ["a", "b", "c"]
    assert substitute("v{{to}}-x", env) == "v2.7.2-x"
    with pytest.raises(RunbookError, match="'missing' is not defined"):
        substitute("{{ missing }}", env)


SHELL: Registry[object] = Registry({"shell": Action("shell", lambda ctx, **_: {})})


def test_the_loader_checks_actions_against_the_table_its_caller_passes() -> None:
    doc = {"name": "x", "steps": [{"name": "a", "action": "stop_node"}]}
    assert parse_runbook(doc, actions=UPGRADE_ACTIONS).steps[0].action == "stop_node"
    with pytest.raises(RunbookError, match="unknown action 'stop_node'.*known actions: shell"):
        parse_runbook(doc, actions=SHELL)


@pytest.mark.parametrize(("doc", "message"), [
    ({"name": "x", "steps": [{"name": "a", "action": "nope"}]}, "unknown action 'nope'"),
    ({"name": "x", "steps": [{"name": "a", "action": "shell", "steps": [{"name": "b", "action": "shell"}]}]},
     "exactly one of"),
    ({"name": "x", "steps": [{"name": "a", "action": "shell"}, {"name": "a", "action": "shell"}]}, "used twice"),
    ({"name": "x", "steps": [{"name": "a", "action": "shell", "colour": 1}]}, "unknown key 'colour'"),
    ({"name": "Bad Name", "steps": []}, "short lowercase name"),
    ({"name": "x", "steps": []}, "non-empty list"),
])
def test_invalid_runbooks_are_rejected_with_the_reason(doc: dict, message: str) -> None:
    with pytest.raises(RunbookError, match=message):
        parse_runbook(doc, actions=SHELL)


def test_for_each_must_be_a_list() -> None:
    rb = parse_runbook({"name": "x", "steps": [{"name": "g", "for_each": "{{ n }}", "steps": [
        {"name": "s", "action": "shell", "with": {"command": "echo {{ node }}"}}]}]}, actions=SHELL)
    assert [s.params["command"] for s in resolve(rb, {"n": ["p", "q"]})] == ["echo p", "echo q"]
    with pytest.raises(RunbookError, match="must give a list"):
        resolve(rb, {"n": 3})

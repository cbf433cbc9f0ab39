"""The step registry: action name -> the Action object implementing it.

An action is a function `run(ctx, **params) -> evidence dict`, wrapped by
`@action(...)` with an optional `verify(ctx, **params) -> str | None` that
re-checks, on resume, that a step recorded as done still holds in the real
cluster (None = still true, else why not). Actions must be idempotent: a run
killed after a step did its work but before the state file recorded it runs
that step again on resume.

Modules are imported only when a runbook uses one of their actions.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vaultops.errors import RunbookError

Evidence = dict[str, Any]

# name -> "module:attribute"; a new action is one function and one line here.
ACTIONS: dict[str, str] = {
    "preflight": "vaultops.services.upgrade.steps:preflight",
    "snapshot": "vaultops.services.upgrade.steps:snapshot",
    "stop_node": "vaultops.services.upgrade.steps:stop_node",
    "install": "vaultops.services.upgrade.steps:install",
    "start_node": "vaultops.services.upgrade.steps:start_node",
    "unseal_node": "vaultops.services.upgrade.steps:unseal_node",
    "wait_healthy": "vaultops.services.upgrade.steps:wait_healthy",
    "step_down": "vaultops.services.upgrade.steps:step_down",
    "verify": "vaultops.services.upgrade.steps:verify",
    "confirm": "vaultops.runbook.actions:confirm",
    "shell": "vaultops.runbook.actions:shell",
}


@dataclass(frozen=True)
class Action:
    name: str
    run: Callable[..., Evidence]
    verify: Callable[..., str | None] | None = None
    summary: str = ""

    def describe(self, params: dict[str, Any]) -> str:
        args = ", ".join(f"{k}={v}" for k, v in params.items())
        return f"{self.name}({args})"


def action(name: str, *, summary: str = "") -> Callable[[Callable[..., Evidence]], Action]:
    def wrap(fn: Callable[..., Evidence]) -> Action:
        return Action(name=name, run=fn, summary=summary or (fn.__doc__ or "").strip().splitlines()[0])
    return wrap


def with_verify(act: Action, verify: Callable[..., str | None]) -> Action:
    return Action(act.name, act.run, verify, act.summary)


def known_actions() -> set[str]:
    return set(ACTIONS)


def get_action(name: str) -> Action:
    target = ACTIONS.get(name)
    if target is None:
        raise RunbookError(f"unknown action {name!r}", hint=f"known actions: {', '.join(sorted(ACTIONS))}")
    module, attr = target.split(":")
    found = getattr(importlib.import_module(module), attr)
    if not isinstance(found, Action):
        raise RunbookError(f"{target} is not an Action", hint="decorate it with @action")
    return found

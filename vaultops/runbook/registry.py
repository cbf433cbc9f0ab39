"""Actions and the typed table of them: action name -> the Action implementing it, for one context type.

An action is a function `run(ctx, **params) -> evidence dict`, wrapped by
`@action(...)` with an optional `verify(ctx, **params) -> str | None` that
re-checks, on resume, that a step recorded as done still holds in the real
cluster (None = still true, else why not). Actions must be idempotent: a run
killed after a step did its work but before the state file recorded it runs
that step again on resume.

Typed contexts: an `Action[C]` runs on a context of type C, and a
`Registry[C]` holds only actions that accept a C. An action is contravariant
in its context, so one that needs only a prompter (a Protocol, see
runbook/actions.py) fits every registry whose context has one. The engine
runs a `Registry[C]` over a C (`Engine[C]`), so mypy proves that each action
gets a context with every attribute it reads. The loader checks a runbook's
action names against the Registry its caller passes: the runbook package
knows no table of its own (the upgrade's lives with the upgrade service).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, TypeVar

from vaultops.errors import RunbookError

Evidence = dict[str, Any]
C = TypeVar("C")
C_contra = TypeVar("C_contra", contravariant=True)


@dataclass(frozen=True)
class Action(Generic[C_contra]):
    name: str
    run: Callable[Concatenate[C_contra, ...], Evidence]
    verify: Callable[Concatenate[C_contra, ...], str | None] | None = None
    summary: str = ""

    def describe(self, params: dict[str, Any]) -> str:
        args = ", ".join(f"{k}={v}" for k, v in params.items())
        return f"{self.name}({args})"


def action(name: str, *, summary: str = "") -> Callable[[Callable[Concatenate[C, ...], Evidence]], Action[C]]:
    def wrap(fn: Callable[Concatenate[C, ...], Evidence]) -> Action[C]:
        return Action(name=name, run=fn, summary=summary or (fn.__doc__ or "").strip().splitlines()[0])
    return wrap


def with_verify(act: Action[C], verify: Callable[Concatenate[C, ...], str | None]) -> Action[C]:
    return Action(act.name, act.run, verify, act.summary)


class Registry(Generic[C]):
    """The actions a runbook may name, all running on a context of type C."""

    def __init__(self, actions: Mapping[str, Action[C]]) -> None:
        for name, act in actions.items():
            if act.name != name:
                raise RunbookError(f"action table: {name!r} maps to the action {act.name!r}",
                                   hint="the table key and the @action name must agree")
        self._actions = dict(actions)

    def names(self) -> set[str]:
        return set(self._actions)

    def get(self, name: str) -> Action[C]:
        found = self._actions.get(name)
        if found is None:
            raise RunbookError(f"unknown action {name!r}", hint=f"known actions: {', '.join(sorted(self._actions))}")
        return found


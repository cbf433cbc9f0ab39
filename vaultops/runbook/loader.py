"""Runbook YAML: load, validate, and resolve into a flat plan of concrete steps.

    name: upgrade
    params:
      to: {required: true, help: target version}
    steps:
      - {name: preflight, action: preflight, with: {to: "{{ to }}"}}
      - name: standby
        for_each: "{{ standbys }}"       # a list, or a variable holding one
        as: node                         # the loop variable (default: node)
        steps:
          - {name: stop, action: stop_node, with: {node: "{{ node }}"}}

A value that is exactly "{{ var }}" becomes the variable's value (lists stay
lists); "{{ var }}" inside a longer string is substituted as text. The plan
is resolved once, when a run starts, and stored in the state file: a resumed
run follows the same plan even if the cluster's leader has changed since.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.errors import RunbookError

if TYPE_CHECKING:
    from vaultops.runbook.registry import Registry

_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_STEP_KEYS = {"name", "action", "with", "for_each", "as", "steps", "description"}
_TOP_KEYS = {"name", "description", "params", "steps"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    required: bool = False
    default: Any = None
    help: str = ""


@dataclass(frozen=True)
class StepSpec:
    name: str
    action: str | None = None                 # None: a group of steps
    params: dict[str, Any] = field(default_factory=dict)
    for_each: Any = None
    loop_var: str = "node"
    steps: tuple[StepSpec, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Runbook:
    name: str
    description: str
    params: tuple[ParamSpec, ...]
    steps: tuple[StepSpec, ...]
    path: Path | None = None
    digest: str = ""

    def variables(self, given: dict[str, Any]) -> dict[str, Any]:
        """Runbook parameters from *given*, with defaults; a missing required one is an error."""
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in given and given[p.name] is not None:
                out[p.name] = given[p.name]
            elif p.required:
                raise RunbookError(f"runbook {self.name}: parameter {p.name!r} is required",
                                   hint=f"pass --set {p.name}=VALUE ({p.help or 'see the runbook'})")
            else:
                out[p.name] = p.default
        unknown = set(given) - {p.name for p in self.params}
        if unknown:
            raise RunbookError(f"runbook {self.name}: unknown parameter {sorted(unknown)[0]!r}",
                               hint=f"known: {', '.join(p.name for p in self.params) or 'none'}")
        return out


@dataclass(frozen=True)
class PlannedStep:
    """One concrete step of a resolved plan. `id` is unique and stable, e.g. 'standby[node2].stop'."""

    id: str
    name: str
    action: str
    params: dict[str, Any]
    node: str | None = None
    group: str | None = None


def load_runbook(path: str | Path, *, actions: Registry[Any]) -> Runbook:
    """The runbook at *path*, every action it names checked against *actions* (the caller's table)."""
    from vaultops.files.loader import CONFIG_CAP, decode, parse_yaml, read_bytes

    p = Path(path)
    raw = read_bytes(p, cap=CONFIG_CAP, error=RunbookError, what="runbook")
    data = parse_yaml(decode(raw, source=str(p), error=RunbookError), source=str(p), error=RunbookError)
    rb = parse_runbook(data, actions=actions, where=str(p))
    return Runbook(rb.name, rb.description, rb.params, rb.steps, p, hashlib.sha256(raw).hexdigest())


def parse_runbook(data: Any, *, actions: Registry[Any], where: str = "runbook") -> Runbook:
    from vaultops.files.loader import describe

    if data is None:
        raise RunbookError(f"{where}: the file is empty", hint="start with 'name:' and 'steps:'")
    if not isinstance(data, dict):
        raise RunbookError(f"{where}: (top): expected a mapping, got {describe(data)}",
                           hint="start with 'name:' and 'steps:'")
    _no_unknown(data, _TOP_KEYS, where)
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RunbookError(f"{where}: 'name' must be a short lowercase name", hint="e.g. name: upgrade")
    raw_params = data.get("params") or {}
    if not isinstance(raw_params, dict):
        raise RunbookError(f"{where}: params must be a mapping", hint="e.g. params: {to: {required: true}}")
    params = tuple(_param(k, v, where) for k, v in raw_params.items())
    steps = _steps(data.get("steps"), where, "steps", actions.names())
    return Runbook(name=name, description=str(data.get("description") or ""), params=params, steps=steps)


def _param(name: str, raw: Any, where: str) -> ParamSpec:
    raw = raw if isinstance(raw, dict) else {"default": raw}
    _no_unknown(raw, {"required", "default", "help"}, f"{where}: params.{name}")
    return ParamSpec(name, bool(raw.get("required")), raw.get("default"), str(raw.get("help") or ""))


def _steps(raw: Any, where: str, key: str, actions: set[str]) -> tuple[StepSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise RunbookError(f"{where}: {key} must be a non-empty list", hint="- {name: x, action: y}")
    out: list[StepSpec] = []
    for i, item in enumerate(raw):
        out.append(_step(item, where, f"{key}[{i}]", actions))
    names = [s.name for s in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise RunbookError(f"{where}: step name {dup!r} is used twice in {key}", hint="names must be unique")
    return tuple(out)


def _step(item: Any, where: str, key: str, actions: set[str]) -> StepSpec:
    if not isinstance(item, dict):
        raise RunbookError(f"{where}: {key} must be a mapping")
    _no_unknown(item, _STEP_KEYS, f"{where}: {key}")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RunbookError(f"{where}: {key}.name must be a short lowercase name", hint="e.g. name: stop")
    action, children = item.get("action"), item.get("steps")
    if (action is None) == (children is None):
        raise RunbookError(f"{where}: {key} ({name}) needs exactly one of 'action' or 'steps'")
    if action is not None and action not in actions:
        raise RunbookError(f"{where}: {key} ({name}): unknown action {action!r}",
                           hint=f"known actions: {', '.join(sorted(actions))}")
    params = item.get("with") or {}
    if not isinstance(params, dict):
        raise RunbookError(f"{where}: {key}.with must be a mapping")
    nested = _steps(children, where, f"{key}.steps", actions) if children is not None else ()
    return StepSpec(name=name, action=action, params=dict(params), for_each=item.get("for_each"),
                    loop_var=str(item.get("as") or "node"), steps=nested,
                    description=str(item.get("description") or ""))


def _no_unknown(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise RunbookError(f"{where}: unknown key {sorted(unknown)[0]!r}", hint=f"known: {', '.join(sorted(allowed))}")


# -- resolution -------------------------------------------------------------------


def resolve(runbook: Runbook, variables: dict[str, Any]) -> list[PlannedStep]:
    """Expand for_each loops and substitute variables: the concrete plan."""
    plan: list[PlannedStep] = []
    _expand(runbook.steps, dict(variables), prefix="", node=None, group=None, out=plan)
    return plan


def _expand(steps: tuple[StepSpec, ...], env: dict[str, Any], *, prefix: str, node: str | None,
            group: str | None, out: list[PlannedStep]) -> None:
    for spec in steps:
        items = _loop_items(spec, env)
        for item in items:
            scope = dict(env)
            step_id, item_node = f"{prefix}{spec.name}", node
            if spec.for_each is not None:
                scope[spec.loop_var] = item
                step_id = f"{step_id}[{item}]"
                item_node = str(item) if spec.loop_var == "node" else node
            if spec.action is None:
                _expand(spec.steps, scope, prefix=f"{step_id}.", node=item_node, group=step_id, out=out)
                continue
            params = substitute(spec.params, scope)
            out.append(PlannedStep(id=step_id, name=spec.name, action=spec.action, params=params,
                                   node=params.get("node", item_node), group=group))


def _loop_items(spec: StepSpec, env: dict[str, Any]) -> list[Any]:
    if spec.for_each is None:
        return [None]
    items = substitute(spec.for_each, env)
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list):
        raise RunbookError(f"step {spec.name}: for_each must give a list, got {type(items).__name__}")
    return items


def substitute(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _VAR.fullmatch(value.strip())
        if whole:
            return _lookup(whole.group(1), env)
        return _VAR.sub(lambda m: str(_lookup(m.group(1), env)), value)
    if isinstance(value, list):
        out: list[Any] = []
        for v in value:
            r = substitute(v, env)
            out.extend(r if isinstance(r, list) and isinstance(v, str) and _VAR.fullmatch(v.strip()) else [r])
        return out
    if isinstance(value, dict):
        return {k: substitute(v, env) for k, v in value.items()}
    return value


def _lookup(name: str, env: dict[str, Any]) -> Any:
    if name not in env:
        raise RunbookError(f"runbook variable {name!r} is not defined",
                           hint=f"defined here: {', '.join(sorted(env)) or 'none'}")
    return env[name]

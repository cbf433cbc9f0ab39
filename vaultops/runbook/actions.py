"""Generic actions any runbook may use: ask a person, run a local command.

Each takes the smallest context it needs, as a Protocol: any runbook context
with a prompter (or with drivers) can list these in its Registry.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Protocol

from vaultops import process
from vaultops.errors import DriverError, RunbookError
from vaultops.process import Result
from vaultops.runbook.registry import Evidence, action


class Confirmer(Protocol):
    def confirm(self, message: str) -> bool: ...


class Prompting(Protocol):
    """A context that can ask the operator (the upgrade's Prompter: --yes or the console's y/n)."""

    @property
    def prompter(self) -> Confirmer: ...


class WithDrivers(Protocol):
    """A context with node drivers; `shell` uses a driver's `run` where the driver has one (ssh)."""

    @property
    def drivers(self) -> Mapping[str, object]: ...


@action("confirm")
def confirm(ctx: Prompting, *, message: str) -> Evidence:
    """Ask the operator to confirm before going on; halts on no (non-interactive runs need --yes)."""
    if not ctx.prompter.confirm(message):
        raise RunbookError(f"not confirmed: {message}", hint="resume when ready, answering yes")
    return {"summary": "confirmed", "message": message}


@action("shell")
def shell(ctx: WithDrivers, *, command: str | list[str], node: str | None = None, timeout: float = 300.0) -> Evidence:
    """Run a local command (argv, no shell); with node=, on that node through its driver if it can."""
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if node is not None:
        run = getattr(ctx.drivers[node], "run", None)
        if run is None:
            raise RunbookError(f"{node}: its driver cannot run commands", hint="use an ssh driver")
        res: Result = run(shlex.join(argv), timeout=timeout)
    else:
        try:   # argv, no shell; the base environment only: a step never sees the operator's token
            res = process.run(argv, timeout=timeout)
        except process.ProcessError as exc:
            raise DriverError(exc.message, hint="check the command in the runbook", result=exc.result) from None
    res.check(node or "local")
    return {"summary": f"exit {res.exit_code}", "command": res.command, "stdout": res.stdout[-500:]}

"""mypy proves the runbook's contexts: a missing attribute between the engine, its actions and the
unsealers is a type error, not an AttributeError on a production cluster (issue 13, defect 18).

Each snippet below is checked by mypy against the package (the project's own mypy settings); a
snippet marked BAD must fail with the named message, a GOOD one must pass. The console's unsealer
lost `shares_given` once and every Shamir upgrade from the console died at preflight.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAD = """\
from __future__ import annotations
from pathlib import Path
from typing import Any
from vaultops.config import Config
from vaultops.journal import Journal
from vaultops.runbook.engine import Engine
from vaultops.runbook.registry import Evidence, Registry, action
from vaultops.services.upgrade.context import UpgradeContext, build_context
from vaultops.services.upgrade.steps import UPGRADE_ACTIONS
from vaultops.services.upgrade.unseal import (AutoUnsealer, CeremonyUnsealer, KeyholderPause, SharesUnsealer,
                                              Unsealer)
from vaultops.services.upgrade.prompted import ConsoleUnsealer
from vaultops.tui.upgrade_screen import UpgradeOps
from vaultops.vault import NodeClient
"""

SNIPPETS: dict[str, tuple[str, str | None]] = {
    # every unsealer there is satisfies the Protocol the preflight and unseal_node read
    "good_every_unsealer": ("""
        def every(manifest: Any) -> list[Unsealer]:
            return [SharesUnsealer([]), CeremonyUnsealer([], manifest=manifest), AutoUnsealer(),
                    KeyholderPause([]), ConsoleUnsealer(lambda p: None, keyholders=("alice",))]
        """, None),
    # the upgrade's table runs on an UpgradeContext, and the engine takes only that context with it
    "good_engine": ("""
        def engine(ctx: UpgradeContext, journal: Journal) -> Engine[UpgradeContext]:
            return Engine(state_path=Path("s"), ctx=ctx, actions=UPGRADE_ACTIONS, journal=journal)
        """, None),
    # defect 18: an unsealer without shares_given handed to the upgrade
    "bad_no_shares_given": ("""
        class NoShares:
            keyholders = ("alice",)
            def unseal(self, client: NodeClient, *, node: str) -> dict[str, Any]:
                return {}
        def run(cfg: Config, journal: Journal) -> None:
            build_context(cfg, clients=[], drivers={}, journal=journal, unsealer=NoShares())
        """, r'"NoShares" is missing following "Unsealer" protocol member:\s+\S+ note:\s+shares_given'),
    # the preflight reads the keyholders too (it used getattr before)
    "bad_no_keyholders": ("""
        class NoKeyholders:
            shares_given = 0
            def unseal(self, client: NodeClient, *, node: str) -> dict[str, Any]:
                return {}
        def run(cfg: Config, journal: Journal) -> None:
            build_context(cfg, clients=[], drivers={}, journal=journal, unsealer=NoKeyholders())
        """, r'"NoKeyholders" is missing following "Unsealer" protocol member:\s+\S+ note:\s+keyholders'),
    # the console's path: the screen hands its unsealer to the upgrade service through UpgradeOps
    "bad_console_path": ("""
        class OldConsoleUnsealer:
            keyholders: tuple[str, ...] = ()
            def unseal(self, client: NodeClient, *, node: str) -> dict[str, Any]:
                return {}
        def start(ops: UpgradeOps) -> None:
            ops.run("2.7.2", listener=lambda s: None, unsealer=OldConsoleUnsealer(), ask=lambda m: True,
                    emit=lambda m: None)
        """, r'"OldConsoleUnsealer" is missing following "Unsealer" protocol member'),
    # an action reading something the context does not have
    "bad_action_attribute": ("""
        @action("peek")
        def peek(ctx: UpgradeContext, *, node: str) -> Evidence:
            return {"given": ctx.unsealer.shares_typed}
        """, r'"Unsealer" has no attribute "shares_typed"'),
    # an action written for another context cannot enter the upgrade's table
    "bad_registry": ("""
        class OtherContext:
            pass
        @action("other")
        def other(ctx: OtherContext) -> Evidence:
            return {}
        TABLE: Registry[UpgradeContext] = Registry({"other": other})
        """, r'incompatible type.*Action\[OtherContext\]'),
    # nor can an engine run the upgrade's table over some other context
    "bad_engine_context": ("""
        def engine(journal: Journal) -> None:
            Engine(state_path=Path("s"), ctx=object(), actions=UPGRADE_ACTIONS, journal=journal)
        """, r'Cannot infer value of type parameter "C" of "Engine"'),
}


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("typing")
    for name, (body, _) in SNIPPETS.items():
        (folder / f"{name}.py").write_text(HEAD + textwrap.dedent(body))
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                           "--cache-dir", str(folder / ".cache"), "--no-error-summary", "--show-error-codes",
                           *sorted(str(p) for p in folder.glob("*.py"))],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "error: Cannot find implementation" not in proc.stdout, proc.stdout
    out: dict[str, str] = {name: "" for name in SNIPPETS}
    for line in proc.stdout.splitlines():
        name = Path(line.split(":", 1)[0]).stem
        if name in out:
            out[name] += line + "\n"
    return out


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_mypy_proves_the_contexts(name: str, mypy_output: dict[str, str]) -> None:
    expected = SNIPPETS[name][1]
    found = mypy_output[name]
    if expected is None:
        assert found == "", found
    else:
        assert re.search(expected, found), f"mypy did not report {expected!r}:\n{found}"

"""Drive a console (make_console) through prompt_toolkit pipe input; fakes of the slow services."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pipe_driver import PipeDriver
from prompt_toolkit.input import PipeInput

from vaultops.testing.fake_vault import FakeVault as Vault
from vaultops.testing.fake_vault import NodeAliases
from vaultops.tui.console import make_console
from vaultops.vault.client import NodeClient

ENTER, ESC, CTRL_Q, UP, DOWN = "\r", "\x1b", "\x11", "\x1b[A", "\x1b[B"
F = {i: k for i, k in enumerate(["\x1bOP", "\x1bOQ", "\x1bOR", "\x1bOS", "\x1b[15~", "\x1b[17~"], 1)}


class Harness(PipeDriver):
    def __init__(self, pipe: PipeInput, screens: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(pipe)
        self.screens = list(screens)
        self.app, self.shell, self.console = make_console(screens, title="t", **kwargs)

    def run(self, script: Callable[[Harness], Awaitable[None]]) -> None:
        async def main() -> None:
            task = asyncio.ensure_future(self.app.run_async())
            await self.until(lambda: self.app.is_running)
            try:
                await script(self)
            finally:
                self.pipe.send_text(CTRL_Q)
                await asyncio.wait_for(task, 10)
        asyncio.run(main())



# -- a node for the dashboard: the one fake Vault (vaultops.testing.fake_vault), seen per node ---------


class FakeVault(NodeAliases, NodeClient):
    """One node as the dashboard sees it: a real NodeClient over the shared fake Vault. hang() makes every
    request block until release(); `down` refuses connections; `calls` counts the requests that reached it."""

    _ALIASES = {"active": "active", "sealed": "sealed", "down": "unreachable", "calls": "requests",
                "autopilot_calls": "autopilot_calls", "stepped_down": "stepped_down", "hang": "hang",
                "release": "release"}

    def __init__(self, name: str, *, active: bool = False, sealed: bool = False, token: str | None = "t",
                 vault: Vault | None = None) -> None:
        vault = vault or Vault([name], sealed=sealed, active=name if active else "", tokens={"t": ["root"]})
        self._alias_node(vault.node(name))
        super().__init__(name, vault.node(name).address, transport=vault.transport(name, token=token))
        self.active, self.sealed = active, sealed


def fake_cluster(n: int = 3, *, sealed: bool = False, token: str | None = "t") -> list[FakeVault]:
    names = [f"node{i}" for i in range(1, n + 1)]
    vault = Vault(names, sealed=sealed, active=names[0], tokens={"t": ["root"]})
    return [FakeVault(name, active=i == 0, sealed=sealed, token=token, vault=vault) for i, name in enumerate(names)]

"""Drive a console (make_console) through prompt_toolkit pipe input; fakes of the slow services."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pipe_driver import PipeDriver
from prompt_toolkit.input import PipeInput

from vaultops.errors import VaultUnreachable
from vaultops.tui.console import make_console
from vaultops.vault.models import AutopilotServer, AutopilotState, Health, SealStatus

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



# -- a fake node for the dashboard: seal status, health, autopilot; can hang ------------------


class _Seal:
    def __init__(self, node: FakeVault) -> None:
        self.node = node

    def status(self) -> SealStatus:
        self.node.gate()
        return SealStatus(type="shamir", initialized=True, sealed=self.node.sealed, t=3, n=5, progress=0,
                          nonce="", version="2.7.2")


class _HA:
    def __init__(self, node: FakeVault) -> None:
        self.node = node

    def health(self) -> Health:
        self.node.gate()
        n = self.node
        return Health(status_code=200 if n.active else 429, initialized=True, sealed=n.sealed,
                      standby=not n.active, version="2.7.2")

    def step_down(self) -> None:
        self.node.stepped_down += 1


class _Raft:
    def __init__(self, node: FakeVault) -> None:
        self.node = node

    def autopilot_state(self) -> AutopilotState:
        self.node.autopilot_calls += 1
        names = self.node.members
        servers = {n: AutopilotServer(id=n, name=n, address="", status="leader" if n == self.node.name else "voter",
                                      healthy=True, last_index=1, last_term=1, last_contact="0s", version="2.7.2",
                                      node_status="alive") for n in names}
        return AutopilotState(healthy=True, failure_tolerance=1, leader=self.node.name, voters=tuple(names),
                              servers=servers)


class FakeVault:
    """One node as the dashboard sees it. hang() makes every call block until release()."""

    def __init__(self, name: str, *, active: bool = False, sealed: bool = False, token: str | None = "t",
                 members: Sequence[str] = ()) -> None:
        self.name, self.address = name, f"http://127.0.0.1/{name}"
        self.active, self.sealed, self.token = active, sealed, token
        self.members = list(members) or [name]
        self.calls = self.autopilot_calls = self.stepped_down = 0
        self.down = False
        self._open = threading.Event()
        self._open.set()
        self.seal, self.ha, self.raft = _Seal(self), _HA(self), _Raft(self)

    def hang(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def gate(self) -> None:
        self.calls += 1
        self._open.wait(30)
        if self.down:
            raise VaultUnreachable(f"{self.name}: unreachable (connection refused)", node=self.name)


def fake_cluster(n: int = 3, **kwargs: Any) -> list[FakeVault]:
    names = [f"node{i}" for i in range(1, n + 1)]
    return [FakeVault(name, active=i == 0, members=names, **kwargs) for i, name in enumerate(names)]

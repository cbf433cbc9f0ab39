"""An unsealer for runs whose keyholders are at hand: it shows who is needed and waits.

The console's upgrade screen (and a terminal run) hands the engine a ConsoleUnsealer: when a
restarted node is sealed it calls `on_prompt(UnsealPrompt(...))` (the screen shows the prompt and
takes each keyholder's share through the checked ceremony) and follows the node until it reports
unsealed; `on_prompt(None)` when it stops asking. It never holds shares itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vaultops.errors import RunbookPaused
from vaultops.retry import TimedOut, poll
from vaultops.services.upgrade.unseal import wait_ready

if TYPE_CHECKING:
    from vaultops.vault import NodeClient
    from vaultops.vault.models import SealStatus


@dataclass(frozen=True)
class UnsealPrompt:
    node: str
    threshold: int
    shares: int
    progress: int
    keyholders: tuple[str, ...]
    waited: float = 0.0     # seconds since the node asked (the prompt says how long it has waited)
    timeout: float = 0.0    # after which the run pauses


class ConsoleUnsealer:
    """Unsealer for runs started here: show the keyholder prompt and wait for the node to unseal.

    It holds no shares: keyholders type theirs at the prompt while the node waits. So, for the
    preflight, no shares were given (`shares_given` 0) and the keyholder manifest must list at
    least the threshold of keyholders who can come -- the same conclusion as a CLI run without
    --share-stdin (KeyholderPause).
    """

    shares_given = 0

    def __init__(self, on_prompt: Callable[[UnsealPrompt | None], None], *, keyholders: Sequence[str] = (),
                 timeout: float = 3600.0, poll: float = 0.25) -> None:
        self.on_prompt = on_prompt
        self.keyholders: tuple[str, ...] = tuple(keyholders)
        self.timeout, self.poll = timeout, poll
        self._stop = threading.Event()

    def cancel(self) -> None:
        self._stop.set()

    def unseal(self, client: NodeClient, *, node: str) -> dict[str, Any]:
        st = wait_ready(client)
        if not st.sealed:
            return {"summary": "already unsealed", "version": st.version}
        self._stop.clear()
        started = time.monotonic()

        def prompt() -> UnsealPrompt:
            return UnsealPrompt(node, st.t, st.n, st.progress, self.keyholders, waited=time.monotonic() - started,
                                timeout=self.timeout)
        self.on_prompt(prompt())

        def unsealed() -> SealStatus | None:
            nonlocal st
            st = client.seal.status()    # a joining follower may not answer for a moment: tolerated
            self.on_prompt(prompt())
            return None if st.sealed else st
        try:
            poll(unsealed, timeout=self.timeout, interval=self.poll, what=f"{node} to unseal", stop=self._stop)
        except TimedOut:
            raise RunbookPaused(f"{node} is sealed and waits for {st.t} keyholders",
                                hint="resume the upgrade when the keyholders are here (r)") from None
        finally:
            self.on_prompt(None)
        return {"summary": "unsealed by the keyholders at the console", "version": st.version}


__all__ = ["ConsoleUnsealer", "UnsealPrompt"]

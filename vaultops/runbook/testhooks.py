"""Fault injection for tests only: SIGKILL this process at a step boundary.

Active only when VAULTOPS_TEST_HOOKS=1 is set as well, so a stray variable in
an operator's shell can never kill a production run.

    VAULTOPS_TEST_HOOKS=1 VAULTOPS_TEST_KILL_AT=4        kill right after step #4 (0-based plan index)
                                                         has been saved as done
    VAULTOPS_TEST_HOOKS=1 VAULTOPS_TEST_KILL_AT=4:unsaved  kill after step #4 did its work but
                                                         before the state file records it
                                                         (resume must redo it: actions are idempotent)
"""

from __future__ import annotations

import os
import signal


def kill_point() -> tuple[int, bool] | None:
    if os.environ.get("VAULTOPS_TEST_HOOKS") != "1":
        return None
    raw = os.environ.get("VAULTOPS_TEST_KILL_AT", "").strip()
    if not raw:
        return None
    index, _, mode = raw.partition(":")
    return int(index), mode != "unsaved"


def maybe_kill(index: int, *, saved: bool) -> None:
    point = kill_point()
    if point is not None and point == (index, saved):
        os.kill(os.getpid(), signal.SIGKILL)

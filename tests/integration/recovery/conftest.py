"""Own sandboxes for the disaster-recovery tests (they kill nodes and delete their data), stopped at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from vaultops.testing.sandbox import Sandbox, start_sandbox


@pytest.fixture(scope="module")
def make_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def make(name: str, *, nodes: int = 3, storage: str = "raft") -> Sandbox:
        box = start_sandbox(tmp_path_factory.mktemp(name), name=name, nodes=nodes, storage=storage,
                            raft_healthy=True)
        started.append(box)
        return box

    yield make
    for box in started:
        box.stop()

"""Own sandboxes for the disaster-recovery tests (they kill nodes and delete their data), stopped at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from vaultops.testing.sandbox import Sandbox, sandbox_factory


@pytest.fixture(scope="module")
def make_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Sandbox]]:
    with sandbox_factory(tmp_path_factory.mktemp) as make:
        yield make

"""A real sealed 3-node OpenBao raft sandbox for the console's end-to-end test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vaultops.testing.sandbox import Sandbox, start_sandbox

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def console_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Initialised and sealed; the followers have never joined (a fresh cluster's first unseal)."""
    box = start_sandbox(tmp_path_factory.mktemp("console"), name="console", nodes=3, cold=True)
    yield box
    box.stop()

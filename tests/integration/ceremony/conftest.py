"""Real OpenBao clusters for the unseal ceremony tests.

joined3: a 3-node raft sandbox whose followers have joined once; `sealed3`
kills and restarts every node before each test, so each test starts from a
whole cluster that is sealed, initialised, with no progress (the common
"morning after a restart" ceremony). Other fixtures start fresh sealed
sandboxes (raft 5, PostgreSQL pair) and an uninitialised 3-node cluster for
`vaultops init`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ceremony_helpers import reseal, start_uninitialized

from vaultops.testing.sandbox import Sandbox, start_sandbox

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def joined3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = start_sandbox(tmp_path_factory.mktemp("cer3"), name="cer3", nodes=3)
    yield box
    box.stop()


@pytest.fixture
def sealed3(joined3: Sandbox) -> Sandbox:
    reseal(joined3)
    return joined3


@pytest.fixture(scope="session")
def fresh5(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Five nodes, initialised, sealed; the followers have never joined."""
    box = start_sandbox(tmp_path_factory.mktemp("cer5"), name="cer5", nodes=5, cold=True)
    yield box
    box.stop()


@pytest.fixture(scope="session")
def pg_sealed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = start_sandbox(tmp_path_factory.mktemp("cerpg"), name="cerpg", nodes=2,
                        storage="postgresql", sealed=True)
    yield box
    box.stop()


@pytest.fixture
def uninit3(tmp_path: Path) -> Iterator[Sandbox]:
    box = start_uninitialized(tmp_path / "boxes", name="init3", nodes=3)
    yield box
    box.stop()

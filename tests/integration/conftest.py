"""Session-scoped real clusters: a 3-node raft sandbox and a PostgreSQL Active-Standby pair.

Tests that change a cluster (restore, rekey, upgrade, kill nodes) start their
own sandbox with vaultops.testing.sandbox.start_sandbox; these shared ones
are for reading and for ceremonies that leave them as they found them.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator

import pytest

from vaultops.testing.sandbox import Sandbox, start_sandbox


@pytest.fixture(scope="session")
def raft3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = start_sandbox(tmp_path_factory.mktemp("raft3"), name="raft3", nodes=3, raft_healthy=True)
    yield box
    box.stop()


@pytest.fixture(scope="session")
def pg_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = start_sandbox(tmp_path_factory.mktemp("pgpair"), name="pgpair", nodes=2, storage="postgresql")
    yield box
    box.stop()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """vaultops main() in-process against a sandbox, with text on stdin; returns (rc, stdout, stderr)."""
    from vaultops.cli import main

    def run(box: Sandbox, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        rc = main(["--config", str(box.config_path), *argv])
        out = capsys.readouterr()
        return rc, out.out, out.err
    return run

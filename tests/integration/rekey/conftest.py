"""Own sandboxes for the keyholder-lifecycle tests: rekey changes a cluster's keys for good."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rekey_helpers import ensure_manifest

from vaultops.cli import main
from vaultops.testing.sandbox import Sandbox, start_sandbox

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def lifecycle_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = start_sandbox(tmp_path_factory.mktemp("rekey3"), name="rekey3", nodes=3)
    ensure_manifest(box)
    yield box
    box.stop()


@pytest.fixture(scope="module")
def single_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = start_sandbox(tmp_path_factory.mktemp("rekey1"), name="rekey1", nodes=1)
    ensure_manifest(box)
    yield box
    box.stop()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run `vaultops --config <box> ARGS` in-process with *stdin*; (exit code, stdout, stderr)."""
    def run(box: Sandbox, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["--config", str(box.config_path), *argv])
        out, err = capsys.readouterr()
        return code, out, err
    return run

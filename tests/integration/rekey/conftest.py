"""Own sandboxes for the keyholder-lifecycle tests: rekey changes a cluster's keys for good."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rekey_helpers import ensure_manifest

from vaultops.testing.sandbox import Sandbox, start_sandbox


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

"""Real servers for backup tests: a 3-node OpenBao Raft sandbox and a moto S3 server.

Everything started here is stopped here. The sandboxes are our own (not shared ones).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup_helpers import AWS_ENV, MotoServer, active_client, write_retry
from vaultops.testing.sandbox import Sandbox, start_sandbox


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.delenv("BAO_TOKEN", raising=False)
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    name = f"bk-{secrets.token_hex(4)}"
    moto.client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def raft_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = start_sandbox(tmp_path_factory.mktemp("raft3"), name="backup3", nodes=3)
    try:
        box.wait_active()
        client = active_client(box)
        client.write("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        write_retry(client, "secret/data/sentinel", {"data": {"value": "v1"}})
        yield box
    finally:
        box.stop()



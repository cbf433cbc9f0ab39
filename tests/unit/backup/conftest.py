from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from vaultops.config import parse_config_file
from vaultops.testing.consul_double import ConsulDouble


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def consul():
    double = ConsulDouble().start()
    yield double
    double.stop()


@pytest.fixture
def make_cfg(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(tmp_path / "state"))

    def make(backup: dict, *, storage: str = "consul"):
        data = {"cluster": {"name": "unit", "storage": storage},
                "nodes": [{"name": "n1", "address": f"http://127.0.0.1:{closed_port()}"}],
                "journal": {"path": str(tmp_path / "journal.jsonl")},
                "backup": backup}
        path = tmp_path / "vaultops.yaml"
        path.write_text(yaml.safe_dump(data))
        return parse_config_file(path)
    return make

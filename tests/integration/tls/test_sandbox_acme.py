"""`vaultops sandbox up --tls --acme FILE`: a sandbox whose nodes serve Pebble-issued certificates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vaultops.cli import main
from vaultops.services.sandbox.cluster import Sandbox, sandbox_dir
from vaultops.services.tls.inspect import verify_served
from vaultops.testing.acme_env import AcmeTestBed

pytestmark = pytest.mark.integration


def test_sandbox_up_with_pebble_certificates(bed: AcmeTestBed, pebble_root: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    acme = tmp_path / "acme.yaml"
    acme.write_text(yaml.safe_dump({"acme": {"directory": bed.directory_url, "ca_bundle": bed.pebble_ca_file,
                                             "roots_url": bed.roots_url},
                                    "dns_provider": bed.dns_provider_settings()}))
    assert main(["sandbox", "up", "--name", "acme", "--nodes", "3", "--tls", "--acme", str(acme)]) == 0
    box = Sandbox(sandbox_dir("acme"))
    try:
        capsys.readouterr()
        assert main(["--config", str(box.config_path), "status", "--format", "json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["cluster"]["exit"] == "healthy" and all(n["address"].startswith("https") for n in doc["nodes"])
        for n in box.record.nodes:
            served = verify_served("127.0.0.1", n.api_port, f"{n.name}.vaultops.test", pebble_root)
            assert served.sans == (f"{n.name}.vaultops.test",) or set(served.sans) == {f"{n.name}.vaultops.test"}
        # The written tls: section is enough to renew every node from the same ACME server.
        assert main(["--config", str(box.config_path), "tls", "renew", "--force"]) == 0
        events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
        assert sorted(e["node"] for e in events if e.get("event") == "renewed") == ["node1", "node2", "node3"]
    finally:
        box.stop()

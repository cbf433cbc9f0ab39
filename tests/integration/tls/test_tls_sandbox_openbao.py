"""A real 3-node TLS OpenBao sandbox renewed through Pebble + BIND, reloaded by SIGHUP, verified."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from vaultops.cli import main
from vaultops.services.tls.inspect import verify_served
from vaultops.services.tls.sandbox_issue import issue_sandbox_certs
from vaultops.testing.acme_env import AcmeTestBed

DOMAIN = "vaultops.test"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from vaultops.testing.sandbox import start_sandbox

    box = start_sandbox(tmp_path_factory.mktemp("tlsbox"), name="tlsbox", nodes=3, tls=True)
    yield box
    box.stop()


def with_tls_section(box, bed: AcmeTestBed, pebble_root: str, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load(box.config_path.read_text())
    doc["tls"] = {
        "load_balancer_name": f"lb.{DOMAIN}",
        "nodes": {n.name: {"cert_file": f"{n.dir}/tls.crt", "key_file": f"{n.dir}/tls.key"}
                  for n in box.record.nodes},
        "acme": {"directory": bed.directory_url, "ca_bundle": bed.pebble_ca_file,
                 "account_key_file": str(folder / "account.pem")},
        "dns_provider": bed.dns_provider_settings(),
        "verify_ca": pebble_root, "lock_file": str(folder / "tls.lock"),
        "metrics_file": str(folder / "tls.prom")}
    path = folder / "vaultops.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_sandbox_nodes_renewed_reloaded_active_last_and_chain_verified(
        tls_box, bed, pebble_root, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    box = tls_box
    active = box.wait_active()
    pids = {n: d.pid() for n, d in box.drivers().items()}
    config = with_tls_section(box, bed, pebble_root, tmp_path)

    assert main(["--config", str(config), "tls", "renew"]) == 0  # sandbox certs lack the LB name: due

    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    renewed = [e["node"] for e in events if e["event"] == "renewed"]
    assert sorted(renewed) == ["node1", "node2", "node3"] and renewed[-1] == active
    for n in box.record.nodes:
        served = verify_served("127.0.0.1", n.api_port, f"{n.name}.{DOMAIN}", pebble_root)
        assert set(served.sans) == {f"{n.name}.{DOMAIN}", f"lb.{DOMAIN}"}
        assert stat.S_IMODE(Path(n.dir, "tls.key").stat().st_mode) == 0o600
    assert {n: d.pid() for n, d in box.drivers().items()} == pids  # reloaded, not restarted
    from vaultops.vault import NodeClient

    for n in box.record.nodes:  # the API now answers over the Pebble chain, still unsealed
        client = NodeClient(n.name, f"https://127.0.0.1:{n.api_port}", ca_cert=pebble_root,
                            server_name=f"{n.name}.{DOMAIN}")
        assert client.ha.health().sealed is False
        client.close()

    assert main(["--config", str(config), "tls", "status", "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert all(not s["differ"] and "Pebble" in s["served"]["issuer"] for s in status)


def test_sandbox_issue_writes_verified_pairs(bed, pebble_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vaultops.services.tls.inspect import cert_info, key_matches_cert

    tls_config = {"acme": {"directory": bed.directory_url, "ca_bundle": bed.pebble_ca_file,
                           "roots_url": bed.roots_url},
                  "dns_provider": bed.dns_provider_settings(), "load_balancer_name": f"lb.{DOMAIN}"}
    targets = {n: (tmp_path / f"{n}.crt", tmp_path / f"{n}.key") for n in ("node1", "node2")}

    certs = issue_sandbox_certs(["node1", "node2"], tls_config, targets=targets, out_dir=tmp_path)

    assert certs.ca_file.read_bytes() == Path(pebble_root).read_bytes()
    for n, (crt, key) in targets.items():
        assert key_matches_cert(key.read_bytes(), crt.read_bytes())
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert set(cert_info(crt.read_bytes()).sans) == {f"{n}.{DOMAIN}", f"lb.{DOMAIN}"}

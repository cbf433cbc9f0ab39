"""Real issuance: Pebble validating DNS-01 against BIND (TSIG updates), installed, reloaded, verified."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from vaultops.cli import main
from vaultops.dns import get_provider
from vaultops.dns.base import Server
from vaultops.services.tls.acme_client import AcmeIssuer
from vaultops.services.tls.inspect import cert_info, served_cert, verify_served
from vaultops.services.tls.renew import Outcome, renew
from vaultops.testing.acme_env import AcmeTestBed

DOMAIN = "vaultops.test"
VALIDATION_ZONE = "acme-validation.test"

pytestmark = pytest.mark.integration


def txt_left(bed: AcmeTestBed, name: str) -> set[str]:
    provider = get_provider(bed.dns_provider_settings())
    return provider._txt_at(Server.parse(bed.dns_server), name)


def test_three_nodes_renewed_reloaded_standbys_first_and_verified(bed, pebble_root, make_nodes) -> None:
    nodes = make_nodes(["node1", "node2", "node3"])
    old = {n: nodes.cert(n).read_bytes() for n in nodes.names}
    settings = nodes.settings(bed, verify_ca=pebble_root)
    events: list[dict] = []
    issuer = AcmeIssuer(settings.acme, get_provider(settings.dns_provider))

    report = renew(settings, drivers=nodes.drivers(), issuer=issuer, emit=events.append,
                   roles={"node1": "active", "node2": "standby", "node3": "standby"})

    assert [o.outcome for o in report.nodes] == [Outcome.RENEWED] * 3, report
    for n in nodes.names:
        served = verify_served("127.0.0.1", nodes.ports[n], f"{n}.{DOMAIN}", pebble_root)
        assert set(served.sans) == {f"{n}.{DOMAIN}", f"lb.{DOMAIN}"}
        assert served.fingerprint == cert_info(nodes.cert(n).read_bytes()).fingerprint
        assert stat.S_IMODE(nodes.key(n).stat().st_mode) == 0o600
        assert Path(str(nodes.cert(n)) + ".previous").read_bytes() == old[n]
    renewed = [e["node"] for e in events if e["event"] == "renewed"]
    assert renewed[-1] == "node1" and sorted(renewed) == ["node1", "node2", "node3"]
    # every TXT record is gone, including the one behind node3's CNAME
    for name in (f"_acme-challenge.node1.{DOMAIN}", f"_acme-challenge.lb.{DOMAIN}", f"node3.{VALIDATION_ZONE}"):
        assert txt_left(bed, name) == set()
    assert not any("PRIVATE KEY" in json.dumps(e) for e in events)

    again = renew(settings, drivers=nodes.drivers(), issuer=issuer, emit=events.append)
    assert [o.outcome for o in again.nodes] == [Outcome.UNCHANGED] * 3


def test_cli_renew_is_quiet_writes_metrics_and_status_shows_both(bed, pebble_root, make_nodes, capsys) -> None:
    nodes = make_nodes(["solo1"])
    config = nodes.write_config(bed, verify_ca=pebble_root)

    assert main(["--config", str(config), "tls", "renew"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    lines = [json.loads(line) for line in err.splitlines()]
    assert [e["event"] for e in lines] == ["issued", "renewed"]
    assert all(set(e) >= {"time", "level", "event"} and e["level"] == "info" and "ts" not in e for e in lines)
    metrics = (nodes.folder / "metrics" / "vaultops_tls.prom").read_text()
    assert 'vaultops_tls_cert_days_left{node="solo1",source="served"}' in metrics
    assert "vaultops_tls_renew_last_run_success 1" in metrics

    assert main(["--config", str(config), "tls", "renew"]) == 0
    assert capsys.readouterr() == ("", "")  # nothing due: nothing said

    assert main(["--config", str(config), "tls", "status", "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status[0]["served"]["fingerprint"] == status[0]["disk"]["fingerprint"]
    assert status[0]["differ"] is False
    assert "Pebble" in status[0]["served"]["issuer"]

    assert main(["--config", str(config), "tls", "status"]) == 0
    table = capsys.readouterr().out
    assert "solo1" in table and "served" in table and "disk" in table and f"lb.{DOMAIN}" in table


def test_lock_held_means_exit_7_and_nothing_done(bed, make_nodes, capsys) -> None:
    from vaultops.services.tls.cron import renewal_lock

    nodes = make_nodes(["solo2"])
    config = nodes.write_config(bed)
    before = served_cert("127.0.0.1", nodes.ports["solo2"], f"solo2.{DOMAIN}")
    with renewal_lock(str(nodes.folder / "tls.lock")):
        assert main(["--config", str(config), "tls", "renew", "--force"]) == 7
    assert "holds" in capsys.readouterr().err
    assert served_cert("127.0.0.1", nodes.ports["solo2"], f"solo2.{DOMAIN}") == before


def test_eab_account_registration(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vaultops.errors import AcmeError
    from vaultops.services.tls.settings import AcmeSettings
    from vaultops.testing.acme_env import EAB_HMAC, Zone

    with AcmeTestBed(tmp_path / "eab", zones=[Zone(DOMAIN, hosts=["node1"])], eab=True) as eab_bed:
        provider = get_provider(eab_bed.dns_provider_settings())
        plain = AcmeSettings(directory=eab_bed.directory_url, ca_bundle=eab_bed.pebble_ca_file,
                             account_key_file=str(tmp_path / "a1.pem"))
        with pytest.raises(AcmeError, match="externalAccountRequired"):
            AcmeIssuer(plain, provider).register()
        hmac_file = tmp_path / "eab.key"
        hmac_file.write_text(EAB_HMAC + "\n")
        with_eab = AcmeSettings(directory=eab_bed.directory_url, ca_bundle=eab_bed.pebble_ca_file,
                                account_key_file=str(tmp_path / "a2.pem"), eab_kid="kid-1",
                                eab_hmac_key_file=str(hmac_file))
        issued = AcmeIssuer(with_eab, provider).issue((f"node1.{DOMAIN}",))
        assert cert_info(issued.fullchain_pem).sans == (f"node1.{DOMAIN}",)


def test_unknown_node_is_a_usage_error(bed, make_nodes, capsys) -> None:  # type: ignore[no-untyped-def]
    nodes = make_nodes(["solo1"])
    config = nodes.write_config(bed)
    assert main(["--config", str(config), "tls", "renew", "--node", "nope"]) == 2
    assert "known" in capsys.readouterr().err

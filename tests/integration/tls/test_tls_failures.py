"""Failures leave the served certificate unchanged, the TXT records gone, a clear error, a non-zero exit."""

from __future__ import annotations

import json

import pytest

from vaultops.cli import main
from vaultops.dns import get_provider
from vaultops.dns.base import Server, TxtRecord
from vaultops.dns.rfc2136 import RFC2136Provider
from vaultops.errors import DNSError
from vaultops.services.tls.acme_client import AcmeIssuer, Issued, make_private_key
from vaultops.services.tls.inspect import served_cert
from vaultops.services.tls.install import Pair, install
from vaultops.services.tls.renew import Outcome, renew
from vaultops.services.tls.settings import KeyType
from vaultops.testing.acme_env import OTHER_KEY_NAME, AcmeTestBed

DOMAIN = "vaultops.test"

pytestmark = pytest.mark.integration


def txt_at(bed: AcmeTestBed, name: str) -> set[str]:
    return get_provider(bed.dns_provider_settings())._txt_at(Server.parse(bed.dns_server), name)


def served(nodes, n: str) -> str:
    return served_cert("127.0.0.1", nodes.ports[n], f"{n}.{DOMAIN}").fingerprint


def test_dns_update_refused_exits_7_served_unchanged(bed, make_nodes, capsys) -> None:
    nodes = make_nodes(["node1"])
    before = served(nodes, "node1")
    config = nodes.write_config(bed, provider=bed.dns_provider_settings(key=OTHER_KEY_NAME))

    assert main(["--config", str(config), "tls", "renew", "--force"]) == 7
    err = capsys.readouterr().err
    assert "REFUSED" in err and "update-policy" in err
    assert "renewal failed: node1: failed" in err
    assert served(nodes, "node1") == before
    assert txt_at(bed, f"_acme-challenge.node1.{DOMAIN}") == set()
    metrics = (nodes.folder / "metrics" / "vaultops_tls.prom").read_text()
    assert "vaultops_tls_renew_failed_nodes 1" in metrics


class WrongValueProvider(RFC2136Provider):
    """Publishes (and really propagates) a value the CA will not accept."""

    def _wrong(self, r: TxtRecord) -> TxtRecord:
        return TxtRecord(r.name, "wrong-" + r.value[:12])

    def add(self, record: TxtRecord) -> None:
        super().add(self._wrong(record))

    def remove(self, record: TxtRecord) -> None:
        super().remove(self._wrong(record))

    def wait_propagated(self, records, *, timeout=None) -> None:  # type: ignore[no-untyped-def]
        super().wait_propagated([self._wrong(r) for r in records], timeout=timeout)


def test_validation_failing_reports_the_ca_error_and_cleans_up(bed, make_nodes) -> None:
    nodes = make_nodes(["node2"])
    before = served(nodes, "node2")
    settings = nodes.settings(bed)
    issuer = AcmeIssuer(settings.acme, WrongValueProvider(settings.dns_provider))

    report = renew(settings, drivers=nodes.drivers(), issuer=issuer, force=True)

    (outcome,) = report.nodes
    assert outcome.outcome is Outcome.FAILED
    assert "validation of" in (outcome.error or "") and "unauthorized" in (outcome.error or "")
    assert served(nodes, "node2") == before
    for name in (f"_acme-challenge.node2.{DOMAIN}", f"_acme-challenge.lb.{DOMAIN}"):
        assert txt_at(bed, name) == set()


class MismatchIssuer(AcmeIssuer):
    """A real certificate paired with the wrong private key."""

    def issue(self, names: tuple[str, ...]) -> Issued:
        real = super().issue(names)
        return Issued(names=names, key_pem=make_private_key(KeyType.EC256), fullchain_pem=real.fullchain_pem)


def test_key_cert_mismatch_replaces_nothing(bed, make_nodes) -> None:
    nodes = make_nodes(["solo3"])
    before, cert_before, key_before = served(nodes, "solo3"), nodes.cert("solo3").read_bytes(), \
        nodes.key("solo3").read_bytes()
    settings = nodes.settings(bed)
    drivers = nodes.drivers()
    issuer = MismatchIssuer(settings.acme, get_provider(settings.dns_provider))

    report = renew(settings, drivers=drivers, issuer=issuer, force=True)

    assert report.nodes[0].outcome is Outcome.FAILED
    assert "does not match" in (report.nodes[0].error or "")
    assert (nodes.cert("solo3").read_bytes(), nodes.key("solo3").read_bytes()) == (cert_before, key_before)
    assert served(nodes, "solo3") == before
    with pytest.raises(Exception, match="does not match"):
        install(drivers["solo3"], settings.node("solo3"), Pair(key_pem=key_before, chain_pem=b"x"))


def test_node_that_does_not_reload_is_rolled_back_and_the_active_left_alone(bed, make_nodes, capsys) -> None:
    nodes = make_nodes(["node1", "node2"], ignore_hup=("node1",))
    before = {n: served(nodes, n) for n in nodes.names}
    files_before = {n: nodes.cert(n).read_bytes() for n in nodes.names}
    settings = nodes.settings(bed)
    events: list[dict] = []
    issuer = AcmeIssuer(settings.acme, get_provider(settings.dns_provider))

    report = renew(settings, drivers=nodes.drivers(), issuer=issuer, force=True, emit=events.append,
                   roles={"node1": "standby", "node2": "active"})

    outcomes = {o.node: o for o in report.nodes}
    assert outcomes["node1"].outcome is Outcome.ROLLED_BACK
    assert "still serves" in (outcomes["node1"].error or "")
    assert outcomes["node2"].outcome is Outcome.NOT_ATTEMPTED
    assert {n: served(nodes, n) for n in nodes.names} == before
    assert {n: nodes.cert(n).read_bytes() for n in nodes.names} == files_before
    assert txt_at(bed, f"_acme-challenge.lb.{DOMAIN}") == set()
    assert [e["event"] for e in events if e["event"] in ("rolled_back", "not_attempted")] == \
        ["rolled_back", "not_attempted"]
    assert not report.ok and json.dumps([o.as_dict() for o in report.nodes])


def test_unreachable_dns_server_is_a_clear_dns_error(bed) -> None:
    settings = {**bed.dns_provider_settings(), "server": "127.0.0.1:1", "nameservers": [bed.dns_server]}
    provider = get_provider(settings)
    with pytest.raises(DNSError, match="cannot reach|rfc2136"):
        provider.add(TxtRecord(f"_acme-challenge.node1.{DOMAIN}", "x"))

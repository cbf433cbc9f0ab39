"""The provider base class with the fake provider: contract, propagation waits, CNAMEs, cleanup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vaultops.dns import get_provider
from vaultops.dns.base import Server
from vaultops.dns.rfc2136 import _read_key
from vaultops.dns.route53 import Route53Provider
from vaultops.errors import ConfigError, DNSError
from vaultops.testing.dns import FAKE_PROVIDER, FakeDNSProvider, FakeZone, ProviderContract, register


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s

    def __call__(self) -> float:
        return self.now


class TestFakeContract(ProviderContract):
    @pytest.fixture
    def zone(self) -> FakeZone:
        return FakeZone()

    @pytest.fixture
    def provider(self, zone: FakeZone) -> FakeDNSProvider:
        return FakeDNSProvider({}, zone=zone)

    @pytest.fixture
    def provider2(self, zone: FakeZone) -> FakeDNSProvider:
        return FakeDNSProvider({}, zone=zone)

    @pytest.fixture
    def txt_values(self, zone: FakeZone) -> Callable[[str], set[str]]:
        return zone.values

    @pytest.fixture
    def domain(self) -> str:
        return "node1.example.test"


def test_propagation_polls_with_backoff_until_visible() -> None:
    clock = Clock()
    zone = FakeZone(visible_after_polls=4)
    provider = FakeDNSProvider({}, zone=zone, sleep=clock.sleep, clock=clock)
    with provider.records() as recs:
        recs.add("a.example.test", "v")
        recs.wait(timeout=30)
    assert len(clock.sleeps) == 4 and clock.sleeps == sorted(clock.sleeps) and clock.sleeps[0] < 0.1


def test_propagation_timeout_names_the_record_and_cleans_up() -> None:
    clock = Clock()
    zone = FakeZone(visible_after_polls=10**9)
    provider = FakeDNSProvider({}, zone=zone, sleep=clock.sleep, clock=clock)
    with pytest.raises(DNSError, match="_acme-challenge.a.example.test not visible"):
        with provider.records() as recs:
            recs.add("a.example.test", "v")
            recs.wait(timeout=5)
    assert zone.records == {}
    assert clock.now < 7  # stopped near the deadline


def test_cname_on_acme_challenge_is_followed() -> None:
    zone = FakeZone(cnames={"_acme-challenge.a.example.test": "a.validation.example.net"})
    provider = FakeDNSProvider({}, zone=zone)
    with provider.records() as recs:
        rec = recs.add("a.example.test", "v")
        assert rec.name == "a.validation.example.net"
        assert zone.values("a.validation.example.net") == {"v"}
    assert zone.values("a.validation.example.net") == set()


def test_cname_loop_is_an_error() -> None:
    zone = FakeZone(cnames={"_acme-challenge.a.example.test": "x.example.test", "x.example.test": "x.example.test"})
    with pytest.raises(DNSError, match="CNAME chain"):
        FakeDNSProvider({}, zone=zone).challenge_name("a.example.test")


def test_refused_update_leaves_nothing_behind() -> None:
    zone = FakeZone(refuse_updates=True)
    provider = FakeDNSProvider({}, zone=zone)
    with pytest.raises(DNSError, match="REFUSED"):
        with provider.records() as recs:
            recs.add("a.example.test", "v")
    assert zone.records == {}


def test_registry_and_server_parsing(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="dns_provider.type") as err:
        get_provider({"type": "bogus"})
    assert err.value.hint == "use one of rfc2136, route53"
    assert Server.parse("127.0.0.1:5353") == Server("127.0.0.1", 5353)
    assert Server.parse("[::1]:53") == Server("::1", 53)
    assert Server.parse("10.0.0.2") == Server("10.0.0.2", 53)


def test_tsig_key_file_forms(tmp_path: Any) -> None:
    bind = tmp_path / "k.key"
    bind.write_text('key "acme" {\n\talgorithm hmac-sha512;\n\tsecret "c2VjcmV0c2VjcmV0";\n};\n')
    assert _read_key(bind) == ("c2VjcmV0c2VjcmV0", "hmac-sha512")
    raw = tmp_path / "raw.key"
    raw.write_text("c2VjcmV0c2VjcmV0\n")
    assert _read_key(raw) == ("c2VjcmV0c2VjcmV0", None)
    empty = tmp_path / "empty.key"
    empty.write_text("")
    with pytest.raises(ConfigError, match="no TSIG secret"):
        _read_key(empty)


def test_the_fake_provider_is_chosen_by_name_only_once_a_test_registers_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from vaultops import dns

    with pytest.raises(ConfigError, match="'fake'"):
        get_provider({"type": "fake"})
    monkeypatch.setitem(dns.PROVIDERS, "fake", FAKE_PROVIDER)
    assert isinstance(get_provider({"type": "fake", "zone_id": "t"}), FakeDNSProvider)
    registered: dict[str, str] = {}
    register(registered)
    assert registered == {"fake": FAKE_PROVIDER}


class FakeRoute53:
    """Enough of the boto3 client for the wait loop and conflict handling."""

    def __init__(self, statuses: list[str], conflicts: int = 0) -> None:
        self.statuses = statuses
        self.conflicts = conflicts
        self.values: list[str] = ['"theirs"']
        self.batches: list[list[dict[str, Any]]] = []

    def get_change(self, Id: str) -> dict[str, Any]:
        return {"ChangeInfo": {"Id": Id, "Status": self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]}}

    def list_resource_record_sets(self, **kw: Any) -> dict[str, Any]:
        rrset = {"Name": kw["StartRecordName"], "Type": "TXT", "TTL": 60,
                 "ResourceRecords": [{"Value": v} for v in self.values]}
        return {"ResourceRecordSets": [rrset] if self.values else []}

    def change_resource_record_sets(self, **kw: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        changes = kw["ChangeBatch"]["Changes"]
        self.batches.append(changes)
        if self.conflicts:  # someone else added a value between our read and our write
            self.conflicts -= 1
            self.values = self.values + [f'"other{self.conflicts}"']
            raise ClientError({"Error": {"Code": "InvalidChangeBatch", "Message": "values do not match"}},
                              "ChangeResourceRecordSets")
        upsert = [c for c in changes if c["Action"] in ("UPSERT", "CREATE")]
        self.values = [r["Value"] for r in upsert[0]["ResourceRecordSet"]["ResourceRecords"]] if upsert else []
        return {"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING"}}


def r53(client: FakeRoute53, clock: Clock, **settings: Any) -> Route53Provider:
    return Route53Provider({"hosted_zone_id": "Z1", **settings}, client=client, sleep=clock.sleep, clock=clock)


def test_route53_waits_for_insync_with_its_own_loop() -> None:
    clock = Clock()
    client = FakeRoute53(["PENDING", "PENDING", "INSYNC"])
    from vaultops.dns.base import TxtRecord

    r53(client, clock).add(TxtRecord("_acme-challenge.a.example.test", "ours"))
    assert len(clock.sleeps) == 2
    assert sorted(client.values) == ['"ours"', '"theirs"']


def test_route53_insync_timeout() -> None:
    clock = Clock()
    from vaultops.dns.base import TxtRecord

    with pytest.raises(DNSError, match="still PENDING"):
        r53(FakeRoute53(["PENDING"]), clock, insync_timeout=10).add(TxtRecord("_acme-challenge.a.x.test", "v"))
    assert 10 <= clock.now < 20


def test_route53_concurrent_change_is_read_again_and_keeps_everyones_values() -> None:
    clock = Clock()
    client = FakeRoute53(["INSYNC"], conflicts=2)
    from vaultops.dns.base import TxtRecord

    r53(client, clock).add(TxtRecord("_acme-challenge.a.example.test", "ours"))
    assert len(client.batches) == 3
    assert sorted(client.values) == ['"other0"', '"other1"', '"ours"', '"theirs"']
    first = client.batches[0]
    assert first[0]["Action"] == "DELETE" and first[0]["ResourceRecordSet"]["ResourceRecords"] == [{"Value": '"theirs"'}]


def test_route53_remove_only_deletes_its_own_value() -> None:
    clock = Clock()
    client = FakeRoute53(["INSYNC"])
    client.values = ['"theirs"', '"ours"']
    from vaultops.dns.base import TxtRecord

    r53(client, clock).remove(TxtRecord("_acme-challenge.a.example.test", "ours"))
    assert client.values == ['"theirs"']

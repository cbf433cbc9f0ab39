"""The Route 53 provider against a real moto server: shared names, foreign values, throttling."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from vaultops.dns.base import TxtRecord
from vaultops.dns.route53 import Route53Provider
from vaultops.errors import DNSError
from vaultops.testing.dns import ProviderContract, unique_domain

pytestmark = pytest.mark.integration

ZONE = "r53.vaultops.test"


@pytest.fixture
def zone_id(moto_url: str, aws_env: None) -> str:
    import boto3

    client = boto3.client("route53", endpoint_url=moto_url, region_name="us-east-1")
    zones = client.list_hosted_zones_by_name(DNSName=ZONE + ".")["HostedZones"]
    if zones and zones[0]["Name"] == ZONE + ".":
        return str(zones[0]["Id"]).rsplit("/", 1)[-1]
    created = client.create_hosted_zone(Name=ZONE, CallerReference=uuid.uuid4().hex)
    return str(created["HostedZone"]["Id"]).rsplit("/", 1)[-1]


def settings(moto_url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "route53", "endpoint_url": moto_url, "region": "us-east-1", "follow_cname": False, **extra}


class TestRoute53Contract(ProviderContract):
    @pytest.fixture
    def provider(self, moto_url: str, zone_id: str) -> Route53Provider:
        return Route53Provider(settings(moto_url))  # finds the zone from the name

    @pytest.fixture
    def provider2(self, moto_url: str, zone_id: str) -> Route53Provider:
        return Route53Provider(settings(moto_url, hosted_zone_id=zone_id))

    @pytest.fixture
    def txt_values(self, provider2: Route53Provider, zone_id: str) -> Callable[[str], set[str]]:
        def values(name: str) -> set[str]:
            current = provider2._current(zone_id, name)
            return {r["Value"].strip('"') for r in current["ResourceRecords"]} if current else set()
        return values

    @pytest.fixture
    def domain(self) -> str:
        return unique_domain(ZONE)


class Throttle:
    """Answer the first *n* sends of one operation with a real-looking Throttling error, before the
    request leaves botocore (`before-send`: each of botocore's own retries is one more send)."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.seen = 0

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        self.seen += 1
        if self.left <= 0:
            return None  # let the call reach moto
        self.left -= 1
        body = (b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                b"<Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>")
        return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_kwargs: Any) -> Any:
        yield self.body


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry pauses, recorded instead of slept (its standard mode owns the backoff)."""
    import botocore.endpoint

    pauses: list[float] = []

    class Time:
        def __getattr__(self, name: str) -> Any:
            return getattr(__import__("time"), name)

        @staticmethod
        def sleep(seconds: float) -> None:
            pauses.append(seconds)
    monkeypatch.setattr(botocore.endpoint, "time", Time())
    return pauses


def test_throttling_is_retried_by_botocores_standard_mode(moto_url: str, zone_id: str,
                                                          no_backoff: list[float]) -> None:
    provider = Route53Provider(settings(moto_url, hosted_zone_id=zone_id))
    assert provider.client.meta.config.retries == {"total_max_attempts": 8, "mode": "standard"}
    throttle = Throttle(3)
    provider.client.meta.events.register("before-send.route-53.ChangeResourceRecordSets", throttle)
    name = "_acme-challenge." + unique_domain(ZONE)

    provider.add(TxtRecord(name, "after-throttling"))

    assert throttle.seen == 4 and len(no_backoff) == 3     # three retries, each after a pause
    assert provider._current(zone_id, name)["ResourceRecords"] == [{"Value": '"after-throttling"'}]
    provider.remove(TxtRecord(name, "after-throttling"))


def test_endless_throttling_is_a_clear_error(moto_url: str, zone_id: str, no_backoff: list[float]) -> None:
    provider = Route53Provider(settings(moto_url, hosted_zone_id=zone_id, max_attempts=3))
    throttle = Throttle(100)
    provider.client.meta.events.register("before-send.route-53.ChangeResourceRecordSets", throttle)
    with pytest.raises(DNSError, match="Throttling") as err:
        provider.add(TxtRecord("_acme-challenge." + unique_domain(ZONE), "never"))
    assert "run again later" in str(err.value) and throttle.seen == 3


def test_no_hosted_zone_is_a_clear_error(moto_url: str, aws_env: None) -> None:
    provider = Route53Provider(settings(moto_url))
    with pytest.raises(DNSError, match="no hosted zone"):
        provider.add(TxtRecord("_acme-challenge.host.nowhere-zone.example", "v"))

"""A fake DNS-01 provider and the contract every real provider's tests reuse.

FakeDNSProvider keeps records in a FakeZone (shared between instances, like
one real zone shared by concurrent renewals) and answers propagation checks
from it, optionally only after a number of polls, without any network.

ProviderContract is a pytest base class: subclass it, provide the fixtures
`provider` (a DNSProvider), `provider2` (a second, independent instance on the
same zone) and `txt_values` (name -> set of values as the authoritative data
says), and every test below runs against the real implementation.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from vaultops.dns.base import DNSProvider, Server, normalise
from vaultops.errors import DNSError

FAKE_SERVER = Server("fake.invalid", 53)


@dataclass
class FakeZone:
    records: dict[str, set[str]] = field(default_factory=dict)
    cnames: dict[str, str] = field(default_factory=dict)
    refuse_updates: bool = False
    visible_after_polls: int = 0   # propagation delay, in polls
    polls: int = 0
    log: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def values(self, name: str) -> set[str]:
        with self.lock:
            return set(self.records.get(normalise(name), set()))


class FakeDNSProvider(DNSProvider):
    kind = "fake"
    zones: dict[str, FakeZone] = {}

    def __init__(self, settings: Mapping[str, Any], *, zone: FakeZone | None = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.zone = zone or FakeDNSProvider.zones.setdefault(str(settings.get("zone_id", "default")), FakeZone())

    def _add_txt(self, name: str, value: str) -> None:
        self._check()
        with self.zone.lock:
            self.zone.records.setdefault(normalise(name), set()).add(value)
            self.zone.log.append(("add", normalise(name), value))

    def _remove_txt(self, name: str, value: str) -> None:
        with self.zone.lock:
            values = self.zone.records.get(normalise(name), set())
            values.discard(value)
            if not values:
                self.zone.records.pop(normalise(name), None)
            self.zone.log.append(("remove", normalise(name), value))

    def _check(self) -> None:
        if self.zone.refuse_updates:
            raise DNSError("fake: update REFUSED", hint="the fake zone was told to refuse updates")

    # answer propagation and CNAME questions from the fake zone, not the network
    def authoritative_servers(self, name: str) -> tuple[Server, ...]:
        return (FAKE_SERVER,)

    def _txt_at(self, server: Server, name: str) -> set[str]:
        with self.zone.lock:
            self.zone.polls += 1
            if self.zone.polls <= self.zone.visible_after_polls:
                return set()
        return self.zone.values(name)

    def _cname(self, name: str) -> str | None:
        return self.zone.cnames.get(normalise(name))


def register(providers: MutableMapping[str, str] | None = None) -> None:
    """Let `dns_provider: {type: fake}` select FakeDNSProvider (tests only: vaultops.dns.PROVIDERS has
    no fake). With pytest, prefer `monkeypatch.setitem(PROVIDERS, "fake", FAKE_PROVIDER)`, which undoes itself."""
    from vaultops.dns import PROVIDERS

    (PROVIDERS if providers is None else providers)["fake"] = FAKE_PROVIDER


FAKE_PROVIDER = f"{__name__}:FakeDNSProvider"


def unique_domain(base: str) -> str:
    return f"t{uuid.uuid4().hex[:10]}.{base}"


class ProviderContract:
    """Behaviour every DNS provider must have. Needs fixtures provider, provider2, txt_values, domain."""

    def test_add_then_remove(self, provider: DNSProvider, txt_values: Callable[[str], set[str]],
                             domain: str) -> None:
        with provider.records() as recs:
            rec = recs.add(domain, "value-one")
            assert rec.value in txt_values(rec.name)
        assert "value-one" not in txt_values(rec.name)

    def test_two_renewals_keep_each_others_values(self, provider: DNSProvider, provider2: DNSProvider,
                                                  txt_values: Callable[[str], set[str]], domain: str) -> None:
        with provider.records() as first:
            a = first.add(domain, "from-renewal-a")
            with provider2.records() as second:
                b = second.add(domain, "from-renewal-b")
                assert a.name == b.name
                assert txt_values(a.name) >= {"from-renewal-a", "from-renewal-b"}
            assert txt_values(a.name) >= {"from-renewal-a"}
            assert "from-renewal-b" not in txt_values(a.name)
        assert not txt_values(a.name) & {"from-renewal-a", "from-renewal-b"}

    def test_foreign_value_survives(self, provider: DNSProvider, provider2: DNSProvider,
                                    txt_values: Callable[[str], set[str]], domain: str) -> None:
        name = provider.challenge_name(domain)
        from vaultops.dns.base import TxtRecord

        foreign = TxtRecord(name, "someone-elses")
        provider2.add(foreign)
        try:
            with provider.records() as recs:
                recs.add(domain, "ours")
            assert txt_values(name) == {"someone-elses"}
        finally:
            provider2.remove(foreign)
        assert "someone-elses" not in txt_values(name)

    def test_records_removed_when_the_order_fails(self, provider: DNSProvider,
                                                  txt_values: Callable[[str], set[str]], domain: str) -> None:
        name = ""
        try:
            with provider.records() as recs:
                name = recs.add(domain, "doomed").name
                raise RuntimeError("order failed")
        except RuntimeError:
            pass
        assert "doomed" not in txt_values(name)

    def test_removing_a_missing_value_is_quiet(self, provider: DNSProvider, domain: str) -> None:
        from vaultops.dns.base import TxtRecord

        provider.remove(TxtRecord(provider.challenge_name(domain), "never-added"))

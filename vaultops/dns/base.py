"""The DNS-01 provider contract and everything providers share.

A provider implements only `_add_txt(name, value)` and `_remove_txt(name, value)`
for ONE value at a name, leaving every other value there untouched. This base
class owns the rest: following a CNAME on `_acme-challenge.<domain>` to a
delegated validation zone, confirming propagation by asking the zone's
authoritative servers directly (no fixed sleeps), and removing every record it
added whatever happens (`ChallengeRecords`).

Settings shared by every provider (the `tls.dns_provider` mapping):

    resolvers: ["10.0.0.2", "127.0.0.1:5353"]   # used to find zones and their NS (split horizon)
    nameservers: ["127.0.0.1:5353"]              # ask these as the authoritative servers instead
    propagation_timeout: 120                     # seconds to wait for every authoritative server
    ttl: 60
    follow_cname: true                           # false: never look for a CNAME on _acme-challenge
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

from vaultops.errors import DNSError
from vaultops.retry import TimedOut, poll

log = logging.getLogger("vaultops.dns")

MAX_CNAME_HOPS = 8
QUERY_TIMEOUT = 2.0


@dataclass(frozen=True)
class Server:
    host: str
    port: int = 53

    @classmethod
    def parse(cls, text: str) -> Server:
        text = str(text).strip()
        if text.startswith("["):  # [v6]:port
            host, _, port = text[1:].partition("]")
            return cls(host, int(port.lstrip(":") or 53))
        if text.count(":") == 1:
            host, port = text.split(":")
            return cls(host, int(port))
        return cls(text)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class TxtRecord:
    name: str   # absolute, no trailing dot
    value: str


def normalise(name: str) -> str:
    return name.rstrip(".").lower()


class DNSProvider(ABC):
    """Base of every DNS-01 provider; subclasses set `kind` and the two primitives."""

    kind: ClassVar[str] = "base"

    def __init__(self, settings: Mapping[str, Any], *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = dict(settings)
        self.resolvers = tuple(Server.parse(s) for s in self.settings.get("resolvers") or ())
        self.nameservers = tuple(Server.parse(s) for s in self.settings.get("nameservers") or ())
        self.ttl = int(self.settings.get("ttl", 60))
        self.propagation_timeout = float(self.settings.get("propagation_timeout", 120))
        self._sleep = sleep
        self._clock = clock
        self._zone_cache: dict[str, tuple[str, tuple[Server, ...]]] = {}
        self._cache_lock = threading.Lock()

    # -- what a provider implements -------------------------------------------
    @abstractmethod
    def _add_txt(self, name: str, value: str) -> None:
        """Add one TXT value at name, keeping any other values there."""

    @abstractmethod
    def _remove_txt(self, name: str, value: str) -> None:
        """Remove only this TXT value at name; a missing value is not an error."""

    # -- public API ------------------------------------------------------------
    def add(self, record: TxtRecord) -> None:
        log.debug("dns add TXT %s", record.name)
        self._add_txt(record.name, record.value)

    def remove(self, record: TxtRecord) -> None:
        log.debug("dns remove TXT %s", record.name)
        self._remove_txt(record.name, record.value)

    def records(self) -> ChallengeRecords:
        """A context manager that removes, on exit, every record added through it."""
        return ChallengeRecords(self)

    def challenge_name(self, domain: str) -> str:
        """Where the TXT value must go: `_acme-challenge.<domain>` or its CNAME target."""
        name = f"_acme-challenge.{normalise(domain)}"
        if not self.settings.get("follow_cname", True):
            return name
        for _ in range(MAX_CNAME_HOPS):
            target = self._cname(name)
            if target is None:
                return name
            log.debug("dns %s is a CNAME to %s", name, target)
            name = target
        raise DNSError(f"CNAME chain from _acme-challenge.{domain} is longer than {MAX_CNAME_HOPS}",
                       hint="fix the CNAME loop in the zone")

    def wait_propagated(self, records: Iterable[TxtRecord], *, timeout: float | None = None) -> None:
        """Poll every authoritative server until each holds each value; backoff, no fixed sleep."""
        pending = {r: list(self.authoritative_servers(r.name)) for r in records}

        def all_visible() -> bool | None:
            nonlocal pending
            pending = {r: [s for s in servers if r.value not in self._txt_at(s, r.name)]
                       for r, servers in pending.items()}
            pending = {r: servers for r, servers in pending.items() if servers}
            return None if pending else True

        limit = self.propagation_timeout if timeout is None else timeout
        try:
            poll(all_visible, timeout=limit, interval=0.02, backoff=2, cap=1.0, what="TXT propagation",
                 tolerate=(), clock=self._clock, sleep=self._sleep)
        except TimedOut:
            rec, servers = next(iter(pending.items()))
            raise DNSError(f"TXT value at {rec.name} not visible on {', '.join(map(str, servers))} after {limit:g}s",
                           hint="check the DNS update reached the primary and zone transfers work") from None

    def authoritative_servers(self, name: str) -> tuple[Server, ...]:
        if self.nameservers:
            return self.nameservers
        return self.zone_of(name)[1]

    def zone_of(self, name: str) -> tuple[str, tuple[Server, ...]]:
        """The zone holding name and the addresses of its NS (port 53)."""
        import dns.exception
        import dns.resolver

        name = normalise(name)
        with self._cache_lock:
            if name in self._zone_cache:
                return self._zone_cache[name]
        res = self._resolver()
        try:
            zone = dns.resolver.zone_for_name(name, resolver=res)
            ns = [str(r.target) for r in res.resolve(zone, "NS")]
            addrs = tuple(Server(a.address) for host in ns for a in res.resolve(host, "A"))
        except dns.exception.DNSException as exc:
            raise DNSError(f"cannot find the zone of {name}: {exc}",
                           hint="set dns_provider.resolvers (split horizon) or nameservers") from exc
        if not addrs:
            raise DNSError(f"zone {zone} of {name} has no NS address", hint="set dns_provider.nameservers")
        result = (normalise(zone.to_text()), addrs)
        with self._cache_lock:
            self._zone_cache[name] = result
        return result

    # -- helpers for subclasses ----------------------------------------------------
    def zone_name(self, name: str) -> str:
        """The configured zone, else the one found from the name (SOA walk)."""
        configured = self.settings.get("zone")
        if configured:
            return normalise(configured)
        if self.nameservers and not self.resolvers:
            key = "via:" + normalise(name)
            with self._cache_lock:
                cached = self._zone_cache.get(key)
            if cached is None:
                cached = (self._zone_via(self.nameservers, name), ())
                with self._cache_lock:
                    self._zone_cache[key] = cached
            return cached[0]
        return self.zone_of(name)[0]

    def _zone_via(self, servers: tuple[Server, ...], name: str) -> str:
        import dns.exception
        import dns.resolver

        try:
            return normalise(dns.resolver.zone_for_name(normalise(name), resolver=self._resolver(servers))
                             .to_text())
        except dns.exception.DNSException as exc:
            raise DNSError(f"cannot find the zone of {name} on {servers[0]}: {exc}",
                           hint="set dns_provider.zone") from exc

    def _resolver(self, servers: tuple[Server, ...] | None = None) -> Any:
        import dns.nameserver
        import dns.resolver

        servers = servers or self.resolvers or self.nameservers
        res = dns.resolver.Resolver(configure=not servers)
        if servers:
            res.nameservers = [dns.nameserver.Do53Nameserver(s.host, s.port) for s in servers]
        res.lifetime = QUERY_TIMEOUT * 2
        res.timeout = QUERY_TIMEOUT
        res.cache = None
        return res

    def _query(self, server: Server, name: str, rdtype: str) -> Any:
        """One non-recursive question to one server; None when it does not answer."""
        import dns.exception
        import dns.flags
        import dns.message
        import dns.query

        q = dns.message.make_query(normalise(name) + ".", rdtype)
        q.flags &= ~dns.flags.RD
        try:
            # big TXT sets (many concurrent values) do not fit in UDP: retry over TCP when truncated
            return dns.query.udp_with_fallback(q, server.host, port=server.port, timeout=QUERY_TIMEOUT)[0]
        except (dns.exception.DNSException, OSError) as exc:
            log.debug("dns query %s %s at %s failed: %s", name, rdtype, server, exc)
            return None

    def _txt_at(self, server: Server, name: str) -> set[str]:
        import dns.rdatatype

        resp = self._query(server, name, "TXT")
        if resp is None:
            return set()
        return {b"".join(rd.strings).decode() for rrset in resp.answer
                if rrset.rdtype == dns.rdatatype.TXT and normalise(rrset.name.to_text()) == normalise(name)
                for rd in rrset}

    def _cname(self, name: str) -> str | None:
        import dns.rdatatype

        for server in self.authoritative_servers(name):
            resp = self._query(server, name, "CNAME")
            if resp is None:
                continue
            for rrset in resp.answer:
                if rrset.rdtype == dns.rdatatype.CNAME and normalise(rrset.name.to_text()) == normalise(name):
                    return normalise(rrset[0].target.to_text())
            return None
        return None


class ChallengeRecords:
    """Records added for one ACME order; all removed on exit, whatever happened."""

    def __init__(self, provider: DNSProvider) -> None:
        self.provider = provider
        self.added: list[TxtRecord] = []

    def __enter__(self) -> ChallengeRecords:
        return self

    def add(self, domain: str, value: str) -> TxtRecord:
        record = TxtRecord(self.provider.challenge_name(domain), value)
        self.provider.add(record)
        self.added.append(record)
        return record

    def wait(self, *, timeout: float | None = None) -> None:
        self.provider.wait_propagated(self.added, timeout=timeout)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        failures = []
        for record in reversed(self.added):
            try:
                self.provider.remove(record)
            except Exception as err:  # noqa: BLE001 - try every record, report after
                failures.append(f"{record.name}: {err}")
        self.added.clear()
        if failures and exc is None:
            raise DNSError(f"could not remove challenge TXT records: {'; '.join(failures)}",
                           hint="remove them by hand; they are harmless but clutter the zone")
        for failure in failures:
            log.error("could not remove challenge TXT record %s", failure)

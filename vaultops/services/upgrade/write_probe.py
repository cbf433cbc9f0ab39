"""A write probe that behaves like a client behind a health-checking load balancer.

It writes `PROBE_MOUNT/k<i> = i` every *interval* seconds to a node whose
sys/health last said it is serving (200 active / 429 standby), follows a
redirect to the active node (307 or "not active": ask that node's sys/leader),
and retries once on another serving node. Every acknowledged write is kept
with the moment it was acknowledged, so afterwards one can check that each
one is readable and measure the longest gap between acknowledged writes.
Used by `upgrade rehearse`, the integration tests and the benchmark.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from vaultops.errors import VaultOpsError, VaultStandby
from vaultops.retry import poll
from vaultops.vault import NodeClient
from vaultops.vault.cluster import NoActiveNode, find_active

PROBE_MOUNT = "vaultops-probe"


@dataclass(frozen=True)
class Ack:
    key: str
    value: str
    at: float          # time.monotonic() when the write was acknowledged
    node: str


def prepare(clients: Sequence[NodeClient], *, mount: str = PROBE_MOUNT, timeout: float = 30.0) -> None:
    """Mount a kv-v1 engine for the probe (if missing) and wait until every node accepts a write."""
    active = find_active(clients)
    if active is None:
        raise NoActiveNode("write probe: no active node to mount the probe engine on",
                           hint="unseal the cluster or wait for a leader election")
    try:
        active.client.write(f"sys/mounts/{mount}", {"type": "kv", "options": {"version": "1"}})
    except VaultOpsError as exc:
        if "existing mount" not in exc.message and "path is already in use" not in exc.message:
            raise
    waiting = list(clients)

    def every_node_writes() -> bool | None:
        for c in list(waiting):
            c.write(f"{mount}/ready", {"value": "1"})    # a VaultOpsError: not yet (tolerated by poll)
            waiting.remove(c)
        return True
    poll(every_node_writes, timeout=timeout, interval=0.1, what="write probe: every node to accept a write",
         error=VaultOpsError)


class WriteProbe:
    def __init__(self, clients: Sequence[NodeClient], *, mount: str = PROBE_MOUNT, interval: float = 0.02,
                 health_every: float = 0.25, prefix: str = "k") -> None:
        self.clients = list(clients)
        self.mount, self.interval, self.health_every, self.prefix = mount, interval, health_every, prefix
        self.acks: list[Ack] = []
        self.failed: list[tuple[str, str]] = []       # (key, last error) of writes never acknowledged
        self._serving: list[NodeClient] = list(clients)
        self._by_address: dict[str, NodeClient] = {c.address.rstrip("/"): c for c in clients}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = self.stopped_at = 0.0

    # -- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> WriteProbe:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.started_at = time.monotonic()
        for target, name in ((self._health_loop, "probe-health"), (self._write_loop, "probe-write")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self.stopped_at = time.monotonic()

    # -- the load balancer's view --------------------------------------------------------
    def _health_loop(self) -> None:
        while not self._stop.is_set():
            serving = []
            for c in self.clients:
                try:
                    if c.ha.health().role in ("active", "standby"):
                        serving.append(c)
                except VaultOpsError:
                    pass
            self._serving = serving
            self._stop.wait(self.health_every)

    # -- the client ----------------------------------------------------------------------
    def _write_loop(self) -> None:
        i = 0
        while not self._stop.is_set():
            key, value = f"{self.mount}/{self.prefix}{i}", str(i)
            self._write_one(key, value, i)
            i += 1
            self._stop.wait(self.interval)

    def _write_one(self, key: str, value: str, i: int) -> None:
        serving = self._serving or self.clients
        first = serving[i % len(serving)]
        error = ""
        for client in (first, *[c for c in serving if c is not first][:1]):   # one retry elsewhere
            try:
                node = self._write_following(client, key, value)
                self.acks.append(Ack(key, value, time.monotonic(), node))
                return
            except VaultOpsError as exc:
                error = exc.message
        self.failed.append((key, error))

    def _write_following(self, client: NodeClient, key: str, value: str) -> str:
        try:
            client.write(key, {"value": value})
            return client.name
        except VaultStandby:
            leader = client.ha.leader().leader_address.rstrip("/")
            target = self._by_address.get(leader)
            if target is None or target is client:
                raise
            target.write(key, {"value": value})
            return target.name

    # -- results ----------------------------------------------------------------------------
    def longest_gap(self, start: float | None = None, end: float | None = None) -> float:
        """Longest time between consecutive acknowledged writes within [start, end]."""
        lo, hi = start or self.started_at, end or self.stopped_at or time.monotonic()
        times = [lo] + [a.at for a in self.acks if lo <= a.at <= hi] + [hi]
        return max(b - a for a, b in zip(times, times[1:], strict=False))

    def missing(self, reader: NodeClient) -> list[str]:
        """Acknowledged writes that do not read back (through *reader*, the active node)."""
        return self.missing_among(reader, self.acks)

    def missing_among(self, reader: NodeClient, acks: Sequence[Ack]) -> list[str]:
        """Those of *acks* that do not read back through *reader*."""
        lost = []
        for ack in acks:
            try:
                got = (reader.read(ack.key).get("data") or {}).get("value")
            except VaultOpsError:
                got = None
            if got != ack.value:
                lost.append(ack.key)
        return lost

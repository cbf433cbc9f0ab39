"""A cluster-wide run lease, kept in the cluster itself: one runbook run at a time, whoever starts it.

The local run lock (vaultops/runbook/state.py) only keeps apart processes that share a state
directory. The lease is a KV v2 entry in the cluster, written with check-and-set, so two
operators on two machines cannot both win it. Its holder renews it from a background thread
while the run is active; a renewal that finds another holder makes the engine halt before its
next step. A lease whose holder died (SIGKILL, a lost laptop) expires after its TTL, measured
by the server's clock (the version's created_time against the answer's Date header), so the
machines' clocks do not matter. A resume of the same run id takes its own lease over at once.

    upgrade:
      lease: {mount: vaultops, path: leases, ttl_seconds: 300}   # the defaults; {enabled: false} turns it off

The entry is {mount}/data/{path}/runbook. If the mount does not exist it is created (kv v2)
when the token may; otherwise the error names the command that creates it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from vaultops.errors import ConfigError, RunbookError, VaultOpsError
from vaultops.files.lock import os_user
from vaultops.names import check_name
from vaultops.retry import retry
from vaultops.vault.kv import CASMismatch, ClusterKV, KVEntry, MountMissing

log = logging.getLogger("vaultops.lease")
LEASE_KEYS = ("enabled", "mount", "path", "ttl_seconds", "renew_seconds")
WHERE = "vaultops.yaml upgrade.lease"


@dataclass(frozen=True)
class LeaseSettings:
    enabled: bool = True
    mount: str = "vaultops"
    path: str = "leases"
    ttl_seconds: float = 300.0
    renew_seconds: float | None = None      # default: a third of the TTL

    @property
    def key(self) -> str:
        return f"{self.path}/runbook"

    @property
    def renew_every(self) -> float:
        return self.renew_seconds or self.ttl_seconds / 3


def lease_settings(cfg: Any) -> LeaseSettings:
    """The `upgrade.lease` mapping of vaultops.yaml, validated."""
    raw = cfg.section("upgrade").get("lease")
    if raw is None:
        return LeaseSettings()
    if raw is False:
        return LeaseSettings(enabled=False)
    if not isinstance(raw, dict):
        raise ConfigError(f"{WHERE} must be a mapping", hint="e.g. lease: {mount: vaultops, ttl_seconds: 300}")
    unknown = sorted(set(raw) - set(LEASE_KEYS))
    if unknown:
        raise ConfigError(f"{WHERE}: unknown key {unknown[0]!r}", hint=f"known keys: {', '.join(LEASE_KEYS)}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{WHERE}.enabled must be true or false")
    mount = check_name("object key", raw.get("mount", "vaultops"), where=f"{WHERE}.mount", error=ConfigError)
    path = check_name("object key", raw.get("path", "leases"), where=f"{WHERE}.path", error=ConfigError)
    ttl = _seconds(raw.get("ttl_seconds", 300), "ttl_seconds", low=2, high=86400)
    renew = _seconds(raw["renew_seconds"], "renew_seconds", low=0.2, high=ttl / 2) if "renew_seconds" in raw else None
    return LeaseSettings(enabled=enabled, mount=mount, path=path, ttl_seconds=ttl, renew_seconds=renew)


def _seconds(value: Any, key: str, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{WHERE}.{key} must be a number of seconds from {low:g} to {high:g}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class LeaseHolder:
    run_id: str
    runbook: str
    operator: str
    user: str
    host: str
    pid: int
    since: str

    def describe(self) -> str:
        who = self.operator if self.operator == self.user else f"{self.operator} ({self.user})"
        return f"run {self.run_id} ({self.runbook}) of {who} on {self.host}, pid {self.pid}, since {self.since}"

    @classmethod
    def me(cls, *, run_id: str, runbook: str, operator: str | None) -> LeaseHolder:
        user = os_user()
        return cls(run_id=run_id, runbook=runbook, operator=operator or user, user=user,
                   host=socket.gethostname(), pid=os.getpid(), since=_now())

    @classmethod
    def from_json(cls, raw: Any) -> LeaseHolder | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(run_id=_clean(raw["run_id"]), runbook=_clean(raw["runbook"]), operator=_clean(raw["operator"]),
                       user=_clean(raw["user"]), host=_clean(raw["host"]), pid=int(raw["pid"]),
                       since=_clean(raw["since"]))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Seen:
    """The lease entry as read: who holds it and for how much longer (by the server's clock)."""

    holder: LeaseHolder | None
    held: bool
    age: float | None
    ttl: float
    version: int

    @property
    def expired(self) -> bool:
        return self.age is not None and self.age > self.ttl

    def busy_for(self, run_id: str) -> bool:
        return self.held and not self.expired and self.holder is not None and self.holder.run_id != run_id

    def refusal(self) -> RunbookError:
        assert self.holder is not None
        left = f"; it expires in {self.ttl - self.age:.0f}s unless renewed" if self.age is not None else ""
        return RunbookError(f"another run holds the cluster's run lease: {self.holder.describe()}{left}",
                            hint="wait for that run to finish (a dead holder's lease expires after its TTL), "
                                 "or resume that run where it was started")


def _seen(entry: KVEntry | None) -> Seen:
    if entry is None:
        return Seen(None, False, None, 0.0, 0)
    data = entry.data
    age = entry.age
    if age is None and entry.created_time is not None:   # no Date header: fall back to our clock
        age = (datetime.now(timezone.utc) - entry.created_time).total_seconds()
    ttl = data.get("ttl_seconds")
    return Seen(LeaseHolder.from_json(data.get("holder")), data.get("state") == "held" and not entry.deleted, age,
                float(ttl) if isinstance(ttl, (int, float)) else 0.0, entry.version)


class RunLease:
    """Our hold on the lease: acquire, renew (thread), check between steps, release."""

    def __init__(self, kv: ClusterKV, settings: LeaseSettings, holder: LeaseHolder,
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.kv, self.settings, self.holder = kv, settings, holder
        self.version = 0
        self.replaced: LeaseHolder | None = None   # a foreign holder whose expired lease we took
        self.lost: str | None = None
        self.last_error: VaultOpsError | None = None
        self._clock = clock
        self._last_ok = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, *, take_over: bool = False) -> None:
        """Win the lease with check-and-set, or raise RunbookError naming its holder."""
        def attempt() -> None:
            seen = _seen(self.kv.read(self.settings.key))
            if seen.busy_for(self.holder.run_id) and not take_over:
                raise seen.refusal()
            self.version = self.kv.write(self.settings.key, self._record("held"), cas=seen.version).version
            if seen.held and seen.holder is not None and seen.holder.run_id != self.holder.run_id:
                self.replaced = seen.holder
            self._last_ok = self._clock()
        try:
            # a CAS miss (someone wrote in between): let leadership and replication settle, look again
            retry(attempt, on=(CASMismatch,), attempts=8, first=0.1, cap=0.5)
        except CASMismatch:
            raise RunbookError("could not win the cluster's run lease: it keeps changing",
                               hint="another operator is starting a run right now; check with them") from None

    def renew(self) -> bool:
        """Write a new version over ours; False (and `lost` set) if someone else holds it now."""
        with self._lock:
            if self.lost:
                return False
            try:
                self.version = self.kv.write(self.settings.key, self._record("held"), cas=self.version).version
            except CASMismatch:
                return self._recover()
            except VaultOpsError as exc:     # a step-down or restart: try again soon
                self.last_error = exc
                log.debug("lease renewal failed: %s", exc)
                return False
            self._last_ok, self.last_error = self._clock(), None
            return True

    def _recover(self) -> bool:
        """A CAS miss: either our own earlier write landed without an answer, or we lost the lease."""
        try:
            seen = _seen(self.kv.read(self.settings.key))
        except VaultOpsError as exc:
            self.last_error = exc
            return False
        if seen.version <= self.version:     # an answer no newer than our own write (a lagging node): ask again
            return False
        if seen.held and seen.holder == self.holder:
            self.version = seen.version
            self._last_ok = self._clock()
            return True
        self.lost = seen.holder.describe() if seen.holder else "nobody (the lease was released or deleted)"
        return False

    def check(self) -> None:
        """Between steps: halt if the lease is gone, or has not been renewed for longer than its TTL."""
        stale = self._clock() - self._last_ok
        if not self.lost and stale > self.settings.ttl_seconds and not self.renew() and not self.lost:
            why = f" ({self.last_error.message})" if self.last_error else ""
            raise RunbookError(f"could not renew the cluster's run lease for {stale:.0f}s{why}",
                               hint="another operator may take it over: check the cluster, then resume")
        if self.lost:
            raise RunbookError(f"this run lost the cluster's run lease to {self.lost}",
                               hint="two runs must not act on one cluster: find out who started the other one")

    def reclaim(self, from_run: str) -> bool:
        """Take the lease back after a snapshot restore replaced the entry with the one the snapshot
        holds (run *from_run*'s, or a released one); False if a live run of someone else holds it."""
        with self._lock:
            seen = _seen(self.kv.read(self.settings.key))
            holder = seen.holder.run_id if seen.holder is not None else None
            if seen.held and not seen.expired and holder not in (from_run, self.holder.run_id):
                return False
            self.version = self.kv.write(self.settings.key, self._record("held"), cas=seen.version).version
            self.lost, self._last_ok = None, self._clock()
        if self._thread is None or not self._thread.is_alive():
            self.start()
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="run-lease", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        pause = self.settings.renew_every
        while not self._stop.wait(pause):
            ok = self.renew()
            if self.lost:
                return
            pause = self.settings.renew_every if ok else min(1.0, self.settings.renew_every)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.kv.budget + 5)
        if self.lost:
            return
        with contextlib.suppress(VaultOpsError):   # not released: it expires after its TTL
            self.kv.write(self.settings.key, self._record("released"), cas=self.version)

    def _record(self, state: str) -> dict[str, Any]:
        return {"state": state, "holder": asdict(self.holder), "ttl_seconds": self.settings.ttl_seconds,
                "written_at": _now()}


def ensure_free(cfg: Any, clients: Sequence[Any], *, run_id: str | None = None) -> None:
    """Before planning a new run: refuse at once (reading only) if another run holds the lease."""
    settings = lease_settings(cfg)
    if not settings.enabled:
        return
    try:
        seen = _seen(ClusterKV(clients, settings.mount).read(settings.key))
    except MountMissing:
        return
    if seen.busy_for(run_id or ""):
        raise seen.refusal()


@contextlib.contextmanager
def run_lease(cfg: Any, clients: Sequence[Any], *, run_id: str, runbook: str, operator: str | None,
              take_over: bool = False, journal: Any = None) -> Iterator[RunLease | None]:
    """Hold the cluster's run lease for the block (renewed in the background); None when turned off."""
    settings = lease_settings(cfg)
    if not settings.enabled:
        yield None
        return
    kv = ClusterKV(clients, settings.mount, create_mount=True, budget=min(15.0, settings.ttl_seconds))
    lease = RunLease(kv, settings, LeaseHolder.me(run_id=run_id, runbook=runbook, operator=operator))
    lease.acquire(take_over=take_over)
    if lease.replaced is not None and journal is not None:
        journal.append("runbook.lease_taken_over", outcome="ok",
                       details={"run": run_id, "expired_holder": asdict(lease.replaced)})
    lease.start()
    try:
        yield lease
    finally:
        lease.release()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _clean(value: Any) -> str:
    return "".join(c if c.isprintable() else "?" for c in str(value)[:120])


def release_if_held_by(cfg: Any, clients: Sequence[Any], run_id: str) -> bool:
    """Release the lease if run *run_id* holds it: after a snapshot restore the entry is the one the
    snapshot holds (the run that took the snapshot), which no live process renews."""
    settings = lease_settings(cfg)
    if not settings.enabled:
        return False
    kv = ClusterKV(clients, settings.mount)
    try:
        entry = kv.read(settings.key)
    except MountMissing:
        return False
    seen = _seen(entry)
    if not seen.held or seen.holder is None or seen.holder.run_id != run_id:
        return False
    record = {"state": "released", "holder": asdict(seen.holder), "ttl_seconds": seen.ttl, "written_at": _now()}
    kv.write(settings.key, record, cas=seen.version)
    return True

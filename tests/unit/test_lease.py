"""The run lease against an in-memory KV with a server clock: who may take it, when it expires, what is lost.

Real-cluster behaviour (two state directories, SIGKILL, step-downs) is in
tests/adversarial/test_runbook_guard.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from vaultops.errors import RunbookError, VaultUnreachable
from vaultops.services.lease import LeaseHolder, LeaseSettings, RunLease
from vaultops.vault.kv import CASMismatch, KVEntry, KVWritten

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class FakeKV:
    """Versions with the server's time; `stale` makes reads answer an older version (a lagging node)."""

    budget = 1.0

    def __init__(self) -> None:
        self.versions: list[tuple[dict[str, Any], datetime]] = []
        self.now = T0
        self.stale = 0
        self.down = False

    def read(self, path: str) -> KVEntry | None:
        if self.down:
            raise VaultUnreachable("n1: unreachable", node="n1")
        upto = len(self.versions) - self.stale
        if upto <= 0:
            return None
        data, when = self.versions[upto - 1]
        return KVEntry(path, dict(data), upto, when, self.now)

    def write(self, path: str, data: dict[str, Any], *, cas: int) -> KVWritten:
        if self.down:
            raise VaultUnreachable("n1: unreachable", node="n1")
        if cas != len(self.versions):
            raise CASMismatch("changed", status=400)
        self.versions.append((dict(data), self.now))
        return KVWritten(len(self.versions), self.now)


def lease(kv: FakeKV, run_id: str, *, ttl: float = 30, operator: str = "alice") -> RunLease:
    holder = LeaseHolder(run_id=run_id, runbook="upgrade", operator=operator, user=operator, host="h", pid=1,
                         since="2026-01-01T00:00:00+00:00")
    return RunLease(kv, LeaseSettings(ttl_seconds=ttl), holder)   # type: ignore[arg-type]


def test_a_held_lease_refuses_another_run_naming_it_until_it_expires_by_the_server_clock() -> None:
    kv = FakeKV()
    lease(kv, "a1").acquire()
    kv.now = T0 + timedelta(seconds=29)
    with pytest.raises(RunbookError) as err:
        lease(kv, "b1", operator="bob").acquire()
    assert "run a1 (upgrade) of alice on h, pid 1, since 2026-01-01" in err.value.message
    assert "expires in 1s" in err.value.message and "\n" not in str(err.value)
    kv.now = T0 + timedelta(seconds=31)
    taker = lease(kv, "b1", operator="bob")
    taker.acquire()
    assert taker.replaced is not None and taker.replaced.run_id == "a1"


def test_the_same_run_takes_its_own_lease_over_at_once() -> None:
    kv = FakeKV()
    lease(kv, "a1").acquire()
    again = lease(kv, "a1")
    again.acquire()
    assert again.replaced is None and again.version == 2


def test_a_released_lease_is_free() -> None:
    kv = FakeKV()
    first = lease(kv, "a1")
    first.acquire()
    first.release()
    lease(kv, "b1").acquire()


def test_renewal_finding_another_holder_loses_and_check_halts() -> None:
    kv = FakeKV()
    mine = lease(kv, "a1")
    mine.acquire()
    kv.now = T0 + timedelta(seconds=40)
    lease(kv, "b1", operator="bob").acquire()      # ours expired: bob took it
    assert mine.renew() is False and mine.lost is not None and "run b1" in mine.lost
    with pytest.raises(RunbookError, match="lost the cluster's run lease to run b1"):
        mine.check()
    mine.release()
    assert kv.versions[-1][0]["holder"]["run_id"] == "b1"   # never overwritten by the loser


def test_a_stale_read_after_a_cas_miss_is_not_taken_for_a_loss() -> None:
    kv = FakeKV()
    mine = lease(kv, "a1")
    mine.acquire()
    assert mine.renew()                 # version 2
    mine.version = 1                    # as if the answer to our last write was lost
    kv.stale = 1                        # and the node asked lags one version behind
    assert mine.renew() is False and mine.lost is None
    kv.stale = 0
    assert mine.renew() and mine.lost is None


def test_an_unreachable_cluster_is_tolerated_until_the_ttl() -> None:
    clock = [0.0]
    kv = FakeKV()
    mine = RunLease(kv, LeaseSettings(ttl_seconds=10), lease(kv, "a1").holder,   # type: ignore[arg-type]
                    clock=lambda: clock[0])
    mine.acquire()
    kv.down = True
    clock[0] = 9
    assert mine.renew() is False
    mine.check()                        # within the TTL: a step-down or a restart, carry on
    clock[0] = 11
    with pytest.raises(RunbookError, match="could not renew the cluster's run lease for 11s"):
        mine.check()
    kv.down = False
    mine.check()                        # renewed synchronously: still ours (check-and-set)


def test_reclaim_takes_the_lease_back_from_the_entry_a_snapshot_restore_brought_but_not_from_a_live_run() -> None:
    kv = FakeKV()
    upgrade = lease(kv, "up1")
    upgrade.acquire()                              # the entry the pre-upgrade snapshot holds
    snapshot_entry = kv.versions[-1]
    rollback = lease(kv, "rb1")
    upgrade.release()
    rollback.acquire()
    kv.versions.append(snapshot_entry)             # the restore brings the upgrade run's entry back
    assert rollback.renew() is False and rollback.lost
    with pytest.raises(RunbookError, match="lost the cluster's run lease"):
        rollback.check()
    assert rollback.reclaim("up1") is True and rollback.lost is None
    rollback.check()
    assert kv.versions[-1][0]["holder"]["run_id"] == "rb1"
    rollback.release()
    lease(kv, "other").acquire()                   # a live run of someone else: never reclaimed
    assert lease(kv, "rb2").reclaim("up1") is False

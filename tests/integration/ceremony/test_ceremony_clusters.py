"""Ceremonies on a fresh 5-node raft cluster (followers not yet joined) and a PostgreSQL pair."""

from __future__ import annotations

import json

import pytest
from ceremony_helpers import keyholder_share, run_vaultops, statuses

from vaultops.journal import Journal
from vaultops.services.ceremony.manifest import Manifest
from vaultops.services.ceremony.init import PENDING_CLUSTER_ID
from vaultops.testing.sandbox import Sandbox

pytestmark = pytest.mark.integration


def lines(box: Sandbox, *names: str) -> str:
    return "".join(f"{n}: {keyholder_share(box, n)}\n" for n in names)


def test_fresh_five_nodes_one_share_per_keyholder_unseals_the_joining_followers(fresh5: Sandbox) -> None:
    """A cold start: the followers join once the leader is unsealed and need the threshold of their own;
    the process re-sends the shares it checked (issue 15), so one line per keyholder unseals all five."""
    assert Manifest.load(fresh5.dir / "keyholders.yaml").cluster_id == PENDING_CLUSTER_ID
    first = run_vaultops(fresh5, "unseal", "--share-stdin", "--format", "json",
                         stdin=lines(fresh5, "alice", "bob", "carol"))
    assert first.returncode == 0, first.stderr
    snap = json.loads(first.stdout[first.stdout.index("{"):])
    assert snap["all_unsealed"] and snap["submitted"] == ["alice", "bob", "carol"]
    assert "needs 3 shares of its own" in first.stderr          # each follower, once it is initialised
    for name in ("alice", "bob", "carol"):
        assert f"re-sent keyholder {name}'s share #" in first.stderr
    assert all(not st.sealed for st in statuses(fresh5).values())
    # The first unseal revealed the cluster id: the manifest records it.
    cluster_id = Manifest.load(fresh5.dir / "keyholders.yaml").cluster_id
    assert cluster_id == statuses(fresh5)["node1"].cluster_id
    entries = list(Journal(fresh5.dir / "journal.jsonl").entries())
    assert sum(e["action"] == "unseal.share-submitted" for e in entries) == 3
    assert sum(e["action"] == "unseal.share-resent" for e in entries) >= 3


def test_postgresql_active_standby_pair(pg_sealed: Sandbox) -> None:
    r = run_vaultops(pg_sealed, "unseal", "--share-stdin", stdin=lines(pg_sealed, "erin", "carol", "alice"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("to [node1, node2]") == 3
    assert all(not st.sealed for st in statuses(pg_sealed).values())

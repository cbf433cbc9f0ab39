"""Ceremonies on a fresh 5-node raft cluster (followers not yet joined) and a PostgreSQL pair."""

from __future__ import annotations

import json

import pytest
from ceremony_helpers import keyholder_share, run_vaultops, statuses

from vaultops.services.ceremony.manifest import Manifest
from vaultops.services.ceremony.init import PENDING_CLUSTER_ID
from vaultops.testing.sandbox import Sandbox

pytestmark = pytest.mark.integration


def lines(box: Sandbox, *names: str) -> str:
    return "".join(f"{n}: {keyholder_share(box, n)}\n" for n in names)


def test_fresh_five_nodes_followers_need_their_own_shares(fresh5: Sandbox) -> None:
    assert Manifest.load(fresh5.dir / "keyholders.yaml").cluster_id == PENDING_CLUSTER_ID
    first = run_vaultops(fresh5, "unseal", "--share-stdin", "--format", "json",
                         stdin=lines(fresh5, "alice", "bob", "carol"))
    assert first.returncode == 11, first.stderr
    snap = json.loads(first.stdout[first.stdout.index("{"):])
    by_name = {n["name"]: n for n in snap["nodes"]}
    assert by_name["node1"]["phase"] == "unsealed"
    for name in ("node2", "node3", "node4", "node5"):
        assert by_name[name]["phase"] == "sealed"
        assert by_name[name]["must_resubmit"] == ["alice", "bob", "carol"]
    assert "needs 3 shares of its own" in first.stderr
    # The first unseal revealed the cluster id: the manifest records it.
    cluster_id = Manifest.load(fresh5.dir / "keyholders.yaml").cluster_id
    assert cluster_id == statuses(fresh5)["node1"].cluster_id
    second = run_vaultops(fresh5, "unseal", "--share-stdin", stdin=lines(fresh5, "dave", "erin", "bob"))
    assert second.returncode == 0, second.stderr
    assert all(not st.sealed for st in statuses(fresh5).values())


def test_postgresql_active_standby_pair(pg_sealed: Sandbox) -> None:
    r = run_vaultops(pg_sealed, "unseal", "--share-stdin", stdin=lines(pg_sealed, "erin", "carol", "alice"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("to [node1, node2]") == 3
    assert all(not st.sealed for st in statuses(pg_sealed).values())

"""Issue 15: held shares re-sent to joiners and late nodes; each event journalled once; no false entries.

The one fake Vault (vaultops.testing.fake_vault) plays OpenBao: a node that is not initialised refuses
shares, a raft follower answers `sealed, progress 0` after its threshold until join().
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ceremony_fakes import CLUSTER_ID, NAMES, b64, fake_cluster, make_manifest, make_shares

from vaultops.journal import Journal
from vaultops.services.ceremony import view
from vaultops.services.ceremony.held import HeldShares
from vaultops.services.ceremony.init import PENDING_CLUSTER_ID
from vaultops.services.ceremony.manifest import Manifest
from vaultops.services.ceremony.shares import Share
from vaultops.services.ceremony.unseal import EventKind, NodePhase, UnsealCeremony


@pytest.fixture
def raws() -> list[bytes]:
    return make_shares()


def ceremony(cluster: list, raws: list[bytes], tmp_path: Path, **kwargs: object) -> UnsealCeremony:
    return UnsealCeremony(cluster, manifest=kwargs.pop("manifest", make_manifest(raws)),  # type: ignore[arg-type]
                          manifest_path=tmp_path / "keyholders.yaml",
                          journal=Journal(tmp_path / "journal.jsonl", cluster="test"), retry_for=0.1,
                          join_timeout=5, **kwargs)  # type: ignore[arg-type]


def actions(tmp_path: Path) -> list[str]:
    return [e["action"] for e in Journal(tmp_path / "journal.jsonl").entries()]


def entries(tmp_path: Path, action: str) -> list[dict]:
    return [e for e in Journal(tmp_path / "journal.jsonl").entries() if e["action"] == action]


def test_followers_that_join_after_the_leader_get_the_held_shares(raws: list[bytes], tmp_path: Path) -> None:
    """A cold start: followers become initialised only once the leader is unsealed, then need the
    threshold of their own -- each keyholder's share is re-sent, nobody enters it twice."""
    cluster = fake_cluster(raws, 3, follower=True)
    cluster[0].seal.follower = False
    for node in cluster[1:]:
        node.seal.initialized = False
    cer = ceremony(cluster, raws, tmp_path)
    cer.start()
    for name, raw in zip(NAMES, raws[:3]):
        assert cer.submit(b64(raw), keyholder=name).sent_to == ("node1",)
    snap = cer.refresh()
    assert snap.node("node1").phase is NodePhase.UNSEALED and snap.held == ("alice", "bob", "carol")
    assert all(n.seal.calls == 0 for n in cluster[1:])  # not initialised: nothing sent (field notes)
    for node in cluster[1:]:
        node.seal.initialized = True                      # retry_join fetched the challenge
    snap = cer.refresh()
    assert [snap.node(n).phase for n in ("node2", "node3")] == [NodePhase.JOINING] * 2
    assert all(n.seal.calls == 3 for n in cluster[1:])
    for node in cluster[1:]:
        node.seal.join()
    snap = cer.follow(timeout=5, interval=0.01)
    assert snap.all_unsealed and snap.held == () and snap.submitted == ("alice", "bob", "carol")
    resent = entries(tmp_path, "unseal.share-resent")
    assert [(e["details"]["keyholder"], e["details"]["nodes"]) for e in resent] == [
        ("alice", ["node2", "node3"]), ("bob", ["node2", "node3"]), ("carol", ["node2", "node3"])]
    assert len(entries(tmp_path, "unseal.share-submitted")) == 3  # a re-send is not a new submission
    assert resent[0]["details"]["message"] == ("re-sent keyholder alice's share #1 to [node2, node3] "
                                               "(held for this ceremony)")
    blob = (tmp_path / "journal.jsonl").read_text()
    assert not any(b64(r) in blob or r.hex() in blob for r in raws)


def test_a_node_that_comes_back_later_gets_the_held_shares(raws: list[bytes], tmp_path: Path) -> None:
    """After an outage one node is still down while the keyholders enter their shares."""
    cluster = fake_cluster(raws, 3)
    cluster[2].seal.unreachable = True
    cer = ceremony(cluster, raws, tmp_path)
    cer.start()
    for name, raw in zip(NAMES, raws[:3]):
        cer.submit(b64(raw), keyholder=name)
    assert cer.refresh().node("node3").phase is NodePhase.UNREACHABLE
    cluster[2].seal.unreachable = False
    snap = cer.refresh()
    assert snap.all_unsealed and not cluster[2].seal.sealed
    assert {e.kind for e in cer.drain_events()} >= {EventKind.RESENT, EventKind.CLUSTER_UNSEALED}


def test_a_restarted_node_gets_the_held_shares_and_rows_show_it(raws: list[bytes], tmp_path: Path) -> None:
    cluster = fake_cluster(raws, 3)
    cer = ceremony(cluster, raws, tmp_path)
    cer.start()
    cer.submit(b64(raws[0]), keyholder="alice")
    cer.submit(b64(raws[1]), keyholder="bob")
    cluster[1].seal.unreachable = True  # a restart: the node is away for a moment
    cer.refresh()
    cluster[1].seal.unreachable = False
    cluster[1].seal.restart()
    snap = cer.refresh()
    assert snap.node("node2").progress == 2 and snap.node("node2").contributors == ("alice", "bob")
    assert snap.node("node2").must_resubmit == ()
    assert cluster[1].seal.received == [raws[0], raws[1]]


def test_reset_drops_the_held_shares_and_the_summary_agrees_with_the_rows(raws: list[bytes],
                                                                          tmp_path: Path) -> None:
    """Defect 5: after Ctrl-R the summary listed earlier submitters while the rows said they were lost."""
    cluster = fake_cluster(raws, 3)
    cer = ceremony(cluster, raws, tmp_path)
    cer.start()
    cer.submit(b64(raws[0]), keyholder="alice")
    assert "counted: alice" in view.headline(cer.snapshot())
    cer.reset()
    snap = cer.refresh()
    assert snap.held == () and all(not n.seal.received for n in cluster)  # nothing re-sent after a reset
    line = view.headline(snap)
    assert "counted" not in line and "must submit again: alice" in line
    assert all(n.must_resubmit == ("alice",) and n.contributors == () for n in snap.nodes)
    assert all("must submit again: alice" in view.node_note(n) for n in snap.nodes)


def test_held_shares_are_bounded_in_time_and_zeroed(raws: list[bytes], tmp_path: Path) -> None:
    cluster = fake_cluster(raws, 3)
    cer = ceremony(cluster, raws, tmp_path, hold_for=0.05)
    cer.start()
    cer.submit(b64(raws[0]), keyholder="alice")
    kept = cer.held._held["alice"].raw
    assert bytes(kept) == raws[0]
    time.sleep(0.1)
    cluster[1].seal.restart()
    snap = cer.refresh()
    assert bytes(kept) == bytes(len(kept)) and snap.held == ()
    assert snap.node("node2").must_resubmit == ("alice",) and not cluster[1].seal.received
    assert any(e.kind is EventKind.HELD_DROPPED and "no longer kept" in e.message for e in cer.drain_events())


def test_held_shares_are_zeroed_when_every_node_is_unsealed_and_when_the_ceremony_ends(
        raws: list[bytes], tmp_path: Path) -> None:
    cer = ceremony(fake_cluster(raws, 3), raws, tmp_path)
    cer.start()
    for name, raw in zip(NAMES, raws[:3]):
        cer.submit(b64(raw), keyholder=name)
    kept = [cer.held._held[n].raw for n in NAMES[:3]]
    cer.refresh()
    assert all(bytes(k) == bytes(33) for k in kept) and len(cer.held) == 0
    other = ceremony(fake_cluster(raws, 3), raws, tmp_path)
    other.start()
    other.submit(b64(raws[0]), keyholder="alice")
    kept = [other.held._held["alice"].raw]
    other.finish()
    assert bytes(kept[0]) == bytes(33)


def test_unchecked_shares_are_never_held(raws: list[bytes], tmp_path: Path) -> None:
    """Without a manifest a wrong share is found only at the threshold: re-sending it would wipe
    every attempt it reached."""
    cer = ceremony(fake_cluster(raws, 3), raws, tmp_path, manifest=None)
    cer.start()
    cer.submit(b64(raws[0]), keyholder="alice")
    assert len(cer.held) == 0 and cer.snapshot().held == ()
    off = ceremony(fake_cluster(raws, 3), raws, tmp_path, hold_for=0)
    off.start()
    off.submit(b64(raws[0]), keyholder="alice")
    assert len(off.held) == 0


def test_held_shares_replace_and_drop() -> None:
    now = [0.0]
    held = HeldShares(10, clock=lambda: now[0])
    first, second = Share(make_shares()[0]), Share(make_shares()[1])
    held.keep("alice", first)
    old = held._held["alice"].raw
    held.keep("alice", second)
    assert bytes(old) == bytes(33) and held.names() == ("alice",)
    taken = held.take("alice")
    assert taken is not None and taken[1] == second.index
    now[0] = 11
    assert held.expire() == ["alice"] and held.take("alice") is None


# -- the journal: each event once, nothing that did not happen -------------------------------------


def test_a_ceremony_on_an_unsealed_cluster_journals_no_unsealing(raws: list[bytes], tmp_path: Path) -> None:
    """Defect 2: opening the console on an unsealed cluster wrote 'unseal.cluster-unsealed ok' every time."""
    cluster = fake_cluster(raws, 3, sealed=False)
    for _ in range(2):
        cer = ceremony(cluster, raws, tmp_path)
        cer.start()
        cer.refresh()
        cer.finish()
    assert actions(tmp_path) == ["unseal.started", "unseal.finished"] * 2
    cluster[1].seal.unreachable = True  # a node that blinks is not 'unsealed' again
    cer.refresh()
    cluster[1].seal.unreachable = False
    cer.refresh()
    assert "unseal.node-unsealed" not in actions(tmp_path)


def test_two_ceremonies_journal_each_event_once(raws: list[bytes], tmp_path: Path) -> None:
    """Defect 8: two processes each journalled every node's unsealing and each recorded the cluster id."""
    manifest_path = tmp_path / "keyholders.yaml"
    make_manifest(raws, cluster_id=PENDING_CLUSTER_ID).save(manifest_path)
    cluster = fake_cluster(raws, 3)

    def open_one() -> UnsealCeremony:
        return UnsealCeremony(cluster, manifest=Manifest.load(manifest_path), manifest_path=manifest_path,
                              journal=Journal(tmp_path / "journal.jsonl", cluster="test"), retry_for=0.1)

    one, two = open_one(), open_one()
    one.start()
    two.start()
    one.submit(b64(raws[0]), keyholder="alice")
    two.submit(b64(raws[1]), keyholder="bob")
    one.refresh()
    two.refresh()
    two.submit(b64(raws[2]), keyholder="carol")
    snaps = [one.finish(), two.finish()]
    got = actions(tmp_path)
    assert got.count("unseal.node-unsealed") == 3 and got.count("unseal.cluster-unsealed") == 1
    assert got.count("keyholders.cluster-id-recorded") == 1
    assert Manifest.load(manifest_path).cluster_id == CLUSTER_ID
    assert len(list((tmp_path / "keyholders.history").iterdir())) == 1  # written once
    assert all(s.all_unsealed and set(s.submitted) == {"alice", "bob", "carol"} for s in snaps)
    assert one.manifest is not None and one.manifest.cluster_id == CLUSTER_ID == two.manifest.cluster_id  # type: ignore[union-attr]


def test_a_lost_attempt_is_journalled_once_by_two_watchers(raws: list[bytes], tmp_path: Path) -> None:
    cluster = fake_cluster(raws, 3)
    one = ceremony(cluster, raws, tmp_path, hold_for=0)
    two = ceremony(cluster, raws, tmp_path, hold_for=0)
    one.start()
    two.start()
    one.submit(b64(raws[0]), keyholder="alice")
    two.refresh()
    cluster[0].seal.restart()
    cluster[0].seal.unseal(b64(raws[3]))  # a new attempt: a new nonce
    one.refresh()
    two.refresh()
    lost = entries(tmp_path, "unseal.nonce-changed")
    assert len(lost) == 1 and lost[0]["node"] == "node1" and lost[0]["details"]["lost"] == ["alice"]

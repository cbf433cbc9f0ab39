"""The ceremony service against the in-memory fake cluster."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from ceremony_fakes import CLUSTER_ID, NAMES, b64, fake_cluster, make_manifest, make_shares

from vaultops.errors import SecurityError, ShareFormatError, ShareMismatchError, UsageError
from vaultops.journal import Journal
from vaultops.services.ceremony.unseal import (EventKind, NodePhase, SendOutcome, UnsealCeremony,
                                        split_share_line)
from vaultops.services.ceremony.init import PENDING_CLUSTER_ID
from vaultops.services.ceremony.shares import encode


@pytest.fixture
def raws() -> list[bytes]:
    return make_shares()


def make(raws: list[bytes], tmp_path: Path, *, nodes: int = 3, manifest: bool = True,
         cluster_id: str = CLUSTER_ID, hold_for: float = 900.0, **node_kwargs: object) -> tuple[UnsealCeremony, list]:
    cluster = fake_cluster(raws, nodes, **node_kwargs)
    cer = UnsealCeremony(cluster, manifest=make_manifest(raws, cluster_id=cluster_id) if manifest else None,
                         manifest_path=tmp_path / "keyholders.yaml",
                         journal=Journal(tmp_path / "journal.jsonl", cluster="test"), retry_for=0.2,
                         join_timeout=5, hold_for=hold_for)
    cer.start()
    return cer, cluster


def journal(tmp_path: Path) -> list[dict]:
    return list(Journal(tmp_path / "journal.jsonl").entries())


def test_three_checked_shares_unseal_every_node(raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path)
    for name, raw in zip(NAMES[:3], raws):
        sub = cer.submit(b64(raw), keyholder=name)
        assert sub.verified and sub.sent_to == ("node1", "node2", "node3")
    assert cer.refresh().all_unsealed
    entries = [e for e in journal(tmp_path) if e["action"] == "unseal.share-submitted"]
    # People see alice's number in the manifest (#1); the journal keeps the x-coordinate as data.
    assert entries[0]["details"]["message"].startswith("keyholder alice submitted share #1 to [node1, node2, node3]")
    assert entries[0]["details"]["share_index"] == raws[0][-1] != 1
    actions = [e["action"] for e in journal(tmp_path)]
    assert actions.count("unseal.cluster-unsealed") == 1 and actions.count("unseal.node-unsealed") == 3
    assert cer.finish().submitted == ("alice", "bob", "carol")  # the result still says who did it


def test_wrong_share_is_refused_locally_and_nothing_is_sent(raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path)
    forged = os.urandom(32) + raws[0][-1:]
    with pytest.raises(ShareMismatchError, match="this is probably a typo in alice's share: it carries alice's "
                                                 "number but does not match"):
        cer.submit(b64(forged), keyholder="alice")
    with pytest.raises(ShareMismatchError, match="share #2 belongs to keyholder bob, not to alice"):
        cer.submit(b64(raws[1]), keyholder="alice")
    with pytest.raises(ShareMismatchError, match="probably a typo in carol's share: it matches no keyholder"):
        cer.submit(b64(os.urandom(32) + b"\x63"), keyholder="carol")
    with pytest.raises(ShareMismatchError, match=r"^this share matches no keyholder in the manifest"):
        cer.submit(b64(os.urandom(32) + b"\x63"))  # no keyholder has x = 99
    assert all(node.seal.calls == 0 for node in cluster)
    rejected = [e for e in journal(tmp_path) if e["action"] == "unseal.share-rejected"]
    assert len(rejected) == 4 and all(e["outcome"] == "rejected" for e in rejected)
    blob = (tmp_path / "journal.jsonl").read_text()
    assert b64(forged) not in blob and forged.hex() not in blob and b64(raws[1]) not in blob


def test_unknown_keyholder_and_bad_format_are_journalled(raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path)
    with pytest.raises(UsageError, match="no keyholder named 'mallory'"):
        cer.submit(b64(raws[0]), keyholder="mallory")
    with pytest.raises(ShareFormatError):
        cer.submit(b64(raws[0])[:-1], keyholder="alice")
    assert [e["action"] for e in journal(tmp_path)][-2:] == ["unseal.share-rejected"] * 2
    assert all(node.seal.calls == 0 for node in cluster)


def test_bare_share_is_matched_to_its_keyholder(raws: list[bytes], tmp_path: Path) -> None:
    cer, _ = make(raws, tmp_path)
    assert cer.submit(b64(raws[3])).keyholder == "dave"
    assert cer.submit_line(f"erin: {raws[4].hex()}").keyholder == "erin"
    mnemonic = encode(raws[2], "mnemonic")
    assert cer.submit_line(mnemonic).keyholder == "carol"
    with pytest.raises(UsageError, match="names keyholder erin but --keyholder is bob"):
        cer.submit_line(f"erin: {b64(raws[4])}", keyholder="bob")


def test_split_share_line_never_cuts_a_share() -> None:
    names = ("alice", "bob")
    assert split_share_line("alice: abc", names) == ("alice", " abc")
    assert split_share_line("mallory: abc", names) == (None, "mallory: abc")
    assert split_share_line("QUJD", names) == (None, "QUJD")
    assert split_share_line("two words: x", ()) == (None, "two words: x")


def test_duplicate_is_reported_and_ignored(raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path)
    cer.submit(b64(raws[0]), keyholder="alice")
    again = cer.submit(b64(raws[0]), keyholder="alice")
    assert {s.outcome for s in again.sends} == {SendOutcome.DUPLICATE}
    assert cer.refresh().node("node1").progress == 1
    assert cer.snapshot().node("node2").contributors == ("alice",)


def test_restart_loses_progress_and_names_who_must_resubmit(raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path, hold_for=0)  # nobody keeps shares: the keyholders must act
    cer.submit(b64(raws[0]), keyholder="alice")
    cer.submit(b64(raws[1]), keyholder="bob")
    cluster[1].seal.unreachable = True
    cer.refresh()
    cluster[1].seal.unreachable = False
    cluster[1].seal.restart()
    snap = cer.refresh()
    assert snap.node("node2").must_resubmit == ("alice", "bob")
    changed = [e for e in cer.drain_events() if e.kind is EventKind.NONCE_CHANGED]
    assert len(changed) == 1 and "it restarted" in changed[0].message
    assert "alice, bob" in changed[0].message
    cer.submit(b64(raws[2]), keyholder="carol")
    snap = cer.refresh()
    assert snap.node("node1").phase is NodePhase.UNSEALED
    assert snap.node("node2").needs == 2 and snap.node("node2").must_resubmit == ("alice", "bob")


def test_reset_by_someone_else_is_explained(raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path)
    cer.submit(b64(raws[0]), keyholder="alice")
    cluster[0].seal.reset()
    cluster[0].seal.unseal(b64(raws[4]))  # a new attempt: a new nonce
    cer.refresh()
    changed = [e for e in cer.drain_events() if e.kind is EventKind.NONCE_CHANGED]
    assert [e.node for e in changed] == ["node1"] and "someone reset it" in changed[0].message


def test_own_reset_clears_progress_without_false_alarm(raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path)
    cer.submit(b64(raws[0]), keyholder="alice")
    cer.reset()
    snap = cer.snapshot()
    assert all(n.progress == 0 for n in snap.nodes)
    assert all(n.must_resubmit == ("alice",) for n in snap.nodes)
    kinds = [e.kind for e in cer.drain_events()]
    assert EventKind.RESET in kinds and EventKind.NONCE_CHANGED not in kinds
    assert journal(tmp_path)[-1]["action"] == "unseal.reset"


def test_unreachable_node_is_retried_while_others_proceed(raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path, hold_for=0)
    cluster[2].seal.unreachable = True
    for name, raw in zip(NAMES, raws[:3]):
        sub = cer.submit(b64(raw), keyholder=name)
        assert sub.sent_to == ("node1", "node2")
        assert [s.outcome for s in sub.sends][2] is SendOutcome.UNREACHABLE
    snap = cer.refresh()
    assert [n.phase for n in snap.nodes] == [NodePhase.UNSEALED, NodePhase.UNSEALED,
                                             NodePhase.UNREACHABLE]
    cluster[2].seal.unreachable = False
    snap = cer.refresh()
    assert snap.node("node3").phase is NodePhase.SEALED
    assert snap.node("node3").must_resubmit == ("alice", "bob", "carol")
    assert EventKind.NODE_BACK in [e.kind for e in cer.drain_events()]


def test_follower_joins_after_the_threshold(raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path, follower=True)
    for name, raw in zip(NAMES, raws[:3]):
        sub = cer.submit(b64(raw), keyholder=name)
    assert {s.outcome for s in sub.sends} == {SendOutcome.JOINING}
    snap = cer.refresh()
    assert {n.phase for n in snap.nodes} == {NodePhase.JOINING} and snap.busy
    nxt = cer.submit(b64(raws[3]), keyholder="dave")
    assert {s.outcome for s in nxt.sends} == {SendOutcome.NOT_READY}  # nothing sent while joining
    for node in cluster:
        node.seal.join()
    assert cer.follow(timeout=5, interval=0.01).all_unsealed


def test_uninitialised_followers_need_their_own_shares(raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path, hold_for=0)
    for node in cluster[1:]:
        node.seal.initialized = False
    for name, raw in zip(NAMES, raws[:3]):
        assert cer.submit(b64(raw), keyholder=name).sent_to == ("node1",)
    for node in cluster[1:]:
        node.seal.initialized = True  # retry_join fetched the challenge
    snap = cer.refresh()
    assert snap.node("node2").must_resubmit == ("alice", "bob", "carol")
    events = [e for e in cer.drain_events() if e.kind is EventKind.NODE_INITIALIZED]
    assert len(events) == 2 and "needs 3 shares of its own" in events[0].message


def test_threshold_failure_without_manifest(raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path, manifest=False)
    assert any("cannot be checked" in e.message for e in cer.drain_events())
    cer.submit(b64(raws[0]), keyholder="alice")
    cer.submit(b64(raws[1]))
    sub = cer.submit(b64(os.urandom(32) + b"\x09"), keyholder="mallory")
    assert set(sub.rejected_on) == {"node1", "node2", "node3"}
    kinds = [e.kind for e in cer.drain_events()]
    assert kinds.count(EventKind.THRESHOLD_FAILED) == 3 and EventKind.NONCE_CHANGED not in kinds
    assert cer.refresh().node("node1").progress == 0


def test_pending_cluster_id_is_recorded_at_first_unseal(raws: list[bytes], tmp_path: Path) -> None:
    cer, _ = make(raws, tmp_path, cluster_id=PENDING_CLUSTER_ID)
    for name, raw in zip(NAMES, raws[:3]):
        cer.submit(b64(raw), keyholder=name)
    cer.refresh()
    from vaultops.services.ceremony.manifest import Manifest

    assert Manifest.load(tmp_path / "keyholders.yaml").cluster_id == CLUSTER_ID
    assert any(e["action"] == "keyholders.cluster-id-recorded" for e in journal(tmp_path))


def test_manifest_of_another_cluster_refuses_shares(raws: list[bytes], tmp_path: Path) -> None:
    cer, cluster = make(raws, tmp_path, cluster_id="99999999-other")
    cluster[0].seal.sealed = False  # one node is up and reports its cluster id
    cer.refresh()
    with pytest.raises(SecurityError, match="manifest is for cluster 99999999-other"):
        cer.submit(b64(raws[0]), keyholder="alice")
    assert cluster[1].seal.calls == 0


def test_two_ceremonies_share_the_journal(raws: list[bytes], tmp_path: Path) -> None:
    """A second process sees the first's submissions, matched to nodes by nonce."""
    cluster = fake_cluster(raws, 3)
    m = make_manifest(raws)
    j = tmp_path / "journal.jsonl"
    one = UnsealCeremony(cluster, manifest=m, journal=Journal(j, cluster="test"))
    two = UnsealCeremony(cluster, manifest=m, journal=Journal(j, cluster="test"))
    one.start()
    two.start()
    one.submit(b64(raws[0]), keyholder="alice")
    snap = two.refresh()
    assert snap.submitted == ("alice",) and snap.node("node3").contributors == ("alice",)
    assert any("(another terminal)" in e.message for e in two.drain_events())
    two.submit(b64(raws[1]), keyholder="bob")
    assert one.refresh().node("node1").contributors == ("alice", "bob")
    late = UnsealCeremony(cluster, manifest=m, journal=Journal(j, cluster="test"))
    assert late.start().submitted == ("alice", "bob")  # joined mid-ceremony


def test_unenrolled_shares_need_allow_unverified(raws: list[bytes], tmp_path: Path) -> None:
    from dataclasses import replace

    cluster = fake_cluster(raws, 2)
    empty = replace(make_manifest(raws), keyholders=())
    strict = UnsealCeremony(cluster, manifest=empty)
    assert any("no enrolled keyholder" in e.message for e in (strict.start(), strict.drain_events())[1])
    with pytest.raises(ShareMismatchError):
        strict.submit(b64(raws[0]))
    lenient = UnsealCeremony(cluster, manifest=empty, allow_unverified=True)
    lenient.start()
    sub = lenient.submit(b64(raws[0]))
    assert sub.keyholder == f"unnamed #{raws[0][-1]}" and not sub.verified
    assert sub.sent_to == ("node1", "node2")


def test_an_older_answer_arriving_late_does_not_replay_transitions(raws: list[bytes], tmp_path: Path) -> None:
    """The TUI's refresh thread and a submission ask concurrently; answers can arrive out of order."""
    from dataclasses import replace

    cer, _cluster = make(raws, tmp_path)
    node = cer.snapshot().nodes[0].name
    sealed = cer.clients[0].seal.status()
    unsealed = replace(sealed, sealed=False, progress=0, nonce="")
    cer.drain_events()
    t = time.monotonic()
    with cer.tracker.lock:
        cer.tracker.observe(node, unsealed, None, asked_at=t + 2)   # the newer question, answered first
        cer.tracker.observe(node, sealed, None, asked_at=t + 1)     # an older question, answered late
        cer.tracker.observe(node, unsealed, None, asked_at=t + 3)
    kinds = [e.kind for e in cer.drain_events() if e.node == node]
    assert kinds.count(EventKind.NODE_UNSEALED) == 1 and EventKind.NODE_RESEALED not in kinds

"""Drills, readiness and the roster: offline, journaled, never share material."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from kh_helpers import FAST, forms, make_share, team_manifest

from vaultops.errors import ShareMismatchError, UsageError
from vaultops.journal import Journal
from vaultops.services.ceremony import keyholders as kh
from vaultops.services.ceremony.keyholders import DrillOutcome, ReadyState
from vaultops.services.ceremony.manifest import Keyholder, Manifest
from vaultops.services.ceremony.shares import Share, encode

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)


@pytest.fixture
def shares() -> dict[str, Share]:
    return {"alice": make_share(3), "bob": make_share(7), "carol": make_share(11)}


@pytest.fixture
def manifest(shares: dict[str, Share]) -> Manifest:
    return team_manifest(shares)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.jsonl", cluster="prod")


def test_drill_pass_is_journaled_without_material(manifest: Manifest, shares: dict[str, Share],
                                                  journal: Journal) -> None:
    res = kh.drill(manifest, "alice", shares["alice"], journal=journal)
    assert res.outcome is DrillOutcome.PASS
    assert "drill passed" in res.message and "nothing was sent" in res.message
    (entry,) = list(journal.entries())
    assert entry["action"] == kh.DRILL_ACTION and entry["outcome"] == "ok"
    assert entry["details"]["keyholder"] == "alice" and entry["details"]["result"] == "pass"
    assert entry["details"]["verifier_id"] == kh.verifier_id(manifest.keyholder("alice"))
    text = journal.path.read_text()
    for form in forms(shares["alice"]):
        assert form not in text


def test_drill_with_another_keyholders_share_fails(manifest: Manifest, shares: dict[str, Share],
                                                   journal: Journal) -> None:
    res = kh.drill(manifest, "alice", shares["bob"], journal=journal)
    assert res.outcome is DrillOutcome.FAIL
    assert "belongs to keyholder bob" in res.message
    (entry,) = list(journal.entries())
    assert entry["outcome"] == "failed" and entry["details"]["result"] == "fail"


def test_drill_with_a_foreign_share_fails(manifest: Manifest, journal: Journal) -> None:
    res = kh.drill(manifest, "alice", make_share(3), journal=journal)  # right index, wrong bytes
    assert res.outcome is DrillOutcome.FAIL
    assert "matches no keyholder" in res.message


def test_drill_without_verifier(shares: dict[str, Share], journal: Journal) -> None:
    m = Manifest(cluster_id="c", threshold=1, shares=2,
                 keyholders=(Keyholder("dave", share_index=9, verifier=None),))
    res = kh.drill(m, "dave", make_share(9), journal=journal)
    assert res.outcome is DrillOutcome.NO_VERIFIER
    assert list(journal.entries())[0]["details"]["verifier_id"] is None


def test_drill_of_unknown_keyholder(manifest: Manifest, shares: dict[str, Share]) -> None:
    with pytest.raises(UsageError, match="no keyholder named 'zed'"):
        kh.drill(manifest, "zed", shares["alice"])


def _rec(name: str, outcome: DrillOutcome, days_ago: float, vid: str | None) -> kh.DrillRecord:
    return kh.DrillRecord(name, outcome, NOW - timedelta(days=days_ago), vid, "c0ffee")


def test_readiness_states(manifest: Manifest) -> None:
    vid = {k.name: kh.verifier_id(k) for k in manifest.keyholders}
    records = [_rec("alice", DrillOutcome.PASS, 3, vid["alice"]),
               _rec("bob", DrillOutcome.PASS, 120, vid["bob"]),
               _rec("carol", DrillOutcome.PASS, 10, vid["carol"]),
               _rec("carol", DrillOutcome.FAIL, 2, vid["carol"])]
    r = kh.readiness(manifest, records, now=NOW)
    states = {k.name: k.state for k in r.keyholders}
    assert states == {"alice": ReadyState.READY, "bob": ReadyState.STALE, "carol": ReadyState.FAILED}
    assert r.ready == ("alice",) and not r.ok
    assert "NOT ready: only 1" in r.message and "2 are needed" in r.message
    records.append(_rec("bob", DrillOutcome.PASS, 1, vid["bob"]))
    assert kh.readiness(manifest, records, now=NOW).ok


def test_readiness_max_age(manifest: Manifest) -> None:
    vid = {k.name: kh.verifier_id(k) for k in manifest.keyholders}
    records = [_rec(n, DrillOutcome.PASS, 40, vid[n]) for n in ("alice", "bob")]
    assert kh.readiness(manifest, records, now=NOW).ok
    assert not kh.readiness(manifest, records, now=NOW, max_age=timedelta(days=30)).ok


def test_drill_of_a_share_from_before_a_rekey_does_not_count(manifest: Manifest,
                                                              shares: dict[str, Share]) -> None:
    old_vid = kh.verifier_id(manifest.keyholder("alice"))
    records = [_rec("alice", DrillOutcome.PASS, 1, old_vid)]
    assert kh.readiness(manifest, records, now=NOW).keyholders[0].state is ReadyState.READY
    rekeyed = manifest.enroll("alice", make_share(3), params=FAST, replace_existing=True)
    state = {k.name: k.state for k in kh.readiness(rekeyed, records, now=NOW).keyholders}["alice"]
    assert state is ReadyState.NEVER


def test_drill_records_from_a_real_journal(manifest: Manifest, shares: dict[str, Share],
                                           journal: Journal) -> None:
    journal.append("unseal.started")
    kh.drill(manifest, "alice", shares["alice"], journal=journal)
    kh.drill(manifest, "bob", shares["carol"], journal=journal)
    records = kh.drill_records(journal.entries())
    assert [(r.keyholder, r.outcome) for r in records] == [("alice", DrillOutcome.PASS),
                                                            ("bob", DrillOutcome.FAIL)]
    r = kh.readiness(manifest, records)
    assert {k.name: k.state for k in r.keyholders} == {"alice": ReadyState.READY, "bob": ReadyState.FAILED,
                                                        "carol": ReadyState.NEVER}


def test_drill_records_skip_malformed_entries() -> None:
    entries = [{"action": kh.DRILL_ACTION, "time": "yesterday", "details": {"keyholder": "a", "result": "pass"}},
               {"action": kh.DRILL_ACTION, "time": NOW.isoformat(), "details": {"keyholder": "a"}},
               {"action": kh.DRILL_ACTION, "time": NOW.isoformat(), "details": {"keyholder": "a", "result": "x"}}]
    assert kh.drill_records(entries) == []


def test_no_verifier_state_and_roster(shares: dict[str, Share]) -> None:
    m = team_manifest({"alice": shares["alice"]}, threshold=1, total=2)
    m = Manifest(cluster_id=m.cluster_id, threshold=1, shares=2,
                 keyholders=m.keyholders + (Keyholder("erin", share_index=40, verifier=None),))
    roster = {k.name: k for k in kh.roster(m)}
    assert roster["erin"].state is ReadyState.NO_VERIFIER and not roster["erin"].enrolled
    assert roster["alice"].to_dict()["state"] == "never"


def test_owner_of(manifest: Manifest, shares: dict[str, Share]) -> None:
    assert kh.owner_of(manifest, shares["bob"]) == "bob"
    with pytest.raises(ShareMismatchError, match="matches no keyholder"):
        kh.owner_of(manifest, make_share(200))


def test_owner_of_names_by_index_only_the_check_decides(manifest: Manifest) -> None:
    forged = make_share(7)  # bob's index, other bytes: owner_of picks bob, require() refuses it
    assert kh.owner_of(manifest, forged) == "bob"
    with pytest.raises(ShareMismatchError):
        manifest.require("bob", forged)


def test_mnemonic_share_drills_like_any_codec(manifest: Manifest, shares: dict[str, Share]) -> None:
    from vaultops.services.ceremony.shares import decode

    text = encode(shares["carol"], "mnemonic")
    assert kh.drill(manifest, "carol", decode(text)).outcome is DrillOutcome.PASS

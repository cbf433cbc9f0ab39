"""Keyholder manifest: verifiers, checks, strict YAML validation and kept history."""

from __future__ import annotations

import base64
import stat
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from shares_helpers import FAST, assert_no_material, make_raw

from vaultops.errors import ConfigError, ShareMismatchError, UsageError
from vaultops.services.ceremony.manifest import (DEFAULT_PARAMS, CheckStatus, Keyholder, Manifest,
                                        make_verifier)
from vaultops.services.ceremony.shares import Share


@pytest.fixture
def team() -> dict[str, bytes]:
    return {"alice": make_raw(3), "bob": make_raw(7), "carol": make_raw(11)}


@pytest.fixture
def manifest(team: dict[str, bytes]) -> Manifest:
    m = Manifest(cluster_id="c0ffee", threshold=2, shares=5)
    for name, raw in team.items():
        m = m.enroll(name, Share(raw), params=FAST, added=date(2025, 1, 2))
    return m


@pytest.fixture
def saved(manifest: Manifest, tmp_path: Path) -> Path:
    path = tmp_path / "keyholders.yaml"
    manifest.save(path)
    return path


# -- verifiers and checks ------------------------------------------------------

def test_verifier_matches_only_its_share(raw: bytes) -> None:
    v = make_verifier(raw, params=FAST)
    assert v.matches(raw) and v.matches(Share(raw))
    assert not v.matches(make_raw(raw[-1]))
    assert len(v.salt) == 16 and len(v.hash) == 32


def test_verifier_salts_are_random(raw: bytes) -> None:
    a, b = make_verifier(raw, params=FAST), make_verifier(raw, params=FAST)
    assert a.salt != b.salt and a.hash != b.hash


def test_default_parameters_are_the_documented_ones() -> None:
    assert (DEFAULT_PARAMS.n, DEFAULT_PARAMS.r, DEFAULT_PARAMS.p) == (2**15, 8, 1)
    assert make_verifier(make_raw()).to_dict()["n"] == 2**15


def test_right_share_matches(manifest: Manifest, team: dict[str, bytes]) -> None:
    result = manifest.check("alice", Share(team["alice"]))
    assert result.status is CheckStatus.MATCH and result.ok and result.verified
    assert manifest.require("alice", Share(team["alice"])).ok


def test_another_keyholders_share_is_recognised(manifest: Manifest, team: dict[str, bytes]) -> None:
    result = manifest.check("alice", Share(team["bob"]))
    assert result.status is CheckStatus.OTHER_KEYHOLDER
    assert result.owner == "bob" and result.verified
    assert "belongs to keyholder bob" in result.message
    with pytest.raises(ShareMismatchError, match="belongs to keyholder bob, not to alice") as info:
        manifest.require("alice", Share(team["bob"]))
    assert_no_material(str(info.value), team["bob"])


@pytest.mark.parametrize("index", [3, 7, 200])  # alice's, bob's, nobody's x-coordinate
def test_random_share_matches_nobody(manifest: Manifest, index: int) -> None:
    raw = make_raw(index)
    result = manifest.check("alice", Share(raw))
    assert result.status is CheckStatus.NO_MATCH and not result.ok and result.owner is None
    with pytest.raises(ShareMismatchError, match="matches no keyholder") as info:
        manifest.require("alice", Share(raw))
    assert_no_material(str(info.value), raw)
    assert_no_material(repr(result), raw)


def test_keyholder_without_verifier(manifest: Manifest, team: dict[str, bytes]) -> None:
    holders = tuple(Keyholder(k.name, k.share_index, None if k.name == "alice" else k.verifier,
                              added=k.added) for k in manifest.keyholders)
    m = Manifest(manifest.cluster_id, manifest.threshold, manifest.shares, holders)
    assert m.check("alice", Share(team["alice"])).status is CheckStatus.NO_VERIFIER
    with pytest.raises(ShareMismatchError, match="no verifier"):
        m.require("alice", Share(team["alice"]))
    assert m.require("alice", Share(team["alice"]), allow_unverified=True).status \
        is CheckStatus.NO_VERIFIER
    other = m.check("bob", Share(team["alice"]))
    assert other.status is CheckStatus.OTHER_KEYHOLDER and other.owner == "alice"
    assert not other.verified


def test_unknown_keyholder_is_a_usage_error(manifest: Manifest, raw: bytes) -> None:
    with pytest.raises(UsageError, match="known keyholders: alice, bob, carol"):
        manifest.check("mallory", Share(raw))


def test_enroll_refuses_a_taken_index_and_re_enrolment(manifest: Manifest,
                                                       team: dict[str, bytes]) -> None:
    with pytest.raises(UsageError, match="already enrolled for keyholder bob"):
        manifest.enroll("dave", Share(team["bob"]), params=FAST)
    with pytest.raises(UsageError, match="already enrolled"):
        manifest.enroll("alice", Share(make_raw(3)), params=FAST)
    new_raw = make_raw(9)
    m = manifest.enroll("alice", Share(new_raw), params=FAST, replace_existing=True)
    assert m.keyholder("alice").share_index == 9
    assert m.check("alice", Share(new_raw)).ok
    assert not m.check("alice", Share(team["alice"])).ok


def test_enroll_refuses_more_keyholders_than_shares(team: dict[str, bytes]) -> None:
    m = Manifest(cluster_id="c", threshold=1, shares=1).enroll("a", Share(team["alice"]), params=FAST)
    with pytest.raises(ConfigError, match="only 1 shares"):
        m.enroll("b", Share(team["bob"]), params=FAST)


# -- files -------------------------------------------------------------------------

def test_save_and_load_round_trip(manifest: Manifest, saved: Path, team: dict[str, bytes]) -> None:
    loaded = Manifest.load(saved)
    assert loaded == manifest
    assert stat.S_IMODE(saved.stat().st_mode) == 0o644
    assert loaded.check("carol", Share(team["carol"])).ok
    text = saved.read_text()
    for raw in team.values():
        assert_no_material(text, raw)


def test_history_is_kept_on_overwrite(manifest: Manifest, saved: Path) -> None:
    first = saved.read_text()
    changed = manifest.enroll("dave", Share(make_raw(20)), params=FAST)
    kept = changed.save(saved, now=datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc))
    assert kept == saved.parent / "keyholders.history" / "20250304T050607.000000Z.yaml"
    assert kept.read_text() == first
    assert Manifest.load(saved) == changed
    again = changed.enroll("erin", Share(make_raw(21)), params=FAST)
    kept2 = again.save(saved, now=datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc))
    assert kept2 is not None and kept2 != kept and Manifest.load(kept2) == changed
    assert again.save(saved) is None, "an unchanged manifest is not rewritten"
    assert len(list(kept.parent.iterdir())) == 2


# -- tampered or broken YAML ----------------------------------------------------

Change = Callable[[dict[str, Any]], Any]


def edit(path: Path, change: Change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def kh0(key: str, value: Any) -> Change:
    return lambda d: d["keyholders"][0].__setitem__(key, value)


def ver0(key: str, value: Any) -> Change:
    return lambda d: d["keyholders"][0]["verifier"].__setitem__(key, value)


TAMPERED = [
    ("version-2", lambda d: d.__setitem__("version", 2), "version", "unsupported manifest version"),
    ("unknown-top-key", lambda d: d.__setitem__("extra", 1), "(top)", "unknown key 'extra'"),
    ("missing-threshold", lambda d: d.pop("threshold"), "(top)", "missing key 'threshold'"),
    ("threshold-too-big", lambda d: d.__setitem__("threshold", 9), "threshold", "between 1 and"),
    ("shares-string", lambda d: d.__setitem__("shares", "five"), "shares", "expected an integer"),
    ("cluster-id-number", lambda d: d.__setitem__("cluster_id", 42), "cluster_id", "string"),
    ("keyholders-mapping", lambda d: d.__setitem__("keyholders", {"a": 1}), "keyholders", "list"),
    ("index-string", kh0("share_index", "three"), "keyholders[0].share_index", "integer"),
    ("index-zero", kh0("share_index", 0), "keyholders[0].share_index", "integer >= 1"),
    ("index-256", kh0("share_index", 256), "keyholders[0].share_index", "integer <= 255"),
    ("index-bool", kh0("share_index", True), "keyholders[0].share_index", "boolean"),
    ("duplicate-index", kh0("share_index", 7), "keyholders[1].share_index", "also listed for"),
    ("duplicate-name", kh0("name", "bob"), "keyholders[1].name", "duplicate keyholder name"),
    ("empty-name", kh0("name", ""), "keyholders[0].name", "is empty"),
    ("bad-date", kh0("added", "yesterday"), "keyholders[0].added", "ISO date"),
    ("bad-fingerprint", kh0("pgp_fingerprint", "ABCD"), "keyholders[0].pgp_fingerprint", "40 or 64"),
    ("unknown-kh-key", kh0("share", "x"), "keyholders[0]", "unknown key 'share'"),
    ("verifier-list", kh0("verifier", [1]), "keyholders[0].verifier", "mapping"),
    ("alg-md5", ver0("alg", "md5"), "keyholders[0].verifier.alg", "only scrypt"),
    ("n-not-power-of-two", ver0("n", 1000), "keyholders[0].verifier.n", "power of two"),
    ("n-huge", ver0("n", 2**30), "keyholders[0].verifier.n", "integer <= 1048576"),
    ("memory-bomb", lambda d: d["keyholders"][0]["verifier"].update(n=2**20, r=32),
     "keyholders[0].verifier", "256 MiB"),
    ("salt-not-b64", ver0("salt", "not base64!"), "keyholders[0].verifier.salt", "base64"),
    ("salt-short", ver0("salt", "AAAA"), "keyholders[0].verifier.salt", "at least 16 bytes"),
    ("hash-short", ver0("hash", base64.b64encode(b"x" * 31).decode()), "keyholders[0].verifier.hash",
     "32 bytes"),
    ("missing-hash", lambda d: d["keyholders"][0]["verifier"].pop("hash"),
     "keyholders[0].verifier", "missing key 'hash'"),
]


@pytest.mark.parametrize("change,key,problem", [t[1:] for t in TAMPERED], ids=[t[0] for t in TAMPERED])
def test_tampered_manifest_is_rejected_naming_file_key_and_problem(saved: Path, change: Change,
                                                                   key: str,
                                                                   problem: str) -> None:
    edit(saved, change)
    with pytest.raises(ConfigError) as info:
        Manifest.load(saved)
    message = str(info.value)
    assert message.startswith(f"{saved}: {key}: ")
    assert problem in message
    assert ".history" in message


@pytest.mark.parametrize("text,problem", [
    ("version: 1\ncluster_id: [\n", "not valid YAML"),
    ("", "the file is empty"),
    ("- 1\n- 2\n", "expected a mapping, got a list"),
    ("version: 1\nversion: 1\n", "line 2: duplicate key 'version'"),
    ("!!python/object:os.system {}\n", "tag '!!python/object:os.system' is not allowed"),
])
def test_unreadable_manifest_is_rejected(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem) as info:
        Manifest.load(path)
    assert str(path) in str(info.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Manifest.load(tmp_path / "nope.yaml")


def test_a_forged_hash_makes_the_right_share_match_nobody(saved: Path, team: dict[str, bytes]) -> None:
    edit(saved, ver0("hash", base64.b64encode(b"\x00" * 32).decode()))
    result = Manifest.load(saved).check("alice", Share(team["alice"]))
    assert result.status is CheckStatus.NO_MATCH


def test_duplicate_key_inside_a_keyholder_is_refused(saved: Path) -> None:
    text = saved.read_text().replace("  share_index: 3\n", "  share_index: 3\n  share_index: 7\n")
    saved.write_text(text)
    with pytest.raises(ConfigError, match="duplicate key 'share_index'"):
        Manifest.load(saved)

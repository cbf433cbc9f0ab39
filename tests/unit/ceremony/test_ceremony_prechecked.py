"""CeremonyUnsealer.check(): every share checked against the manifest once, before anything is sent (a recovery
runs it before it stops anything, or while it waits); unseal() then only submits (UnsealCeremony.submit_checked),
which takes only shares checked with the ceremony's own manifest object."""

from __future__ import annotations

from typing import Any

import pytest
from ceremony_fakes import b64, fake_cluster, make_manifest, make_shares

from vaultops.errors import SecurityError, ShareMismatchError
from vaultops.services.ceremony import manifest as manifest_mod
from vaultops.services.ceremony.unseal import UnsealCeremony
from vaultops.services.upgrade.unseal import CeremonyUnsealer


def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = manifest_mod.Verifier.matches

    def matches(self: Any, share: Any) -> bool:
        calls.append(1)
        return real(self, share)
    monkeypatch.setattr(manifest_mod.Verifier, "matches", matches)
    return calls


def test_shares_are_checked_once_then_only_submitted(monkeypatch: pytest.MonkeyPatch) -> None:
    raws = make_shares()
    calls = counted(monkeypatch)
    lines = [f"alice: {b64(raws[0])}", b64(raws[1]), f"carol: {b64(raws[2])}"]
    unsealer = CeremonyUnsealer(lines, manifest=make_manifest(raws), timeout=5)
    held = unsealer.check()
    assert held.keyholders == ["alice", "bob", "carol"] and held.checked and len(calls) == 3
    node = fake_cluster(raws, 1)[0]
    out = unsealer.unseal(node, node="node1")
    assert "alice, bob, carol" in out["summary"] and not node.seal.status().sealed
    assert len(calls) == 3                      # no second scrypt at the unseal
    unsealer.wipe()
    assert all(not any(s.raw) for s in held.shares)


def test_a_wrong_share_is_refused_by_check_and_nothing_is_held() -> None:
    raws, other = make_shares(), make_shares()
    unsealer = CeremonyUnsealer([b64(raws[0]), f"bob: {b64(other[1])}"], manifest=make_manifest(raws))
    with pytest.raises(ShareMismatchError, match="line 2"):
        unsealer.check()
    assert unsealer._held is None


def test_submit_checked_refuses_shares_checked_with_another_manifest() -> None:
    raws = make_shares()
    node = fake_cluster(raws, 1)[0]
    unsealer = CeremonyUnsealer([b64(r) for r in raws[:3]], manifest=make_manifest(raws))
    held = unsealer.check()
    cer = UnsealCeremony([node], manifest=make_manifest(raws), retry_for=0.1)
    cer.start()
    with pytest.raises(SecurityError, match="another keyholder manifest"):
        cer.submit_checked(held.shares[0], keyholder="alice", checked_with=unsealer.manifest)
    assert node.seal.status().progress == 0    # nothing was sent
    unsealer.wipe()

"""The ceremony takes a share in a bytearray, sends it from buffers it zeroes, and never changes the
caller's buffer; the same for 'NAME: share' lines and the upgrade's unsealers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ceremony_fakes import b64, fake_cluster, make_manifest, make_shares

from vaultops.errors import ShareFormatError, ShareMismatchError
from vaultops.journal import Journal
from vaultops.services.ceremony.unseal import SendOutcome, UnsealCeremony, split_share_line
from vaultops.services.ceremony.types import share_offset
from vaultops.services.upgrade.unseal import CeremonyUnsealer, SharesUnsealer


def spy_keys(cluster: list[Any]) -> list[Any]:
    """Every key object the nodes were sent (to see it zeroed afterwards)."""
    seen: list[Any] = []
    for node in cluster:
        real = node.seal.unseal

        def unseal(key: Any, *, timeout: float | None = None, real: Any = real) -> Any:
            seen.append(key)
            return real(bytes(key) if isinstance(key, bytearray) else key, timeout=timeout)
        node.seal.unseal = unseal
    return seen


def ceremony(raws: list[bytes], tmp_path: Path, nodes: int = 3) -> tuple[UnsealCeremony, list[Any]]:
    cluster = fake_cluster(raws, nodes)
    cer = UnsealCeremony(cluster, manifest=make_manifest(raws), journal=Journal(tmp_path / "j.jsonl", cluster="t"),
                         retry_for=0.1)
    cer.start()
    return cer, cluster


@pytest.mark.parametrize("form", ["base64", "hex", "named", "mnemonic"])
def test_a_bytearray_share_is_sent_from_buffers_that_are_zeroed(tmp_path: Path, form: str) -> None:
    from vaultops.services.ceremony.shares import encode

    raws = make_shares()
    cer, cluster = ceremony(raws, tmp_path)
    keys = spy_keys(cluster)
    text = {"base64": b64(raws[1]), "hex": raws[1].hex(), "named": f"bob: {b64(raws[1])}",
            "mnemonic": encode(raws[1], "mnemonic")}[form]
    given = bytearray(text.encode())
    sub = cer.submit_line(given)
    assert sub.keyholder == "bob" and sub.verified
    assert [s.outcome for s in sub.sends] == [SendOutcome.ACCEPTED] * 3
    assert all(n.seal.received == [raws[1]] for n in cluster)
    assert given == text.encode()  # the caller's buffer: read, not changed (the caller wipes it)
    assert len(keys) == 3 and all(isinstance(k, bytearray) and not any(k) for k in keys)


def test_a_refused_share_sends_nothing_and_leaves_the_callers_buffer(tmp_path: Path) -> None:
    raws = make_shares()
    cer, cluster = ceremony(raws, tmp_path)
    text = b64(make_shares()[0]).encode()
    other = bytearray(text)
    with pytest.raises(ShareMismatchError):
        cer.submit(other, keyholder="alice")
    with pytest.raises(ShareFormatError):
        cer.submit(bytearray(b"not a share"), keyholder="alice")
    assert all(n.seal.calls == 0 for n in cluster)
    assert other == text


def test_share_offset_reads_names_in_place() -> None:
    names = ("alice", "bob")
    assert share_offset(bytearray(b"alice: QUJD"), names) == ("alice", 6)
    assert share_offset(bytearray(b"  bob :QUJD"), names) == ("bob", 7)
    assert share_offset(bytearray(b"mallory: QUJD"), names) == (None, 0)
    assert share_offset(bytearray(b"QUJD"), names) == (None, 0)
    assert share_offset(bytearray(b"two words: x"), ()) == (None, 0)
    assert share_offset(bytearray(b"dave: x"), ()) == ("dave", 5)
    assert split_share_line("alice: abc", names) == ("alice", " abc")


def test_shares_unsealer_decodes_at_once_and_wipes(tmp_path: Path) -> None:
    raws = make_shares()
    with pytest.raises(ShareFormatError):
        SharesUnsealer([b64(raws[0]), "not-a-share"])
    unsealer = SharesUnsealer([b64(raws[0]), raws[1].hex(), bytearray(b64(raws[2]).encode())])
    assert unsealer.shares_given == 3 and tuple(unsealer.keyholders) == ()
    node = fake_cluster(raws, 1)[0]
    keys = spy_keys([node])
    out = unsealer.unseal(node, node="node1")  # type: ignore[arg-type]
    assert out["summary"] == "unsealed with 3 shares" and not node.seal.sealed
    assert len(keys) == 3 and all(not any(k) for k in keys)
    unsealer.wipe()
    assert all(not any(s.raw) for s in unsealer._shares)


def test_ceremony_unsealer_names_the_manifests_keyholders_and_wipes_its_lines() -> None:
    raws = make_shares()
    unsealer = CeremonyUnsealer([f"alice: {b64(raws[0])}"], manifest=make_manifest(raws))
    assert list(unsealer.keyholders) == ["alice", "bob", "carol", "dave", "erin"]
    assert unsealer.shares_given == 1
    line = unsealer._lines[0]
    unsealer.wipe()
    assert not any(line)

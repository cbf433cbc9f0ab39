"""`vaultops unseal` (issue 15): --node, the JSON result after an unseal, joiners from --share-stdin,
and words for people (keyholder numbers, typos, a share entered twice)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from ceremony_fakes import b64, fake_cluster, make_manifest, make_shares

from vaultops.cli import main
from vaultops.cli import unseal_cmd
from vaultops.journal import Journal
from vaultops.services.ceremony import held
from vaultops.services.ceremony.shares import encode
from vaultops.session import Session


@pytest.fixture
def raws() -> list[bytes]:
    return make_shares()


@pytest.fixture
def nodes(raws: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    """The real build_ceremony over a fake cluster: the Session hands out its clients and journal."""
    cluster = fake_cluster(raws, 3)
    make_manifest(raws).save(tmp_path / "keyholders.yaml")
    monkeypatch.setattr(Session, "clients", lambda self, **kw: cluster)
    monkeypatch.setattr(Session, "journal", property(lambda self: Journal(tmp_path / "journal.jsonl", cluster="t")))
    return cluster


def unseal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stdin: str, *args: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["unseal", "--share-stdin", "--timeout", "2", "--manifest", str(tmp_path / "keyholders.yaml"),
                 *args])


def test_node_option_limits_the_ceremony(raws: list[bytes], nodes: list, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Defect 1: the upgrade's pause message names `vaultops unseal --node node2`."""
    lines = "".join(f"{n}: {b64(r)}\n" for n, r in zip(("alice", "bob", "carol"), raws))
    assert unseal(monkeypatch, tmp_path, lines, "--node", "node2", "--format", "json") == 0
    out = json.loads(capsys.readouterr().out)
    assert [n["name"] for n in out["nodes"]] == ["node2"] and out["all_unsealed"]
    assert not nodes[1].seal.sealed and nodes[0].seal.sealed and nodes[0].seal.calls == 0
    assert unseal(monkeypatch, tmp_path, "", "--node", "node1", "--node", "node3") == 11
    assert "node1" in capsys.readouterr().out


def test_an_unknown_node_is_a_usage_error(nodes: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert unseal(monkeypatch, tmp_path, "", "--node", "node9") == 2
    err = capsys.readouterr().err
    assert "no node named node9" in err and "node1, node2, node3" in err
    assert all(n.seal.calls == 0 for n in nodes)


def test_json_lists_every_submitter_after_the_unseal(raws: list[bytes], nodes: list, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Defect 8: `"submitted": []` after a successful unseal although the journal listed every submission."""
    lines = "".join(f"{n}: {b64(r)}\n" for n, r in zip(("alice", "bob", "carol"), raws))
    assert unseal(monkeypatch, tmp_path, lines, "--format", "json") == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["all_unsealed"] and out["submitted"] == ["alice", "bob", "carol"]
    assert "keyholder carol submitted share #3" in captured.err


def test_joining_followers_cost_no_second_line(raws: list[bytes], nodes: list, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A cold start through --share-stdin: one line per keyholder unseals the followers too."""
    for node in nodes[1:]:
        node.seal.initialized = False
    lines = "".join(f"{n}: {b64(r)}\n" for n, r in zip(("alice", "bob", "carol"), raws))
    import threading

    def join_later() -> None:  # retry_join fetches the challenge once the leader is unsealed
        while nodes[0].seal.sealed:
            threading.Event().wait(0.01)
        for node in nodes[1:]:
            node.seal.initialized = True
    threading.Thread(target=join_later, daemon=True).start()
    assert unseal(monkeypatch, tmp_path, lines) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "re-sent keyholder alice's share #1 to [node2, node3]" in out
    assert all(not n.seal.sealed for n in nodes)


def test_typos_and_repeats_are_said_in_words(raws: list[bytes], nodes: list, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    words = encode(raws[2], "mnemonic").split()
    words[3], words[4] = words[4], words[3]  # a swap: every word valid, the checksum catches it
    lines = f"alice: {b64(raws[0])}\nalice: {b64(raws[0])}\ncarol: {' '.join(words)}\n"
    assert unseal(monkeypatch, tmp_path, lines) == 2
    captured = capsys.readouterr()
    assert "keyholder alice's share #1 was already submitted: [node1, node2, node3] already hold it" in captured.out
    assert "checksum does not match" in captured.err and "this is probably a typo in carol's share" in captured.err


def test_debug_shows_the_raw_share_index(raws: list[bytes], nodes: list, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert unseal(monkeypatch, tmp_path, f"bob: {b64(raws[1])}\n") == 11
    assert "share #2 to" in capsys.readouterr().out
    assert unseal(monkeypatch, tmp_path, f"bob: {b64(raws[1])}\n", "--debug") == 11
    assert f"share #2 (x={raws[1][-1]})" in capsys.readouterr().out


def test_resend_for_default_matches_the_service() -> None:
    assert unseal_cmd.HOLD_FOR == held.HOLD_FOR

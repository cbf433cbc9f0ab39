"""initialize_cluster + `vaultops init` against the fake node: manifest, delivery, refusals."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from ceremony_fakes import FAST, NAMES, FakeNode

from vaultops.cli import main
from vaultops.errors import UsageError, VaultError
from vaultops.services.ceremony.init import PENDING_CLUSTER_ID, initialize_cluster
from vaultops.services.ceremony.manifest import Manifest
from vaultops.services.ceremony.shares import decode


def node() -> FakeNode:
    n = FakeNode("node1", frozenset())
    n.seal.initialized = False
    return n


def test_init_writes_a_verified_manifest(tmp_path: Path) -> None:
    path = tmp_path / "keyholders.yaml"
    result = initialize_cluster(node(), shares=5, threshold=3, keyholders=list(NAMES),
                                manifest_path=path, params=FAST)
    m = Manifest.load(path)
    assert m.cluster_id == PENDING_CLUSTER_ID and (m.threshold, m.shares) == (3, 5)
    for name, key in zip(NAMES, result.keys_b64):
        assert m.check(name, decode(key)).ok
    text = path.read_text()
    assert result.root_token not in text and all(k not in text for k in result.keys_b64)


@pytest.mark.parametrize("kwargs, match", [
    ({"shares": 5, "threshold": 6, "keyholders": list(NAMES)}, "threshold 6"),
    ({"shares": 3, "threshold": 1, "keyholders": ["a", "b", "c"]}, "threshold of 1"),
    ({"shares": 3, "threshold": 2, "keyholders": ["a", "a", "c"]}, "distinct keyholder"),
    ({"shares": 2, "threshold": 2, "keyholders": ["a b", "c"]}, "may use only"),
    ({"shares": 2, "threshold": 2, "keyholders": ["a", "b"], "pgp_keys": ["k"]}, "1 PGP keys"),
])
def test_init_refuses_bad_plans(kwargs: dict, match: str) -> None:
    n = node()
    with pytest.raises(UsageError, match=match):
        initialize_cluster(n, **kwargs)
    assert not n.seal.initialized


def test_init_refuses_an_initialised_node() -> None:
    with pytest.raises(VaultError, match="already initialised"):
        initialize_cluster(FakeNode("node1", frozenset()), shares=1, threshold=1, keyholders=["a"])


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeNode]:
    cfg = tmp_path / "vaultops.yaml"
    cfg.write_text("cluster: {name: t}\nnodes:\n  - {name: node1, address: 'http://127.0.0.1:8200'}\n"
                   f"journal: {{path: {tmp_path / 'journal.jsonl'}}}\n"
                   f"keyholders: {{manifest: {tmp_path / 'keyholders.yaml'}}}\n")
    fake = node()
    monkeypatch.setattr("vaultops.vault.cluster_clients", lambda *a, **k: [fake])
    monkeypatch.setattr("vaultops.services.ceremony.manifest.DEFAULT_PARAMS", FAST)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    return cfg, fake


def test_init_cli_writes_share_files(config: tuple[Path, FakeNode], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg, fake = config
    files = [a for n in ("a", "b", "c") for a in ("--share-file", f"{n}={tmp_path / n}.share")]
    code = main(["--config", str(cfg), "init", "--shares", "3", "--threshold", "2",
                 "--keyholder", "a,b,c", "--codec", "hex", "--root-token-file",
                 str(tmp_path / "root"), *files])
    out = capsys.readouterr().out
    assert code == 0 and fake.seal.initialized
    shares = [decode((tmp_path / f"{n}.share").read_text()) for n in "abc"]
    assert all((tmp_path / f"{n}.share").stat().st_mode & 0o777 == 0o600 for n in "abc")
    assert Manifest.load(tmp_path / "keyholders.yaml").check("b", shares[1]).ok
    assert "s.fake-root-token" not in out and shares[0].raw.hex() not in out
    entry = (tmp_path / "journal.jsonl").read_text()
    assert '"cluster.initialized"' in entry and "s.fake-root-token" not in entry


def test_init_cli_without_a_terminal_needs_files(config: tuple[Path, FakeNode],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg, fake = config
    code = main(["--config", str(cfg), "init", "--shares", "2", "--threshold", "2",
                 "--keyholder", "a", "--keyholder", "b"])
    assert code == 2 and not fake.seal.initialized
    assert "--share-file NAME=PATH for every keyholder" in capsys.readouterr().err


def test_init_cli_never_overwrites_a_share_file(config: tuple[Path, FakeNode], tmp_path: Path) -> None:
    cfg, fake = config
    (tmp_path / "a.share").write_text("keep")
    code = main(["--config", str(cfg), "init", "--shares", "2", "--threshold", "2", "--keyholder",
                 "a,b", "--share-file", f"a={tmp_path / 'a.share'}", "--share-file",
                 f"b={tmp_path / 'b.share'}", "--root-token-file", str(tmp_path / "root")])
    assert code == 2 and not fake.seal.initialized
    assert (tmp_path / "a.share").read_text() == "keep"


def test_a_reserved_slot_is_0600_holds_a_placeholder_and_is_filled_in_place(tmp_path: Path) -> None:
    from vaultops.services.ceremony.init import PLACEHOLDER, RESERVED_BYTES, reserve

    slot = reserve(tmp_path / "a.share", what="a's share file")
    path = tmp_path / "a.share"
    assert path.stat().st_mode & 0o777 == 0o600 and path.stat().st_size == RESERVED_BYTES
    assert path.read_bytes().startswith(PLACEHOLDER)
    slot.fill("secret\n")
    assert path.read_text() == "secret\n"
    slot.discard()  # a filled slot stays
    assert path.exists()
    with pytest.raises(UsageError, match="never overwritten"):
        reserve(path, what="again")
    other = reserve(tmp_path / "b.share", what="b")
    other.discard()
    assert not (tmp_path / "b.share").exists()


def test_a_bug_in_delivery_rescues_every_secret_as_received(config: tuple[Path, FakeNode], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import os

    cfg, fake = config

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("vaultops.cli.init_cmd._share_items", broken)
    files = [a for n in ("a", "b") for a in ("--share-file", f"{n}={tmp_path / n}.share")]
    code = main(["--config", str(cfg), "init", "--shares", "2", "--threshold", "2", "--keyholder", "a,b",
                 "--root-token-file", str(tmp_path / "root"), *files])
    out, err = capsys.readouterr()
    assert code == 1 and fake.seal.initialized
    assert "3 secret(s) could not be delivered" in err and "s.fake-root-token" not in out + err
    rescue = next((Path(os.environ["VAULTOPS_STATE_DIR"]) / "init-rescue").glob("*.txt"))
    text = rescue.read_text()
    assert "root token: s.fake-root-token" in text and "a's share" in text and "b's share" in text
    assert not (tmp_path / "a.share").exists()  # no placeholder is left to be taken for a share
    rescue.unlink()

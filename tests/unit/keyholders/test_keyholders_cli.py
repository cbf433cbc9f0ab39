"""`vaultops keyholders list|check|drill|enroll` in-process, offline (no cluster)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from kh_helpers import make_share, team_manifest

from vaultops.cli import main
from vaultops.journal import Journal
from vaultops.services.ceremony import keyholders as kh
from vaultops.services.ceremony.manifest import Manifest
from vaultops.services.ceremony.shares import Share, encode


@pytest.fixture(autouse=True)
def _own_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def team() -> dict[str, Share]:
    return {"alice": make_share(3), "bob": make_share(7), "carol": make_share(11)}


@pytest.fixture
def manifest_file(team: dict[str, Share], tmp_path: Path) -> Path:
    path = tmp_path / "keyholders.yaml"
    team_manifest(team).save(path)
    return path


def run(argv: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def journal_path() -> Path:
    import os

    return Path(os.environ["VAULTOPS_STATE_DIR"]) / "journal.jsonl"


def test_drill_right_and_wrong_then_check(manifest_file: Path, team: dict[str, Share],
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    m = ["--manifest", str(manifest_file)]
    code, out, _ = run(["keyholders", "drill", "--keyholder", "alice", *m],
                       encode(team["alice"], "hex") + "\n", monkeypatch, capsys)
    assert code == 0 and "drill passed" in out
    code, out, _ = run(["keyholders", "drill", "--keyholder", "bob", *m],
                       encode(team["carol"], "base64") + "\n", monkeypatch, capsys)
    assert code == 3 and "drill FAILED" in out and "belongs to keyholder carol" in out
    code, out, _ = run(["keyholders", "check", *m, "--format", "json"], "", monkeypatch, capsys)
    report = json.loads(out)
    assert code == 1 and report["ready"] == ["alice"] and not report["ok"]
    code, _, _ = run(["keyholders", "drill", "--keyholder", "carol", *m],
                     encode(team["carol"], "mnemonic") + "\n", monkeypatch, capsys)
    assert code == 0
    code, out, _ = run(["keyholders", "check", *m], "", monkeypatch, capsys)
    assert code == 0 and out.startswith("ready: 2 keyholder(s)")
    text = journal_path().read_text()
    for share in team.values():
        assert encode(share, "base64") not in text and encode(share, "hex") not in text
    assert [e["details"]["result"] for e in Journal(journal_path()).entries()] == ["pass", "fail", "pass"]


def test_drill_bad_input_is_usage_error(manifest_file: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["keyholders", "drill", "--keyholder", "alice", "--manifest", str(manifest_file)],
                         "not-a-share!!\n", monkeypatch, capsys)
    assert code == 2 and "not-a-share" not in err + out and "drill FAILED" in err
    (entry,) = list(Journal(journal_path()).entries())
    assert entry["details"]["result"] == "fail" and entry["details"]["check"] == "undecodable"
    assert "not-a-share" not in journal_path().read_text()


def test_list_table_and_json(manifest_file: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["keyholders", "list", "--manifest", str(manifest_file)], "", monkeypatch, capsys)
    assert code == 0 and "threshold 2 of 5 shares" in out
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["alice", "bob", "carol"]
    code, out, _ = run(["keyholders", "list", "--manifest", str(manifest_file), "--format", "json"], "",
                       monkeypatch, capsys)
    assert [k["state"] for k in json.loads(out)] == ["never", "never", "never"]


def test_check_max_age_must_be_positive(manifest_file: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["keyholders", "check", "--manifest", str(manifest_file), "--max-age", "0"], "",
                       monkeypatch, capsys)
    assert code == 2 and "--max-age" in err


def test_enroll_from_stdin_keeps_history(manifest_file: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    new = make_share(42)
    code, out, _ = run(["keyholders", "enroll", "--keyholder", "dave", "--manifest", str(manifest_file)],
                       encode(new, "base64") + "\n", monkeypatch, capsys)
    assert code == 0 and "enrolled dave with share #42" in out and "previous version kept" in out
    assert Manifest.load(manifest_file).check("dave", new).ok
    assert encode(new, "base64") not in journal_path().read_text()


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg not installed")
def test_enroll_pgp_encrypted_share_decrypts_locally(manifest_file: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    gpg = ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
    try:
        subprocess.run([*gpg, "--quick-gen-key", "dave@example.test", "ed25519", "default", "never"],
                       check=True, capture_output=True)
        subprocess.run([*gpg, "--quick-add-key", _fpr(), "cv25519", "encr", "never"], check=True,
                       capture_output=True)
        new = make_share(42)
        # Vault encrypts the hex form of each share to the keyholder's key and returns it base64-encoded.
        enc = subprocess.run(["gpg", "--batch", "--trust-model", "always", "--encrypt", "-r",
                              "dave@example.test"], input=new.raw.hex().encode(), capture_output=True,
                             check=True).stdout
        blob = tmp_path / "dave.share.pgp.b64"
        blob.write_text(__import__("base64").b64encode(enc).decode())
        code, out, err = run(["keyholders", "enroll", "--keyholder", "dave", "--manifest", str(manifest_file),
                              "--pgp-encrypted", str(blob)], "", monkeypatch, capsys)
        assert code == 0, err
        assert Manifest.load(manifest_file).check("dave", new).ok
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], check=False, capture_output=True)


def _fpr() -> str:
    out = subprocess.run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], capture_output=True,
                         check=True, text=True).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))


def test_read_pgp_public_key_forms(tmp_path: Path) -> None:
    import base64

    body = base64.b64encode(b"\x99\x01\x0dkeydata").decode()
    armored = tmp_path / "a.asc"
    armored.write_text(f"-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: x\n\n{body}\n=abcd\n"
                       "-----END PGP PUBLIC KEY BLOCK-----\n")
    binary = tmp_path / "b.gpg"
    binary.write_bytes(b"\x99\x01\x0dkeydata")
    b64 = tmp_path / "c.b64"
    b64.write_text(body + "\n")
    assert kh.read_pgp_public_key(str(armored)) == body
    assert kh.read_pgp_public_key(str(binary)) == body
    assert kh.read_pgp_public_key(str(b64)) == body
    bad = tmp_path / "d.txt"
    bad.write_text("hello world")
    from vaultops.errors import UsageError

    with pytest.raises(UsageError, match="not an OpenPGP public key"):
        kh.read_pgp_public_key(str(bad))

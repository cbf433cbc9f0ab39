"""Age/ssh keys in the keyholder roster: enrolment, encrypted hand-out and opening, the rekey record."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from kh_helpers import make_share, team_manifest

from vaultops.cli import main
from vaultops.crypto.agekeys import X25519Identity, parse_identities
from vaultops.errors import SecurityError
from vaultops.services.ceremony import shares as codecs
from vaultops.services.ceremony.age_shares import open_share, read_recipient, seal_share
from vaultops.services.ceremony.manifest import Manifest
from vaultops.services.ceremony.pending import NewKeyholder, Pending, RotationApi


@pytest.fixture(autouse=True)
def _own_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(tmp_path / "state"))


def ssh_key(folder: Path, password: bytes | None = None) -> tuple[Path, Path]:
    key = ed25519.Ed25519PrivateKey.generate()
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    (folder / "id").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                                  enc))
    (folder / "id.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b" dave@laptop\n")
    return folder / "id.pub", folder / "id"


def test_a_sealed_share_opens_with_the_identity_only(tmp_path: Path) -> None:
    pub, key = ssh_key(tmp_path)
    share = make_share(9)
    text = seal_share(codecs.encode(share, "hex"), read_recipient(str(pub)))
    assert codecs.encode(share, "hex") not in text and share.raw.hex() not in text
    assert open_share(text, parse_identities(key.read_bytes())).raw == share.raw
    with pytest.raises(SecurityError, match="cannot be opened"):
        open_share(text, [X25519Identity.generate()])


def test_read_recipient_refuses_a_private_key_or_two_keys(tmp_path: Path) -> None:
    from vaultops.errors import UsageError

    _, key = ssh_key(tmp_path)
    with pytest.raises(UsageError):
        read_recipient(str(key))
    (tmp_path / "two").write_text(f"{X25519Identity.generate().recipient.text}\n"
                                  f"{X25519Identity.generate().recipient.text}\n")
    with pytest.raises(UsageError, match="exactly one"):
        read_recipient(str(tmp_path / "two"))


def test_enroll_from_an_age_encrypted_share_records_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    team = {"alice": make_share(3), "bob": make_share(7), "carol": make_share(11)}
    path = tmp_path / "keyholders.yaml"
    team_manifest(team).save(path)
    pub, key = ssh_key(tmp_path, password=b"open sesame")
    new = make_share(42)
    handed = tmp_path / "dave.share.age"
    handed.write_text(seal_share(codecs.encode(new, "base64"), read_recipient(str(pub))))
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "open sesame")
    monkeypatch.setattr("sys.stdin", _Tty(""))
    code = main(["keyholders", "enroll", "--keyholder", "dave", "--manifest", str(path), "--age-encrypted",
                 str(handed), "--identity", str(key), "--age-recipient", str(pub)])
    assert code == 0, capsys.readouterr().err
    m = Manifest.load(path)
    assert m.check("dave", new).ok
    assert m.keyholder("dave").age_recipient == read_recipient(str(pub))   # canonical: comment dropped
    capsys.readouterr()
    assert main(["keyholders", "list", "--manifest", str(path), "--format", "json"]) == 0
    listed = {k["name"]: k for k in json.loads(capsys.readouterr().out)}
    assert listed["dave"]["age_recipient"].startswith("ssh-ed25519 ")
    assert "open sesame" not in path.read_text() and new.raw.hex() not in path.read_text()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bad_age_recipient_in_the_manifest_is_one_error(tmp_path: Path) -> None:
    from vaultops.errors import ConfigError

    team = {"alice": make_share(3)}
    data = team_manifest(team).to_dict()
    data["keyholders"][0]["age_recipient"] = "age1notakey"
    with pytest.raises(ConfigError, match="age_recipient"):
        Manifest.from_dict(data, source="k.yaml")


def test_the_rekey_record_keeps_age_recipients() -> None:
    rec = X25519Identity.generate().recipient.text
    pending = Pending(nonce="n", api=RotationApi.ROTATE_ROOT, shares=2, threshold=2, old_threshold=1, old_shares=1,
                      started="2026-01-01T00:00:00+00:00",
                      keyholders=(NewKeyholder("a", age_recipient=rec), NewKeyholder("b")))
    back = Pending.from_dict(pending.to_dict(), source="pending.yaml")
    assert [k.age_recipient for k in back.keyholders] == [rec, None]

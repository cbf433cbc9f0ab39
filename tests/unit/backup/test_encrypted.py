"""Encrypted backups end to end through the CLI, against vaultops.testing.consul_double (no OpenBao).

The real-server round trips (Raft sandbox, moto S3, drill) are in tests/integration/backup/
test_encrypted_raft.py; here every refusal is driven through `main()` and checked to leave
nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from vaultops.cli import main
from vaultops.crypto import age
from vaultops.crypto.agekeys import X25519Identity
from vaultops.services.backup.catalog import list_backups
from vaultops.services.backup.settings import load_settings
from vaultops.services.backup.stored import read_manifest
from vaultops.storage import get_sink


@pytest.fixture
def ident(tmp_path: Path) -> tuple[X25519Identity, Path]:
    key = X25519Identity.generate()
    path = tmp_path / "backup.key"
    path.write_text(f"# created for a test\n{key.to_text()}\n")
    return key, path


def enc_cfg(make_cfg, consul, tmp_path: Path, recipients: list[str]):
    token_file = tmp_path / "consul-token"
    token_file.write_text(consul.token + "\n")
    return make_cfg({"sinks": [{"type": "local", "path": str(tmp_path / "out")}],
                     "consul": {"address": consul.address, "token_file": str(token_file)},
                     "metrics_file": str(tmp_path / "metrics" / "backup.prom"),
                     "encryption": {"recipients": recipients}})


def run(cfg, *args: str) -> int:
    return main(["--config", str(cfg.path), "backup", *args])


def published(cfg):
    settings = load_settings(cfg)
    sink = get_sink(settings.sinks[0])
    entry = list_backups(sink, cluster="unit")[0]
    return sink, entry.name, read_manifest(sink, entry.name)


def test_the_stored_object_is_age_ciphertext_and_the_manifest_records_both_digests(make_cfg, consul, tmp_path,
                                                                                   ident, capsys):
    key, _ = ident
    consul.kv["vault/core/keyring"] = b"K" * 5000
    cfg = enc_cfg(make_cfg, consul, tmp_path, [key.recipient.text])
    assert run(cfg, "run") == 0
    sink, name, manifest = published(cfg)
    stored = (tmp_path / "out" / name).read_bytes()
    assert name.endswith(".snap.age") and stored.startswith(b"age-encryption.org/v1\n")
    assert b"meta.json" not in stored and b"K" * 64 not in stored
    enc = manifest.encryption
    assert enc is not None and enc.format == "age-v1"
    assert [r.fingerprint for r in enc.recipients] == [key.recipient.text]
    assert enc.ciphertext_size == len(stored) and enc.ciphertext_sha256 == hashlib.sha256(stored).hexdigest()
    plain = age.decrypt(stored, [key])
    assert len(plain) == manifest.size and hashlib.sha256(plain).hexdigest() == manifest.sha256
    journal = (tmp_path / "journal.jsonl").read_text()
    assert key.recipient.text in journal            # the public fingerprint, recorded
    assert key.to_text() not in journal


def test_verify_without_and_with_an_identity(make_cfg, consul, tmp_path, ident, capsys, monkeypatch):
    key, path = ident
    cfg = enc_cfg(make_cfg, consul, tmp_path, [key.recipient.text])
    assert run(cfg, "run") == 0
    capsys.readouterr()
    assert run(cfg, "verify", "--format", "json") == 0
    res = json.loads(capsys.readouterr().out)
    assert res["ok"] and res["encrypted"] and not res["decrypted"] and "not decrypted" in res["detail"]
    assert run(cfg, "verify", "--identity", str(path), "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["decrypted"] is True
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    assert run(cfg, "verify", "--identity", "-", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["decrypted"] is True
    assert run(cfg, "inspect", "--identity", str(path), "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["manifest"]["encryption"]["format"] == "age-v1"


def test_wrong_identity_is_refused_in_one_line_and_is_no_verdict(make_cfg, consul, tmp_path, ident, capsys):
    key, _ = ident
    cfg = enc_cfg(make_cfg, consul, tmp_path, [key.recipient.text])
    assert run(cfg, "run") == 0
    other = tmp_path / "other.key"
    other.write_text(X25519Identity.generate().to_text() + "\n")
    capsys.readouterr()
    assert run(cfg, "verify", "--identity", str(other)) == 6
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none of the given identities" in err[0] and key.recipient.text in err[0]
    assert not list((tmp_path / "out").glob("*.check-failed.json"))
    assert run(cfg, "restore", "latest", "--yes", "--identity", str(other)) == 6
    assert run(cfg, "inspect") == 6           # encrypted, no identity: says so in one line
    assert "--identity" in capsys.readouterr().err
    assert consul.restores == 0


@pytest.mark.parametrize("damage", ["truncate", "flip", "swap_header"])
def test_damaged_ciphertext_is_refused_and_nothing_restored(make_cfg, consul, tmp_path, ident, capsys, damage):
    key, path = ident
    consul.kv["vault/core/keyring"] = os.urandom(300_000)   # several 64 KiB chunks of ciphertext
    cfg = enc_cfg(make_cfg, consul, tmp_path, [key.recipient.text])
    assert run(cfg, "run") == 0
    sink, name, manifest = published(cfg)
    target = tmp_path / "out" / name
    data = target.read_bytes()
    header = age.read_header(data)
    if damage == "truncate":
        data = data[:-(age.CHUNK // 2)]
    elif damage == "flip":
        data = data[:-50] + bytes([data[-50] ^ 1]) + data[-49:]
    else:  # another backup's wrapped file key (its whole header) in front of this payload
        other = age.encrypt(b"x" * 1000, [key.recipient])
        data = other[:age.read_header(other).size] + data[header.size:]
    target.write_bytes(data)
    capsys.readouterr()
    assert run(cfg, "restore", "latest", "--yes", "--identity", str(path)) == 6
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("vaultops: error: ") and "Traceback" not in "\n".join(err)   # one line: the refusal
    assert consul.restores == 0
    assert run(cfg, "verify") == 6            # keyless: the ciphertext digest no longer matches
    assert run(cfg, "verify", "--identity", str(path)) == 6
    assert list((tmp_path / "out").glob("*.check-failed.json"))


def test_a_backup_to_recipients_no_longer_configured_is_flagged(make_cfg, consul, tmp_path, ident, capsys):
    key, path = ident
    cfg = enc_cfg(make_cfg, consul, tmp_path, [key.recipient.text])
    assert run(cfg, "run") == 0
    cfg = enc_cfg(make_cfg, consul, tmp_path, [X25519Identity.generate().recipient.text])   # keys rotated
    assert run(cfg, "run") == 0
    capsys.readouterr()
    assert run(cfg, "list", "--format", "json") == 3
    listing = json.loads(capsys.readouterr().out)
    assert sorted(b["encrypted"] for b in listing["backups"]) == ["ORPHANED", "yes"]
    assert listing["orphaned"] == 1
    metric = next((tmp_path / "metrics").glob("backup_orphaned_*.prom")).read_text()
    assert 'vaultops_backup_orphaned_backups{cluster="unit",sink="local:' in metric and metric.endswith(" 1\n")
    old = next(b["name"] for b in listing["backups"] if b["encrypted"] == "ORPHANED")
    assert run(cfg, "verify", old, "--identity", str(path), "--format", "json") == 3   # fine, but orphaned
    assert json.loads(capsys.readouterr().out)["orphaned"] is True
    assert run(cfg, "restore", old, "--yes", "--identity", str(path)) == 0    # the kept key still opens it


def test_retention_prunes_encrypted_backups_like_plain_ones(make_cfg, consul, tmp_path, ident, capsys):
    key, _ = ident
    cfg = enc_cfg(make_cfg, consul, tmp_path, [key.recipient.text])
    for _ in range(3):
        assert run(cfg, "run") == 0
    cfg_data = load_settings(cfg)
    assert len(list_backups(get_sink(cfg_data.sinks[0]), cluster="unit")) == 3
    cfg = make_cfg({**_section(cfg), "retention": {"keep_last": 1}})
    assert run(cfg, "prune") == 0
    left = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len([n for n in left if n.endswith(".snap.age")]) == 1
    assert len([n for n in left if n.endswith(".snap.age.manifest.json")]) == 1


def _section(cfg) -> dict:
    return dict(cfg.section("backup"))


def test_bad_recipient_config_is_one_line(make_cfg, consul, tmp_path, capsys):
    cfg = enc_cfg(make_cfg, consul, tmp_path, ["age1notakey"])
    assert run(cfg, "run") != 0
    err = capsys.readouterr().err
    assert "backup.encryption.recipients[0]" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_check_opens_reads_only_the_header_and_refuses_in_one_line(make_cfg, consul, tmp_path, ident):
    """The disaster paths (recover from-backup, rehearsals) check the identity before anything starts."""
    from vaultops.errors import BackupError
    from vaultops.services.backup.crypt.reveal import WrongIdentity, check_opens

    key, _ = ident
    consul.kv["vault/core/keyring"] = os.urandom(3 << 20)       # several chunks of ciphertext
    cfg = enc_cfg(make_cfg, consul, tmp_path, [key.recipient.text])
    assert run(cfg, "run") == 0
    sink, _name, manifest = published(cfg)
    read: list[int] = []
    real = sink.read_chunks
    sink.read_chunks = lambda key_, **kw: (read.append(len(c)) or c for c in real(key_, **kw))
    check_opens(sink, manifest, [key])
    assert 0 < sum(read) < manifest.encryption.ciphertext_size // 2
    with pytest.raises(BackupError, match="is encrypted .*pass --identity") as err:
        check_opens(sink, manifest, None)
    assert not isinstance(err.value, WrongIdentity)
    with pytest.raises(WrongIdentity, match="none of the given identities opens"):
        check_opens(sink, manifest, [X25519Identity.generate()])


def test_upgrade_rollback_opens_an_encrypted_pre_upgrade_backup_with_the_runs_identity(make_cfg, consul, tmp_path,
                                                                                       ident):
    from types import SimpleNamespace

    from vaultops.errors import BackupError
    from vaultops.services.upgrade.restore_steps import snapshot_file

    key, _ = ident
    consul.kv["vault/core/keyring"] = b"K" * 5000
    cfg = enc_cfg(make_cfg, consul, tmp_path, [key.recipient.text])
    assert run(cfg, "run") == 0
    _sink, name, manifest = published(cfg)
    with snapshot_file(SimpleNamespace(cfg=cfg, identities=[key]), snapshot=name, sha256="",  # type: ignore[arg-type]
                       source="backup") as (path, _index):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest.sha256    # the plaintext, verified
    with pytest.raises(BackupError, match="is encrypted"):
        with snapshot_file(SimpleNamespace(cfg=cfg, identities=None), snapshot=name, sha256="",  # type: ignore[arg-type]
                           source="backup"):
            pass

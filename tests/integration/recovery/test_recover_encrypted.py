"""Encrypted backups on the disaster paths, on a real one-node OpenBao sandbox: `recover from-backup
--rehearse` and `upgrade rehearse` open an age-encrypted backup with `--identity FILE` (stdin holds
the shares); without an identity, or with one the backup is not encrypted to, they refuse at once,
before any sandbox starts, in one line that never shows the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from recovery_helpers import shares_text, with_backups

from vaultops.crypto.agekeys import X25519Identity
from vaultops.testing.sandbox import Sandbox

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(make_box: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    box = make_box("recenc", nodes=1, version="2.6.2")   # upgrade rehearse needs a newer target
    folder = tmp_path_factory.mktemp("recenc-keys")
    key = X25519Identity.generate()
    (folder / "backup.key").write_text(key.to_text() + "\n")
    (folder / "other.key").write_text(X25519Identity.generate().to_text() + "\n")
    with_backups(box, folder, "sealed-in-an-encrypted-backup")
    doc = yaml.safe_load(box.config_path.read_text())
    doc["backup"]["encryption"] = {"recipients": [key.recipient.text]}
    box.config_path.write_text(yaml.safe_dump(doc))
    box.keys = folder
    box.key_text = key.to_text()
    return box


def rehearsals(box: Sandbox) -> list[Path]:
    parent = box.config.state_dir / "rehearsals"
    return [p for p in parent.rglob("vaultops-*") if p.is_dir()] if parent.exists() else []


def test_recover_from_backup_rehearsal_opens_an_encrypted_backup_with_its_identity(box: Any, cli: Any) -> None:
    rc, out, err = cli(box, "backup", "run", "--format", "json")
    assert rc == 0, err
    assert json.loads(out)["name"].endswith(".snap.age")
    for extra, needle in (((), "is encrypted (to "),
                          (("--identity", str(box.keys / "other.key")), "none of the given identities opens")):
        rc, out, err = cli(box, "recover", "from-backup", "--rehearse", "--share-stdin", *extra,
                           stdin=shares_text(box))
        assert rc == 6 and needle in err and err.count("\n") == 1, out + err
        assert rehearsals(box) == [] and box.key_text not in out + err      # refused before any sandbox
    rc, out, err = cli(box, "recover", "from-backup", "--rehearse", "--share-stdin",
                       "--identity", str(box.keys / "backup.key"), stdin=shares_text(box))
    assert rc == 0, out + err
    assert "rehearsal PASSED" in out and "RTO" in out and box.key_text not in out + err
    assert box.key_text not in (box.dir / "journal.jsonl").read_text()


def test_identity_dash_is_refused_when_stdin_carries_the_shares(box: Any, cli: Any) -> None:
    for argv in (("recover", "from-backup", "--rehearse"), ("upgrade", "rehearse", "--to", "2.7.2")):
        rc, out, err = cli(box, *argv, "--share-stdin", "--identity", "-", stdin=shares_text(box))
        assert rc == 2 and "cannot read stdin: it carries the unseal shares" in err, out + err


def test_upgrade_rehearsal_of_an_encrypted_backup_needs_its_identity_before_any_sandbox(box: Any, cli: Any) -> None:
    rc, out, err = cli(box, "backup", "run")
    assert rc == 0, err
    rc, out, err = cli(box, "upgrade", "rehearse", "--to", "2.7.2", "--share-stdin", stdin=shares_text(box))
    assert rc == 6 and "is encrypted (to " in err and err.count("\n") == 1, out + err
    assert rehearsals(box) == []
    rc, out, err = cli(box, "upgrade", "rehearse", "--to", "2.7.2", "--share-stdin",
                       "--identity", str(box.keys / "other.key"), stdin=shares_text(box))
    assert rc == 6 and "none of the given identities opens" in err and rehearsals(box) == [], out + err

"""vaultops backups and the reference `bao` CLI; cross-cluster restores; the drill; AppRole auth."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backup_helpers import active_client, backup_config, read_retry, write_retry
from vaultops.cli import main
from vaultops.testing.sandbox import start_sandbox

pytestmark = pytest.mark.integration
BAO = Path(sys.executable).parent / "bao"


def bao(box, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BAO_ADDR": active_client(box).address, "BAO_TOKEN": token or box.root_token}
    return subprocess.run([str(BAO), *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def other_box(tmp_path_factory):
    box = start_sandbox(tmp_path_factory.mktemp("other"), name="other", nodes=1)
    yield box
    box.stop()


def unseal_with(box, shares: list[str], timeout: float = 60.0) -> None:
    from vaultops.errors import VaultError
    client = box.clients(token=False)[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # the forced restore seals the node within a few seconds
        try:
            if client.seal.status().sealed:
                break
        except VaultError:
            pass
        time.sleep(0.3)
    for share in shares:
        if not client.seal.unseal(share).sealed:
            return
    raise AssertionError("still sealed")


def test_bao_saved_snapshot_is_verified_and_restored_by_vaultops(raft_box, tmp_path, capsys) -> None:
    write_retry(active_client(raft_box), "secret/data/interop", {"data": {"value": "saved"}})
    snap = tmp_path / "bao.snap"
    res = bao(raft_box, "operator", "raft", "snapshot", "save", str(snap))
    assert res.returncode == 0, res.stderr
    write_retry(active_client(raft_box), "secret/data/interop", {"data": {"value": "later"}})
    cfg = backup_config(raft_box, tmp_path, {"sinks": [{"type": "local", "path": str(tmp_path / "l")}]})
    assert main(["--config", str(cfg), "backup", "verify", "--file", str(snap), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and set(report["members"]) == {"meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed"}
    assert main(["--config", str(cfg), "backup", "restore", "--file", str(snap), "--yes"]) == 0
    assert read_retry(raft_box, "secret/data/interop")["data"]["data"]["value"] == "saved"
    broken = tmp_path / "broken.snap"
    broken.write_bytes(snap.read_bytes()[:-10])
    assert main(["--config", str(cfg), "backup", "verify", "--file", str(broken)]) == 6


def test_vaultops_backup_restored_by_bao_into_another_cluster(raft_box, other_box, tmp_path, capsys) -> None:
    write_retry(active_client(raft_box), "secret/data/crosscluster", {"data": {"value": "from-raft3"}})
    local = tmp_path / "local"
    cfg = backup_config(raft_box, tmp_path / "a", {"sinks": [{"type": "local", "path": str(local)}]})
    assert main(["--config", str(cfg), "backup", "run"]) == 0
    snap = next(p for p in local.iterdir() if p.suffix == ".snap")
    # vaultops refuses to restore another cluster's backup without --force ...
    other_cfg = backup_config(other_box, tmp_path / "b", {"sinks": [{"type": "local", "path": str(local)}]})
    capsys.readouterr()
    assert main(["--config", str(other_cfg), "backup", "restore", snap.name, "--yes"]) == 2
    err = capsys.readouterr().err
    assert "FORCED RESTORE" in err and "ORIGINAL cluster" in err
    # ... and the reference CLI restores the file vaultops wrote.
    res = bao(other_box, "operator", "raft", "snapshot", "restore", "-force", str(snap))
    assert res.returncode == 0, res.stderr
    unseal_with(other_box, raft_box.shares_b64[:3])
    deadline = time.monotonic() + 60
    while True:
        try:
            c = other_box.clients(token=False)[0]
            c.token = raft_box.root_token  # the original cluster's token works now
            value = c.read("secret/data/crosscluster")["data"]["data"]["value"]
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert value == "from-raft3"


def test_drill_restores_newest_backup_into_throwaway_sandbox(raft_box, tmp_path, capsys, monkeypatch) -> None:
    """The shares in the format `unseal --share-stdin` documents: 'NAME: share' lines (issue 15, defect 3)."""
    write_retry(active_client(raft_box), "secret/data/drill", {"data": {"value": "present"}})
    cfg = backup_config(raft_box, tmp_path, {
        "sinks": [{"type": "local", "path": str(tmp_path / "local")}],
        "drill": {"sentinels": ["secret/data/drill", "secret/data/sentinel"]}})
    assert main(["--config", str(cfg), "backup", "run"]) == 0
    capsys.readouterr()
    holders = list(raft_box.secrets["keyholders"].items())[:3]
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{name}: {share}\n" for name, share in holders)))
    assert main(["--config", str(cfg), "backup", "drill", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["sentinels"] == {"secret/data/drill": "ok", "secret/data/sentinel": "ok"}
    assert report["rto_seconds"] > report["restore_seconds"] > 0 and report["rpo_seconds"] >= 0
    assert report["keyholders"] == [name for name, _ in holders] and report["checked"]
    entry = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()][-1]
    assert entry["action"] == "backup.drill" and entry["outcome"] == "ok"
    assert not any(s in json.dumps(entry) for s in raft_box.shares_b64)


def test_drill_with_wrong_shares_is_refused_before_the_restore(raft_box, other_box, tmp_path, capsys,
                                                               monkeypatch) -> None:
    cfg = backup_config(raft_box, tmp_path, {"sinks": [{"type": "local", "path": str(tmp_path / "local")}],
                                             "drill": {"sentinels": ["secret/data/sentinel"]}})
    assert main(["--config", str(cfg), "backup", "run"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(other_box.shares_b64[:3]) + "\n"))
    t0 = time.monotonic()
    assert main(["--config", str(cfg), "backup", "drill", "--format", "json"]) == 3  # the manifest refuses them
    assert time.monotonic() - t0 < 5  # nothing was restored
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and "matches no keyholder" in report["error"]
    # unchecked (--no-manifest), the restored copy itself refuses them: a failed drill, journalled
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(other_box.shares_b64[:3]) + "\n"))
    assert main(["--config", str(cfg), "backup", "drill", "--format", "json", "--no-manifest"]) == 6
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and report["error"] and not report["checked"]
    entry = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()][-1]
    assert entry["action"] == "backup.drill" and entry["outcome"] == "failed"


def test_approle_identity_with_shipped_policy(raft_box, tmp_path, capsys) -> None:
    from vaultops.errors import VaultAuthError
    from vaultops.services.backup.identity import policy_text

    admin = active_client(raft_box)
    try:
        admin.write("sys/auth/approle", {"type": "approle"})
    except Exception:
        pass  # already enabled by an earlier run of this test in the session
    admin.write("sys/policies/acl/vaultops-backup", {"policy": policy_text()})
    admin.write("auth/approle/role/backup", {"token_policies": ["vaultops-backup"], "token_ttl": "15m"})
    role_id = admin.read("auth/approle/role/backup/role-id")["data"]["role_id"]
    secret_id = admin.write("auth/approle/role/backup/secret-id", {})["data"]["secret_id"]
    secret_file = tmp_path / "secret-id"
    secret_file.write_text(secret_id)
    secret_file.chmod(0o600)
    cfg = backup_config(raft_box, tmp_path, {
        "sinks": [{"type": "local", "path": str(tmp_path / "local")}],
        "auth": {"method": "approle", "role_id": role_id, "secret_id_file": str(secret_file)}}, token="")
    assert main(["--config", str(cfg), "backup", "run", "--format", "json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["ok"] and "root token" not in out.err and secret_id not in out.err
    # the same identity can read nothing else
    c = raft_box.clients(token=False)[0]
    c.login("approle/login", {"role_id": role_id, "secret_id": secret_id})
    with pytest.raises(VaultAuthError):
        c.read("secret/data/sentinel")
    # and a wrong secret id fails the run without publishing
    secret_file.write_text("not-the-secret")
    assert main(["--config", str(cfg), "backup", "run"]) == 4

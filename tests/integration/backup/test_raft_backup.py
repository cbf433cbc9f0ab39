"""`vaultops backup` against a real 3-node OpenBao Raft cluster, a local dir and moto S3."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from backup_helpers import MotoServer, active_client, backup_config, read_retry, s3_sink, write_retry
from vaultops.cli import main
from vaultops.services.backup.lock import run_lock

pytestmark = pytest.mark.integration


def run(cfg: Path, *args: str) -> int:
    return main(["--config", str(cfg), "backup", *args])


def json_out(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_run_publishes_verified_backup_to_local_and_s3(raft_box, moto, bucket, tmp_path, capsys) -> None:
    local = tmp_path / "local"
    cfg = backup_config(raft_box, tmp_path, {
        "sinks": [{"type": "local", "path": str(local)},
                  s3_sink(moto, bucket, sse="AES256", storage_class="STANDARD_IA")],
        "metrics_file": str(tmp_path / "backup.prom")})
    assert run(cfg, "run", "--format", "json") == 0
    result = json_out(capsys)
    name = result["name"]
    assert result["ok"] and all(v == "ok" for v in result["sinks"].values())
    manifest = result["manifest"]
    assert manifest["source_node"] == active_client(raft_box).name
    assert manifest["raft_index"] > 0 and manifest["raft_term"] > 0
    assert manifest["server_version"] and manifest["cluster_id"]
    assert sorted(p.name for p in local.iterdir()) == [name, name + ".manifest.json"]
    s3 = moto.client()
    head = s3.head_object(Bucket=bucket, Key=f"vault/{name}", ChecksumMode="ENABLED")
    assert head["ServerSideEncryption"] == "AES256" and head["StorageClass"] == "STANDARD_IA"
    assert head["ContentLength"] == manifest["size"] and head["ChecksumCRC32"]
    assert "vaultops_backup_last_success_timestamp_seconds" in (tmp_path / "backup.prom").read_text()
    for sink in ("0", "1"):
        assert run(cfg, "verify", "--sink", sink, "--format", "json") == 0
        assert json_out(capsys)["ok"] is True
    assert run(cfg, "list", "--sink", "1", "--format", "json") == 0
    listed = json_out(capsys)["backups"]
    assert [(b["name"], b["state"]) for b in listed] == [(name, "re-verified")]
    assert run(cfg, "inspect", "--format", "json") == 0
    ins = json_out(capsys)
    assert len(ins["meta"]["peers"]) == 3 and ins["meta"]["index"] == manifest["raft_index"]
    assert any(p["prefix"] == "logical/" and p["entries"] > 0 for p in ins["prefixes"])


def test_stored_copy_tampered_after_publication_fails_verify(raft_box, tmp_path, capsys) -> None:
    local = tmp_path / "local"
    cfg = backup_config(raft_box, tmp_path, {"sinks": [{"type": "local", "path": str(local)}]})
    assert run(cfg, "run") == 0
    name = next(p for p in local.iterdir() if p.suffix == ".snap")
    data = bytearray(name.read_bytes())
    data[len(data) // 2] ^= 0x01
    name.write_bytes(bytes(data))
    capsys.readouterr()
    assert run(cfg, "verify", "--format", "json") == 6
    assert json_out(capsys)["ok"] is False
    assert run(cfg, "list", "--format", "json") == 0
    assert json_out(capsys)["backups"][0]["state"] == "failed"


def test_s3_stopped_mid_upload(raft_box, tmp_path, capsys, monkeypatch) -> None:
    """The S3 server dies while the snapshot streams: no object, non-zero exit, local copy intact."""
    from vaultops.services.backup import formats, runner

    dying = MotoServer(tmp_path)
    dying.client().create_bucket(Bucket="dying")
    real = formats.make_source

    class KillAfterFirstChunk:
        def __init__(self, inner):
            self.inner, self.kind, self.extension = inner, inner.kind, inner.extension

        def verifier(self, **kw):
            return self.inner.verifier(**kw)

        def restore(self, *a, **kw):
            return self.inner.restore(*a, **kw)

        def open(self):
            import contextlib

            @contextlib.contextmanager
            def opened():
                with self.inner.open() as snap:
                    def chunks():
                        for i, chunk in enumerate(snap.chunks):
                            yield chunk
                            if i == 0:
                                dying.stop()
                    yield type(snap)(snap.info, chunks())
            return opened()

    monkeypatch.setattr(runner, "make_source", lambda *a, **kw: KillAfterFirstChunk(real(*a, **kw)))
    local = tmp_path / "local"
    cfg = backup_config(raft_box, tmp_path, {"sinks": [{"type": "local", "path": str(local)},
                                                       s3_sink(dying, "dying", retry_seconds=2)]})
    assert run(cfg, "run", "--format", "json") == 6
    result = json_out(capsys)
    assert not result["ok"] and result["verified"]
    s3_state = next(v for k, v in result["sinks"].items() if k.startswith("s3://"))
    assert s3_state != "ok"
    name = result["name"]
    assert sorted(p.name for p in local.iterdir()) == [name, name + ".manifest.json"]
    assert run(cfg, "verify", "--sink", "0") == 0
    # The same port again: a fresh S3 with the same bucket shows no object from the dead run.
    revived = MotoServer(tmp_path, port=dying.port)
    try:
        revived.client().create_bucket(Bucket="dying")
        assert revived.client().list_objects_v2(Bucket="dying").get("KeyCount") == 0
    finally:
        revived.stop()
    state = json.loads((tmp_path / "last-run.json").read_text())
    assert state["ok"] is False
    assert run(cfg, "prune", "--dry-run") == 6  # never prune after a failed run


def test_two_concurrent_runs_never_interleave(raft_box, tmp_path) -> None:
    local = tmp_path / "local"
    cfg = backup_config(raft_box, tmp_path, {"sinks": [{"type": "local", "path": str(local)}]})
    cmd = [sys.executable, "-m", "vaultops", "--config", str(cfg), "backup", "run", "--lock-wait", "60"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    logs = []
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        start = next(e for e in events if e["event"] == "run.start")
        done = next(e for e in events if e["event"] == "run.done")
        logs.append((datetime.fromisoformat(start["time"]), datetime.fromisoformat(done["time"])))
    (a_start, a_done), (b_start, b_done) = sorted(logs)
    assert a_done <= b_start  # the second run began only after the first finished
    snaps = [p for p in local.iterdir() if p.suffix == ".snap"]
    assert len(snaps) == 2 and len(list(local.glob("*.manifest.json"))) == 2


def test_held_lock_makes_run_fail_fast(raft_box, tmp_path, capsys) -> None:
    local = tmp_path / "local"
    cfg = backup_config(raft_box, tmp_path, {"sinks": [{"type": "local", "path": str(local)}]})
    with run_lock(tmp_path / "backup.lock"):
        assert run(cfg, "run") == 6
    assert "another backup run holds the lock" in capsys.readouterr().err
    assert not local.exists() or list(local.iterdir()) == []


def test_restore_same_cluster_rolls_back(raft_box, tmp_path, capsys) -> None:
    client = active_client(raft_box)
    write_retry(client, "secret/data/rollback", {"data": {"value": "before"}})
    cfg = backup_config(raft_box, tmp_path, {"sinks": [{"type": "local", "path": str(tmp_path / "local")}]})
    assert run(cfg, "run") == 0
    write_retry(client, "secret/data/rollback", {"data": {"value": "after"}})
    assert run(cfg, "restore", "latest", "--yes") == 0
    assert "rolled back" in capsys.readouterr().err
    assert read_retry(raft_box, "secret/data/rollback")["data"]["data"]["value"] == "before"
    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert [e["action"] for e in journal] == ["backup.run", "backup.restore"]


def test_root_token_is_warned_about(raft_box, tmp_path, capsys) -> None:
    cfg = backup_config(raft_box, tmp_path, {"sinks": [{"type": "local", "path": str(tmp_path / "local")}]})
    assert run(cfg, "run") == 0
    assert "root token" in capsys.readouterr().err


def test_sigterm_mid_stream_publishes_nothing_and_frees_the_lock(raft_box, moto, bucket, tmp_path) -> None:
    """systemd stops a run (SIGTERM) while the snapshot streams over a slow link: exit 130, no object in
    either sink, no temp file, no open multipart upload, and the next run takes the lock and succeeds."""
    import os
    import signal
    from urllib.parse import urlsplit

    import yaml

    from vaultops.testing.netem import LinkProxy

    active = active_client(raft_box)
    address = urlsplit(active.address)
    proxy = LinkProxy((address.hostname, address.port), rate=256 * 1024)
    local = tmp_path / "local"
    cfg = backup_config(raft_box, tmp_path, {"sinks": [{"type": "local", "path": str(local)}, s3_sink(moto, bucket)]})
    data = yaml.safe_load(cfg.read_text())
    data["nodes"] = [{"name": active.name, "address": f"http://127.0.0.1:{proxy.port}"}]
    slow_cfg = tmp_path / "slow.yaml"
    slow_cfg.write_text(yaml.safe_dump(data))
    # ~1.8 MB of data: the stream outlasts the signal by seconds at 256 KiB/s.
    for i in range(3):
        write_retry(active, f"secret/data/bulk-{i}", {"data": {"v": os.urandom(300 << 10).hex()}})
    proc = subprocess.Popen([sys.executable, "-m", "vaultops", "--config", str(slow_cfg), "backup", "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if '"snapshot.open"' in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proxy.stop()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert list(local.iterdir()) == []  # neither the snapshot, its manifest nor a .partial- file
    s3 = moto.client()
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert run(cfg, "run") == 0  # the lock was released; the direct link works
    assert len(list(local.glob("*.snap"))) == 1

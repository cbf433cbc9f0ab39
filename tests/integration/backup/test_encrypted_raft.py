"""Encrypted backups of a real 3-node OpenBao Raft cluster to a local dir and moto S3: verify with
and without an identity, inspect, restore into the cluster, a drill into a throwaway sandbox,
refusals (wrong identity, truncated, flipped, swapped wrapped key) that restore nothing, an
ssh-ed25519 recipient opened by its private key, and no identity anywhere it must not be."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from backup_helpers import AWS_ENV, active_client, backup_config, read_retry, s3_sink, write_retry
from vaultops.cli import main
from vaultops.crypto import age
from vaultops.crypto.agekeys import X25519Identity

pytestmark = pytest.mark.integration


class Keys:
    def __init__(self, folder: Path) -> None:
        self.age = X25519Identity.generate()
        self.age_file = folder / "backup-identity.txt"
        self.age_file.write_text(self.age.to_text() + "\n")
        self.age_file.chmod(0o600)
        self.ed = ed25519.Ed25519PrivateKey.generate()
        pem = self.ed.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption())
        self.ssh_file = folder / "id_ed25519"
        self.ssh_file.write_bytes(pem)
        self.ssh_file.chmod(0o600)
        self.ssh_public = self.ed.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                            serialization.PublicFormat.OpenSSH).decode()
        self.pem = pem

    def needles(self) -> dict[str, bytes]:
        """Every form of the private keys that must never leak."""
        secret = self.age.secret.private_bytes_raw()
        lines = self.pem.decode().splitlines()[1:-1]
        return {"age identity": self.age.to_text().encode(), "age identity lower": self.age.to_text().lower().encode(),
                "age raw": secret, "age b64": base64.b64encode(secret).rstrip(b"="),
                "ssh pem line": lines[2].encode(), "ssh seed": self.ed.private_bytes_raw()}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


def run(cfg: Path, *args: str) -> int:
    return main(["--config", str(cfg), "backup", *args])


def enc_config(raft_box, folder: Path, keys: Keys, sinks: list, **extra) -> Path:
    return backup_config(raft_box, folder, {"sinks": sinks, "metrics_file": str(folder / "m" / "backup.prom"),
                                            "encryption": {"recipients": [keys.age.recipient.text, keys.ssh_public]},
                                            **extra})


def test_encrypted_round_trip_local_and_s3(raft_box, moto, bucket, keys, tmp_path, capsys, monkeypatch) -> None:
    client = active_client(raft_box)
    write_retry(client, "secret/data/encrypted", {"data": {"value": "before"}})
    local = tmp_path / "local"
    cfg = enc_config(raft_box, tmp_path, keys, [{"type": "local", "path": str(local)}, s3_sink(moto, bucket)],
                     drill={"sentinels": ["secret/data/encrypted", "secret/data/sentinel"]})
    assert run(cfg, "run", "--format", "json") == 0
    result = json.loads(capsys.readouterr().out)
    name, manifest = result["name"], result["manifest"]
    assert name.endswith(".snap.age") and result["ok"]
    enc = manifest["encryption"]
    assert [r["type"] for r in enc["recipients"]] == ["X25519", "ssh-ed25519"]
    s3_object = moto.client().get_object(Bucket=bucket, Key=f"vault/{name}")["Body"].read()
    assert s3_object == (local / name).read_bytes() and s3_object.startswith(b"age-encryption.org/v1\n")
    assert len(s3_object) == enc["ciphertext_size"] and b"state.bin" not in s3_object
    for sink in ("0", "1"):                       # no identity: the ciphertext only
        assert run(cfg, "verify", "--sink", sink, "--format", "json") == 0
        res = json.loads(capsys.readouterr().out)
        assert res["ok"] and not res["decrypted"]
    assert run(cfg, "verify", "--sink", "1", "--identity", str(keys.age_file), "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["decrypted"] is True
    assert run(cfg, "verify", "--sink", "0", "--identity", str(keys.ssh_file), "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["decrypted"] is True     # the ssh-ed25519 recipient's own key
    assert run(cfg, "inspect", "--sink", "1", "--identity", str(keys.age_file), "--format", "json") == 0
    ins = json.loads(capsys.readouterr().out)
    assert len(ins["meta"]["peers"]) == 3 and ins["meta"]["index"] == manifest["raft_index"]

    write_retry(client, "secret/data/encrypted", {"data": {"value": "after"}})
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(keys.age_file.read_bytes())))
    assert run(cfg, "restore", "latest", "--sink", "1", "--yes", "--identity", "-") == 0
    assert read_retry(raft_box, "secret/data/encrypted")["data"]["data"]["value"] == "before"

    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(raft_box.shares_b64[:3]) + "\n"))
    assert run(cfg, "drill", "--sink", "1", "--identity", str(keys.ssh_file), "--format", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["sentinels"] == {"secret/data/encrypted": "ok", "secret/data/sentinel": "ok"}


@pytest.fixture(scope="module", autouse=True)
def bulk(raft_box) -> None:
    """Enough data that a snapshot spans many 64 KiB chunks of ciphertext."""
    write_retry(active_client(raft_box), "secret/data/bulk", {"data": {"value": base64.b64encode(
        os.urandom(600_000)).decode()}})


def _damage(kind: str, data: bytes, recipient) -> bytes:
    header = age.read_header(data)
    body = len(data) - header.size - age.NONCE
    assert body > 4 * age.CHUNK, "the snapshot is too small for this test"
    if kind == "truncated":   # cut at a chunk boundary: every chunk left authenticates, the final one is gone
        return data[: header.size + age.NONCE + 3 * (age.CHUNK + age.TAG)]
    if kind == "flipped":
        i = header.size + age.NONCE + body // 2
        return data[:i] + bytes([data[i] ^ 0x80]) + data[i + 1:]
    other = age.encrypt(b"another backup", [recipient])   # kind == "swapped": another file's wrapped key
    return age.read_header(other).signed[:-3] + data[len(header.signed) - 3:]


@pytest.mark.parametrize("kind", ["wrong identity", "truncated", "flipped", "swapped"])
def test_refusals_restore_nothing(raft_box, moto, bucket, keys, tmp_path, capsys, kind) -> None:
    client = active_client(raft_box)
    write_retry(client, "secret/data/refusal", {"data": {"value": "before"}})
    cfg = enc_config(raft_box, tmp_path, keys, [s3_sink(moto, bucket)])
    assert run(cfg, "run", "--format", "json") == 0
    name = json.loads(capsys.readouterr().out)["name"]
    write_retry(client, "secret/data/refusal", {"data": {"value": "after"}})
    identity = keys.age_file
    if kind == "wrong identity":
        identity = tmp_path / "other.txt"
        identity.write_text(X25519Identity.generate().to_text() + "\n")
    else:
        s3 = moto.client()
        data = s3.get_object(Bucket=bucket, Key=f"vault/{name}")["Body"].read()
        s3.put_object(Bucket=bucket, Key=f"vault/{name}", Body=_damage(kind, data, keys.age.recipient))
    assert run(cfg, "restore", name, "--yes", "--identity", str(identity)) == 6
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("vaultops: error: ") and not any("Traceback" in line for line in err)
    time.sleep(1)
    assert read_retry(raft_box, "secret/data/refusal")["data"]["data"]["value"] == "after"   # nothing restored
    expected = 6
    assert run(cfg, "verify", name, "--identity", str(identity)) == expected


def _descendants(root: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        for kid in kids.get(pid, []):
            out.add(kid)
            todo.append(kid)
    return out


def test_identities_never_reach_argv_logs_journal_or_children(raft_box, keys, tmp_path) -> None:
    """A drill in a child process (it starts bao servers of its own): every process it starts is read
    while it runs (argv, environment); its output, journal, state, metrics and files are scanned."""
    local = tmp_path / "local"
    cfg = enc_config(raft_box, tmp_path, keys, [{"type": "local", "path": str(local)}],
                     drill={"sentinels": ["secret/data/sentinel"]})
    env = {**os.environ, **AWS_ENV, "TMPDIR": str(tmp_path / "tmp"), "VAULTOPS_STATE_DIR": str(tmp_path / "state")}
    (tmp_path / "tmp").mkdir()
    vaultops = [sys.executable, "-m", "vaultops", "--debug", "--config", str(cfg), "backup"]
    outputs = [subprocess.run([*vaultops, "run"], env=env, capture_output=True, timeout=300)]
    proc = subprocess.Popen([*vaultops, "drill", "--identity", str(keys.ssh_file), "--format", "json"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: dict[int, bytes] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for pid in _descendants(proc.pid) | {proc.pid}:
                try:
                    seen[pid] = (Path(f"/proc/{pid}/cmdline").read_bytes() + b"\0"
                                 + Path(f"/proc/{pid}/environ").read_bytes())
                except OSError:
                    pass
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate(("\n".join(raft_box.shares_b64[:3]) + "\n").encode(), timeout=300)
    done.set()
    watcher.join()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert json.loads(out)["ok"]
    assert any(b"bao" in blob and b"server" in blob for blob in seen.values()), "no bao child was seen"
    needles = keys.needles()
    problems = [f"process {pid}: {name}" for pid, blob in seen.items() for name, n in needles.items() if n in blob]
    for label, blob in [("run out", outputs[0].stdout + outputs[0].stderr), ("drill out", out + err)]:
        problems += [f"{label}: {name}" for name, n in needles.items() if n in blob]
    for path in tmp_path.rglob("*"):
        if path.is_file() and path not in (keys.age_file, keys.ssh_file):
            data = path.read_bytes()
            problems += [f"{path}: {name}" for name, n in needles.items() if n in data]
    assert not problems, problems
    journal = (tmp_path / "journal.jsonl").read_text()
    assert "backup.drill" in journal and keys.age.recipient.text in journal

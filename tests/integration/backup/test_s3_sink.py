"""The S3 sink against a moto server: the sink contract, aborts, checksums, retention at scale."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from backup_helpers import s3_sink
from vaultops.cli import main
from vaultops.services.backup.manifest import backup_name
from vaultops.services.backup.runner import _run
from vaultops.services.backup.settings import BackupSettings
from vaultops.services.backup.sources import OpenSnapshot, SnapshotInfo
from vaultops.services.backup.verify import ArchiveKind, ArchiveVerifier
from vaultops.storage import get_sink
from vaultops.storage.s3 import S3Sink
from vaultops.testing.snapshots import make_archive
from vaultops.testing.storage import SinkContract

pytestmark = pytest.mark.integration


class TestS3Sink(SinkContract):
    @pytest.fixture
    def sink(self, moto, bucket):
        return get_sink(s3_sink(moto, bucket))


class BytesSource:
    kind, extension = "raft", "snap"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def verifier(self, *, on_state=None):
        return ArchiveVerifier(ArchiveKind.RAFT)

    @contextlib.contextmanager
    def open(self):
        chunks = (self.data[i:i + (1 << 20)] for i in range(0, len(self.data), 1 << 20))
        yield OpenSnapshot(SnapshotInfo(source_node="n1", cluster_id="cid"), chunks)

    def restore(self, body, *, force):
        raise NotImplementedError


def big_archive(mib: int = 12) -> bytes:
    import os
    return make_archive(entries=[(f"logical/k{i}", os.urandom(256 << 10)) for i in range(mib * 4)])


def test_large_stream_is_multipart_with_full_object_crc(moto, bucket) -> None:
    sink = get_sink(s3_sink(moto, bucket, part_size_mib=5))
    data = big_archive(12)
    result = _run(BackupSettings(cluster="c", source="raft", sinks=()), BytesSource(data), [sink],
                  emit=lambda *a, **k: None)
    assert result.ok
    head = moto.client().head_object(Bucket=bucket, Key=f"vault/{result.name}", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # 5 + 5 + rest MiB parts
    import base64
    import zlib
    assert head["ChecksumCRC32"] == base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "member"])
def test_rejected_snapshot_leaves_nothing_in_s3_or_on_disk(moto, bucket, tmp_path: Path, damage: str) -> None:
    good = big_archive(7)  # more than one part: a part is already uploaded when the damage is found
    data = {"flip": good[:-4000] + bytes([good[-4000] ^ 0x40]) + good[-3999:], "truncate": good[:-1000],
            "empty": b"", "member": make_archive(extra_members=[("evil", b"x")])}[damage]
    sinks = [get_sink(s3_sink(moto, bucket, part_size_mib=5)), get_sink({"type": "local", "path": str(tmp_path)})]
    result = _run(BackupSettings(cluster="c", source="raft", sinks=()), BytesSource(data), sinks,
                  emit=lambda *a, **k: None)
    assert not result.ok and not result.verified
    s3 = moto.client()
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_after_upload_is_caught(moto, bucket, monkeypatch) -> None:
    """S3 validates the full-object CRC itself; moto does not, so the sink re-reads it too."""
    sink = S3Sink(bucket=bucket, endpoint_url=moto.endpoint, region="us-east-1")
    up = sink.open_upload("x.snap")
    up.write(b"hello")
    up._crc ^= 1  # as if a byte had changed between our hash and the wire
    from vaultops.storage.base import SinkError
    with pytest.raises(SinkError, match="checksum"):
        up.commit()
    assert not sink.exists("x.snap")


def test_kms_settings_are_validated() -> None:
    from vaultops.errors import ConfigError
    with pytest.raises(ConfigError, match="aws:kms"):
        S3Sink(bucket="b", sse="AES256", kms_key_id="k", client=object())
    with pytest.raises(ConfigError, match="AES256 or aws:kms"):
        S3Sink(bucket="b", sse="rot13", client=object())


def test_sse_kms_upload(moto, bucket) -> None:
    import boto3
    kms = boto3.client("kms", endpoint_url=moto.endpoint, region_name="us-east-1")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    sink = get_sink(s3_sink(moto, bucket, sse="aws:kms", kms_key_id=key))
    up = sink.open_upload("k.snap")
    up.write(b"data")
    up.commit()
    head = moto.client().head_object(Bucket=bucket, Key="vault/k.snap")
    assert head["ServerSideEncryption"] == "aws:kms" and key in head["SSEKMSKeyId"]


def test_prune_over_more_than_a_thousand_objects(moto, bucket, tmp_path, monkeypatch, capsys) -> None:
    s3 = moto.client()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    names = [backup_name("sandbox-test", now - timedelta(hours=3 * i), "snap") for i in range(560)]
    for i, name in enumerate(names):  # 1,120 objects: the listing needs two pages
        s3.put_object(Bucket=bucket, Key=f"vault/{name}", Body=b"x")
        s3.put_object(Bucket=bucket, Key=f"vault/{name}.manifest.json",
                      Body=manifest_for(name, now - timedelta(hours=3 * i)))
    cfg = tmp_path / "vaultops.yaml"
    cfg.write_text(json.dumps({
        "cluster": {"name": "sandbox-test"}, "nodes": [{"name": "n", "address": "http://127.0.0.1:1"}],
        "journal": {"path": str(tmp_path / "j.jsonl")},
        "backup": {"sinks": [s3_sink(moto, bucket)], "state_file": str(tmp_path / "state.json"),
                   "lock_file": str(tmp_path / "lock"),
                   "retention": {"keep_last": 8, "daily": 14, "weekly": 8, "monthly": 6, "min_keep": 3}}}))
    assert main(["--config", str(cfg), "backup", "prune", "--dry-run", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)[0]["plan"]
    assert len(plan) == 560
    keep = [p["name"] for p in plan if p["action"] == "keep"]
    assert keep[:8] == names[:8]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1000  # nothing deleted by the dry run
    assert main(["--config", str(cfg), "backup", "prune", "--format", "json"]) == 0
    left = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]
    assert sorted(k[len("vault/"):] for k in left if not k.endswith(".json")) == sorted(keep)
    assert len(left) == 2 * len(keep)


def manifest_for(name: str, taken: datetime) -> bytes:
    """Prune reads the newest backup's manifest: it must agree with the name."""
    from vaultops.services.backup.manifest import Manifest
    when = taken.isoformat(timespec="milliseconds")
    return Manifest(name=name, kind="raft", cluster_name="sandbox-test", cluster_id="c", server_version=None,
                    source_node=None, size=1, sha256="0" * 64, started_at=when, finished_at=when).to_json()


def test_aws_iam_login_body_replays_against_sts(moto) -> None:
    """What Vault's aws auth does with the login body: replay it to STS (here moto's)."""
    import base64

    import urllib3

    from vaultops.vault.auth_methods import aws_iam_login_body

    body = aws_iam_login_body(role="backup", region="us-east-1", sts_endpoint=moto.endpoint)
    url = base64.b64decode(body["iam_request_url"]).decode()
    headers = {k: v[0] for k, v in json.loads(base64.b64decode(body["iam_request_headers"])).items()}
    resp = urllib3.PoolManager().request(body["iam_http_request_method"], url, headers=headers,
                                         body=base64.b64decode(body["iam_request_body"]))
    assert resp.status == 200 and b"<Arn>arn:aws:sts::123456789012:user/moto</Arn>" in resp.data


def test_odd_sized_writes_split_across_parts_keep_bytes_and_checksum(moto, bucket) -> None:
    import base64
    import os
    import zlib

    sink = get_sink(s3_sink(moto, bucket, part_size_mib=5))
    data = os.urandom((11 << 20) + 12345)
    up = sink.open_upload("odd.bin")
    step = 700 * 1024 + 3  # never lines up with a part boundary
    for i in range(0, len(data), step):
        up.write(bytearray(data[i:i + step]))
    result = up.commit()
    assert result.checksum == "crc32:" + base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert sink.get_bytes("odd.bin") == data
    head = moto.client().head_object(Bucket=bucket, Key="vault/odd.bin")
    assert head["ETag"].strip('"').endswith("-3")

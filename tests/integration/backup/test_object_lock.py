"""S3 Object Lock per object: journal anchors (and backups) that the writer cannot delete or overwrite.

moto stands in for S3 (it enforces Object Lock retention on versioned deletes).
"""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

import pytest

from backup_helpers import MotoServer
from vaultops.cli import main
from vaultops.journal import Journal

pytestmark = pytest.mark.integration


@pytest.fixture
def locked_bucket(moto: MotoServer) -> str:
    name = f"lock-{secrets.token_hex(4)}"
    moto.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def _config(tmp_path: Path, moto: MotoServer, bucket: str) -> Path:
    cfg = tmp_path / "vaultops.yaml"
    cfg.write_text(textwrap.dedent(f"""
        cluster: {{name: prod}}
        nodes: [{{name: n1, address: "http://127.0.0.1:9"}}]
        journal:
          path: {tmp_path}/journal.jsonl
          anchor:
            kv: false
            sinks: [{{type: s3, bucket: {bucket}, endpoint_url: "{moto.endpoint}", object_lock_days: 1,
                      retry_seconds: 1}}]
    """))
    return cfg


def test_anchors_are_locked_objects(tmp_path: Path, moto: MotoServer, locked_bucket: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from botocore.exceptions import ClientError

    cfg = _config(tmp_path, moto, locked_bucket)
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("test.event")
    assert main(["--config", str(cfg), "journal", "anchor"]) == 0
    s3 = moto.client()
    versions = s3.list_object_versions(Bucket=locked_bucket)["Versions"]
    assert len(versions) == 1
    key, version = versions[0]["Key"], versions[0]["VersionId"]
    head = s3.head_object(Bucket=locked_bucket, Key=key, VersionId=version)
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"]
    with pytest.raises(ClientError) as err:   # the anchor's writer cannot take it back
        s3.delete_object(Bucket=locked_bucket, Key=key, VersionId=version)
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    assert main(["--config", str(cfg), "journal", "verify"]) == 0


def test_a_bad_lock_mode_is_one_line(tmp_path: Path, moto: MotoServer, locked_bucket: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, moto, locked_bucket)
    cfg.write_text(cfg.read_text().replace("object_lock_days: 1,", "object_lock_days: 1, object_lock_mode: SOFT,"))
    Journal(tmp_path / "journal.jsonl").append("test.event")
    assert main(["--config", str(cfg), "journal", "anchor"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "object_lock_mode" in err

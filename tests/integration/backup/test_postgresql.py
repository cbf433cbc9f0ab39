"""pg_dump backups of an OpenBao Active-Standby pair on PostgreSQL (a real private PostgreSQL)."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from backup_helpers import active_client, backup_config, write_retry
from vaultops.cli import main
from vaultops.services.sandbox import postgres
from vaultops.testing.sandbox import start_sandbox

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_box(tmp_path_factory):
    box = start_sandbox(tmp_path_factory.mktemp("pgpair"), name="pgpair", nodes=2, storage="postgresql")
    try:
        box.wait_active()
        client = active_client(box)
        client.write("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        write_retry(client, "secret/data/pg-sentinel", {"data": {"value": "in-postgres"}})
        yield box
    finally:
        box.stop()


def psql(box, sql: str, db: str = postgres.DB) -> str:
    rec = box.record
    sock = f"{rec.pg_dir}/sock"
    out = subprocess.run(postgres._as_owner([str(postgres.bindir() / "psql"), "-h", sock, "-p", str(rec.pg_port),
                                             "-U", "postgres", "-d", db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def pg_settings(box, **extra):
    port = box.record.pg_port
    return {"dsn": f"host=127.0.0.1 port={port} dbname={postgres.DB} user={postgres.ROLE}", **extra}


def test_pg_dump_backup_verify_inspect_restore(pg_box, tmp_path, capsys) -> None:
    local = tmp_path / "local"
    cfg = backup_config(pg_box, tmp_path, {"sinks": [{"type": "local", "path": str(local)}],
                                           "postgresql": pg_settings(pg_box)})
    assert yaml.safe_load(cfg.read_text())["cluster"]["storage"] == "postgresql"
    assert main(["--config", str(cfg), "backup", "run", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    manifest = result["manifest"]
    assert manifest["kind"] == "postgresql" and result["name"].endswith(".pgdump")
    assert manifest["cluster_id"] and manifest["source_node"].startswith("pg_dump 127.0.0.1:")
    assert main(["--config", str(cfg), "backup", "verify", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]
    assert main(["--config", str(cfg), "backup", "inspect", "--format", "json"]) == 0
    entries = [r["entry"] for r in json.loads(capsys.readouterr().out)["prefixes"]]
    assert "TABLE DATA public openbao_kv_store" in entries
    assert "TABLE DATA public openbao_ha_locks" not in entries  # lock rows excluded
    assert "TABLE public openbao_ha_locks" in entries            # but the table itself is there

    # Restore into a fresh database: the same rows come back.
    psql(pg_box, f"CREATE DATABASE restored OWNER {postgres.ROLE}", db="postgres")
    restore_cfg = backup_config(pg_box, tmp_path / "r", {
        "sinks": [{"type": "local", "path": str(local)}],
        "postgresql": pg_settings(pg_box, restore_dsn=f"host=127.0.0.1 port={pg_box.record.pg_port} "
                                                      f"dbname=restored user={postgres.ROLE}")})
    assert main(["--config", str(restore_cfg), "backup", "restore", result["name"], "--yes"]) == 0
    digest = "SELECT count(*) || ':' || md5(string_agg(path || key || encode(value, 'hex'), ',' ORDER BY path, key)) " \
             "FROM openbao_kv_store"
    restored = psql(pg_box, digest, db="restored")
    assert restored.split(":")[0] != "0"
    assert psql(pg_box, "SELECT count(*) FROM openbao_ha_locks", db="restored") == "0"
    # rows written after the dump are the only difference
    write_retry(active_client(pg_box), "secret/data/after", {"data": {"value": "x"}})
    assert psql(pg_box, digest) != restored


def test_damaged_dump_is_rejected(pg_box, tmp_path, capsys) -> None:
    local = tmp_path / "local"
    cfg = backup_config(pg_box, tmp_path, {"sinks": [{"type": "local", "path": str(local)}],
                                           "postgresql": pg_settings(pg_box)})
    assert main(["--config", str(cfg), "backup", "run"]) == 0
    dump = next(p for p in local.iterdir() if p.suffix == ".pgdump")
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    capsys.readouterr()
    assert main(["--config", str(cfg), "backup", "verify", "--format", "json"]) == 6
    assert "pg_restore could not read" in json.loads(capsys.readouterr().out)["detail"]


def test_password_in_dsn_is_refused(pg_box, tmp_path, capsys) -> None:
    cfg = backup_config(pg_box, tmp_path, {"sinks": [{"type": "local", "path": str(tmp_path / "l")}],
                                           "postgresql": {"dsn": "postgres://u:secret@127.0.0.1/db"}})
    assert main(["--config", str(cfg), "backup", "run"]) == 2
    err = capsys.readouterr().err
    assert "passfile" in err and "secret" not in err

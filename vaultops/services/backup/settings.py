"""The `backup:` section of vaultops.yaml.

    backup:
      source: raft                  # raft | consul | postgresql (default: from cluster.storage)
      sinks:                        # one or more; a run succeeds only if every sink succeeds
        - {type: local, path: /var/backups/vault}
        - type: s3
          bucket: my-vault-backups
          prefix: prod
          region: eu-west-1
          endpoint_url: https://s3.example.com   # optional (MinIO, moto, ...)
          sse: aws:kms                           # AES256 | aws:kms
          kms_key_id: alias/vault-backups        # only with aws:kms
          storage_class: STANDARD_IA
          part_size_mib: 8                       # multipart part size, >= 5
      auth:                         # how an unattended run logs in (default: the usual token lookup)
        method: approle             # approle | aws | token
        mount: approle
        role_id: 3f1c...            # or role_id_file: /etc/vaultops/role-id
        secret_id_file: /etc/vaultops/secret-id
        # method: aws -> role: vault-backup, mount: aws, region: us-east-1, header_value: vault.example.com
      retention: {keep_last: 24, hourly: 0, daily: 7, weekly: 4, monthly: 12, min_keep: 3}
      prune_after_run: true
      metrics_file: /var/lib/node_exporter/textfile/vaultops_backup.prom
      lock_file: /run/vaultops/backup.lock      # default: <state dir>/backup-<cluster>.lock
      state_file: /var/lib/vaultops/backup-last-run.json   # default: <state dir>/...
      consul: {address: https://consul:8501, token_file: /etc/vaultops/consul-token, ca_cert: ..., stale: false}
      postgresql:
        dsn: "host=db port=5432 dbname=openbao user=backup"   # no password here:
        passfile: /etc/vaultops/pgpass                         # libpq passfile (0600)
        pg_dump: /usr/bin/pg_dump
        pg_restore: /usr/bin/pg_restore
        ha_table: openbao_ha_locks
      drill:
        sentinels: [secret/data/backup-sentinel]  # paths read after the restore
        version: 2.7.2                             # default: the version in the manifest

Relative paths are relative to vaultops.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaultops.config import Config
from vaultops.errors import ConfigError
from vaultops.services.backup.retention import RetentionPolicy

KEYS = ("source", "sinks", "auth", "retention", "prune_after_run", "metrics_file", "lock_file", "state_file",
        "consul", "postgresql", "drill")
SOURCES = ("raft", "consul", "postgresql")


@dataclass(frozen=True)
class BackupSettings:
    cluster: str
    source: str
    sinks: tuple[dict[str, Any], ...]
    auth: dict[str, Any] = field(default_factory=dict)
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    retention_configured: bool = False
    prune_after_run: bool = False
    metrics_file: Path | None = None
    lock_file: Path = Path("backup.lock")
    state_file: Path = Path("backup-last-run.json")
    consul: dict[str, Any] = field(default_factory=dict)
    postgresql: dict[str, Any] = field(default_factory=dict)
    drill: dict[str, Any] = field(default_factory=dict)


def load_settings(cfg: Config) -> BackupSettings:
    raw = cfg.section("backup")
    unknown = set(raw) - set(KEYS)
    if unknown:
        raise ConfigError(f"backup: unknown key {sorted(unknown)[0]!r}", hint=f"known keys: {', '.join(KEYS)}")
    source = raw.get("source") or {"postgresql": "postgresql", "consul": "consul"}.get(cfg.storage, "raft")
    if source not in SOURCES:
        raise ConfigError(f"backup.source is {source!r}", hint=f"use one of {', '.join(SOURCES)}")
    sinks = raw.get("sinks") or []
    if not isinstance(sinks, list) or not all(isinstance(s, dict) for s in sinks):
        raise ConfigError("backup.sinks must be a list of mappings", hint="e.g. - {type: local, path: /backups}")
    state = cfg.state_dir
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cfg.cluster_name)
    return BackupSettings(
        cluster=safe, source=source, sinks=tuple(sinks), auth=_mapping(raw, "auth"),
        retention=RetentionPolicy.from_settings(_mapping(raw, "retention")),
        retention_configured=bool(raw.get("retention")),
        prune_after_run=bool(raw.get("prune_after_run")),
        metrics_file=cfg.resolve_path(raw["metrics_file"]) if raw.get("metrics_file") else None,
        lock_file=cfg.resolve_path(raw["lock_file"]) if raw.get("lock_file") else state / f"backup-{safe}.lock",
        state_file=(cfg.resolve_path(raw["state_file"]) if raw.get("state_file")
                    else state / f"backup-{safe}-last-run.json"),
        consul=_mapping(raw, "consul"), postgresql=_mapping(raw, "postgresql"), drill=_mapping(raw, "drill"),
    )


def _mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"backup.{key} must be a mapping", hint="see 'vaultops backup --help'")
    return value


def require_sinks(settings: BackupSettings) -> None:
    if not settings.sinks:
        raise ConfigError("backup.sinks is empty: nowhere to publish",
                          hint="add e.g. 'backup: {sinks: [{type: local, path: /var/backups/vault}]}'")

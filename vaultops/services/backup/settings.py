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
                                    # also asked by `vaultops status` and the upgrade preflight (leader, peers, token)
      postgresql:
        dsn: "host=db port=5432 dbname=openbao user=backup"   # no password here:
        passfile: /etc/vaultops/pgpass                         # libpq passfile (0600)
        pg_dump: /usr/bin/pg_dump
        pg_restore: /usr/bin/pg_restore
        ha_table: openbao_ha_locks
      drill:
        sentinels: [secret/data/backup-sentinel]  # paths read after the restore
        version: 2.7.2                             # default: the version in the manifest
      encryption:                   # client-side, before a byte leaves the host (age v1 format)
        recipients:                 # public keys only; any ONE identity among them opens a backup
          - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p   # age-keygen -y
          - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... ops@example               # ssh keys work too
        recipients_file: /etc/vaultops/backup-recipients.txt   # optional, one per line, '#' comments

Relative paths are relative to vaultops.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from msgspec import Meta

from vaultops.config import Config
from vaultops.errors import ConfigError
from vaultops.files.model import Model

if TYPE_CHECKING:
    from vaultops.services.backup.retention import RetentionPolicy

SOURCES = ("raft", "consul", "postgresql")
_HINT = "`vaultops config example backup` prints the backup: section with every key"
Count = Annotated[int, Meta(ge=0)]


class LocalSinkSettings(Model, tag_field="type", tag="local"):
    """type: local - a directory on this machine (or a mounted share)."""

    path: Annotated[str, Meta(min_length=1, description="directory the backups go to (created 0700)")]


class S3SinkSettings(Model, tag_field="type", tag="s3"):
    """type: s3 - an S3 bucket (AWS or S3-compatible); keys validated again by vaultops.storage.s3."""

    bucket: Annotated[str, Meta(min_length=1, description="S3 bucket")]
    prefix: Annotated[str, Meta(description="key prefix inside the bucket")] = ""
    region: Annotated[str | None, Meta(description="AWS region")] = None
    endpoint_url: Annotated[str | None, Meta(description="S3-compatible endpoint (MinIO, moto, ...)")] = None
    sse: Annotated[Literal["AES256", "aws:kms"] | None, Meta(description="server-side encryption")] = None
    kms_key_id: Annotated[str | None, Meta(description="KMS key for sse: aws:kms")] = None
    storage_class: Annotated[str | None, Meta(description="S3 storage class, e.g. STANDARD_IA")] = None
    part_size_mib: Annotated[int, Meta(ge=5, le=5120, description="multipart part size in MiB")] = 8
    concurrency: Annotated[int, Meta(ge=1, le=64, description="parts uploaded at once")] = 2
    retry_seconds: Annotated[float | None, Meta(
        description="how long S3 calls are retried through an outage before the run fails")] = None
    abort_stale_after_hours: Annotated[float | None, Meta(
        description="open multipart uploads older than this are aborted and reported")] = None
    object_lock_days: Annotated[int | None, Meta(description=(
        "lock every object written for this many days, >= 1 (S3 Object Lock; the bucket must have it enabled)"))] \
        = None
    object_lock_mode: Annotated[Literal["GOVERNANCE", "COMPLIANCE"], Meta(
        description="Object Lock mode: COMPLIANCE cannot be lifted by anyone, GOVERNANCE by a privileged role")] = \
        "GOVERNANCE"


class LoginSettings(Model):
    method: Annotated[Literal["token", "approle", "aws"], Meta(description="how an unattended run logs in")] = "token"
    mount: Annotated[str | None, Meta(description="auth mount (default: the method's name)")] = None
    role_id: Annotated[str | None, Meta(description="approle: role id")] = None
    role_id_file: Annotated[str | None, Meta(description="approle: file holding the role id")] = None
    secret_id_file: Annotated[str | None, Meta(description="approle: file holding the secret id")] = None
    role: Annotated[str | None, Meta(description="aws: the Vault role bound to this IAM principal")] = None
    region: Annotated[str | None, Meta(description="aws: STS region")] = None
    header_value: Annotated[str | None, Meta(description="aws: X-Vault-AWS-IAM-Server-ID header value")] = None
    sts_endpoint: Annotated[str | None, Meta(description="aws: STS endpoint URL")] = None


class RetentionSettings(Model):
    keep_last: Annotated[Count, Meta(description="keep the newest N backups")] = 0
    hourly: Annotated[Count, Meta(description="keep the newest backup of each of the last N hours")] = 0
    daily: Annotated[Count, Meta(description="... of each of the last N days")] = 0
    weekly: Annotated[Count, Meta(description="... of each of the last N ISO weeks")] = 0
    monthly: Annotated[Count, Meta(description="... of each of the last N months")] = 0
    min_keep: Annotated[int, Meta(ge=1, description="the newest N verified backups are never deleted")] = 1


class ConsulSettings(Model):
    address: Annotated[str | None, Meta(description="Consul HTTP(S) address")] = None
    token_file: Annotated[str | None, Meta(description="file holding the Consul ACL token (0600)")] = None
    ca_cert: Annotated[str | None, Meta(description="CA bundle for Consul's certificate")] = None
    stale: Annotated[bool, Meta(description="allow a snapshot from a non-leader server")] = False


class PostgresqlSettings(Model):
    dsn: Annotated[str | None, Meta(description="libpq DSN without a password")] = None
    restore_dsn: Annotated[str | None, Meta(description="DSN a drill/restore writes to (default: dsn)")] = None
    passfile: Annotated[str | None, Meta(description="libpq passfile (0600)")] = None
    pg_dump: Annotated[str | None, Meta(description="pg_dump binary (default: from PATH)")] = None
    pg_restore: Annotated[str | None, Meta(description="pg_restore binary (default: from PATH)")] = None
    ha_table: Annotated[str | None, Meta(description="HA lock table left out of dumps")] = None


class DrillSettings(Model):
    sentinels: Annotated[list[str], Meta(description="paths read after the restore to prove it")] = []
    version: Annotated[str | None, Meta(description="OpenBao version for the drill (default: the manifest's)")] = None
    auth: Annotated[LoginSettings | None, Meta(description="how the drill logs in to the restored cluster")] = None


class EncryptionSettings(Model):
    recipients: Annotated[list[str], Meta(description=(
        "public keys every backup is encrypted to: age1… (age-keygen), ssh-ed25519 … or ssh-rsa … "
        "(any one matching identity opens it)"))] = []
    recipients_file: Annotated[str | None, Meta(description="file of more recipients, one per line")] = None


class BackupSection(Model):
    source: Annotated[Literal["raft", "consul", "postgresql"] | None, Meta(
        description="what is backed up (default: from cluster.storage)")] = None
    sinks: Annotated[list[LocalSinkSettings | S3SinkSettings], Meta(
        description="where backups are published; a run succeeds only if every sink succeeds")] = []
    auth: Annotated[LoginSettings | None, Meta(description="how an unattended run logs in")] = None
    retention: Annotated[RetentionSettings | None, Meta(description="what prune keeps")] = None
    prune_after_run: Annotated[bool, Meta(description="prune every sink after a successful run")] = False
    metrics_file: Annotated[str | None, Meta(description="Prometheus textfile written after each run")] = None
    lock_file: Annotated[str | None, Meta(description="default: <state dir>/backup-<cluster>.lock")] = None
    state_file: Annotated[str | None, Meta(description="default: <state dir>/backup-<cluster>-last-run.json")] = None
    consul: Annotated[ConsulSettings | None, Meta(description="source: consul")] = None
    postgresql: Annotated[PostgresqlSettings | None, Meta(description="source: postgresql")] = None
    drill: Annotated[DrillSettings | None, Meta(description="restore drills")] = None
    encryption: Annotated[EncryptionSettings | None, Meta(
        description="encrypt backups on this host before they are uploaded (age format)")] = None


@dataclass(frozen=True)
class BackupSettings:
    cluster: str
    source: str
    sinks: tuple[dict[str, Any], ...]
    auth: dict[str, Any] = field(default_factory=dict)
    retention: RetentionPolicy = field(default_factory=lambda: _policy({}))
    retention_configured: bool = False
    prune_after_run: bool = False
    metrics_file: Path | None = None
    lock_file: Path = Path("backup.lock")
    state_file: Path = Path("backup-last-run.json")
    consul: dict[str, Any] = field(default_factory=dict)
    postgresql: dict[str, Any] = field(default_factory=dict)
    drill: dict[str, Any] = field(default_factory=dict)
    encryption: dict[str, Any] = field(default_factory=dict)   # recipients_file already resolved

    @property
    def encrypted(self) -> bool:
        return bool(self.encryption)


def load_settings(cfg: Config) -> BackupSettings:
    from vaultops.files.loader import validate

    raw = cfg.section("backup")
    section = validate(raw, BackupSection, source=cfg.source, prefix="backup", hint=_HINT)
    source = section.source or {"postgresql": "postgresql", "consul": "consul"}.get(cfg.storage, "raft")
    state = cfg.state_dir
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cfg.cluster_name)
    return BackupSettings(
        cluster=safe, source=source, sinks=tuple(raw.get("sinks") or ()), auth=_mapping(raw, "auth"),
        retention=_policy(_mapping(raw, "retention")),
        retention_configured=bool(raw.get("retention")),
        prune_after_run=section.prune_after_run,
        metrics_file=cfg.resolve_path(section.metrics_file) if section.metrics_file else None,
        lock_file=cfg.resolve_path(section.lock_file) if section.lock_file else state / f"backup-{safe}.lock",
        state_file=(cfg.resolve_path(section.state_file) if section.state_file
                    else state / f"backup-{safe}-last-run.json"),
        consul=_mapping(raw, "consul"), postgresql=_mapping(raw, "postgresql"), drill=_mapping(raw, "drill"),
        encryption=_encryption(cfg, section.encryption),
    )


def _encryption(cfg: Config, section: EncryptionSettings | None) -> dict[str, Any]:
    if section is None:
        return {}
    if not section.recipients and not section.recipients_file:
        raise ConfigError("backup.encryption names no recipient",
                          hint="add backup.encryption.recipients (age1… or ssh public keys), or remove the section")
    return {"recipients": list(section.recipients),
            "recipients_file": str(cfg.resolve_path(section.recipients_file)) if section.recipients_file else None}


def _mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    return dict(raw.get(key) or {})


def _policy(raw: dict[str, Any]) -> RetentionPolicy:
    # Imported here: the schema above is loaded with every vaultops.yaml, retention only by backups.
    from vaultops.services.backup.retention import RetentionPolicy

    return RetentionPolicy.from_settings(raw)


def require_sinks(settings: BackupSettings) -> None:
    if not settings.sinks:
        raise ConfigError("backup.sinks is empty: nowhere to publish",
                          hint="add e.g. 'backup: {sinks: [{type: local, path: /var/backups/vault}]}'")

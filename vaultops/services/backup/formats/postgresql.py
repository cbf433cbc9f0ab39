"""PostgreSQL storage (Active-Standby pairs): `pg_dump -Fc` as the snapshot source.

    pg_dump -Fc --no-password --exclude-table-data=<ha_table> --dbname=<dsn>     -> stream
    verification: the stream is piped, as it arrives, into `pg_restore -f /dev/null`, which
                  must read and decompress the whole archive (every TOC entry and data block)
    restore:      pg_restore --clean --if-exists --no-owner --single-transaction -d <restore_dsn>

The DSN must not hold a password: use a libpq passfile (`passfile:`), passed as PGPASSFILE.
Rows are barrier-encrypted by OpenBao; a dump is as sensitive as a Raft snapshot. The HA lock
table's rows are left out: a restored database must not carry a stale active-node lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from vaultops import process
from vaultops.errors import BackupError, ConfigError, VerificationError
from vaultops.services.backup.formats.base import Contents, Format
from vaultops.services.backup.manifest import Manifest
from vaultops.services.backup.sources import CHUNK, OpenSnapshot, SnapshotInfo, Source, vault_info
from vaultops.services.backup.stored import downloaded
from vaultops.services.backup.verify import Verifier, VerifyReport
from vaultops.storage.base import Sink
from vaultops.vault import NodeClient

if TYPE_CHECKING:
    from collections.abc import Sequence

    from vaultops.services.backup.scratch import ScratchCopy
    from vaultops.services.ceremony.shares import Share

MAGIC = b"PGDMP"
# What libpq may read from our environment besides the DSN: never PGPASSWORD (a passfile instead).
PG_ENV = ("PGPASSFILE", "PGSERVICEFILE", "PGSYSCONFDIR", "PGCONNECT_TIMEOUT", "PGSSLMODE", "PGSSLROOTCERT",
          "PGSSLCERT", "PGSSLKEY", "PGSSLCRL", "PGSSLCRLDIR", "PGSSLSNI", "PGSSLCERTMODE",
          "PGSSLMINPROTOCOLVERSION", "PGSSLMAXPROTOCOLVERSION")
DAMAGED = "the dump is damaged or not a pg_dump custom-format archive; take a new one"


def _tool(settings: dict[str, Any], name: str) -> str:
    path = settings.get(name) or shutil.which(name)
    if not path:
        raise ConfigError(f"{name} not found", hint=f"install the PostgreSQL client or set backup.postgresql.{name}")
    return str(path)


def _env(settings: dict[str, Any]) -> dict[str, str]:
    """Variables set for pg_dump/pg_restore besides PG_ENV: the configured passfile."""
    if settings.get("passfile"):
        return {"PGPASSFILE": str(Path(settings["passfile"]).expanduser())}
    return {}


def _run(cmd: list[str], *, timeout: float, settings: dict[str, Any], stdin: IO[bytes] | None = None,
         keep_stdout: bool = False) -> process.Result:
    try:
        return process.run(cmd, stdin=stdin, timeout=timeout, env=PG_ENV, set_env=_env(settings),
                           keep_stdout=keep_stdout, label=os.path.basename(cmd[0]))
    except process.ProcessError as exc:
        raise BackupError(exc.message, hint="check the PostgreSQL client tools and backup.postgresql") from None


def _check_dsn(dsn: Any, key: str) -> str:
    if not isinstance(dsn, str) or not dsn:
        raise ConfigError(f"backup.postgresql.{key} is missing",
                          hint="e.g. 'host=db port=5432 dbname=openbao user=backup'")
    if "password" in dsn.lower() or ("://" in dsn and "@" in dsn.split("://", 1)[1].split("/", 1)[0]
                                     and ":" in dsn.split("://", 1)[1].split("@", 1)[0]):
        raise ConfigError(f"backup.postgresql.{key} contains a password",
                          hint="remove it and use a libpq passfile: backup.postgresql.passfile")
    return dsn


class PgDumpVerifier(Verifier):
    kind = "postgresql"

    def __init__(self, *, pg_restore: str, env: dict[str, str]) -> None:
        self._hash = hashlib.sha256()
        self._size = 0
        self._head = b""
        self._err = tempfile.TemporaryFile()
        self._proc = process.popen([pg_restore, "-f", os.devnull], stdin=process.PIPE, stderr=self._err,
                                   env=PG_ENV, set_env=env)
        self._broken = False

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> PgDumpVerifier:
        return cls(pg_restore=_tool(settings, "pg_restore"), env=_env(settings))

    def feed(self, chunk: bytes | bytearray) -> None:
        self._hash.update(chunk)
        self._size += len(chunk)
        if len(self._head) < 8:
            self._head = (self._head + chunk)[:8]
            if self._head[: len(MAGIC)] != MAGIC[: len(self._head)]:
                self._kill()
                raise VerificationError("not a pg_dump custom-format archive (no PGDMP header)", hint=DAMAGED)
        if self._broken:
            return
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(chunk)
        except BrokenPipeError:
            self._broken = True  # pg_restore gave up; finish() reports why

    def finish(self) -> VerifyReport:
        if self._size == 0:
            self._kill()
            raise VerificationError("the dump is empty (0 bytes)", hint="check pg_dump's error output")
        with contextlib.suppress(BrokenPipeError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        rc = self._proc.wait()
        self._err.seek(0)
        err = self._err.read().decode("utf-8", "replace").strip().splitlines()
        self._err.close()
        if rc != 0 or self._broken:
            raise VerificationError(f"pg_restore could not read the dump: {(err or ['exit %d' % rc])[-1][:200]}",
                                    hint=DAMAGED)
        return VerifyReport(kind=self.kind, size=self._size, sha256=self._hash.hexdigest(),
                            members={}, meta={"format": "pg_dump custom", "version": self._version()})

    def abort(self) -> None:
        if self._proc.poll() is None or not self._err.closed:
            self._kill()

    def _version(self) -> str:
        head = self._head
        return ".".join(str(b) for b in head[5:8]) if len(head) >= 8 else ""

    def _kill(self) -> None:
        with contextlib.suppress(OSError):
            self._proc.kill()
        with contextlib.suppress(OSError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        self._proc.wait()
        self._err.close()


class PgDumpSource:
    kind = "postgresql"
    extension = "pgdump"

    def __init__(self, settings: dict[str, Any], *, clients: list[NodeClient]) -> None:
        self.settings = settings
        self.dsn = _check_dsn(settings.get("dsn"), "dsn")
        self.ha_table = str(settings.get("ha_table") or "openbao_ha_locks")
        self.clients = clients

    @classmethod
    def from_settings(cls, settings: dict[str, Any], *, clients: list[NodeClient]) -> PgDumpSource:
        return cls(settings, clients=clients)

    def verifier(self, *, on_state: Callable[[bytes], None] | None = None) -> Verifier:
        return PgDumpVerifier.from_settings(self.settings)

    @contextlib.contextmanager
    def open(self) -> Iterator[OpenSnapshot]:
        cmd = [_tool(self.settings, "pg_dump"), "-Fc", "--no-password", f"--exclude-table-data={self.ha_table}",
               f"--dbname={self.dsn}"]
        err = tempfile.TemporaryFile()
        proc = process.popen(cmd, stdout=process.PIPE, stderr=err, env=PG_ENV, set_env=_env(self.settings))
        base = vault_info(self.clients)
        info = SnapshotInfo(source_node=f"pg_dump {_where(self.dsn)}", cluster_id=base.cluster_id,
                            cluster_name=base.cluster_name, server_version=base.server_version)
        try:
            yield OpenSnapshot(info, self._chunks(proc, err))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            err.close()

    def _chunks(self, proc: process.Popen[bytes], err: IO[bytes]) -> Iterator[bytes]:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(CHUNK):
            yield chunk
        if proc.wait() != 0:
            err.seek(0)
            lines = err.read().decode("utf-8", "replace").strip().splitlines() or [f"exit {proc.returncode}"]
            raise BackupError(f"pg_dump failed: {lines[-1][:200]}",
                              hint="check backup.postgresql.dsn, the passfile and the role's SELECT rights")

    def restore(self, body: IO[bytes], *, force: bool) -> str:
        dsn = _check_dsn(self.settings.get("restore_dsn") or self.dsn, "restore_dsn")
        cmd = [_tool(self.settings, "pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
               "--exit-on-error", "--no-password", f"--dbname={dsn}"]
        res = _run(cmd, stdin=body, timeout=3600, settings=self.settings)
        if not res.ok:
            lines = res.stderr.strip().splitlines() or [f"exit {res.exit_code}"]
            raise BackupError(f"pg_restore failed: {lines[-1][:200]}",
                              hint="stop the OpenBao nodes, check the target database and its owner, retry")
        return f"pg_restore {_where(dsn)}"


def _where(dsn: str) -> str:
    """host:port/db from a DSN, for logs (never credentials)."""
    if "://" in dsn:
        rest = dsn.split("://", 1)[1].split("?", 1)[0]
        return rest.split("@", 1)[-1]
    parts = dict(p.split("=", 1) for p in dsn.split() if "=" in p)
    return f"{parts.get('host', 'localhost')}:{parts.get('port', '5432')}/{parts.get('dbname', '')}"


class PostgresqlFormat(Format):
    name = "postgresql"
    extension = "pgdump"
    restores_into_sandbox = True
    sandbox_storage = "postgresql"   # the drill's copy: an OpenBao node on a private PostgreSQL

    @property
    def _pg(self) -> dict[str, Any]:
        return self.settings.postgresql if self.settings else {}

    def verifier(self, *, on_state: Callable[[bytes], None] | None = None) -> Verifier:
        return PgDumpVerifier.from_settings(self._pg)

    def source(self, clients: list[NodeClient]) -> Source:
        return PgDumpSource.from_settings(self._pg, clients=clients)

    def drill_prerequisites(self) -> None:
        from vaultops.services.sandbox import postgres

        postgres.bindir()   # the copy's private PostgreSQL: a SandboxError now, not after the fetch

    def restore_copy(self, copy: ScratchCopy, path: Path, *, shares: Sequence[Share], threshold: int | None) -> None:
        copy.restore_dump(path, shares=shares, error=BackupError, tools=self._pg)

    def inspect(self, sink: Sink, name: str, manifest: Manifest, *, depth: int = 1) -> Contents:
        """TOC entries (type and name) of a stored dump, via `pg_restore --list` on a verified copy."""
        pg = self._pg
        with downloaded(sink, name, manifest, self.verifier()) as path:
            out = _run([_tool(pg, "pg_restore"), "--list", str(path)], timeout=600, settings=pg, keep_stdout=True)
        if not out.ok:
            raise VerificationError(f"pg_restore --list failed: {out.stderr.strip()[:200]}", hint=DAMAGED)
        rows = []
        for line in out.output.decode("utf-8", "replace").splitlines():
            if not line.strip() or line.startswith(";"):
                continue
            fields = line.split()
            # "<id>; <oid> <oid> TABLE DATA public openbao_kv_store openbao"
            rows.append({"entry": " ".join(fields[3:-1]) if len(fields) > 4 else line.strip()})
        return Contents({}, rows, 0)

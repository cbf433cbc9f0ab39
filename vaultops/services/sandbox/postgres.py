"""A private PostgreSQL for the Active-Standby sandbox pair.

initdb refuses to run as root, so as root the cluster runs as the
`postgres` user in a folder under /tmp that user can reach (root's home is
not traversable). Authentication is `trust` on 127.0.0.1 only: no password
exists to leak.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
import time
from pathlib import Path

from vaultops import process
from vaultops.errors import SandboxError

DB = "openbao"
KV_TABLE, HA_TABLE = "openbao_kv_store", "openbao_ha_locks"   # the sandbox's storage "postgresql" tables
PREFIX = "vaultops-pg-"
ROLE = "openbao"


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise SandboxError("PostgreSQL server binaries not found",
                           hint="apt-get install postgresql (scripts/test does this)")
    return Path(found[-1]).parent


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def start(name: str, port: int) -> Path:
    """initdb + start; returns the folder (recorded so `down` can remove it)."""
    base = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{name}-"))
    data, sock, log = base / "data", base / "sock", base / "postgres.log"
    sock.mkdir()
    log.touch()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        for p in (sock, log):
            shutil.chown(p, "postgres", "postgres")
    _run(_as_owner([str(bindir() / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "--no-sync", "-E", "UTF8"]), "initdb")
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off"
    _run(_as_owner([str(bindir() / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "start"]),
         "pg_ctl start")
    sql = f"CREATE ROLE {ROLE} LOGIN;\nCREATE DATABASE {DB} OWNER {ROLE};\n"
    _run(_as_owner([str(bindir().parent / "bin" / "psql"), "-h", str(sock), "-p", str(port), "-U", "postgres",
                    "-v", "ON_ERROR_STOP=1", "-q", "-d", "postgres"]), "psql", stdin=sql)
    return base


def stop(base: Path) -> None:
    """Stop the server and remove its folder: only a folder `start` made (the record could be edited)."""
    if not _ours(base):
        raise SandboxError(f"{base} is not a PostgreSQL folder made by the sandbox; left alone",
                           hint="remove it by hand if it is yours")
    data = base / "data"
    if (data / "postmaster.pid").exists():
        with contextlib.suppress(process.ProcessError):
            process.run(_as_owner([str(bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                        timeout=60)
    shutil.rmtree(base, ignore_errors=True)


def _ours(base: Path) -> bool:
    return base.name.startswith(PREFIX) and not base.is_symlink() and base.is_absolute()


def connection_url(port: int) -> str:
    return f"postgres://{ROLE}@127.0.0.1:{port}/{DB}?sslmode=disable"


def _run(cmd: list[str], what: str, *, stdin: str | None = None) -> None:
    """Run one PostgreSQL tool (the server started by pg_ctl inherits this environment: no credentials)."""
    start_t = time.monotonic()
    hint = "is the postgresql package installed? (scripts/test installs it)"
    try:
        res = process.run(cmd, input=stdin, timeout=120, label=what)
    except process.ProcessError as exc:
        raise SandboxError(f"{what} failed: {exc.message}", hint=hint) from None
    if not res.ok:
        raise SandboxError(f"{what} failed after {time.monotonic() - start_t:.1f}s: {res.last_line()}", hint=hint)

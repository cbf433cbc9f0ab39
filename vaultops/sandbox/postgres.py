"""A private PostgreSQL for the Active-Standby sandbox pair.

initdb refuses to run as root, so as root the cluster runs as the
`postgres` user in a folder under /tmp that user can reach (root's home is
not traversable). Authentication is `trust` on 127.0.0.1 only: no password
exists to leak.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from vaultops.errors import SandboxError

DB = "openbao"
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
    base = Path(tempfile.mkdtemp(prefix=f"vaultops-pg-{name}-"))
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
    data = base / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(_as_owner([str(bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True, timeout=60)
    shutil.rmtree(base, ignore_errors=True)


def connection_url(port: int) -> str:
    return f"postgres://{ROLE}@127.0.0.1:{port}/{DB}?sslmode=disable"


def _run(cmd: list[str], what: str, *, stdin: str | None = None) -> None:
    start_t = time.monotonic()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise SandboxError(f"{what} failed after {time.monotonic() - start_t:.1f}s: {last[0][:200]}",
                           hint="is the postgresql package installed? (scripts/test installs it)")

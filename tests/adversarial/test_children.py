"""Every child vaultops starts, inspected through /proc: no secret of ours, no descriptor of ours.

The parent (this test process) carries VAULT_TOKEN, BAO_TOKEN, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, PGPASSWORD and a random canary variable, and an flock'ed file on a descriptor
that is not close-on-exec (as a cron `flock` wrapper leaves it). Servers are inspected from the
outside while they run; short-lived children (ssh, gpg, pg_dump, pg_restore, a runbook step) are
stand-in scripts that record their own /proc/$$/environ and /proc/$$/fd.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vaultops.drivers import get_driver
from vaultops import releases as binaries
from vaultops.services.sandbox import postgres
from vaultops.services.sandbox.cluster import free_port, wait_port

from .conftest import HostileParent, assert_env_clean, assert_fds_clean

SHARE = base64.b64encode(bytes(range(32)) + b"\x01").decode()


def recorder(folder: Path, name: str, *, out: str = "") -> Path:
    """A stand-in program that records its environment, descriptors and argv, drains stdin, prints *out*."""
    script = folder / name
    rec = folder / f"rec-{name}"
    script.write_text(f"#!/bin/sh\ncat /proc/$$/environ > {rec}.env\nls -l /proc/$$/fd > {rec}.fd\n"
                      f"printf '%s\\n' \"$@\" > {rec}.argv\ncat > /dev/null\nprintf '%s' '{out}'\n")
    script.chmod(0o755)
    return script


def check_recorded(folder: Path, name: str, parent: HostileParent) -> bytes:
    rec = folder / f"rec-{name}"
    environ = Path(f"{rec}.env").read_bytes()
    assert_env_clean(environ, parent.env)
    assert_fds_clean(Path(f"{rec}.fd").read_text(), parent)
    return environ


def can_take(lock: Path) -> bool:
    """Another process can take the lock now (it is held by nobody)."""
    return subprocess.run(["flock", "-n", str(lock), "true"], timeout=10).returncode == 0


# -- servers ----------------------------------------------------------------------------------------


def _inmem_node(folder: Path) -> tuple[Path, int]:
    folder.mkdir()
    port = free_port()
    (folder / "config.hcl").write_text(
        f'storage "inmem" {{}}\nlistener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        f'api_addr = "http://127.0.0.1:{port}"\nui = false\n')
    (folder / "binary").write_text(f"{binaries.ensure()}\n")
    return folder, port


@pytest.mark.integration
def test_local_driver_server_gets_no_secret_and_no_lock(hostile_parent: HostileParent, tmp_path: Path) -> None:
    """Defect 6: a bao server started under a held flock kept it for its whole life."""
    folder, port = _inmem_node(tmp_path / "node1")
    drv = get_driver("node1", {"type": "local", "dir": str(folder)})
    drv.start()
    try:
        wait_port(port)
        pid = int((folder / "bao.pid").read_text())
        hostile_parent.assert_clean(pid)
        assert not can_take(hostile_parent.lock_path)           # the parent still holds it ...
        os.close(hostile_parent.lock_fd)
        assert can_take(hostile_parent.lock_path)               # ... and only the parent did
    finally:
        drv.stop(timeout=15)


@pytest.mark.integration
def test_a_node_started_under_a_flock_wrapper_leaves_the_lock_free(tmp_path: Path) -> None:
    """As cron runs vaultops: `flock LOCK <vaultops starting a node>`; once it returns, the next run gets the lock."""
    folder, port = _inmem_node(tmp_path / "node1")
    lock = tmp_path / "cron.lock"
    secret = {"VAULT_TOKEN": "hvs.leak-cron", "AWS_SECRET_ACCESS_KEY": "leak-aws-cron", "CANARY_CRON": "leak-c"}
    start = ("import sys; from vaultops.drivers import get_driver; "
             "get_driver('node1', {'type': 'local', 'dir': sys.argv[1]}).start()")
    run = subprocess.run(["flock", str(lock), sys.executable, "-c", start, str(folder)],
                         env={**os.environ, **secret}, capture_output=True, text=True, timeout=60)
    drv = get_driver("node1", {"type": "local", "dir": str(folder)})
    try:
        assert run.returncode == 0, run.stderr
        wait_port(port)
        assert can_take(lock), "the server started under the wrapper still holds its lock"
        pid = int((folder / "bao.pid").read_text())
        assert_env_clean(Path(f"/proc/{pid}/environ").read_bytes(), secret)
    finally:
        drv.stop(timeout=15)


def _family(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                kids.append(int(entry))
        except (OSError, IndexError):
            continue
    return [pid, *kids]


@pytest.mark.integration
def test_sandbox_postgresql_gets_no_secret_and_no_lock(hostile_parent: HostileParent) -> None:
    """Defect 5: the sandbox PostgreSQL (another user) got VAULT_TOKEN, AWS and PG secrets."""
    base = postgres.start("children", free_port())
    try:
        postmaster = int((base / "data" / "postmaster.pid").read_text().split()[0])
        family = _family(postmaster)
        assert len(family) > 1                              # checkpointer, walwriter, ... too
        for pid in family:
            try:
                hostile_parent.assert_clean(pid)            # children overwrite their environ with a title
            except (FileNotFoundError, ProcessLookupError):
                continue                                    # a short-lived worker that has gone
    finally:
        postgres.stop(base)


# -- short-lived children ------------------------------------------------------------------------------


def test_ssh_gets_its_agent_and_nothing_else(hostile_parent: HostileParent, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/agent.sock")
    ssh = recorder(tmp_path, "ssh")
    drv = get_driver("n1", {"type": "ssh", "host": "vault-1", "ssh": str(ssh)})
    drv.is_running()
    environ = check_recorded(tmp_path, "ssh", hostile_parent)
    assert b"SSH_AUTH_SOCK=/run/agent.sock" in environ
    drv.write_file("/etc/vault/tls.key", b"key material")
    check_recorded(tmp_path, "ssh", hostile_parent)


def test_gpg_gets_its_keyring_and_nothing_else(hostile_parent: HostileParent, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from vaultops.services.ceremony.keyholders import decrypt_pgp_share

    monkeypatch.setenv("GNUPGHOME", str(tmp_path / "gnupg"))
    gpg = recorder(tmp_path, "gpg", out=SHARE)
    share = decrypt_pgp_share(base64.b64encode(b"ciphertext").decode(), gpg=str(gpg))
    assert share.raw[-1] == 1
    environ = check_recorded(tmp_path, "gpg", hostile_parent)
    assert f"GNUPGHOME={tmp_path / 'gnupg'}".encode() in environ


def test_pg_dump_and_pg_restore_get_the_passfile_and_nothing_else(hostile_parent: HostileParent,
                                                                 tmp_path: Path) -> None:
    from vaultops.services.backup.formats.postgresql import PgDumpSource, PgDumpVerifier

    settings = {"dsn": "host=127.0.0.1 dbname=openbao user=backup", "passfile": str(tmp_path / "pgpass"),
                "pg_dump": str(recorder(tmp_path, "pg_dump", out="PGDMP")),
                "pg_restore": str(recorder(tmp_path, "pg_restore"))}
    source = PgDumpSource(settings, clients=[])
    with source.open() as snap:
        assert b"".join(snap.chunks) == b"PGDMP"
    environ = check_recorded(tmp_path, "pg_dump", hostile_parent)
    assert f"PGPASSFILE={tmp_path / 'pgpass'}".encode() in environ

    verifier = PgDumpVerifier.from_settings(settings)       # pg_restore fed through a pipe
    verifier.feed(b"PGDMP\x01\x0e\x00 rest of a dump")
    verifier.finish()
    check_recorded(tmp_path, "pg_restore", hostile_parent)
    (tmp_path / "rec-pg_restore.env").unlink()
    (tmp_path / "dump").write_bytes(b"PGDMP dump")
    with open(tmp_path / "dump", "rb") as body:               # pg_restore reading the dump on stdin
        source.restore(body, force=True)
    check_recorded(tmp_path, "pg_restore", hostile_parent)


def test_runbook_shell_step_gets_nothing_of_ours(hostile_parent: HostileParent, tmp_path: Path) -> None:
    from vaultops.runbook.actions import shell

    step = recorder(tmp_path, "step")
    evidence = shell.run(None, command=[str(step), "--flag", "a b"])
    assert evidence["summary"] == "exit 0"
    check_recorded(tmp_path, "step", hostile_parent)
    assert (tmp_path / "rec-step.argv").read_text().splitlines() == ["--flag", "a b"]   # argv, no shell


def test_bao_version_gets_nothing_of_ours(hostile_parent: HostileParent, tmp_path: Path) -> None:
    bao = recorder(tmp_path, "bao", out="OpenBao v2.7.2 (abc)")
    assert binaries.binary_version(bao) == "2.7.2"
    check_recorded(tmp_path, "bao", hostile_parent)


def test_a_recorder_sees_what_it_was_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-ins can see a leak: a child started the careless way records the canary and the lock."""
    import fcntl

    monkeypatch.setenv("CANARY_SELF_TEST", "visible")
    lock = tmp_path / "lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    os.set_inheritable(fd, True)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        subprocess.run([str(recorder(tmp_path, "careless"))], close_fds=False, timeout=10, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    finally:
        os.close(fd)
    rec = tmp_path / "rec-careless"
    assert b"CANARY_SELF_TEST=visible" in Path(f"{rec}.env").read_bytes()
    assert str(lock) in Path(f"{rec}.fd").read_text()

"""Hostile lock paths: every lock (backup, runbook state, TLS renewal) goes through vaultops/fslock.py.

A symlink planted at the lock path is refused and its target left untouched (the old code truncated
it); a directory, FIFO, hard link or someone else's file there is refused rather than used or waited
on; under umask 000 the folders vaultops creates are 0700 and lock files 0600; a second holder gets
one line naming the first holder's pid.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vaultops.cli import main
from vaultops.errors import BackupError, RunbookError, VaultOpsError
from vaultops.files.lock import exclusive_lock, private_dir
from vaultops.files.atomic import atomic_write_text
from vaultops.runbook.state import run_lock as runbook_lock
from vaultops.services.backup.lock import run_lock as backup_lock
from vaultops.services.tls.cron import LockHeld, renewal_lock
from vaultops.services.tls.inspect import TLSError

SECRET = b"precious: must survive\n"


def _backup(path: Path) -> contextlib.AbstractContextManager[None]:
    return backup_lock(path)


def _runbook(path: Path) -> contextlib.AbstractContextManager[None]:
    # the runbook lock lives beside the state file: <state>.lock
    return runbook_lock(path.with_name(path.name.removesuffix(".lock")))


def _tls(path: Path) -> contextlib.AbstractContextManager[None]:
    return renewal_lock(str(path))


LOCKS: dict[str, tuple[Callable[[Path], contextlib.AbstractContextManager[None]], type[VaultOpsError]]] = {
    "backup": (_backup, BackupError),
    "runbook": (_runbook, RunbookError),
    "tls": (_tls, TLSError),
}


def _lock_path(tmp_path: Path, kind: str) -> Path:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / ("upgrade.json.lock" if kind == "runbook" else f"{kind}.lock")


def _refused(kind: str, path: Path) -> VaultOpsError:
    take, error = LOCKS[kind]
    with pytest.raises(error) as err:
        with take(path):
            pytest.fail("the lock was taken")
    assert "\n" not in str(err.value)
    return err.value


@pytest.mark.parametrize("kind", list(LOCKS))
def test_planted_symlink_is_refused_and_its_target_untouched(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(SECRET)
    path = _lock_path(tmp_path, kind)
    path.symlink_to(victim)
    exc = _refused(kind, path)
    assert "symlink" in exc.message and str(path) in exc.message
    assert victim.read_bytes() == SECRET and path.is_symlink()


@pytest.mark.parametrize("kind", list(LOCKS))
def test_dangling_symlink_creates_nothing(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "created-through-the-link"
    path = _lock_path(tmp_path, kind)
    path.symlink_to(target)
    _refused(kind, path)
    assert not target.exists()


@pytest.mark.parametrize("kind", list(LOCKS))
def test_symlink_to_a_directory_is_refused(tmp_path: Path, kind: str) -> None:
    (tmp_path / "elsewhere").mkdir()
    path = _lock_path(tmp_path, kind)
    path.symlink_to(tmp_path / "elsewhere")
    _refused(kind, path)
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.parametrize("kind", list(LOCKS))
def test_a_directory_at_the_lock_path_is_refused(tmp_path: Path, kind: str) -> None:
    path = _lock_path(tmp_path, kind)
    path.mkdir()
    assert "directory" in _refused(kind, path).message


@pytest.mark.parametrize("kind", list(LOCKS))
def test_a_fifo_at_the_lock_path_is_refused_without_hanging(tmp_path: Path, kind: str) -> None:
    path = _lock_path(tmp_path, kind)
    os.mkfifo(path)
    assert "not a regular file" in _refused(kind, path).message


@pytest.mark.parametrize("kind", list(LOCKS))
def test_a_hard_link_to_another_file_is_refused(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "journal.jsonl"
    victim.write_bytes(SECRET)
    path = _lock_path(tmp_path, kind)
    os.link(victim, path)
    assert "hard link" in _refused(kind, path).message
    assert victim.read_bytes() == SECRET


def test_a_lock_file_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a file owned by another user")
    path = _lock_path(tmp_path, "backup")
    path.write_bytes(SECRET)
    os.chown(path, 65534, 65534)
    assert "owned by uid 65534" in _refused("backup", path).message
    assert path.read_bytes() == SECRET


def test_a_folder_others_may_write_to_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(BackupError, match="others may write to it"):
        with backup_lock(shared / "backup.lock"):
            pass
    shared.chmod(0o1777)     # sticky, like /tmp: others cannot swap our file
    with backup_lock(shared / "backup.lock"):
        pass


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("kind", list(LOCKS))
def test_under_umask_000_created_folders_are_0700_and_lock_files_0600(tmp_path: Path, kind: str) -> None:
    take, _ = LOCKS[kind]
    path = tmp_path / "a" / "b" / ("upgrade.json.lock" if kind == "runbook" else f"{kind}.lock")
    with _umask(0), take(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_an_existing_lock_file_with_loose_mode_is_tightened(tmp_path: Path) -> None:
    path = _lock_path(tmp_path, "backup")
    path.write_text("123\n")
    path.chmod(0o666)
    with backup_lock(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_under_umask_000_atomic_writes_and_private_dir_make_0700_folders(tmp_path: Path) -> None:
    with _umask(0):
        atomic_write_text(tmp_path / "x" / "y" / "state.json", "{}", mode=0o600)
        private_dir(tmp_path / "p" / "q")
    for folder in ("x", "x/y", "p", "p/q"):
        assert stat.S_IMODE((tmp_path / folder).stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((tmp_path / "x" / "y" / "state.json").stat().st_mode) == 0o600


HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from vaultops.services.backup.lock import run_lock as backup
    from vaultops.runbook.state import run_lock as runbook
    from vaultops.services.tls.cron import renewal_lock as tls
    kind, path = sys.argv[1], Path(sys.argv[2])
    cm = {"backup": lambda: backup(path), "runbook": lambda: runbook(path.with_name(path.name[:-5])),
          "tls": lambda: tls(str(path))}[kind]()
    with cm:
        print("held", flush=True)
        time.sleep(60)
""")


@contextlib.contextmanager
def _held_elsewhere(kind: str, path: Path) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen([sys.executable, "-c", HOLD, kind, str(path)], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
            yield proc
        finally:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize("kind", list(LOCKS))
def test_second_holder_gets_one_line_naming_the_first_holders_pid(tmp_path: Path, kind: str) -> None:
    path = _lock_path(tmp_path, kind)
    take, error = LOCKS[kind]
    with _held_elsewhere(kind, path) as holder:
        with pytest.raises(error) as err:
            with take(path):
                pytest.fail("two holders")
        assert f"pid {holder.pid}" in err.value.message and "\n" not in str(err.value)
        if kind == "tls":
            assert isinstance(err.value, LockHeld)
    with take(path):      # the kernel dropped the dead holder's lock: no stale lock
        pass


def test_backup_lock_wait_gives_up_after_the_wait(tmp_path: Path) -> None:
    path = _lock_path(tmp_path, "backup")
    with _held_elsewhere("backup", path):
        with pytest.raises(BackupError, match="--lock-wait"):
            with backup_lock(path, wait=0.5):
                pass


def test_exclusive_lock_records_who_holds_it(tmp_path: Path) -> None:
    import json

    path = tmp_path / "l" / "x.lock"
    with exclusive_lock(path, what="a test", error=BackupError) as me:
        record = json.loads(path.read_text())
    assert record["pid"] == os.getpid() == me.pid and record["what"] == "a test" and record["host"]


def test_cli_backup_run_refuses_a_planted_lock_symlink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(SECRET)
    lock = tmp_path / "locks" / "backup.lock"
    lock.parent.mkdir(mode=0o700)
    lock.symlink_to(victim)
    cfg = tmp_path / "vaultops.yaml"
    cfg.write_text(textwrap.dedent(f"""
        cluster: {{name: prod}}
        nodes: [{{name: n1, address: "http://127.0.0.1:9"}}]
        journal: {{path: {tmp_path}/journal.jsonl}}
        backup: {{sinks: [{{type: local, path: {tmp_path}/backups}}], lock_file: {lock}}}
    """))
    rc = main(["--config", str(cfg), "backup", "run"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("vaultops: error:")]
    assert rc == BackupError.exit_code and len(errors) == 1 and "symlink" in errors[0]
    assert "Traceback" not in err and victim.read_bytes() == SECRET

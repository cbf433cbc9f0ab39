"""The local driver's write_file: atomic, with mode, owner and group set before the rename.

The test run as root (CI) covers a real chown to nobody:nogroup; the refusal of a non-root
writer is proven in a forked child that has really dropped to nobody.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vaultops.drivers import get_driver
from vaultops.drivers.local import LocalDriver
from vaultops.errors import DriverError

ROOT = os.geteuid() == 0
NOBODY = 65534


def driver(folder: Path) -> LocalDriver:
    drv = get_driver("n1", {"type": "local", "dir": str(folder)})
    assert isinstance(drv, LocalDriver)
    return drv


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_owner_by_name_and_by_number_is_the_current_user(tmp_path: Path) -> None:
    me, my_group = pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name
    target = tmp_path / "tls" / "key.pem"
    driver(tmp_path).write_file(str(target), b"one", mode=0o600, owner=me, group=my_group)
    st = target.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (os.geteuid(), os.getegid(), 0o600)
    driver(tmp_path).write_file(str(target), b"two", mode=0o644, owner=str(os.geteuid()),
                                group=str(os.getegid()))
    st = target.stat()
    assert target.read_bytes() == b"two" and stat.S_IMODE(st.st_mode) == 0o644 and st.st_uid == os.geteuid()
    assert leftovers(target.parent) == []


@pytest.mark.parametrize("owner, group, match", [
    ("root; rm -rf /", None, "is not a user/group name"),
    ("$(id)", None, "is not a user/group name"),
    (None, "wheel group", "is not a user/group name"),
    ("no-such-user-vaultops", None, "no user 'no-such-user-vaultops'"),
    (None, "no-such-group-vaultops", "no group 'no-such-group-vaultops'"),
])
def test_bad_or_unknown_accounts_are_refused_and_nothing_is_written(
        tmp_path: Path, owner: str | None, group: str | None, match: str) -> None:
    target = tmp_path / "key.pem"
    target.write_bytes(b"old")
    with pytest.raises(DriverError, match=match):
        driver(tmp_path).write_file(str(target), b"new", owner=owner, group=group)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


@pytest.mark.skipif(not ROOT, reason="chown to another user needs root (CI runs as root)")
def test_root_gives_the_files_to_nobody_nogroup(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    target.write_bytes(b"old")                                   # root-owned before
    driver(tmp_path).write_file(str(target), b"new", mode=0o600, owner="nobody", group="nogroup")
    st = target.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (NOBODY, NOBODY, 0o600)
    assert target.read_bytes() == b"new" and leftovers(tmp_path) == []
    driver(tmp_path).write_file(str(target), b"newer", mode=0o644, owner="nobody")   # owner only
    st = target.stat()        # a new file: the group is the writer's, as without tls.group
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (NOBODY, os.getegid(), 0o644)


@pytest.fixture
def unprivileged() -> Iterator[tuple[Path, Callable[[Callable[[], str]], str]]]:
    """A folder the unprivileged writer owns, and a runner: as root, a forked child dropped to nobody."""
    folder = Path(tempfile.mkdtemp(prefix="vaultops-owner-"))
    if ROOT:
        os.chown(folder, NOBODY, NOBODY)

    def run(fn: Callable[[], str]) -> str:
        if not ROOT:
            return fn()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns into pytest
            code = 1
            try:
                os.close(read)
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                os.write(write, fn().encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as fh:
            out = fh.read().decode()
        assert os.waitpid(pid, 0)[1] == 0, "the unprivileged child failed"
        return out

    yield folder, run
    shutil.rmtree(folder)


@pytest.mark.parametrize("owner, group, hint", [
    ("root", None, "run vaultops as root or as root, or drop tls.owner"),
    (None, "0", "run vaultops as root or as a member of 0, or drop tls.group"),
])
def test_a_non_root_writer_cannot_give_files_away(
        unprivileged: tuple[Path, Callable[[Callable[[], str]], str]],
        owner: str | None, group: str | None, hint: str) -> None:
    folder, run = unprivileged
    if not ROOT and (owner == "root" and os.geteuid() == 0 or group == "0" and 0 in os.getgroups()):
        pytest.skip("the current user already owns that account")
    target = folder / "key.pem"

    def attempt() -> str:
        target.write_bytes(b"old")
        try:
            driver(folder).write_file(str(target), b"new", owner=owner, group=group)
        except DriverError as exc:
            return f"{exc.message}|{exc.hint}|{os.geteuid()}"
        return "written"

    message, got_hint, uid = run(attempt).split("|")
    assert got_hint == hint and ("cannot make root the owner" in message or "not a member" in message)
    assert int(uid) != 0
    assert target.read_bytes() == b"old" and target.stat().st_uid == int(uid)
    assert leftovers(folder) == []

"""The ssh driver against a real sshd on 127.0.0.1 driving a real OpenBao dev server on the "remote":
stop, install (switch the binary to another version), start, version, files, failures."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from upgrade_helpers import FROM, TO

from vaultops.drivers import get_driver
from vaultops.errors import DriverError, VaultOpsError
from vaultops import releases as binaries
from vaultops.services.sandbox.cluster import free_port
from vaultops.vault import NodeClient

pytestmark = pytest.mark.integration


@pytest.fixture
def remote(sshd, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A node folder with two server versions installed side by side, and shell commands that manage it."""
    home = tmp_path / "node"
    for version in (FROM, TO):
        (home / "versions" / version).mkdir(parents=True)
        (home / "versions" / version / "bao").symlink_to(binaries.ensure(version))
    (home / "bao").symlink_to(home / "versions" / FROM / "bao")
    port = free_port()
    d = str(home)
    commands = {
        "start": f"cd {d} && (setsid ./bao server -dev -dev-listen-address=127.0.0.1:{port} "
                 f"> server.log 2>&1 < /dev/null & echo $! > pid)",
        "stop": f"p=$(cat {d}/pid) && kill $p && while kill -0 $p 2>/dev/null; do sleep 0.05; done",
        "kill": f"kill -9 $(cat {d}/pid)",
        "is_running": f"kill -0 $(cat {d}/pid 2>/dev/null) 2>/dev/null",
        "version": f"{d}/bao version",
        "install": f"test -x {d}/versions/{{version}}/bao && ln -sfn {d}/versions/{{version}}/bao {d}/bao",
    }
    settings = {"type": "ssh", "host": "127.0.0.1", "port": sshd.port, "options": sshd.options(),
                "commands": commands}
    drv = get_driver("remote-1", settings)
    yield drv, home, NodeClient("remote-1", f"http://127.0.0.1:{port}")
    if (home / "pid").exists():
        try:
            os.kill(int((home / "pid").read_text()), 9)
        except (ProcessLookupError, ValueError):
            pass


def _health_version(client: NodeClient, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.ha.health().version
        except VaultOpsError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_stop_install_start_switches_the_served_version(remote) -> None:  # type: ignore[no-untyped-def]
    drv, home, client = remote
    assert drv.installed_version() == FROM
    drv.start()
    assert drv.is_running() and _health_version(client) == FROM
    drv.stop()
    assert not drv.is_running()
    drv.install(TO)
    assert drv.installed_version() == TO
    drv.start()
    assert _health_version(client) == TO


def test_files_round_trip_through_stdin_with_their_mode(remote) -> None:  # type: ignore[no-untyped-def]
    drv, home, _ = remote
    target = home / "tls.key"
    drv.write_file(str(target), b"-----BEGIN PRIVATE KEY-----\nabc\n", mode=0o600)
    assert target.read_bytes().endswith(b"abc\n") and (target.stat().st_mode & 0o777) == 0o600
    assert drv.read_file(str(target)) == target.read_bytes()
    assert not [p for p in home.iterdir() if p.name.startswith(".tls.key.")]   # no temp file left


def test_files_get_their_owner_and_group(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The sshd runs as the test's user: as root the files go to nobody:nogroup, else to that user."""
    import grp
    import pwd

    drv = get_driver("remote-1", {"type": "ssh", "host": "127.0.0.1", "port": sshd.port, "options": sshd.options()})
    root = os.geteuid() == 0
    owner = "nobody" if root else pwd.getpwuid(os.geteuid()).pw_name
    group = "nogroup" if root else grp.getgrgid(os.getegid()).gr_name
    target = tmp_path / "key.pem"
    target.write_bytes(b"old")
    drv.write_file(str(target), b"new", mode=0o600, owner=owner, group=group)
    st = target.stat()
    assert (st.st_uid, st.st_gid) == (pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid)
    assert target.read_bytes() == b"new" and (st.st_mode & 0o777) == 0o600

    with pytest.raises(DriverError, match="chown") as err:      # a chown that fails keeps the old file
        drv.write_file(str(target), b"newer", owner="no-such-user-vaultops")
    assert "drop tls.owner" in (err.value.hint or "") and target.read_bytes() == b"new"
    with pytest.raises(DriverError, match="is not a user/group name") as err:
        drv.write_file(str(tmp_path / "other.pem"), b"x", owner="x; touch pwned")
    assert err.value.result is None and not (tmp_path / "other.pem").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]       # no temp file, nothing else ran


def test_failures_raise_driver_errors_carrying_the_result(remote, sshd) -> None:  # type: ignore[no-untyped-def]
    drv, _, _ = remote
    with pytest.raises(DriverError) as err:
        drv.install("9.9.9")                       # not installed on the node: the command fails
    assert err.value.result.exit_code == 1 and "9.9.9" in err.value.result.command
    with pytest.raises(DriverError, match="No such file or directory"):
        drv.read_file("/nonexistent/file")
    wrong = get_driver("x", {"type": "ssh", "host": "127.0.0.1", "port": free_port(), "options": sshd.options()})
    with pytest.raises(DriverError, match="ssh to 127.0.0.1 failed"):
        wrong.is_running()

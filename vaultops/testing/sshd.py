"""A real OpenSSH sshd on 127.0.0.1 for tests, as the current user, with generated host and client keys.

    with running_sshd(folder) as server:       # None when openssh-server is not installed
        get_driver("n", {"type": "ssh", "host": "127.0.0.1", "port": server.port, "options": server.options()})
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vaultops.services.sandbox.cluster import free_port


class SSHServer:
    def __init__(self, folder: Path, port: int, client_key: Path, known_hosts: Path,
                 proc: subprocess.Popen[bytes]) -> None:
        self.folder, self.port, self.client_key, self.known_hosts, self.proc = (folder, port, client_key,
                                                                                known_hosts, proc)

    def options(self) -> list[str]:
        return ["-i", str(self.client_key), "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-F", "/dev/null"]


@contextmanager
def running_sshd(folder: Path) -> Iterator[SSHServer | None]:
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd_bin).exists():
        yield None
        return
    host_key, client_key = folder / "host_ed25519", folder / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
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
    try:
        _wait_accepting(server)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_accepting(server: SSHServer, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = subprocess.run(["ssh", "-o", "BatchMode=yes", "-p", str(server.port), *server.options(),
                                "127.0.0.1", "--", "true"], capture_output=True, timeout=15)
        if probe.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"sshd did not accept the test key: {(server.folder / 'sshd.log').read_text()[-500:]}")

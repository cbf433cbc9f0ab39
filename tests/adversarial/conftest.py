"""A hostile parent: a process full of secrets and inherited descriptors (the real sshd is in tests/conftest.py)."""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest



@dataclass
class HostileParent:
    """What vaultops carries that no child may get: secret variables and an flock'ed inherited descriptor."""

    env: dict[str, str]
    lock_path: Path
    lock_fd: int

    def assert_clean(self, pid: int) -> None:
        """The child *pid*, inspected through /proc: none of our secrets, none of our descriptors."""
        fds = {}
        for n in os.listdir(f"/proc/{pid}/fd"):
            try:  # a running server opens and closes descriptors while we look
                fds[int(n)] = os.readlink(f"/proc/{pid}/fd/{n}")
            except FileNotFoundError:
                continue
        assert str(self.lock_path) not in fds.values(), f"pid {pid} holds the parent's lock: {fds}"
        assert_env_clean(Path(f"/proc/{pid}/environ").read_bytes(), self.env)


def assert_env_clean(environ: bytes, secret_env: dict[str, str]) -> None:
    names = {e.split(b"=", 1)[0].decode() for e in environ.split(b"\0") if e}
    leaked = sorted(k for k, v in secret_env.items() if k in names or v.encode() in environ)
    assert not leaked, f"secrets in the child's environment: {leaked}"


def assert_fds_clean(fd_listing: str, parent: HostileParent) -> None:
    """`ls -l /proc/PID/fd` of a child, recorded by the child itself."""
    assert str(parent.lock_path) not in fd_listing, f"the child holds the parent's lock:\n{fd_listing}"


@pytest.fixture
def hostile_parent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HostileParent]:
    canary = f"CANARY_{secrets.token_hex(4).upper()}"
    env = {name: f"leak-{name.lower()}-{secrets.token_hex(6)}"
           for name in ("VAULT_TOKEN", "BAO_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD",
                        canary)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    lock_path = tmp_path / "cron.lock"
    # As `flock FILE vaultops ...` leaves it: open, locked, NOT close-on-exec.
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    os.set_inheritable(fd, True)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield HostileParent(env, lock_path, fd)
    finally:
        try:
            os.close(fd)
        except OSError:
            pass

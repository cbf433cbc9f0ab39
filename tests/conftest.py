"""Shared fixtures. Real servers live in tests/integration; unit tests need none."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from vaultops.testing.sshd import SSHServer


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the developer's real state, config or tokens."""
    # Downloaded OpenBao releases are reused across runs: keep the real cache.
    cache = os.environ.get("VAULTOPS_TEST_CACHE") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    home = tmp_path_factory.getbasetemp() / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(home / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", cache)
    for var in ("VAULT_ADDR", "BAO_ADDR", "VAULT_TOKEN", "BAO_TOKEN", "VAULT_CACERT", "BAO_CACERT",
                "VAULTOPS_CONFIG"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """A real OpenSSH sshd on 127.0.0.1, as the current user, with a generated host key and client key."""
    from vaultops.testing.sshd import running_sshd

    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        if server is None:
            pytest.skip("openssh-server is not installed (scripts/test installs it)")
        yield server


@pytest.fixture
def no_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM (CI timeout, a killed run) tears down like Ctrl-C, so fixtures stop their servers."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)

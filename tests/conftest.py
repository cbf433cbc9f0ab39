"""Shared fixtures and the suite's hygiene. Real servers live in tests/integration; unit tests need none.

Hygiene (house style 19): everything under tests/integration is marked `integration`; a test without
that marker that starts a server (bao, postgres, pebble, named, moto_server, sshd) or leaves a child
process listening on a port fails and says so; generated secrets come from a seeded stream whose seed
the header prints (VAULTOPS_TEST_SEED=N replays a run); pyproject.toml sets the default timeout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from vaultops.testing import hygiene, seed

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
    seed.session_seed()            # drawn once and exported before xdist starts its workers
    sys.addaudithook(_refuse_servers)


# -- replayable randomness --------------------------------------------------------------------------

def pytest_report_header(config: pytest.Config) -> str:
    return f"{seed.ENV}={seed.session_seed()} (set it to replay this run's generated shares)"


@pytest.fixture(autouse=True)
def _seeded(request: pytest.FixtureRequest) -> None:
    """Every test draws the same shares from the session seed whatever ran before it, on any worker."""
    seed.reseed(request.node.nodeid)


# -- servers only in integration tests ---------------------------------------------------------------

ROOT = Path(__file__).resolve().parent
_current: dict[str, Any] = {"item": None, "spawned": False}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration starts real servers: mark it so `-m "not integration"` skips it."""
    for item in items:
        if (ROOT / "integration") in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # before any fixture: a session fixture that starts a server runs in the first test's setup
    _current["item"] = None if item.get_closest_marker("integration") else item
    _current["spawned"] = False
    # Servers of session fixtures started by earlier integration tests on this worker stay up: only a
    # listener that appears during this test counts against it.
    _current["before"] = {pid for pid, _ in hygiene.listening_children()} if _current["item"] is not None else set()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    if _current["item"] is item and _current["spawned"]:
        listening = [(pid, cmd) for pid, cmd in hygiene.listening_children() if pid not in _current["before"]]
        if listening:
            pid, command = listening[0]
            pytest.fail(f"this test left a child process listening on a port (pid {pid}: {command}): a test that "
                        "starts a server is an integration test: mark it @pytest.mark.integration", pytrace=False)
    return result


def pytest_runtest_teardown(item: pytest.Item) -> None:
    _current["item"] = None


def _refuse_servers(event: str, args: tuple[Any, ...]) -> None:
    if _current["item"] is None or event not in ("subprocess.Popen", "os.posix_spawn", "os.exec"):
        return
    _current["spawned"] = True
    server = hygiene.server_in(args[1])     # (executable, args, ...) / (path, argv, env)
    if server is not None:
        raise StartsAServer(f"{_current['item'].nodeid} starts a real server ({server}) but is not marked "
                            "@pytest.mark.integration: mark it, or use vaultops.testing.fake_vault")


class StartsAServer(Exception):
    """A test without the integration marker tried to start a server."""

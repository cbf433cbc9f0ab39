"""vaultops.process: the one way vaultops starts a child (argv, closed descriptors, allow-listed env, timeout).

The children of every caller are inspected through /proc in tests/adversarial/test_children.py.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

import pytest

from vaultops import process
from vaultops.drivers.base import Result as DriverResult
from vaultops.process import ProcessError, Result, child_env

SECRETS = ("VAULT_TOKEN", "BAO_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD", "VAULT_ADDR")


def test_the_environment_is_an_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*SECRETS, "SOME_CANARY_42"):
        monkeypatch.setenv(var, "s3cr3t-value")
    monkeypatch.setenv("PATH", "/usr/bin")
    monkeypatch.setenv("LC_TIME", "C")
    env = child_env()
    assert "s3cr3t-value" not in env.values()
    assert env["PATH"] == "/usr/bin" and env["LC_TIME"] == "C"


def test_callers_name_the_one_variable_their_child_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/agent")
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    monkeypatch.setenv("PGPASSWORD", "pw")
    env = child_env(("SSH_AUTH_SOCK", "PGSSL*"), {"PGPASSFILE": "/x"})
    assert env["SSH_AUTH_SOCK"] == "/run/agent" and env["PGSSLMODE"] == "verify-full" and env["PGPASSFILE"] == "/x"
    assert "PGPASSWORD" not in env


def test_run_returns_one_result_type_and_check_raises_carrying_it() -> None:
    res = process.run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
                      timeout=30)
    assert isinstance(res, Result) and Result is DriverResult
    assert (res.exit_code, res.stdout.strip(), res.stderr.strip()) == (3, "out", "err")
    with pytest.raises(ProcessError, match="exited 3: err") as err:
        res.check("n1")
    assert err.value.result is res and err.value.exit_code == 5


def test_kept_stdout_is_whole_and_not_in_the_text_tail() -> None:
    res = process.run([sys.executable, "-c", "print('k' * 5000)"], timeout=30, keep_stdout=True)
    assert res.output == b"k" * 5000 + b"\n" and res.stdout == "" and "kkk" not in repr(res)


def test_stdin_is_dev_null_unless_given() -> None:
    code = "import sys; print(repr(sys.stdin.read()))"
    assert process.run([sys.executable, "-c", code], timeout=30).stdout.strip() == "''"
    assert process.run([sys.executable, "-c", code], input="abc", timeout=30).stdout.strip() == "'abc'"


def test_a_child_that_outlives_its_timeout_is_stopped() -> None:
    start = time.monotonic()
    with pytest.raises(ProcessError, match="did not finish in 0.3s") as err:
        process.run([sys.executable, "-c", "import time; print('partial', flush=True); time.sleep(30)"],
                    timeout=0.3)
    assert err.value.timed_out and "partial" in err.value.result.stdout
    assert time.monotonic() - start < 10


def test_a_missing_program_is_a_one_line_error() -> None:
    with pytest.raises(ProcessError, match="cannot run /nonexistent/tool") as err:
        process.run(["/nonexistent/tool"], timeout=5)
    assert not err.value.timed_out and err.value.result is None
    with pytest.raises(ValueError):
        process.run(["true"], timeout=None)            # only an interactive hand-over may wait forever


@pytest.fixture
def inherited_lock(tmp_path: Path):  # type: ignore[no-untyped-def]
    """An flock'ed file on a descriptor that is NOT close-on-exec, as a `flock` wrapper leaves it."""
    fd = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
    os.set_inheritable(fd, True)
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield fd
    os.close(fd)


def _fds(pid: int) -> dict[int, str]:
    folder = Path(f"/proc/{pid}/fd")
    return {int(n): os.readlink(folder / n) for n in os.listdir(folder)}


def test_spawn_detached_closes_descriptors_and_logs(tmp_path: Path, inherited_lock: int) -> None:
    log = tmp_path / "server.log"
    pid = process.spawn_detached([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"],
                                 log=log)
    try:
        deadline = time.monotonic() + 10
        while b"up" not in log.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.02)
        fds = _fds(pid)
        assert inherited_lock not in fds and str(tmp_path / "lock") not in fds.values()
        assert fds[0] == "/dev/null" and fds[1] == fds[2] == str(log)
        assert os.getsid(pid) == pid                      # its own session: a terminal's ^C does not reach it
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_spawn_detached_refuses_a_log_that_is_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "victim").write_text("keep")
    (tmp_path / "log").symlink_to(tmp_path / "victim")
    with pytest.raises(ProcessError, match="cannot open"):
        process.spawn_detached(["true"], log=tmp_path / "log")
    assert (tmp_path / "victim").read_text() == "keep"


def test_ssh_driver_hands_children_a_clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A stand-in ssh prints its environment: the operator's token must not be in it."""
    fake = tmp_path / "ssh"
    fake.write_text("#!/bin/sh\nenv\n")
    fake.chmod(0o755)
    monkeypatch.setenv("VAULT_TOKEN", "hvs.operator-token")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/agent.sock")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    from vaultops.drivers.ssh import SSHDriver

    drv = SSHDriver("n1", {"type": "ssh", "host": "n1", "ssh": str(fake)})
    out = drv.run("true").stdout
    assert "PATH=" in out and "SSH_AUTH_SOCK=/run/agent.sock" in out and "hvs.operator-token" not in out

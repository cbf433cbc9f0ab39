"""One way to start a process: argv only, descriptors closed, an allow-listed environment, a timeout.

    res = run([gpg, "--batch", "--decrypt"], input=blob, timeout=300, env=("GNUPGHOME",), keep_stdout=True)
    proc = popen([pg_dump, "-Fc", ...], stdout=PIPE, stderr=err, env=PG_ENV)    # a stream
    pid = spawn_detached([bao, "server", ...], log=folder / "bao.log")        # outlives vaultops

- No shell ever reads an argument: argv lists only.
- Every descriptor but 0-2 is closed in the child. A `flock` wrapper's lock fd (inherited by
  vaultops, not close-on-exec) must not be held by a server for its whole life.
- The environment is built from BASE_ENV plus the variables the caller names for that child
  (`env=`, a trailing '*' names a prefix) and values it sets (`set_env=`); it is never the parent's
  copied whole, so tokens, cloud credentials and PG passwords reach only a child that names them.
- Every blocking call has a timeout; a child that outlives it is killed.
- One result type, Result; failures raise ProcessError (a DriverError) carrying it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Union

from vaultops.errors import DriverError

TAIL = 2000
PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STDOUT = subprocess.STDOUT
Popen = subprocess.Popen
Stream = Union[int, IO[bytes], None]

# What any child may see: where programs are, who and where it runs, language and terminal.
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR", "TERM",
            "COLORTERM", "NO_COLOR")


@dataclass(frozen=True)
class Result:
    """What a command did. The text is only the tail, and never holds secrets we sent.

    `output` is the whole stdout, kept only when the caller asks (keep_stdout=True); it may be
    secret (a decrypted share, a key file), so it is then not also copied into the text tail
    that errors and logs show, and it is left out of repr.
    """

    command: str
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    output: bytes = field(default=b"", repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @classmethod
    def of(cls, command: str, exit_code: int, stdout: str | bytes = "", stderr: str | bytes = "") -> Result:
        return cls(command, exit_code, _tail(stdout), _tail(stderr))

    def last_line(self) -> str:
        return ((self.stderr or self.stdout).strip().splitlines()[-1:] or ["no output"])[0][:200]

    def check(self, node: str, *, hint: str = "see the node's service log") -> Result:
        if not self.ok:
            raise ProcessError(f"{node}: '{self.command}' exited {self.exit_code}: {self.last_line()}",
                               hint=hint, result=self)
        return self


class ProcessError(DriverError):
    """A child could not be started, timed out, or (when checked) failed; `result` says what it did."""

    def __init__(self, message: str, *, hint: str | None = None, result: Result | None = None,
                 timed_out: bool = False) -> None:
        self.timed_out = timed_out
        super().__init__(message, hint=hint, result=result)


def child_env(env: Iterable[str] = (), set_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: BASE_ENV and the named variables taken from ours, then *set_env*."""
    names = (*BASE_ENV, *env)
    exact = {n for n in names if not n.endswith("*")}
    prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
    out = {k: v for k, v in os.environ.items() if k in exact or (prefixes and k.startswith(prefixes))}
    out.update(set_env or {})
    return out


def run(argv: Sequence[str], *, timeout: float | None, input: bytes | str | None = None,
        stdin: IO[bytes] | None = None, env: Iterable[str] = (), set_env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None, command: str | None = None, keep_stdout: bool = False,
        interactive: bool = False, check: bool = False, label: str = "local") -> Result:
    """Run *argv* to its end and return its Result (a non-zero exit raises only with check=True).

    stdin is *input*, else the file *stdin*, else /dev/null. interactive=True hands the terminal
    over instead (stdin/stdout/stderr inherited, nothing captured) — only for a command the
    operator drives, where timeout=None is allowed. *command* is what results and errors show
    (default: argv joined).
    """
    argv = [str(a) for a in argv]
    shown = command or shlex.join(argv)
    if timeout is None and not interactive:
        raise ValueError("a captured child needs a timeout")
    data = input.encode() if isinstance(input, str) else input
    given: Stream = None if interactive or data is not None else (stdin if stdin is not None else DEVNULL)
    try:
        proc = subprocess.run(argv, input=data, stdin=given, capture_output=not interactive, timeout=timeout,
                              env=child_env(env, set_env), cwd=cwd, close_fds=True, check=False)
    except subprocess.TimeoutExpired as exc:
        partial = Result.of(shown, -9, exc.stdout or b"", exc.stderr or b"")
        raise ProcessError(f"{label}: '{shown}' did not finish in {timeout:g}s; it was stopped",
                           hint="check what it waits for, then retry", result=partial,
                           timed_out=True) from None
    except OSError as exc:
        raise _cannot_start(argv[0], exc, label) from None
    if keep_stdout:
        result = Result(shown, proc.returncode, "", _tail(proc.stderr or b""), proc.stdout or b"")
    else:
        result = Result.of(shown, proc.returncode, proc.stdout or b"", proc.stderr or b"")
    return result.check(label, hint=f"see the output of {os.path.basename(argv[0])}") if check else result


def popen(argv: Sequence[str], *, stdin: Stream = DEVNULL, stdout: Stream = DEVNULL, stderr: Stream = DEVNULL,
          env: Iterable[str] = (), set_env: Mapping[str, str] | None = None, label: str = "local") -> Popen[bytes]:
    """Start *argv* for streaming (pipes). The caller waits on it, with a timeout."""
    argv = [str(a) for a in argv]
    try:
        return subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=child_env(env, set_env),
                                close_fds=True)
    except OSError as exc:
        raise _cannot_start(argv[0], exc, label) from None


def spawn_detached(argv: Sequence[str], *, log: Path, env: Iterable[str] = (),
                   set_env: Mapping[str, str] | None = None, label: str = "local") -> int:
    """Start a server that outlives vaultops; returns its pid.

    Its own session (setsid), stdin from /dev/null, stdout and stderr appended to *log*, and
    every other descriptor closed. posix_spawn rather than Popen: no Popen object is left to
    warn about a child still running; reap(pid) collects it once it is stopped.
    """
    argv = [str(a) for a in argv]
    environ = child_env(env, set_env)
    path = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=environ.get("PATH")) or argv[0]
    try:
        log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        raise ProcessError(f"{label}: cannot open {log}: {exc.strerror}", hint="check the folder") from None
    try:
        actions: list[tuple] = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                (os.POSIX_SPAWN_DUP2, log_fd, 1), (os.POSIX_SPAWN_DUP2, log_fd, 2)]
        # Every descriptor open now (a wrapper's lock among them). One another thread opens meanwhile is
        # close-on-exec (Python's default); closing one it closed meanwhile is harmless (glibc ignores EBADF).
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _open_fds() if fd > 2]
        return os.posix_spawn(path, argv, environ, setsid=True, file_actions=actions)
    except OSError as exc:
        raise _cannot_start(argv[0], exc, label) from None
    finally:
        os.close(log_fd)


def reap(pid: int) -> None:
    """Collect a child started by this process once it has exited (no zombie left behind)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _open_fds() -> list[int]:
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return [int(n) for n in os.listdir(folder)]
        except OSError:
            continue
    return list(range(3, 1024))


def _cannot_start(program: str, exc: OSError, label: str) -> ProcessError:
    return ProcessError(f"{label}: cannot run {program}: {exc.strerror or exc}",
                        hint="check that it is installed and the path is right")


def _tail(value: str | bytes) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    return text[-TAIL:]


__all__ = ["BASE_ENV", "DEVNULL", "PIPE", "STDOUT", "Popen", "ProcessError", "Result", "child_env", "popen",
           "reap", "run", "spawn_detached"]

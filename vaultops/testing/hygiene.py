"""What tells a test that starts real servers from one that does not (used by tests/conftest.py).

A test without the `integration` marker may run helper processes, but it may not start a server:
  - `server_in(argv)` names the server a spawn would start (`bao server`, postgres, pebble, named,
    moto_server, sshd), also behind runuser/sudo/env; the conftest's audit hook refuses that spawn;
  - `listening_children()` lists the child processes of this one that hold a listening TCP socket,
    read from /proc (the kernel's socket table and each child's descriptors), checked after a test
    that spawned anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SERVERS = frozenset({"bao", "openbao", "postgres", "pg_ctl", "initdb", "pebble", "named", "moto_server", "sshd"})
_SUBCOMMAND = {"bao": "server", "openbao": "server"}     # `bao version` is no server
WRAPPERS = frozenset({"runuser", "sudo", "env", "setsid", "nohup", "timeout", "exec"})
_LISTEN = "0A"


def server_in(argv: Iterable[object] | str | bytes | None) -> str | None:
    """The server *argv* starts (its program, or the program a wrapper runs), else None."""
    if argv is None:
        return None
    words = [os.fsdecode(w) if isinstance(w, (str, bytes)) else str(w)
             for w in ([argv] if isinstance(argv, (str, bytes)) else argv)]
    for i, word in enumerate(words):
        name = os.path.basename(word)
        if name in SERVERS:
            needs = _SUBCOMMAND.get(name)
            return name if needs is None or needs in words[i + 1:] else None
        if not (name in WRAPPERS or name.startswith("-") or "=" in name):
            return None          # the program: what follows are its arguments
    return None


def listening_children(pid: int | None = None) -> list[tuple[int, str]]:
    """(pid, command) of every descendant of *pid* (default: us) holding a listening TCP socket."""
    inodes = _listening_inodes()
    found = []
    for child in _descendants(pid or os.getpid()):
        try:
            fds = os.listdir(f"/proc/{child}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{child}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                found.append((child, _command(child)))
                break
    return found


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


def _listening_inodes() -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == _LISTEN:
                inodes.add(cols[9])
    return inodes


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return "?"


__all__ = ["SERVERS", "listening_children", "server_in"]

"""Break request forwarding on purpose: a proxy in front of a node's cluster port that can refuse
the connections of chosen server processes.

A sandbox started with `start_linked_sandbox` advertises every node's cluster_addr on a
ClusterLink, which relays to the node's real cluster listener. Standbys dial the active node's
cluster_addr to forward requests (and the raft leader dials its followers'), so

    box, links = start_linked_sandbox(tmp, name="x", version="2.6.2")
    links[active].refuse(lambda: {box.drivers()[standby].pid()})   # that standby can no longer forward
    links[active].heal()

cuts exactly the chosen process's connections to that node -- nobody else's. Every node runs on
127.0.0.1, so the source address says nothing: the peer's process is found through /proc (the
socket inode of the peer's port in /proc/net/tcp, then the candidate pids' fd tables).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

Upstream = Callable[[], tuple[str, int]]
Pids = Callable[[], set[int | None]]


class ClusterLink:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.refused = 0                       # connections dropped so far (a test can assert the cut bit)
        self._pids: Pids | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket, int | None]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="cluster-link", daemon=True).start()

    # -- policy --------------------------------------------------------------------------------
    def refuse(self, pids: Pids) -> None:
        """From now on drop every connection from these processes, and close the ones they have."""
        with self._lock:
            self._pids = pids
            keep = []
            for client, server, pid in self._pairs:
                if pid is not None and pid in pids():
                    self.refused += 1
                    _close(client, server)
                else:
                    keep.append((client, server, pid))
            self._pairs = keep

    def heal(self) -> None:
        with self._lock:
            self._pids = None

    # -- relay ---------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, peer = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._admit, args=(client, peer[1]), daemon=True).start()

    def _admit(self, client: socket.socket, peer_port: int) -> None:
        with self._lock:
            policy = self._pids
        candidates = policy() if policy is not None else set()
        pid = peer_pid(peer_port, self.port, {p for p in candidates if p}) if candidates else None
        if pid is not None:
            with self._lock:
                self.refused += 1
            _close(client)
            return
        try:
            server = socket.create_connection(self.upstream(), timeout=5)
            server.settimeout(None)
        except OSError:
            _close(client)
            return
        with self._lock:
            self._pairs.append((client, server, peer_pid(peer_port, self.port, None)))
        for src, dst in ((client, server), (server, client)):
            threading.Thread(target=_pump, args=(src, dst), daemon=True).start()

    def stop(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for client, server, _ in self._pairs:
                _close(client, server)
            self._pairs = []


def peer_pid(peer_port: int, local_port: int, candidates: set[int] | None) -> int | None:
    """The pid (among *candidates*; None: any bao process we can see) owning the TCP socket
    127.0.0.1:peer_port -> 127.0.0.1:local_port, or None."""
    inode = _inode(peer_port, local_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    pids = candidates if candidates is not None else {int(p) for p in os.listdir("/proc") if p.isdigit()}
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


def _inode(peer_port: int, local_port: int) -> str | None:
    want_local, want_remote = f":{peer_port:04X}", f":{local_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(want_local) and fields[2].endswith(want_remote):
            return fields[9]
    return None


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    _close(src, dst)


def _close(*socks: socket.socket) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            s.close()

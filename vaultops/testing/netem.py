"""A TCP proxy on 127.0.0.1 that gives a loopback server a real network's shape.

`latency` is the round-trip time added (half each way, every byte kept in order); `rate` caps
the server-to-client direction and `up_rate` the client-to-server one, in bytes per second.
Used to hold a snapshot mid-stream (slow link), to give a loopback CA the round trips of a CA
on the internet, and to put a loopback S3 at a cloud link's distance (scripts/bench).

A rate is one bottleneck shared by every connection through the proxy, as a host's uplink is
(ten parallel uploads share it, they do not get ten links), and each byte leaves it no earlier
than latency/2 after it arrived and no earlier than the bytes queued before it allow. What the
proxy holds per direction is bounded (about a bandwidth-delay product plus a little), so a fast
sender is slowed down by TCP backpressure as behind a real link, instead of filling memory.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from typing import Any

PIECE = 64 << 10


class _Bottleneck:
    """One direction's shared rate: hands out send slots in arrival order."""

    def __init__(self, rate: int | None) -> None:
        self.rate = rate
        self._free = 0.0
        self._lock = threading.Lock()

    def slot(self, due: float, size: int) -> float:
        """When *size* bytes due at *due* may start leaving (and reserve the link for them)."""
        if not self.rate:
            return due
        with self._lock:
            start = max(due, self._free)
            self._free = start + size / self.rate
            return start


class LinkProxy:
    def __init__(self, upstream: tuple[str, int], *, latency: float = 0.0, rate: int | None = None,
                 up_rate: int | None = None) -> None:
        self.upstream, self.latency, self.rate, self.up_rate = upstream, latency, rate, up_rate
        self._down, self._up = _Bottleneck(rate), _Bottleneck(up_rate)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._socks: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="netem-accept", daemon=True).start()

    def __enter__(self) -> LinkProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.upstream)
            except OSError:
                return
            self._socks += [client, server]
            for src, dst, link in ((client, server, self._up), (server, client, self._down)):
                _Direction(src, dst, delay=self.latency / 2, link=link).start()

    def stop(self) -> None:
        self._closed.set()
        _shutdown(self._listener)  # wakes the blocked accept(); close() alone leaves it listening
        self._listener.close()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()


class _Direction:
    """Reads as fast as the source sends, into a bounded queue; a second thread delivers each piece
    once it is due and the shared bottleneck is free for it."""

    def __init__(self, src: socket.socket, dst: socket.socket, *, delay: float, link: _Bottleneck) -> None:
        self.src, self.dst, self.delay, self.link = src, dst, delay, link
        # in flight for `delay`, plus what waits for the bottleneck: ~2 x BDP, at least 4 MiB
        held = max(4 << 20, int(2 * (link.rate or 0) * max(delay, 0.001) * 2))
        self.q: queue.Queue[tuple[float, bytes] | None] = queue.Queue(maxsize=held // PIECE if link.rate else 0)

    def start(self) -> None:
        threading.Thread(target=self._read, name="netem-read", daemon=True).start()
        threading.Thread(target=self._deliver, name="netem-deliver", daemon=True).start()

    def _read(self) -> None:
        try:
            while data := self.src.recv(PIECE):
                self.q.put((time.monotonic() + self.delay, data))
        except OSError:
            pass
        self.q.put(None)

    def _deliver(self) -> None:
        try:
            while (item := self.q.get()) is not None:
                due, data = item
                start = self.link.slot(due, len(data))
                if (wait := start - time.monotonic()) > 0:
                    time.sleep(wait)
                self.dst.sendall(data)
            _shutdown(self.dst, socket.SHUT_WR)  # pass the end of stream on; the other way stays open
        except OSError:
            _shutdown(self.dst)
            _shutdown(self.src)


def _shutdown(sock: Any, how: int = socket.SHUT_RDWR) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(how)

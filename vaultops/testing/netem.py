"""A TCP proxy on 127.0.0.1 that gives a loopback server a real network's shape.

`latency` is the round-trip time added (half each way, every byte kept in order); `rate`
caps the server-to-client direction in bytes per second. Used to hold a snapshot mid-stream
(slow link) and to give a loopback CA the round trips of a CA on the internet.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from typing import Any


class LinkProxy:
    def __init__(self, upstream: tuple[str, int], *, latency: float = 0.0, rate: int | None = None) -> None:
        self.upstream, self.latency, self.rate = upstream, latency, rate
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
            for src, dst, rate in ((client, server, None), (server, client, self.rate)):
                _Direction(src, dst, delay=self.latency / 2, rate=rate).start()

    def stop(self) -> None:
        self._closed.set()
        _shutdown(self._listener)  # wakes the blocked accept(); close() alone leaves it listening
        self._listener.close()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()


class _Direction:
    """Reads as fast as the source sends; a second thread delivers each piece once it is due."""

    def __init__(self, src: socket.socket, dst: socket.socket, *, delay: float, rate: int | None) -> None:
        self.src, self.dst, self.delay, self.rate = src, dst, delay, rate
        self.q: queue.Queue[tuple[float, bytes] | None] = queue.Queue()

    def start(self) -> None:
        threading.Thread(target=self._read, name="netem-read", daemon=True).start()
        threading.Thread(target=self._deliver, name="netem-deliver", daemon=True).start()

    def _read(self) -> None:
        size = max(1, self.rate // 20) if self.rate else 65536
        try:
            while data := self.src.recv(size):
                self.q.put((time.monotonic() + self.delay, data))
        except OSError:
            pass
        self.q.put(None)

    def _deliver(self) -> None:
        try:
            while (item := self.q.get()) is not None:
                due, data = item
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                self.dst.sendall(data)
                if self.rate:
                    time.sleep(len(data) / self.rate)
            _shutdown(self.dst, socket.SHUT_WR)  # pass the end of stream on; the other way stays open
        except OSError:
            _shutdown(self.dst)
            _shutdown(self.src)


def _shutdown(sock: Any, how: int = socket.SHUT_RDWR) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(how)

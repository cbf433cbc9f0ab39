from __future__ import annotations

import os
import socket
import threading

from vaultops.testing.netem import LinkProxy


def _echo_server() -> tuple[socket.socket, int]:
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(bytes(b ^ 0xFF for b in data))  # visibly the server's answer, not our bytes

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def test_bytes_cross_the_link_whole_and_in_order_both_ways() -> None:
    srv, port = _echo_server()
    payload = os.urandom(300_000)
    with LinkProxy(("127.0.0.1", port), latency=0.01, rate=4 << 20) as link:
        with socket.create_connection(("127.0.0.1", link.port)) as c:
            c.sendall(payload[:1000])
            got = b""
            while len(got) < 1000:
                got += c.recv(65536)
            assert got == bytes(b ^ 0xFF for b in payload[:1000])
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
            rest = b""
            while data := c.recv(65536):
                rest += data
    srv.close()
    assert rest == bytes(b ^ 0xFF for b in payload)


def test_stop_closes_the_listener() -> None:
    srv, port = _echo_server()
    link = LinkProxy(("127.0.0.1", port))
    link.stop()
    socket.create_connection(("127.0.0.1", port), timeout=5).close()  # ends serve() before its fd is reused
    srv.close()
    try:
        socket.create_connection(("127.0.0.1", link.port), timeout=1).close()
    except OSError:
        return
    raise AssertionError("the proxy still accepts connections after stop()")


def _sink_server() -> tuple[socket.socket, int, list[int]]:
    """Accepts connections, reads each to its end, then answers with the byte count."""
    srv = socket.create_server(("127.0.0.1", 0))
    counts: list[int] = []

    def one(conn: socket.socket) -> None:
        with conn:
            n = 0
            while data := conn.recv(65536):
                n += len(data)
            counts.append(n)
            conn.sendall(str(n).encode())

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1], counts


def test_the_upload_rate_is_one_bottleneck_shared_by_all_connections() -> None:
    import time

    srv, port, counts = _sink_server()
    size, rate = 1 << 20, 4 << 20            # two uploads of 1 MiB over one 4 MiB/s uplink: >= 0.5 s
    with LinkProxy(("127.0.0.1", port), up_rate=rate) as link:
        def upload() -> None:
            with socket.create_connection(("127.0.0.1", link.port)) as c:
                c.sendall(os.urandom(size))
                c.shutdown(socket.SHUT_WR)
                assert c.recv(64) == str(size).encode()

        t0 = time.monotonic()
        threads = [threading.Thread(target=upload) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
    srv.close()
    assert counts == [size, size]
    assert elapsed >= 2 * size / rate * 0.95   # a floor, not a speed target: shared, the link is never faster

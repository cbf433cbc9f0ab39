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

"""The transport against tiny local HTTP servers standing in for a proxy and a hung node."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vaultops.errors import SecurityError, VaultBadResponse, VaultSealed, VaultUnreachable
from vaultops.vault import NodeClient, fan_out


class Proxy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/v1/sys/seal-status"):
            body, ctype, code = b"<html>502 Bad Gateway</html>", "text/html", 502
        else:
            body, ctype, code = b'{"errors":["Vault is sealed"]}', "application/json", 503
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def hung() -> Iterator[str]:
    """Accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


def test_plain_http_refused_off_loopback() -> None:
    with pytest.raises(SecurityError, match="--allow-insecure-http"):
        NodeClient("n", "http://vault.example.com:8200")
    NodeClient("n", "http://vault.example.com:8200", allow_insecure_http=True)
    NodeClient("n", "http://127.0.0.1:8200")


def test_non_json_answer_is_named(proxy: str) -> None:
    with pytest.raises(VaultBadResponse, match="non-JSON.*proxy"):
        NodeClient("n", proxy).seal.status()
    with pytest.raises(VaultSealed, match="unseal"):
        NodeClient("n", proxy, token="t").read("secret/data/x")


def test_hung_node_does_not_block_others(proxy: str, hung: str) -> None:
    clients = [NodeClient("hung", hung, timeout=30), NodeClient("ok", proxy)]
    start = time.monotonic()
    results = fan_out(clients, lambda c: c.transport.request("GET", "sys/leader", ok=(503,)).status,
                      timeout=1.0)
    assert time.monotonic() - start < 5
    assert results[0].node == "hung" and isinstance(results[0].error, VaultUnreachable)
    assert results[1].value == 503


def test_connection_refused_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(VaultUnreachable, match="unreachable"):
        NodeClient("gone", f"http://127.0.0.1:{port}").seal.status()

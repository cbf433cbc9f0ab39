"""read_blocks over a real chunked HTTP response from a local server."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from vaultops.errors import VaultUnreachable
from vaultops.vault.http import read_blocks

BODY = os.urandom(3 * 65536 + 12345)


def _handler(cut: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pos, sizes = 0, [1, 7000, 32768, 100, 65536]
            while pos < len(BODY):
                piece = BODY[pos:pos + sizes[pos % len(sizes)]]
                if cut and pos > len(BODY) // 2:
                    self.wfile.write(b"%x\r\n" % len(piece) + piece[:10])  # dies inside a chunk
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                pos += len(piece)
            self.wfile.write(b"0\r\n\r\n")

    return Handler


@pytest.fixture(params=[False, True], ids=["whole", "cut"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _handler(request.param))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/", request.param
    srv.shutdown()
    srv.server_close()


def test_blocks_are_full_sized_and_the_body_is_exact_or_the_cut_is_an_error(server: tuple[str, bool]) -> None:
    url, cut = server
    with urllib3.PoolManager() as pool:
        resp = pool.request("GET", url, preload_content=False)
        blocks: list[bytes] = []
        try:
            if cut:
                # translated in the door: one error naming the node, never urllib3's or http.client's
                with pytest.raises(VaultUnreachable, match="node1: the download broke off") as err:
                    for block in read_blocks(resp, 50_000, node="node1"):
                        blocks.append(bytes(block))
                assert err.value.node == "node1" and "\n" not in str(err.value)
                assert b"".join(blocks) == BODY[:len(b"".join(blocks))]
                return
            blocks = [bytes(b) for b in read_blocks(resp, 50_000)]
        finally:
            resp.close()
    assert b"".join(blocks) == BODY
    assert all(len(b) == 50_000 for b in blocks[:-1]) and 0 < len(blocks[-1]) <= 50_000


def test_a_body_shorter_than_its_content_length_is_an_error_not_a_short_read() -> None:
    """http.client's readinto ends such a body quietly; the door does not."""
    class Short(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:70_000])
            self.close_connection = True

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Short)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with urllib3.PoolManager() as pool:
            resp = pool.request("GET", f"http://127.0.0.1:{srv.server_address[1]}/", preload_content=False)
            got = 0
            with pytest.raises(VaultUnreachable, match="h1: the download broke off"):
                for block in read_blocks(resp, 50_000, node="h1"):
                    got += len(block)
            assert got == 70_000
            resp.close()
    finally:
        srv.shutdown()
        srv.server_close()

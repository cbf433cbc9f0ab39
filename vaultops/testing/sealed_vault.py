"""A sealed one-node Vault over HTTP for tests: GET sys/seal-status and PUT sys/unseal, nothing more.

It counts distinct keys like OpenBao (field notes) and records each key and raw request body it was
sent, so a test can tell that a submission really reached it, and in which bytes.

    with serve(SealedVault()) as address: NodeClient("node1", address).seal.unseal(key)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SealedVault:
    def __init__(self, *, threshold: int = 3, shares: int = 5) -> None:
        self.t, self.n = threshold, shares
        self.received: list[str] = []
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()

    def status(self) -> dict[str, object]:
        progress = len(set(self.received))
        return {"type": "shamir", "initialized": True, "sealed": True, "t": self.t, "n": self.n,
                "progress": progress, "nonce": "nonce-1" if progress else "", "version": "2.7.2",
                "storage_type": "raft"}


def handler(vault: SealedVault) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            self._answer(vault.status())

        def do_PUT(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = json.loads(raw or b"{}")
            with vault.lock:
                vault.bodies.append(raw)
                if "key" in body:
                    vault.received.append(body["key"])
                self._answer(vault.status())

        def _answer(self, data: dict[str, object]) -> None:
            raw = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass
    return Handler


@contextmanager
def serve(vault: SealedVault) -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler(vault))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()

"""A TEST DOUBLE of Consul's snapshot and KV HTTP API - not Consul.

No Consul binary is obtainable here, so vaultops' Consul support is tested against this small
server built from Consul's documented API:

    GET  /v1/snapshot[?stale]   X-Consul-Token must match, else 403 "Permission denied"
         -> gzipped tar in the real layout (meta.json, state.bin, SHA256SUMS; no .sealed)
            with X-Consul-Index, X-Consul-KnownLeader, X-Consul-LastContact headers
    PUT  /v1/snapshot           the same archive; checked and loaded, else 500
    PUT  /v1/kv/<key>  GET /v1/kv/<key>?raw   (token checked) to put data in and read it back
    GET  /v1/status/leader                    (no token) -> "127.0.0.1:8300", or "" without a leader
    GET  /v1/operator/raft/configuration      (token checked) -> {"Servers": [{ID, Node, Address, Leader,
                                              Voter, ProtocolVersion}], "Index"}
    GET  /v1/acl/token/self                   the token's AccessorID, SecretID, Description, Policies;
                                              403 "ACL not found" for an unknown token

What differs from Consul: state.bin here is JSON of the KV map (Consul's is a msgpack stream
of raft log records); vaultops treats state.bin of a Consul snapshot as opaque bytes anyway.
The double is one server; `servers` can list more for the raft configuration.
Fault switches for tests: `truncate_next`, `corrupt_next`, `known_leader` (False: no leader in
the snapshot headers, status/leader and the raft configuration).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from vaultops.testing.snapshots import tar_gz


class ConsulDouble:
    def __init__(self, *, token: str = "consul-test-token", host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token
        self.kv: dict[str, bytes] = {}
        self.index = 1
        self.known_leader = True
        self.truncate_next = False
        self.corrupt_next = False
        self.snapshots_served = 0
        self.restores = 0
        self.servers: list[dict[str, Any]] = [{"ID": "consul-double", "Node": "consul-double", "Address": "127.0.0.1:8300",
                         "Voter": True, "ProtocolVersion": "3"}]
        self.token_policies = ["vault-backup"]
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="consul-double", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}" if isinstance(host, str) else f"http://{host.decode()}:{port}"

    def start(self) -> ConsulDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- archive format ------------------------------------------------------
    def archive(self) -> bytes:
        with self._lock:
            state = json.dumps({k: v.hex() for k, v in sorted(self.kv.items())}).encode()
            index = self.index
        meta = json.dumps({"Version": 1, "ID": f"2-{index}-double", "Index": index, "Term": 2, "Peers": None,
                           "Configuration": {"Servers": [{"Suffrage": 0, "ID": "consul-double",
                                                          "Address": "127.0.0.1:8300"}]},
                           "ConfigurationIndex": 1, "Size": len(state)}).encode()
        sums = (f"{hashlib.sha256(meta).hexdigest()}  meta.json\n"
                f"{hashlib.sha256(state).hexdigest()}  state.bin\n").encode()
        return tar_gz([("meta.json", meta), ("state.bin", state), ("SHA256SUMS", sums)])

    # -- status, operator and ACL answers ------------------------------------------
    def leader(self) -> str:
        return str(self.servers[0]["Address"]) if self.known_leader and self.servers else ""

    def raft_configuration(self) -> dict[str, Any]:
        leader = self.leader()
        return {"Servers": [{**s, "Leader": s["Address"] == leader} for s in self.servers], "Index": self.index}

    def token_self(self) -> dict[str, Any]:
        return {"AccessorID": "6a1253d2-1785-24fd-91c2-f8e78c745511", "SecretID": self.token,
                "Description": "vaultops backup (double)", "Local": False,
                "Policies": [{"ID": f"id-{p}", "Name": p} for p in self.token_policies]}

    def load(self, data: bytes) -> None:
        """Accept an archive only if its SHA256SUMS hold, as Consul does."""
        members: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tar:
            for m in tar:
                members[m.name] = tar.extractfile(m).read()  # type: ignore[union-attr]
        sums: dict[str, str] = {}
        for line in members["SHA256SUMS"].decode().splitlines():
            digest, _, name = line.partition("  ")
            sums[name] = digest
        for name in ("meta.json", "state.bin"):
            if hashlib.sha256(members[name]).hexdigest() != sums.get(name):
                raise ValueError(f"{name} does not match SHA256SUMS")
        kv = {k: bytes.fromhex(v) for k, v in json.loads(members["state.bin"]).items()}
        with self._lock:
            self.kv = kv
            self.index += 1
            self.restores += 1


def _handler(double: ConsulDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self) -> bool:
            if self.headers.get("X-Consul-Token") == double.token:
                return True
            self._send(403, b"Permission denied")
            return False

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = bytearray()
                while (size := int(self.rfile.readline().strip() or b"0", 16)):
                    out += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return bytes(out)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _json(self, value: Any) -> None:
            self._send(200, json.dumps(value).encode(), {"Content-Type": "application/json"})

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            path = self.path.split("?")[0]
            if path == "/v1/status/leader":  # no ACL on the status endpoints
                self._json(double.leader())
                return
            if path == "/v1/acl/token/self" and self.headers.get("X-Consul-Token") != double.token:
                self._send(403, b"ACL not found")
                return
            if not self._authorized():
                return
            if path == "/v1/acl/token/self":
                self._json(double.token_self())
            elif path == "/v1/operator/raft/configuration":
                self._json(double.raft_configuration())
            elif path == "/v1/snapshot":
                self._snapshot()
            elif path.startswith("/v1/kv/"):
                value = double.kv.get(path[len("/v1/kv/"):])
                self._send(200, value) if value is not None else self._send(404, b"")
            else:
                self._send(404, b"")

        def _snapshot(self) -> None:
            data = double.archive()
            if double.truncate_next:
                double.truncate_next, data = False, data[: len(data) // 2]
            if double.corrupt_next:
                double.corrupt_next = False
                data = data[:40] + bytes([data[40] ^ 0xFF]) + data[41:]
            double.snapshots_served += 1
            self._send(200, data, {"Content-Type": "application/x-gzip", "X-Consul-Index": str(double.index),
                                   "X-Consul-KnownLeader": "true" if double.known_leader else "false",
                                   "X-Consul-LastContact": "0"})

        def do_PUT(self) -> None:  # noqa: N802
            body = self._body()
            if not self._authorized():
                return
            path = self.path.split("?")[0]
            if path == "/v1/snapshot":
                try:
                    double.load(body)
                except (ValueError, KeyError, OSError, tarfile.TarError) as exc:
                    self._send(500, f"failed to restore snapshot: {exc}".encode())
                    return
                self._send(200, b"")
            elif path.startswith("/v1/kv/"):
                with double._lock:
                    double.kv[path[len("/v1/kv/"):]] = body
                    double.index += 1
                self._send(200, b"true")
            else:
                self._send(404, b"")

    return Handler

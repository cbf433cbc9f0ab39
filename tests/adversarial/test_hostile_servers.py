"""Hostile HTTP servers in place of a Vault node: every answer is bounded in size and time.

Small raw-socket servers on 127.0.0.1 answer one path in a hostile way (an endless body,
one byte a second, HTML, a JSON list, nesting deep enough to break the parser, redirects,
a huge Content-Length, a gzip bomb, escape sequences in the error text) and the other
paths like a plain unsealed (or sealed) node. The safe outcome: one VaultError line without
control characters, well within the call's timeout, and little memory -- measured as VmHWM
of a `vaultops` subprocess that runs under an address-space limit (before the cap, an
endless body grew vaultops to GBs and a MemoryError traceback).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vaultops.errors import VaultBadResponse, VaultError, VaultStandby, VaultUnreachable
from vaultops.vault import NodeClient
from vaultops.vault.http import MAX_JSON_BYTES, read_blocks

Send = Callable[[socket.socket, threading.Event], None]
UNSEALED = {"type": "shamir", "initialized": True, "sealed": False, "t": 3, "n": 5, "progress": 0, "nonce": "",
            "version": "2.7.2", "storage_type": "raft", "cluster_id": "c-1", "cluster_name": "hostile"}
SEALED = {**UNSEALED, "sealed": True, "cluster_id": None}
HEALTH = {"initialized": True, "sealed": False, "standby": False, "version": "2.7.2", "cluster_id": "c-1"}


def answer(status: int, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def plain(doc: object, status: int = 200) -> Send:
    return lambda s, stop: s.sendall(answer(status, json.dumps(doc).encode(), "Content-Type: application/json"))


# -- the hostile answers ------------------------------------------------------------------------

def endless_chunked(s: socket.socket, stop: threading.Event) -> None:
    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b"%x\r\n%s\r\n" % (1 << 16, b" " * (1 << 16))
    while not stop.is_set():
        s.sendall(piece)


def endless_unframed(s: socket.socket, stop: threading.Event) -> None:
    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"a\": \"")
    while not stop.is_set():
        s.sendall(b"x" * (1 << 16))


def endless_error(s: socket.socket, stop: threading.Event) -> None:
    s.sendall(b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n")
    while not stop.is_set():
        s.sendall(b"10000\r\n" + b"[" * (1 << 16) + b"\r\n")


def slow_body(s: socket.socket, stop: threading.Event) -> None:
    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    while not stop.wait(1.0):
        s.sendall(b" ")


def slow_headers(s: socket.socket, stop: threading.Event) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
        if stop.wait(1.0):
            return
        s.sendall(bytes([byte]))


def huge_length(s: socket.socket, stop: threading.Event) -> None:
    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n{")
    while not stop.wait(0.2):
        s.sendall(b" ")


@functools.cache
def bomb() -> bytes:
    return gzip.compress(b" " * (64 << 20), compresslevel=9)  # 64 MiB of JSON whitespace in ~64 KiB


def gzip_bomb(s: socket.socket, stop: threading.Event) -> None:
    s.sendall(answer(200, bomb(), "Content-Encoding: gzip", "Content-Type: application/json"))


def redirect_elsewhere(s: socket.socket, stop: threading.Event) -> None:
    s.sendall(answer(307, b"", "Location: http://vault.attacker.example/v1/sys/seal-status\x1b[2J"))


def redirect_loop(s: socket.socket, stop: threading.Event) -> None:
    s.sendall(answer(307, b"", "Location: /v1/sys/seal-status"))


HOSTILE: dict[str, tuple[Send, type[VaultError]]] = {
    "endless chunked body": (endless_chunked, VaultBadResponse),
    "endless unframed body": (endless_unframed, VaultBadResponse),
    "endless error body": (endless_error, VaultBadResponse),
    "slowloris body": (slow_body, VaultUnreachable),
    "slowloris headers": (slow_headers, VaultUnreachable),
    "huge Content-Length": (huge_length, VaultBadResponse),
    "gzip bomb": (gzip_bomb, VaultBadResponse),
    "non-JSON": (lambda s, stop: s.sendall(answer(200, b"<html>hello</html>", "Content-Type: text/html")),
                 VaultBadResponse),
    "JSON list": (plain([1, 2, 3]), VaultBadResponse),
    "deep nesting": (lambda s, stop: s.sendall(answer(200, b"[" * 500_000)), VaultBadResponse),
    "invalid UTF-8": (lambda s, stop: s.sendall(answer(200, b'{"a": "\xff\xfe"}')), VaultBadResponse),
    "redirect elsewhere": (redirect_elsewhere, VaultStandby),
    "307 loop": (redirect_loop, VaultStandby),
    "escapes in errors": (plain({"errors": ["line1\nline2\x1b[2J\x07", {"x": 1}]}, 500), VaultError),
    "errors not a list": (plain({"errors": "one\rtwo"}, 400), VaultError),
    "closed at once": (lambda s, stop: None, VaultUnreachable),
}


@dataclass
class Hostile:
    """A node whose *path* answers with *send*; the other paths answer like *normal*."""

    send: Send
    path: str
    normal: dict[str, Send] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    hits: list[str] = field(default_factory=list)
    address: str = ""

    def route(self, path: str) -> Send:
        self.hits.append(path)
        if path.startswith(f"/v1/{self.path}"):
            return self.send
        for prefix, send in self.normal.items():
            if path.startswith(f"/v1/{prefix}"):
                return send
        return plain({"errors": ["no such path"]}, 404)


@pytest.fixture
def hostile_server() -> Iterator[Callable[..., Hostile]]:
    servers: list[tuple[socketserver.ThreadingTCPServer, Hostile]] = []

    def start(send: Send, path: str = "sys/seal-status", normal: dict[str, Send] | None = None) -> Hostile:
        host = Hostile(send, path, normal if normal is not None else {"sys/seal-status": plain(UNSEALED),
                                                                     "sys/health": plain(HEALTH)})

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data = b""
                while b"\r\n\r\n" not in data:
                    got = self.request.recv(65536)
                    if not got:
                        return
                    data += got
                path = data.split(b" ", 2)[1].decode()
                length = next((int(line.split(b":")[1]) for line in data.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = data.split(b"\r\n\r\n", 1)[1]
                while len(body) < length:
                    body += self.request.recv(65536)
                try:
                    host.route(path)(self.request, host.stop)
                except OSError:
                    pass  # the client gave up: that is the point

        srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append((srv, host))
        host.address = f"http://127.0.0.1:{srv.server_address[1]}"
        return host

    yield start
    for srv, host in servers:
        host.stop.set()
        srv.shutdown()
        srv.server_close()


def one_line(text: str) -> None:
    assert "Traceback" not in text
    assert not any(c in text for c in "\x1b\x07\r"), repr(text)


# -- the transport, in process ------------------------------------------------------------------

@pytest.mark.parametrize("name", list(HOSTILE))
def test_every_hostile_answer_is_one_bounded_error(name: str, hostile_server: Callable[..., Hostile]) -> None:
    send, expected = HOSTILE[name]
    client = NodeClient("h1", hostile_server(send).address, timeout=2.0)
    start = time.monotonic()
    with pytest.raises(expected) as err:
        client.seal.status()
    elapsed = time.monotonic() - start
    assert elapsed < 3.5, f"{name}: {elapsed:.1f}s"
    message = str(err.value)
    assert "\n" not in message and len(message) < 800
    one_line(message)
    if "redirect elsewhere" in name:
        assert "not followed" in message and "attacker" in message


def test_a_cut_answer_leaves_the_client_usable(hostile_server: Callable[..., Hostile]) -> None:
    """After the deadline cut a pooled connection, the next call on the same client works."""
    client = NodeClient("h1", hostile_server(slow_body, path="sys/leader").address, timeout=1.0)
    with pytest.raises(VaultUnreachable, match="no complete answer|broke off"):
        client.ha.leader()
    assert client.seal.status().cluster_id == "c-1"
    with pytest.raises(VaultBadResponse, match="more than 4 MiB"):
        NodeClient("h1", hostile_server(endless_chunked, path="sys/leader").address, timeout=5.0).ha.leader()


def test_snapshots_stay_streamed_past_the_cap(hostile_server: Callable[..., Hostile]) -> None:
    """The cap is for JSON answers: a 200 snapshot streams whatever its size; an error body is capped."""
    size = MAX_JSON_BYTES * 3 + 5

    def snapshot(s: socket.socket, stop: threading.Event) -> None:
        s.sendall(answer(200, b"\0" * size, "Content-Type: application/gzip"))

    client = NodeClient("h1", hostile_server(snapshot, path="sys/storage/raft/snapshot").address, token="t")
    resp = client.raft.snapshot()
    try:
        assert sum(len(b) for b in read_blocks(resp, 1 << 20)) == size
    finally:
        resp.release_conn()

    bad = NodeClient("h1", hostile_server(endless_error, path="sys/storage/raft/snapshot").address, token="t")
    start = time.monotonic()
    with pytest.raises(VaultBadResponse, match="more than 4 MiB"):
        bad.raft.snapshot()
    assert time.monotonic() - start < 2
    slow = NodeClient("h1", hostile_server(slow_headers, path="sys/storage/raft/snapshot").address, token="t")
    with pytest.raises(VaultUnreachable, match="no complete answer.*within 2s"):
        slow.raft.snapshot(timeout=2.0)
    assert time.monotonic() - start < 6


@pytest.mark.parametrize("name", ["endless error body", "escapes in errors", "errors not a list", "307 loop"])
def test_a_raft_backup_source_fails_in_one_line(name: str, hostile_server: Callable[..., Hostile]) -> None:
    from vaultops.services.backup.formats.raft import RaftSource

    host = hostile_server(HOSTILE[name][0], path="sys/storage/raft/snapshot")
    start = time.monotonic()
    with pytest.raises(VaultError) as err, RaftSource([NodeClient("h1", host.address, token="t")]).open():
        pass
    one_line(str(err.value))
    assert "\n" not in str(err.value) and time.monotonic() - start < 3
    assert host.hits == ["/v1/sys/health", "/v1/sys/storage/raft/snapshot"]


@pytest.mark.parametrize("token", ["s.abc\ndef", "s.abc\r\nX-Evil: 1", "s.ab c", "s.abc\x00", "s.äbc", "s.ab€"])
def test_a_token_that_cannot_be_a_header_is_refused_not_a_traceback(token: str,
                                                                     hostile_server: Callable[..., Hostile]) -> None:
    from vaultops.errors import VaultAuthError

    host = hostile_server(plain(HEALTH), path="sys/ha-status")
    client = NodeClient("h1", host.address, token=token)
    with pytest.raises(VaultAuthError, match="cannot be sent") as err:
        client.ha.ha_status()
    assert token not in str(err.value) and token[2:] not in str(err.value)
    assert host.hits == []  # nothing was sent


# -- the commands, as subprocesses: one line, bounded time and memory ----------------------------

PROBE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # a runaway read fails here, not the machine
from vaultops.cli import main
try:
    code = main(sys.argv[1:])
finally:
    hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    print("PROBE-VMHWM", int(hwm.split()[1]), file=sys.stderr)
sys.exit(code)
"""


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float
    peak_mib: float


def run_vaultops(tmp_path: Path, address: str, *argv: str, stdin: str = "", token: str | None = None,
                 timeout: float = 60.0) -> Run:
    cfg = tmp_path / "vaultops.yaml"
    cfg.write_text(f"cluster: {{name: hostile, storage: raft}}\nnodes:\n  - {{name: h1, address: '{address}'}}\n"
                   f"journal: {{path: {tmp_path / 'journal.jsonl'}}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    if token:
        env["VAULT_TOKEN"] = token
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", PROBE, "--config", str(cfg), *argv], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env)
    seconds = time.monotonic() - start
    lines = proc.stderr.splitlines()
    peak = next(int(ln.split()[1]) for ln in lines if ln.startswith("PROBE-VMHWM")) / 1024
    err = "\n".join(ln for ln in lines if not ln.startswith("PROBE-VMHWM"))
    return Run(proc.returncode, proc.stdout, err, seconds, peak)


CLI_CASES = ["endless chunked body", "endless unframed body", "slowloris body", "slowloris headers",
             "huge Content-Length", "gzip bomb", "non-JSON", "307 loop"]


@pytest.mark.parametrize("name", CLI_CASES)
def test_status_against_a_hostile_node(name: str, tmp_path: Path, hostile_server: Callable[..., Hostile]) -> None:
    run = run_vaultops(tmp_path, hostile_server(HOSTILE[name][0]).address, "status", "--timeout", "2")
    assert run.code == 12, run
    one_line(run.err)
    assert "UNREACHABLE" in run.out and "h1" in run.out
    assert run.seconds < 12 and run.peak_mib < 200, run


@pytest.mark.parametrize("name", ["endless chunked body", "slowloris headers", "huge Content-Length", "JSON list"])
def test_status_raft_check_against_a_hostile_node(name: str, tmp_path: Path,
                                                  hostile_server: Callable[..., Hostile]) -> None:
    """The token-authenticated raft call (autopilot state) is the hostile one: reported, bounded."""
    host = hostile_server(HOSTILE[name][0], path="sys/storage/raft/autopilot/state")
    run = run_vaultops(tmp_path, host.address, "status", "--timeout", "2", token="s.fine")
    one_line(run.err)
    assert "raft not checked" in run.out, run
    assert run.seconds < 12 and run.peak_mib < 200, run


@pytest.mark.parametrize("name", ["endless chunked body", "slowloris body", "huge Content-Length", "non-JSON",
                                  "escapes in errors"])
def test_unseal_submission_to_a_hostile_node(name: str, tmp_path: Path, hostile_server: Callable[..., Hostile]) -> None:
    import base64

    host = hostile_server(HOSTILE[name][0], path="sys/unseal", normal={"sys/seal-status": plain(SEALED)})
    share = base64.b64encode(bytes(range(1, 33)) + b"\x07").decode()
    run = run_vaultops(tmp_path, host.address, "unseal", "--share-stdin", "--no-manifest", "--timeout", "2",
                       stdin=share + "\n")
    assert run.code != 0, run
    for line in run.err.splitlines():
        one_line(line)
    assert share not in run.out + run.err
    # A submission may wait for a raft follower's join: its deadline is the ceremony's unseal_timeout (30 s).
    assert run.seconds < (40 if "slowloris" in name else 10) and run.peak_mib < 200, run
    assert "/v1/sys/unseal" in host.hits  # the hostile answer was the submission's

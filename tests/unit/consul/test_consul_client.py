"""vaultops.consul against the in-repo Consul HTTP double (not Consul) and hostile stand-ins.

Leader, raft peers and the ACL token's self-check go through py-consul with vaultops' bounded
transport: a hostile answer is one line within its deadline, the token is ours (never
CONSUL_HTTP_TOKEN's), its secret never shown. The same facts feed `vaultops status` and the
upgrade preflight on Consul storage.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from vaultops.cli import main
from vaultops.config import parse_config_file
from vaultops.consul import ConsulClient, ConsulFacts, cluster_consul
from vaultops.errors import BackupError, RunbookError, SecurityError
from vaultops.services.status import ClusterStatus, NodeStatus, StatusExit
from vaultops.testing.consul_double import ConsulDouble

Handler = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def consul() -> Iterator[ConsulDouble]:
    double = ConsulDouble().start()
    yield double
    double.stop()


@pytest.fixture
def hostile() -> Iterator[Callable[[Handler], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Handler) -> str:
        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                answer(self)

            def log_message(self, *args: object) -> None:
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_facts_from_the_double(consul: ConsulDouble) -> None:
    facts = ConsulClient(consul.address, token=consul.token).facts()
    assert facts.leader == "127.0.0.1:8300" and facts.errors == {} and facts.problems == []
    assert [(s.node, s.leader, s.voter) for s in facts.servers] == [("consul-double", True, True)]
    assert facts.token is not None and facts.token.policies == ("vault-backup",)
    assert consul.token not in json.dumps(facts.to_json())   # the self-check answer holds the secret


def test_the_configured_token_wins_over_the_environment(consul: ConsulDouble, monkeypatch) -> None:
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "from-the-environment")
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "127.0.0.1:1")
    facts = ConsulClient(consul.address, token=consul.token).facts()
    assert facts.errors == {} and facts.token is not None


def test_a_wrong_token_is_named_per_check_and_never_echoed(consul: ConsulDouble) -> None:
    facts = ConsulClient(consul.address, token="wrong-secret").facts()
    assert facts.leader == "127.0.0.1:8300"               # status/leader needs no token
    assert set(facts.errors) == {"raft", "token"}
    assert "permission denied" in facts.errors["token"]
    assert all("wrong-secret" not in line and "\n" not in line for line in facts.problems)


def test_no_leader_is_a_problem(consul: ConsulDouble) -> None:
    consul.known_leader = False
    facts = ConsulClient(consul.address, token=consul.token).facts()
    assert facts.problems[0] == "consul has no leader"


@pytest.mark.parametrize("address", ["http://consul.example.com:8500", "http://10.0.0.5:8500"])
def test_plain_http_off_loopback_is_refused_before_any_connection(address: str) -> None:
    with pytest.raises(SecurityError, match="refusing plain http to Consul"):
        ConsulClient(address, token="t")
    ConsulClient(address, token="t", allow_insecure_http=True)


def _huge(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.end_headers()
    h.wfile.write(b'"' + b"x" * (5 << 20))   # no length, never ends in time: only the cap stops it


def _trickle(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", "1000")
    h.end_headers()
    try:
        for _ in range(1000):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.05)
    except OSError:  # the client hung up at its deadline, as it should
        pass


def _answer(status: int, body: bytes) -> Handler:
    def answer(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return answer


def _cut_snapshot(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(3 << 20))
    h.send_header("X-Consul-KnownLeader", "true")
    h.end_headers()
    h.wfile.write(b"\x1f\x8b" + b"\0" * (1 << 20))
    h.wfile.flush()
    h.close_connection = True
    h.connection.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize("answer,match", [
    (_huge, "more than 4 MiB"), (_trickle, "no complete answer"),
    (_answer(500, b"\x1b[31mboom\r\nX-Evil: 1\x07"), r"leader: failed \(500 .*boom X-Evil: 1"),
    (_answer(200, b'{"leader": "x"}'), "answered a JSON dict, not an address"),
    (_answer(200, b"<html>proxy</html>"), "leader: failed"),
    (_answer(403, b"Permission denied"), "leader: permission denied")])
def test_a_hostile_answer_is_one_line_within_the_deadline(hostile, answer: Handler, match: str) -> None:
    client = ConsulClient(hostile(answer), token="t", timeout=1.5, error=RunbookError)
    start = time.monotonic()
    with pytest.raises(RunbookError, match=match) as err:
        client.leader()
    assert time.monotonic() - start < 5 and "\n" not in str(err.value)
    assert all(c.isprintable() for c in str(err.value))
    assert client.facts().errors["leader"].startswith("consul: ")


def test_a_snapshot_cut_mid_body_is_the_callers_error(hostile) -> None:
    client = ConsulClient(hostile(_cut_snapshot), token="t", error=BackupError)
    got = 0
    with pytest.raises(BackupError, match="consul: the download broke off") as err, client.snapshot() as snap:
        for block in snap.blocks:
            got += len(block)
    assert got < 3 << 20 and "\n" not in str(err.value)


# -- where the facts are used: `vaultops status` and the upgrade preflight ------------------------

def consul_config(tmp_path: Path, consul: ConsulDouble, *, storage: str = "consul") -> Path:
    token = tmp_path / "consul-token"
    token.write_text(consul.token + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    path = tmp_path / "vaultops.yaml"
    path.write_text(yaml.safe_dump({
        "cluster": {"name": "unit", "storage": storage},
        "nodes": [{"name": "n1", "address": f"http://127.0.0.1:{closed}"}],
        "journal": {"path": str(tmp_path / "journal.jsonl")},
        "backup": {"consul": {"address": consul.address, "token_file": str(token)}}}))
    return path


def test_status_shows_consul_for_a_consul_cluster(tmp_path: Path, consul: ConsulDouble, capsys,
                                                  monkeypatch) -> None:
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(tmp_path / "state"))
    path = consul_config(tmp_path, consul)
    assert main(["--config", str(path), "status", "--format", "json", "--timeout", "1"]) == 12  # the node is down
    out = json.loads(capsys.readouterr().out)
    assert out["consul"]["leader"] == "127.0.0.1:8300" and out["consul"]["token"]["policies"] == ["vault-backup"]
    assert consul.token not in json.dumps(out)
    assert main(["--config", str(path), "status", "--timeout", "1"]) == 12
    assert "leader 127.0.0.1:8300" in capsys.readouterr().out


def test_status_asks_consul_only_on_consul_storage(tmp_path: Path, consul: ConsulDouble, monkeypatch) -> None:
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(tmp_path / "state"))
    assert cluster_consul(parse_config_file(consul_config(tmp_path, consul, storage="raft"))) is None
    assert cluster_consul(parse_config_file(consul_config(tmp_path, consul))) is not None


def test_consul_without_a_leader_degrades_an_otherwise_healthy_cluster() -> None:
    node = NodeStatus(name="n1", address="http://127.0.0.1:1", reachable=True, initialized=True, sealed=False)
    status = ClusterStatus(name="c", storage="consul", nodes=(node,), autopilot=None)
    assert status.exit is StatusExit.HEALTHY
    assert ClusterStatus(name="c", storage="consul", nodes=(node,), autopilot=None,
                         consul=ConsulFacts(address="a", leader="")).exit is StatusExit.DEGRADED
    unknown = ConsulFacts(address="a", errors={"leader": "consul: unreachable"})
    assert ClusterStatus(name="c", storage="consul", nodes=(node,), autopilot=None, consul=unknown).exit \
        is StatusExit.HEALTHY   # a check that could not run is shown, not judged


def test_the_upgrade_preflight_halts_on_consul_without_a_leader(consul: ConsulDouble) -> None:
    from vaultops.services.upgrade.preflight import _consul_check

    client = ConsulClient(consul.address, token=consul.token)
    assert _consul_check(client, {})["leader"] == "127.0.0.1:8300"
    consul.known_leader = False
    with pytest.raises(RunbookError, match="preflight: consul has no leader") as err:
        _consul_check(client, {"from": "2.6.2"})
    assert err.value.evidence["consul"]["problems"] and err.value.evidence["from"] == "2.6.2"
    consul.known_leader = True
    with pytest.raises(RunbookError, match="consul (raft|token)"):
        _consul_check(ConsulClient(consul.address, token="revoked"), {})

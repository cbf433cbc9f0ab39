"""--allow-insecure-http reaches every client: upgrade plan, rehearse, tls renew, console.

A real 1-node raft sandbox (plain http on 127.0.0.1) is reached through a TCP forwarder bound to
this machine's non-loopback address (eth0), so the configured address is http://<eth0-ip>:port,
which vaultops refuses unless --allow-insecure-http is given. Before, make_unsealer, rehearse and
tls' cluster_roles built their own clients without the flag: `upgrade plan` failed with
"refusing plain http" although the user had allowed it, and renew lost the node roles. Now the
Session (vaultops.session) reads the flag and builds every client; services are handed them.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from vaultops.cli import main
from vaultops.session import Session
from vaultops.testing.sandbox import Sandbox, start_sandbox

pytestmark = pytest.mark.integration
FROM, TO = "2.6.2", "2.7.2"


def non_loopback_ipv4() -> str | None:
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True,
                             text=True, timeout=10).stdout
    except OSError:
        return None
    for line in out.splitlines():
        address = line.split()[3].split("/")[0]
        with contextlib.suppress(OSError), socket.socket() as s:
            s.bind((address, 0))
            return address
    return None


class Forwarder(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listen: str, upstream: int) -> None:
        self.upstream = upstream
        super().__init__((listen, 0), _Pump)


class _Pump(socketserver.BaseRequestHandler):
    server: Forwarder

    def handle(self) -> None:
        with socket.create_connection(("127.0.0.1", self.server.upstream), timeout=30) as up:
            sel = selectors.DefaultSelector()
            sel.register(self.request, selectors.EVENT_READ, up)
            sel.register(up, selectors.EVENT_READ, self.request)
            while True:
                for key, _ in sel.select(timeout=30):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    """(the sandbox, a config naming its node as http://<eth0-ip>:port)."""
    address = non_loopback_ipv4()
    if address is None:
        pytest.skip("no non-loopback IPv4 address to reach the node through")
    box = start_sandbox(tmp_path_factory.mktemp("insecure"), name="insecure", nodes=1, version=FROM)
    forwarders = []
    try:
        doc = yaml.safe_load(box.config_path.read_text())
        for node in doc["nodes"]:
            fwd = Forwarder(address, int(node["address"].rsplit(":", 1)[1]))
            threading.Thread(target=fwd.serve_forever, daemon=True).start()
            forwarders.append(fwd)
            node["address"] = f"http://{address}:{fwd.server_address[1]}"
        doc["tls"] = {"nodes": {n["name"]: {"cert_file": str(box.dir / "c.pem"), "key_file": str(box.dir / "k.pem")}
                                for n in doc["nodes"]},
                      "acme": {"directory": "staging"}, "dns_provider": {"type": "rfc2136"},
                      "lock_file": str(box.dir / "tls.lock"), "metrics_file": str(box.dir / "tls.prom")}
        config = box.dir / "remote.yaml"
        config.write_text(yaml.safe_dump(doc))
        yield box, config
    finally:
        for fwd in forwarders:
            fwd.shutdown()
            fwd.server_close()
        box.stop()


def test_upgrade_plan_needs_and_honours_the_flag(remote: tuple[Sandbox, Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _, config = remote
    assert main(["--config", str(config), "upgrade", "plan", "--to", TO]) == 3
    assert "refusing plain http" in capsys.readouterr().err
    code = main(["--config", str(config), "upgrade", "plan", "--to", TO, "--allow-insecure-http"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{FROM} -> {TO}" in out and "node1" in out


def test_rehearse_and_the_console_use_the_flag(remote: tuple[Sandbox, Path]) -> None:
    from vaultops.errors import SecurityError
    from vaultops.services.upgrade.rehearse import _current_version
    from vaultops.services.upgrade.service import make_unsealer
    from vaultops.tui.console_ops import UpgradeOps

    _, config = remote
    session = Session(config_path=str(config), allow_insecure_http=True)
    assert _current_version(session.clients(token=False)) == FROM
    with pytest.raises(SecurityError):
        Session(config_path=str(config)).clients(token=False)
    assert make_unsealer(session.config, ["x"], clients=session.clients(token=False),
                         journal=session.journal) is not None
    plan = UpgradeOps(session).plan(TO)
    assert (plan.current, plan.leader) == (FROM, "node1")
    session.close()


def test_tls_renew_asks_the_roles_with_the_flag(remote: tuple[Sandbox, Path], monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The roles decide the reload order (active last); without them every node is 'unknown'."""
    from vaultops.services.tls.renew import RenewReport, cluster_roles

    _, config = remote
    seen: list[dict[str, str]] = []

    def fake_renew(settings: Any, *, roles: dict[str, str], **kwargs: Any) -> RenewReport:
        seen.append(dict(roles))
        return RenewReport(nodes=(), statuses=())

    monkeypatch.setattr("vaultops.services.tls.renew.renew", fake_renew)
    monkeypatch.setattr("vaultops.services.tls.acme_client.AcmeIssuer", lambda *a, **k: object())
    monkeypatch.setattr("vaultops.dns.get_provider", lambda *a, **k: object())
    assert main(["--config", str(config), "tls", "renew"]) == 0
    assert main(["--config", str(config), "tls", "renew", "--allow-insecure-http"]) == 0, capsys.readouterr().err
    assert seen == [{}, {"node1": "active"}]
    session = Session(config_path=str(config), allow_insecure_http=True)
    assert cluster_roles(session.clients(token=False, timeout=5.0)) == {"node1": "active"}
    session.close()


def test_the_console_builds_its_tls_ops_with_the_flag(remote: tuple[Sandbox, Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from vaultops.tui.console import console_screens

    _, config = remote
    monkeypatch.setattr("vaultops.tui.console._ConsoleUnseal", lambda ceremony: object())
    session = Session(config_path=str(config), allow_insecure_http=True)
    screens = console_screens(session, ceremony=None)  # type: ignore[arg-type]
    ops = {type(o).__name__: o for o in (getattr(s, "ops", None) for s in screens) if o is not None}
    assert {"TlsOps", "UpgradeOps", "BackupOps"} <= set(ops)
    assert all(o.session is session for o in ops.values())
    assert session._clients and all(c.allow_insecure_http for cs in session._clients.values() for c in cs)
    session.close()

